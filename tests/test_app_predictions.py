"""The Predictions page: side-by-side table, flip filters, counts, confusion matrices, detail."""
import os

import numpy as np
import pytest

from apptest_support import checkpoint_root, empty_root, page, texts
from mmaux.analysis import group_results, runs
from mmaux import selection
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
    checkpoint_columns = [c for c in table.columns if c not in ("post_id", "image", "text", "label", "Δp")]
    assert 2 <= len(checkpoint_columns) <= 4
    assert table[checkpoint_columns[0]].str.match(r"^[✓✗] \S+ \d\.\d\d$").all()
    # the pair the page compares, and its Δp, right after the gold label (not cut at the grid's right edge)
    shown = {s.label: s.value for s in at.selectbox}
    names = {s.label: s.format_func(s.value) for s in at.selectbox if s.label in ("Baseline", "Compared with")}
    assert list(table.columns[:7]) == ["post_id", "image", "text", "label", names["Baseline"],
                                       names["Compared with"], "Δp"], (list(table.columns), shown)
    assert names == {"Baseline": "CE", "Compared with": "CE+ITC"}  # the variants by their one name
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


def test_search_keeps_the_posts_whose_text_contains_it_over_every_page(root, monkeypatch):
    at = page(PAGE, root, monkeypatch).run()
    every = runs.load_test_table(at.session_state[SELECTED_KEY][0])
    words = every["text"].str.split().explode().str.strip("#@!?.,").str.lower()
    word = words[words.str.len() >= 5].value_counts().index[0]  # the commonest word of five letters or more
    expected = every[every["text"].str.contains(word, case=False, regex=False)]
    at = next(t for t in at.text_input if t.label == "Search the posts' texts").input(word.upper()).run()
    assert not at.exception and at.query_params["q"] == word.upper()
    table = _posts_table(at)
    assert len(table) == min(100, len(expected)) and table["text"].str.lower().str.contains(word.lower()).all()
    pages = next((n for n in at.number_input if n.label.startswith("Page (of ")), None)
    assert (pages is None) == (len(expected) <= 100)  # the search spans every page, then pages again


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
    expected = group_results.group_effects(group)  # the shipped estimate (checked fresh in test_group_results)
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
    assert next(s for s in at.selectbox if s.label.startswith("Post")).value == post_id
    assert at.session_state["post_id"] == post_id


def test_the_detail_shows_no_itc_cosine_from_untrained_projections(root, monkeypatch):
    """A run trained without ITC stores the cosine of its untrained projections; the post's
    detail says so instead of showing it, and shows the stored cosine of a run trained with ITC."""
    at = page(PAGE, root, monkeypatch).run()
    assert not at.exception
    detail = next(df.value for df in at.dataframe if "itc_cosine" in df.value.columns).set_index("checkpoint")
    post_id = at.session_state["post_id"]
    chosen = at.session_state[SELECTED_KEY]
    table = runs.discover_runs([root]).set_index("folder").loc[chosen]
    assert set(table["itc"]) == {True, False}  # the default comparison has both kinds
    for folder, name, itc in zip(chosen, detail.index, table["itc"]):
        stored = runs.load_test_table(folder).set_index("post_id").loc[post_id, "itc_cosine"]
        assert detail.loc[name, "itc_cosine"] == (f"{stored:.3f}" if itc else "not trained with ITC")


def test_empty_root_says_so(tmp_path, monkeypatch):
    at = page(PAGE, empty_root(tmp_path), monkeypatch).run()
    assert not at.exception and "No usable checkpoints" in texts(at.info)


def _select(at, label, value):
    return next(s for s in at.selectbox if s.label == label).set_value(value).run()


def test_the_view_lives_in_the_url(root, monkeypatch):
    """Checkpoints, pair, filters and order go into the URL; the URL alone restores the same view."""
    at = page(PAGE, root, monkeypatch).run()
    at = next(m for m in at.sidebar.multiselect if m.label == "Seeds").set_value([1]).run()
    at = next(m for m in at.sidebar.multiselect if m.label == "Loss variants").set_value(["CE", "CE+ITM"]).run()
    for label, value in (("Show", "broken by the variant"), ("Slice by", "evidence"), ("Slice value", "text_only"),
                         ("Order", "Δp: largest gain first")):
        at = _select(at, label, value)
    assert not at.exception
    params = dict(at.query_params)
    assert params["seed"] == "1" and params["variant"] == "CE,CE+ITM" and params["show"] == "broken by the variant"
    assert params["slice"] == "evidence" and params["value"] == "text_only" and params["order"] == "dp"
    chosen, table = list(at.session_state[SELECTED_KEY]), _posts_table(at)
    assert len(chosen) == 2 and all("seed1" in f for f in chosen)
    assert (table["Δp"].diff().dropna() <= 1e-12).all()  # sorted by Δp over the whole filter
    again = page(PAGE, root, monkeypatch)
    for name, value in params.items():
        again.query_params[name] = value
    again.run()
    assert not again.exception
    assert list(again.session_state[SELECTED_KEY]) == chosen
    assert _posts_table(again).equals(table)
    assert dict(again.query_params) == params
    shown = {s.label: s.value for s in again.selectbox}
    assert shown["Show"] == "broken by the variant" and shown["Slice value"] == "text_only"
    assert [m.value for m in again.sidebar.multiselect if m.label == "Seeds"] == [[1]]


