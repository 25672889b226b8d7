"""The Your Post page: an example post, image bytes handed over in session state (the path an
upload takes), a broken upload, and the perturbations, on every selected checkpoint."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from apptest_support import checkpoint_root, page, texts
from mmaux.analysis import runs
from mmaux.checkpoint import read_info

PAGE = "pages/5_Your_Post.py"


@pytest.fixture(scope="module")
def root():
    return checkpoint_root()


def _png() -> bytes:
    """A real photo-like image: a smooth gradient with a red disc."""
    y, x = np.mgrid[:160, :200]
    pixels = np.stack([x * 255 // 200, y * 255 // 160, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    pixels[(x - 100) ** 2 + (y - 80) ** 2 < 40 ** 2] = (220, 30, 30)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _predictions(at):
    return next(df.value for df in at.dataframe if "ITM match P" in df.value.columns or "itm_match" in df.value.columns)


def _selected(at) -> int:
    return len(at.session_state["selected_checkpoints"])


def test_example_post_gets_one_prediction_per_checkpoint(root, monkeypatch, tmp_path):
    monkeypatch.setenv("MMAUX_PROBES", str(tmp_path))
    at = page(PAGE, root, monkeypatch).run()
    assert not at.exception
    table = _predictions(at)
    assert len(table) == _selected(at) >= 1
    assert all(v == "not trained with ITC" or -1 <= float(v) <= 1 for v in table["itc_cosine"])
    assert all(v == "no ITM head" or 0 <= float(v) <= 1 for v in table["itm_match"])
    checkpoints = list(at.session_state["selected_checkpoints"])
    trained = [read_info(f).model.loss.itc for f in checkpoints]
    shown = dict(zip(table["checkpoint"], table["itc_cosine"]))
    assert sum(v != "not trained with ITC" for v in shown.values()) == sum(trained)  # a cosine only where ITC trained
    assert len(at.get("plotly_chart")) >= 2  # probabilities, and where the post lands in the map
    assert "your post's image and text" in texts(at.caption)
    assert "OpenMoji" in texts(at.caption)
    assert "trained on:" in texts(at.info) and "synthetic training posts" in texts(at.info)
    assert "tokens; the chosen checkpoints read the first" in texts(at.caption)
    ood_table = next(df.value for df in at.dataframe if "out-of-distribution" in df.value.columns)
    assert len(ood_table) == _selected(at)
    assert not any("unlike the data" in w.value for w in at.warning)  # a test post is like the test posts
    donors = next(s for s in at.selectbox if s.label == "Other post for the swaps")
    assert at.session_state["_example"] not in donors.options  # never the post itself


def test_image_bytes_and_text_from_session_state(root, monkeypatch, tmp_path):
    monkeypatch.setenv("MMAUX_PROBES", str(tmp_path))
    two = runs.default_comparison(runs.discover_runs(root.split(os.pathsep)))[:2]  # keeps the test quick
    at = page(PAGE, root, monkeypatch, your_post_image=("mine.png", _png()), selected_checkpoints=two,
              your_post_text="worst day ever @amy #fail 😡").run()
    assert not at.exception
    assert len(_predictions(at)) == _selected(at)
    # a photo-like image and a sports tweet are unlike SynthPosts: said per checkpoint, and warned about
    assert any("unlike the data" in w.value for w in at.warning)
    ood_table = next(df.value for df in at.dataframe if "out-of-distribution" in df.value.columns)
    assert (ood_table["image percentile"].astype(float) > 99).all()
    at = at.text_area(key="_your_post_text").input("best day ever 🎉").run()
    assert not at.exception and len(_predictions(at)) == _selected(at)
    at = next(b for b in at.button if b.label == "Run perturbations").click().run()
    assert not at.exception
    deltas = next(df.value for df in at.dataframe if "Δ p(original label)" in df.value.columns)
    assert len(deltas) == 10 * _selected(at)  # 8 perturbations + 2 swaps, per checkpoint
    assert np.isfinite(deltas["Δ p(original label)"]).all()


def test_a_refused_upload_clears_the_previous_posts_results(root, monkeypatch):
    """The last upload was refused (its reason in session state, as `on_upload` leaves it): the
    error, and none of the previous post's predictions, which would read as the upload's."""
    two = runs.default_comparison(runs.discover_runs(root.split(os.pathsep)))[:2]
    at = page(PAGE, root, monkeypatch, your_post_image=("mine.png", _png()), selected_checkpoints=two,
              your_post_text="worst day ever").run()
    assert _predictions(at) is not None
    at.session_state["your_post_upload_error"] = "upload page.png: not an image: it is an HTML page"
    at.run()
    assert not at.exception
    assert "upload page.png: not an image" in texts(at.error)
    assert not [df for df in at.dataframe if "itc_cosine" in df.value.columns or "ITM match P" in df.value.columns]
    assert not at.get("plotly_chart")


def test_an_image_without_a_text_asks_for_the_text(root, monkeypatch):
    at = page(PAGE, root, monkeypatch, your_post_image=("mine.png", _png()), your_post_text="  ").run()
    assert not at.exception
    assert "Type the post's text in the box above" in texts(at.info)
    assert not [df for df in at.dataframe if "itc_cosine" in df.value.columns or "ITM match P" in df.value.columns]
    assert at.get("image")  # the upload is shown: it was taken


def test_undecodable_image_is_an_error_message(root, monkeypatch):
    at = page(PAGE, root, monkeypatch, your_post_image=("fake.png", b"<html>login</html>"),
              your_post_text="hello").run()
    assert not at.exception
    assert "upload fake.png: not an image: it is an HTML page" in texts(at.error)
