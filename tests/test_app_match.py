"""AppTest of the Match scores page on real checkpoints: a CE checkpoint makes no alignment
claim, every alignment number has its random-projection and chance references beside it, and the
classifier's calibration chart is scikit-learn's calibration curve."""
import base64
import json
import math
from pathlib import Path

import numpy as np
import plotly.io
import pytest
from sklearn.calibration import calibration_curve
from streamlit.testing.v1 import AppTest

from apptest_support import open_late_cells
from robust_support import TINY_TRAIN, private_cache, shared_dir

from mmaux.analysis.runs import load_test_table
from mmaux.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def _values(encoded) -> np.ndarray:
    """A plotly JSON array: a list, or {"dtype", "bdata": base64} for a numpy array."""
    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=np.dtype(encoded["dtype"]))
    return np.asarray(encoded, dtype=float)


def _open(app_runs, monkeypatch, cells, state=None):
    return open_late_cells("pages/2_Match_Scores.py", app_runs, monkeypatch, cells, state)


def test_a_ce_checkpoint_makes_no_alignment_claim_and_itm_has_its_references(app_runs, monkeypatch):
    at, (ce, itm) = _open(app_runs, monkeypatch, [(False, False), (False, True)])
    assert not at.exception, at.exception
    assert any("no match score" in info.value for info in at.info)
    badged = [m.value for m in at.markdown if "-badge[⚠" in m.value]  # the caveats beside the checkpoints
    assert not any("ITC projection untrained" in b for b in badged)  # CE and CE+ITM say so by their names
    health = at.dataframe[0].value
    assert set(health["number"]) == {"ITM true vs shuffled AUROC"}  # only the ITM checkpoint, no ITC space
    assert len(health) == 1 and health["chance"].iloc[0] == "0.500"
    assert math.isfinite(float(health["random projection"].iloc[0])) and math.isfinite(float(health["value"].iloc[0]))
    # the calibration chart is scikit-learn's calibration_curve of the classifier's confidence
    figure = next(plotly.io.from_json(c.proto.spec) for c in at.get("plotly_chart") if "ECE" in c.proto.spec)
    lines = [t for t in figure.data if "ECE" in (t.name or "")]
    assert len(lines) == 2  # both checkpoints' classifiers are calibrated, CE too
    table = load_test_table(ce)
    accuracy, confidence = calibration_curve(table["correct"].astype(int), table["confidence"], n_bins=10)
    np.testing.assert_allclose(_values(lines[0].x), confidence, rtol=1e-6)
    np.testing.assert_allclose(_values(lines[0].y), accuracy, rtol=1e-6)
    assert not any(t.get("line", {}).get("dash") == "dot" for c in at.get("plotly_chart")
                   for t in json.loads(c.proto.spec)["data"] if "ECE" not in c.proto.spec)  # no other diagonal


def test_an_itc_checkpoint_shows_retrieval_beside_chance_and_random(app_runs, monkeypatch):
    at, _ = _open(app_runs, monkeypatch, [(True, False)])
    assert not at.exception, at.exception
    health = at.dataframe[0].value.set_index("number")
    n = len(load_test_table(app_runs[1]["folder"].iloc[0]))
    assert float(health.loc["ITC i2t@10", "chance"]) == pytest.approx(10 / n, abs=5e-4)
    assert "ITM true vs shuffled AUROC" not in health.index
    # the random projection of the frozen features retrieves at chance (± 4 binomial standard errors)
    p = 10 / n
    assert abs(float(health.loc["ITC i2t@10", "random projection"]) - p) <= 4 * math.sqrt(p * (1 - p) / n) + 5e-4
    assert health.loc["ITC modality gap", "chance"] == "none"  # said, not an empty cell the browser shows as None
    assert math.isfinite(float(health.loc["ITC modality gap", "random projection"]))