def test_checkpoints_of_two_tasks_are_not_compared(root, monkeypatch):
    table = runs.usable(runs.discover_runs(root.split(os.pathsep)))
    ce = table[table["variant"] == runs.BASELINE].drop_duplicates("task")["folder"].tolist()[:2]
    if len(ce) < 2:
        pytest.skip("needs checkpoints of two tasks")
    at = page(PAGE, root, monkeypatch, selected_checkpoints=ce).run()
    assert not at.exception
    refusal = [w.value for w in at.warning if w.value.startswith("Not compared:")]
    assert len(refusal) == 1 and "another task" in refusal[0]
    assert at.session_state[SELECTED_KEY] == ce[:1]
    assert "Choose at least 2 checkpoint(s)" in texts(at.info)


def test_default_comparison_is_the_group_with_the_clearest_effect(root, monkeypatch):
    at = page(PAGE, root, monkeypatch).run()
    table = runs.discover_runs(root.split(os.pathsep))
    frames = {key: group_results.group_effects(group) for key, group in runs.groups(runs.usable(table))}
    key, why = selection.default_group(table, frames)
    assert at.session_state[SELECTED_KEY] == selection.default_selection(table, key).folders(table)
    assert why in texts(at.sidebar.caption)


def test_caveat_badges_only_where_they_inform(root, monkeypatch):
    """A run without ITC in its variant's name (CE, CE+ITM) gets no 'ITC projection untrained'
    badge: its name already says so. Every badge sits on one checkpoint's line, named first."""
    at = page(PAGE, root, monkeypatch).run()
    assert not at.exception
    lines = [m.value for m in at.markdown if "-badge[⚠" in m.value]
    table = runs.usable(runs.discover_runs(root.split(os.pathsep))).set_index("folder")
    assert set(table.loc[at.session_state[SELECTED_KEY][:4], "variant"]) & {"CE", "CE+ITM"}  # the case is tested
    assert not any("ITC projection untrained" in line for line in lines)
    assert all(line.startswith("**") for line in lines)


def test_a_partial_link_opens_the_task_it_names_and_says_what_it_assumed(root, monkeypatch):
    """`?task=relation` alone (the README's links name no dataset): that task, the rest filled in
    from its default comparison and said, and the full view written back to the URL."""
    at = page(PAGE, root, monkeypatch)
    at.query_params["task"] = "relation"
    at.run()
    assert not at.exception
    table = runs.usable(runs.discover_runs(root.split(os.pathsep))).set_index("folder")
    assert set(table.loc[at.session_state[SELECTED_KEY], "task"]) == {"relation"}
    params = dict(at.query_params)
    assert params["task"] == "relation" and params["dataset"] == "SynthPosts" and params["variant"]
    assert f"The link names only part of the view; assumed dataset SynthPosts, architecture {params['arch']}" \
        in texts(at.info)


def test_a_new_task_keeps_the_variants_chosen(root, monkeypatch):
    at = page(PAGE, root, monkeypatch).run()
    at = next(m for m in at.sidebar.multiselect if m.label == "Loss variants").set_value(["CE", "CE+ITM"]).run()
    task = next(s for s in at.sidebar.selectbox if s.label == "Task")
    other = next(o for o in task.options if not o.startswith(task.format_func(task.value)))
    at = task.set_value(other.rsplit(" (", 1)[0]).run()
    assert not at.exception
    assert [m.value for m in at.sidebar.multiselect if m.label == "Loss variants"] == [["CE", "CE+ITM"]]
    assert dict(at.query_params)["variant"] == "CE,CE+ITM"


def test_links_to_the_other_pages_carry_the_slice(root, monkeypatch):
    at = page(PAGE, root, monkeypatch)
    at.query_params["slice"], at.query_params["value"] = "evidence", "text_only"
    at.run()
    assert not at.exception
    links = [link.proto for link in at.get("page_link")]
    assert [link.label for link in links] == ["Match scores →", "Embeddings →", "Attributions →"]  # nav names
    assert all("slice=evidence" in link.query_string and "value=text_only" in link.query_string
               and "variant=" in link.query_string and "post=" in link.query_string for link in links)
