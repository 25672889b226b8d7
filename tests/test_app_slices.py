"""The user's own slices in the dashboard: defined on Predictions or picked on an Embeddings map,
kept in the URL, offered wherever posts are sliced, estimated in the effects (home heatmap and
Predictions) and in a contrast of the user's own; bad definitions get a clear error."""
import numpy as np
import pytest

from apptest_support import checkpoint_root, page, texts
from mmaux import selection
from mmaux.analysis import custom_slices as custom
from mmaux.analysis import effects, embeddings, runs
from mmaux.checkpoint import read_outputs
from mmaux.ui import SELECTED_KEY

PREDICTIONS = "pages/1_Predictions.py"
IMAGE_ONLY = "image only|evidence|=|image_only"  # a slice whose posts are known from a column


@pytest.fixture(scope="module")
def root():
    return checkpoint_root()


def _effects_rows(at):
    return next(df.value for df in at.dataframe if {"slice", "verdict", "delta"} <= set(df.value.columns))


def test_a_slice_in_the_link_filters_posts_and_has_its_effects(root, monkeypatch):
    at = page(PREDICTIONS, root, monkeypatch)
    at.query_params.update(custom=IMAGE_ONLY, slice="custom: image only", value=custom.IN)
    at = at.run()
    assert not at.exception, at.exception
    every = runs.load_test_table(at.session_state[SELECTED_KEY][0])
    inside = int((every["evidence"] == "image_only").sum())
    assert f"**{min(inside, len(every))}** of {len(every)} test posts match." in texts(at.markdown)
    assert "custom: image only" in next(s for s in at.selectbox if s.label == "Slice by").options
    rows = _effects_rows(at).set_index("slice")
    assert {custom.IN, custom.OUT} <= set(rows.index) and rows.loc[custom.IN, "n"].startswith(str(inside))
    assert set(rows["verdict"]) <= set(effects.VERDICTS)
    assert "Your slices: **image only** (evidence = image_only)" in texts(at.caption)


def _define(at, name: str, column: str, op: str, value: str):
    """Fill in 'Define a slice of your own' and submit it."""
    next(t for t in at.text_input if t.label == "Name").input(name)
    next(s for s in at.selectbox if s.label == "Column").select(column)
    next(s for s in at.selectbox if s.label == "Operator").select(op)
    next(t for t in at.text_input if t.label == "Value").input(value)
    return next(b for b in at.button if b.label == "Add the slice").click().run()


def test_a_slice_defined_in_the_form_goes_into_the_url_and_can_be_removed(root, monkeypatch):
    at = _define(page(PREDICTIONS, root, monkeypatch).run(), "sad words", "text", "contains", "sad")
    assert not at.exception, at.exception
    assert at.query_params["custom"] == "sad words|text|contains|sad"
    assert "custom: sad words" in next(s for s in at.selectbox if s.label == "Slice by").options
    at = next(b for b in at.button if b.label == "Remove").click().run()
    assert not at.exception and "custom" not in at.query_params


def test_a_bad_slice_is_refused_with_its_reason_and_the_url_is_kept(root, monkeypatch):
    at = _define(page(PREDICTIONS, root, monkeypatch).run(), "many tags", "hashtags", "≥", "lots")
    assert not at.exception and "custom" not in at.query_params
    assert any("≥ needs a number, got 'lots'" in e.value for e in at.error)


def test_a_malformed_slice_in_a_link_is_said_not_raised(root, monkeypatch):
    at = page(PREDICTIONS, root, monkeypatch)
    at.query_params["custom"] = "broken|text"
    at = at.run()
    assert not at.exception and any("own slices cannot be read" in w.value for w in at.warning)


def test_a_contrast_of_ones_own_is_tested_alone_and_kept_in_the_url(root, monkeypatch):
    at = page(PREDICTIONS, root, monkeypatch)
    at.query_params.update(custom=IMAGE_ONLY, ceffect="CE+ITC", cslice="custom: image only", ca=custom.IN, contrast="1")
    at = at.run()
    assert not at.exception, at.exception
    contrast = next(df.value for df in at.dataframe if "slice A − slice B" in df.value.index)["your contrast"]
    assert contrast["effect"] == "CE+ITC"
    assert contrast["slice A − slice B"].startswith("custom: image only: in (n=")
    assert " − the rest (n=" in contrast["slice A − slice B"]
    assert contrast["verdict"].split(" · ")[0] in effects.VERDICTS
    at = next(s for s in at.selectbox if s.label == "Slice B").select(custom.OUT).run()
    assert at.query_params["cb"] == custom.OUT