def test_match_scores_names_its_variants_and_compares_the_same_texts(app_runs, monkeypatch):
    """CE+ITM and CE+ITC+ITM: the page names both variants; both checkpoints' ranked-text charts
    list the same texts, and their legend sits above the bars, covering none of them."""
    at, _ = _open(app_runs, monkeypatch, [(False, True), (True, True)])
    assert not at.exception, at.exception
    assert "**Loss variants shown:** CE+ITM, CE+ITC+ITM" in [m.value for m in at.markdown]
    ranked = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "own text" in c.proto.spec]
    assert len(ranked) == 2
    texts = [sorted(t for trace in chart["data"] for t in trace["y"]) for chart in ranked]
    assert texts[0] == texts[1]
    for chart in ranked:
        legend = chart["layout"]["legend"]
        assert legend["orientation"] == "h" and legend["y"] >= 1 and legend["yanchor"] == "bottom"
    assert any("the same texts for every checkpoint" in c.value for c in at.caption)


def test_match_page_follows_the_post_choice(open_page):
    at = open_page("pages/2_Match_Scores.py", n_checkpoints=1)
    post = next(s for s in at.sidebar.selectbox if s.label == "Post")
    other = post.options[3].split(":")[0]  # options are shown as "<post id>: <text>"
    post.set_value(other).run()
    assert not at.exception, at.exception
    assert at.session_state["post_id"] == other


def _tiny_mmbt_itc(tmp_path_factory, tiny_bert, tiny_vit, align: bool) -> str:
    """A tiny MMBT checkpoint trained with ITC (CLI, tiny offline encoders, 16 SynthPosts posts)."""
    from mmaux.cli import main

    flag = "--align-before-fuse" if align else "--no-align-before-fuse"
    root = tmp_path_factory.mktemp(f"mmbt{flag}")
    folder = root / "synthposts-sentiment" / "mmbt" / "itc-seed0"
    with private_cache(tmp_path_factory):
        args = [a if a != "itc,itm" else "itc" for a in TINY_TRAIN]
        assert main(["train", *args, "--arch", "mmbt", flag, "--text-encoder", tiny_bert,
                     "--image-encoder", tiny_vit, "--out", str(folder)]) == 0
    return str(folder)


def test_early_fusion_says_its_texts_saw_their_images_and_offers_cross_pair_retrieval(
        tmp_path_factory, tiny_bert, tiny_vit, monkeypatch):
    """MMBT whose ITC reads the joint layer (no align_before_fuse): each text state has seen its
    own image, and the page says so beside every number and offers cross-pair retrieval."""
    from mmaux.analysis import matching

    folder = _tiny_mmbt_itc(tmp_path_factory, tiny_bert, tiny_vit, align=False)
    monkeypatch.setenv("MMAUX_CHECKPOINTS", str(Path(folder).parents[2]))
    monkeypatch.setenv("MMAUX_CACHE", str(shared_dir(tmp_path_factory) / "cache"))
    monkeypatch.setattr(matching, "CROSS_PAIR_POSTS", 8)  # 64 joint passes
    at = AppTest.from_file(str(REPO_ROOT / "pages/2_Match_Scores.py"), default_timeout=180)
    at.session_state["selected_checkpoints"] = [folder]
    at.session_state["_cross_pairs"] = True
    at.run()
    assert not at.exception, at.exception
    assert any("has already seen its own image" in w.value for w in at.warning)
    health = at.dataframe[0].value
    assert health["number"].str.endswith("(text has seen its image)").all()
    cross = at.dataframe[1].value.set_index("number")
    assert cross.loc["i2t@1", "chance"] == "0.125" and cross.loc["t2i@5", "chance"] == "0.625"  # shown to 3 places
    assert cross["value"].astype(float).between(0, 1).all() and cross["random projection"].astype(float).between(0, 1).all()


def test_mmbt_aligned_before_its_joint_layer_is_retrieval(tmp_path_factory, tiny_bert, tiny_vit, monkeypatch):
    """With align_before_fuse MMBT's ITC reads each side alone: no "has seen its image" caveat."""
    folder = _tiny_mmbt_itc(tmp_path_factory, tiny_bert, tiny_vit, align=True)
    monkeypatch.setenv("MMAUX_CHECKPOINTS", str(Path(folder).parents[2]))
    monkeypatch.setenv("MMAUX_CACHE", str(shared_dir(tmp_path_factory) / "cache"))
    at = AppTest.from_file(str(REPO_ROOT / "pages/2_Match_Scores.py"), default_timeout=180)
    at.session_state["selected_checkpoints"] = [folder]
    at.run()
    assert not at.exception, at.exception
    assert not any("has already seen its own image" in w.value for w in at.warning)
    assert not at.dataframe[0].value["number"].str.contains("has seen its image").any()
