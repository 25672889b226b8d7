"""The home page (app.py) on the shipped checkpoints, an empty root and a broken checkpoint."""
import os

import numpy as np
import pytest

from apptest_support import checkpoint_root, empty_root, page, texts


@pytest.fixture(scope="module")
def root():
    return checkpoint_root()


def test_home_shows_scores_effects_and_slices(root, monkeypatch):
    at = page("app.py", root, monkeypatch).run()
    assert not at.exception
    frames = [df.value for df in at.dataframe]
    summaries = [f for f in frames if "macro-F1" in f.columns]
    assert summaries and all(len(f) for f in summaries)
    assert all("±" in value for f in summaries for value in f["macro-F1"])
    effects = [f for f in frames if "effect" in f.columns]
    for table in effects:
        assert list(table["effect"]) == ["ITC", "ITM", "ITC×ITM"]
        assert np.isfinite(table[["estimate", "ci_low", "ci_high", "p"]].to_numpy(float)).all()
    differences = [f for f in frames if "p_bh" in f.columns]
    assert differences and all(((f["p_bh"] >= f["p"] - 1e-12) | f["p"].isna()).all() for f in differences)
    assert len(at.get("plotly_chart")) >= 2
    assert "OpenMoji" in texts(at.caption) and "synthetic test bed" in texts(at.caption)


def test_home_with_empty_root_says_so(tmp_path, monkeypatch):
    at = page("app.py", empty_root(tmp_path), monkeypatch).run()
    assert not at.exception
    assert "No usable checkpoints" in texts(at.info)


def test_broken_checkpoint_is_a_warning_row(root, tmp_path, monkeypatch):
    broken = tmp_path / "extra" / "ce-seed9"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ truncated")
    at = page("app.py", root + os.pathsep + str(tmp_path / "extra"), monkeypatch).run()
    assert not at.exception
    assert "cannot be used" in texts(at.warning)
    rows = [df.value for df in at.dataframe if "error" in df.value.columns]
    assert rows and "not valid JSON" in rows[0]["error"].iloc[0]