def test_a_contrast_is_tested_only_when_asked(root, monkeypatch):
    at = page(PREDICTIONS, root, monkeypatch).run()
    assert not at.exception and not [df for df in at.dataframe if "slice A − slice B" in df.value.index]
    at = next(t for t in at.toggle if t.label == "Test this contrast").set_value(True).run()
    assert not at.exception and at.query_params["contrast"] == "1"
    assert [df for df in at.dataframe if "slice A − slice B" in df.value.index]


def test_the_home_heatmap_has_a_row_per_value_of_ones_slice(root, monkeypatch):
    at = page("app.py", root, monkeypatch)
    at.query_params["custom"] = IMAGE_ONLY
    at = at.run()
    assert not at.exception, at.exception
    heatmaps = [df for df in at.dataframe if any("custom: image only = in" in str(i) for i in df.value.index)]
    assert heatmaps, "no heatmap has the slice's row"
    assert "Your slices: **image only**" in texts(at.caption)


@pytest.mark.slow
def test_posts_picked_on_a_map_become_a_slice_that_opens_on_predictions(app_runs, monkeypatch):
    root, table = app_runs
    group = table[(table["architecture"] == "attention") & (table["task"] == table["task"].iloc[0])]
    chosen = [group[(group["itc"] == itc) & ~group["itm"]].sort_values("seed")["folder"].iloc[0] for itc in (False, True)]
    at = page("pages/3_Embeddings.py", root, monkeypatch, _embed_method="PCA", _embed_space="both",
              **{SELECTED_KEY: chosen}).run()  # from app.py, as `streamlit run` does: the link to Predictions resolves
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # the fused and the ITC maps, side by side
    near = [df.value for df in at.dataframe if "cosine" in df.value.columns and "post" in df.value.columns]
    assert len(near) == 2 and all(len(n) == 10 for n in near)  # nearest posts in each space
    # the list is the first checkpoint's until another is chosen: then that one's nearest posts
    first = near[0]
    table_ids = runs.load_test_table(chosen[1])["post_id"].to_numpy()
    at.selectbox(key="_near_in_fused").set_value(chosen[1]).run()
    assert not at.exception, at.exception
    post = next(s for s in at.sidebar.selectbox if s.label == "Post").value
    row = int(np.flatnonzero(table_ids == post)[0])
    expected = embeddings.nearest_posts(read_outputs(chosen[1])[1], row, "fused")
    near = next(df.value for df in at.dataframe if "cosine" in df.value.columns and "post" in df.value.columns)
    assert list(near["post"]) == list(table_ids[expected["row"]]) != list(first["post"])
    ids = list(runs.load_test_table(chosen[0])["post_id"][:5])
    at.session_state["_embed_picked"] = ids
    at = at.run()
    at = next(b for b in at.button if b.label == "Save as a slice").click().run()
    assert not at.exception, at.exception
    assert at.query_params["custom"] == "picked on the map|post_id|in|" + ",".join(ids)
    assert any(e.proto.label == "Open 'picked on the map' on Predictions →" for e in at.get("page_link"))
    predictions = page(PREDICTIONS, root, monkeypatch)
    predictions.query_params.update(custom=at.query_params["custom"], slice="custom: picked on the map",
                                    value=custom.IN, **{k: at.query_params[k] for k in selection.PARAMS if k in at.query_params})
    predictions = predictions.run()
    assert not predictions.exception, predictions.exception
    assert "**5** of " in texts(predictions.markdown)


def test_the_ce_confidence_slice_reads_two_columns_and_leaves_out_an_unreadable_run(root, tmp_path):
    """The dashboard's mean CE confidence equals the library's over the full test tables, though it
    reads only post_id and confidence of each CE run; a CE run whose outputs cannot be read is left
    out of the mean instead of stopping the page."""
    import shutil

    from mmaux.ui import slices

    table = runs.usable(runs.discover_runs([root]))
    group = slices.group_of(table, table["folder"].iloc[0])
    ce = list(group.loc[group["variant"] == runs.BASELINE, "folder"])
    full = {f: runs.load_test_table(f) for f in ce}
    assert slices._ce_confidence(group, ("fresh", tmp_path.name)).equals(custom.ce_confidence(group, full))
    copies = [shutil.copytree(f, tmp_path / f"ce{i}") for i, f in enumerate(ce[:2])]
    (copies[1] / "test_outputs.parquet").write_bytes(b"not parquet")
    two = group[group["folder"].isin(ce[:2])].assign(folder=[str(c) for c in copies])
    mean = slices._ce_confidence(two, ("broken", tmp_path.name))
    assert list(mean.index) == list(full[ce[0]]["post_id"])
    assert np.array_equal(mean.to_numpy(), full[ce[0]]["confidence"].to_numpy())
