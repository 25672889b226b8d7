"""The Predictions page: side-by-side table, flip filters, counts, confusion matrices, detail."""
import os

import numpy as np
import pytest

from apptest_support import checkpoint_root, empty_root, page, texts
from mmaux.analysis import effects, runs
from mmaux.ui import SELECTED_KEY

PAGE = "pages/1_Predictions.py"


@pytest.fixture(scope="module")
def root():
    return checkpoint_root()


def _posts_table(at):
    return next(df.value for df in at.dataframe if "image" in df.value.columns and "text" in df.value.columns)


def test_default_comparison_shows_posts_counts_and_confusion(root, monkeypatch):
    at = page(PAGE, root, monkeypatch).run()
    assert not at.exception
    table = _posts_table(at)
    assert 0 < len(table) <= 100
    assert table["image"].str.startswith("data:image/png;base64,").all()
    checkpoint_columns = [c for c in table.columns if c not in ("post_id", "image", "text", "label")]
    assert 2 <= len(checkpoint_columns) <= 4
    assert table[checkpoint_columns[0]].str.match(r"^[✓✗] \S+ \d\.\d\d$").all()
    counts = next(df.value for df in at.dataframe if "fixed" in df.value.columns)
    assert counts["group"].iloc[-1] == "all" and counts["n"].iloc[-1] > 0
    assert list(counts.columns) == ["group", "n", "fixed", "broken", "net"]  # counts: no per-run test
    assert len(at.get("plotly_chart")) == 2  # confusion matrices, detail probabilities
    assert "OpenMoji" in texts(at.caption)


def test_fixed_filter_shows_only_posts_the_variant_fixed(root, monkeypatch):
    at = page(PAGE, root, monkeypatch).run()
    show = next(s for s in at.selectbox if s.label == "Show")
    at = show.select("fixed by the variant").run()
    assert not at.exception
    table = _posts_table(at)
    baseline, variant = (next(s for s in at.selectbox if s.label == label).format_func(
        next(s for s in at.selectbox if s.label == label).value) for label in ("Baseline", "Compared with"))
    counts = next(df.value for df in at.dataframe if "fixed" in df.value.columns).set_index("group")
    assert len(table) == min(100, int(counts.loc["all", "fixed"]))  # as many rows as fixed posts
    if len(table):
        assert (table[baseline].str.startswith("✗") & table[variant].str.startswith("✓")).all()


def test_effect_of_the_variant_is_the_home_pages(root, monkeypatch):
    """The compared variant's effect vs CE over all seeds, per slice, with the home page's
    numbers and verdicts (one procedure, one family)."""
    at = page(PAGE, root, monkeypatch).run()
    at = next(s for s in at.selectbox if s.label == "Slice by").select("evidence").run()
    assert not at.exception
    shown = next(df.value for df in at.dataframe if "verdict" in df.value.columns)
    folders = at.session_state[SELECTED_KEY]
    table = runs.discover_runs(root.split(os.pathsep))
    variant_folder = next(s for s in at.selectbox if s.label == "Compared with").value
    row = table.set_index("folder").loc[variant_folder]
    group = runs.usable(table)[(runs.usable(table)[runs.GROUP_COLUMNS] == list(row[runs.GROUP_COLUMNS])).all(axis=1)]
    expected = effects.effects_table(group)
    expected = expected[(expected["effect"] == row["variant"]) & expected["slicing"].isin(["all", "evidence"])]
    assert list(shown["slice"]) == list(expected["slice"]) and len(folders) >= 2
    np.testing.assert_allclose(shown[["delta", "ci_low", "ci_high", "p_bh"]], expected[["delta", "ci_low", "ci_high", "p_bh"]])
    assert list(shown["verdict"]) == list(expected["verdict"])
    assert f"BH family: the {expected['family_size'].iloc[0]} effects of" in texts(at.caption)


def test_post_from_query_param_opens_its_detail(root, monkeypatch):
    at = page(PAGE, root, monkeypatch).run()
    post_id = _posts_table(at)["post_id"].iloc[-1]
    at = page(PAGE, root, monkeypatch)
    at.query_params["post"] = post_id
    at.run()
    assert not at.exception
    assert next(s for s in at.selectbox if s.label == "Post").value == post_id
    assert at.session_state["post_id"] == post_id


def test_empty_root_says_so(tmp_path, monkeypatch):
    at = page(PAGE, empty_root(tmp_path), monkeypatch).run()
    assert not at.exception and "No usable checkpoints" in texts(at.info)
