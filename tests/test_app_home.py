"""The home page (pages/0_Checkpoints.py, opened by app.py) on the shipped checkpoints, an empty root and a broken checkpoint."""
import os

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apptest_support import checkpoint_root, empty_root, page, texts
from mmaux import views
from mmaux.analysis import effects, runs


@pytest.fixture(scope="module")
def root():
    return checkpoint_root()


@pytest.fixture(scope="module")
def expected(root):
    """The effects the page must show, from the library directly (same procedure, same seeds; read
    from the shipped results, which test_group_results checks against a fresh estimate)."""
    from mmaux import report

    return report.results(runs.discover_runs(root.split(os.pathsep)))[0]


def _details_of_every_group(at, expected):
    """(dataframes, captions) of the page with each group's details chosen in turn (the page
    draws one group's details at a time)."""
    frames, captions = [], ""
    for family in expected["family"].unique():
        at = next(s for s in at.selectbox if s.label == "Group").select(family).run()
        assert not at.exception and at.query_params.get("details", family) == family
        frames += [df.value for df in at.dataframe if "claim" not in df.value.columns]
        captions += texts(at.caption) + "\n"
    return at, frames, captions


def test_home_shows_findings_verdicts_and_the_family(root, expected, monkeypatch):
    at = page("app.py", root, monkeypatch).run()
    assert not at.exception
    assert len([df for df in at.dataframe if "macro-F1" in df.value.columns]) == 1  # one group's details at a time
    at, frames, captions = _details_of_every_group(at, expected)
    summaries = [f for f in frames if "macro-F1" in f.columns]
    assert len(summaries) == expected["family"].nunique()
    assert all("±" in value for f in summaries for value in f["macro-F1"])
    # the variant tables show each variant's effect on all posts, as effects_table computes it
    overall = expected[(expected["kind"] == effects.VS_CE) & (expected["slicing"] == effects.OVERALL)]
    every = pd.concat(summaries, ignore_index=True)
    assert (every.loc[every["variant"] == runs.BASELINE, "Δ macro-F1 vs CE"] == "reference").all()  # not "None"
    shown = every[every["variant"] != runs.BASELINE]
    np.testing.assert_allclose(shown["Δ macro-F1 vs CE"].astype(float), overall["delta"], atol=0.005)
    bounds = shown["CI"].str.split(" to ", expand=True).astype(float)
    np.testing.assert_allclose(bounds, overall[["ci_low", "ci_high"]], atol=0.005)
    assert list(shown["verdict"]) == list(overall["verdict"])
    # every other effect (2 × 2, per slice) is in an effect table once, with its verdict word
    rows = pd.concat([f for f in frames if "verdict" in f.columns and "effect" in f.columns and "claim" not in f.columns],
                     ignore_index=True)
    assert len(rows) + len(overall) == len(expected) and set(rows["verdict"]) <= set(effects.VERDICTS)
    assert (rows["p (BH)"].to_numpy() >= rows["p"].to_numpy() - 1e-12).all()
    for family, size in expected.drop_duplicates("family")[["family", "family_size"]].itertuples(index=False):
        assert f"BH family: the {size} effects of {family}" in captions
    assert "paired t over seeds" in captions
    # findings: only supported effects are phrased as findings
    supported = expected[expected["verdict"] == effects.SUPPORTED]
    findings = next((df.value for df in at.dataframe if "Δ (CI)" in df.value.columns), pd.DataFrame())
    assert len(findings) == len(supported)
    for (_, shown), row in zip(findings.iterrows(), supported.itertuples()):  # the finding's sentence, in columns
        sentence = effects.finding(row)
        assert shown["group"] == row.family and shown["effect"] == row.effect and shown["posts"] in sentence
        assert f"by {abs(row.delta):.1f} points (CI {row.ci_low:+.1f} to {row.ci_high:+.1f}, n = {row.n};" in sentence
        assert shown["Δ (CI)"] == f"{row.delta:+.1f} ({row.ci_low:+.1f} to {row.ci_high:+.1f})"
        assert shown["n"] == row.n and shown["Δ val"] == f"{row.val_delta:+.1f}"
    if supported.empty:
        assert "No effect is supported yet" in texts(at.info)
    if not any((Path(f) / runs.SPLIT_OUTPUTS["val"]).exists() for f in runs.discover_runs([root])["folder"]):
        assert (rows["verdict"] == effects.INCONCLUSIVE).all()
        assert rows["reason"].str.contains("no validation outputs").all()
    assert len(at.get("plotly_chart")) >= 2
    assert "OpenMoji" in captions and "synthetic test bed" in captions


def test_posts_button_opens_predictions_on_the_groups_strongest_effect(root, expected, monkeypatch):
    """The first group's button opens Predictions on its strongest vs-CE effect (the largest
    supported one, else the clearest on all posts): that variant against CE, on that slice."""
    from mmaux import selection

    at = page("app.py", root, monkeypatch).run()
    button = next(b for b in at.button if b.label.startswith("See the posts behind its strongest effect"))
    first = expected[expected["family"] == expected["family"].iloc[0]]
    best = selection.strongest_effect(first)
    assert f"({best['effect']} on " in button.label
    at = button.click().run()
    assert not at.exception
    link = views.effect_link(runs.discover_runs(root.split(os.pathsep)), best)
    for name in ("vs", "slice", "value", "order"):
        assert at.query_params[name] == link[name], name
    assert at.title[0].value == "Predictions"


def test_a_finding_opens_its_posts(root, expected, monkeypatch):
    """Selecting a finding's row opens Predictions on the view its heatmap cell opens."""
    supported = expected[expected["verdict"] == effects.SUPPORTED].reset_index(drop=True)
    if supported.empty:
        pytest.skip("no supported effect in these checkpoints")
    at = page("app.py", root, monkeypatch)
    at.session_state["findings"] = {"selection": {"rows": [len(supported) - 1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception and at.title[0].value == "Predictions"
    link = views.effect_link(runs.discover_runs(root.split(os.pathsep)), supported.iloc[-1])
    for name in ("vs", "slice", "value", "order"):
        assert at.query_params[name] == link[name], name


def test_home_with_empty_root_says_so(tmp_path, monkeypatch):
    at = page("app.py", empty_root(tmp_path), monkeypatch).run()
    assert not at.exception
    assert "No usable checkpoints" in texts(at.info)


def test_broken_checkpoint_is_a_warning_row(root, tmp_path, monkeypatch):
    broken = tmp_path / "extra" / "ce-seed9"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ truncated")
    at = page("app.py", os.pathsep.join([root, str(tmp_path / "extra"), "/"]), monkeypatch).run()
    assert not at.exception
    assert "cannot be used" in texts(at.warning)
    assert "/: more than 20000 files and folders" in texts(at.sidebar.warning)  # `/` is refused, not walked
    rows = [df.value for df in at.dataframe if "error" in df.value.columns]
    assert rows and "not valid JSON" in rows[0]["error"].iloc[0]


def test_home_opens_with_the_answer_and_one_heatmap_per_group(root, expected, monkeypatch):
    """First the answer: Δ vs CE on all posts with CI and verdict per group and variant, then a
    slice × variant heatmap per group whose cells are effects_table's Δ with verdict marks."""
    at = page("app.py", root, monkeypatch).run()
    assert not at.exception
    frames = [df.value for df in at.dataframe]
    answer = frames[0]
    assert list(answer["group"]) == list(expected["family"].unique())
    overall = expected[(expected["kind"] == effects.VS_CE) & (expected["slicing"] == effects.OVERALL)]
    for row in overall.itertuples():
        cell = answer.set_index("group").loc[row.family, row.effect]
        assert cell.startswith(f"Δ {row.delta:+.1f} (CI {row.ci_low:+.1f} to {row.ci_high:+.1f})")
        assert cell.endswith(row.verdict)
    heatmaps = [f for f in frames if len(f.index) and str(f.index[0]).startswith("all posts (n=")]
    assert len(heatmaps) == len(answer)
    first = expected[(expected["family"] == answer["group"].iloc[0]) & (expected["kind"] == effects.VS_CE)]
    assert len(heatmaps[0]) == first.drop_duplicates(["slicing", "slice"]).shape[0]
    evidence = first[first["slicing"] == "evidence"].iloc[0]
    label = next(i for i in heatmaps[0].index if i.startswith(f"evidence = {evidence['slice']} (n="))
    assert heatmaps[0].loc[label, evidence["effect"]].startswith(f"{evidence['delta']:+.1f}")
    # the gain split by gold label, or by the slicing that duplicates it (relation: one family member, not two)
    by_class = "label" if "label" in set(first["slicing"]) else "relation"
    assert any(i.startswith(f"{by_class} = ") for i in heatmaps[0].index)
    if first["family"].iloc[0].endswith("relation · attention"):  # relation = label: kept once
        assert "label" not in set(first["slicing"])
    assert "Click a cell to open its posts" in texts(at.caption)


def test_navigation_names_every_page_and_opens_on_checkpoints(root, monkeypatch):
    from mmaux.paths import REPO_ROOT
    from mmaux.ui import NAV_PAGES

    at = page("app.py", root, monkeypatch).run()
    assert not at.exception and at.title[0].value == "Checkpoints"
    titles = [title for _, title, _ in NAV_PAGES]
    assert titles[0] == "Checkpoints" and "app" not in titles
    assert {path for path, _, _ in NAV_PAGES} == {f"pages/{p.name}" for p in (REPO_ROOT / "pages").glob("*.py")}


def test_home_tests_the_papers_claims_and_a_row_opens_its_posts(root, monkeypatch):
    """The claims panel: one row per group × claim × operationalisation × effect, as the groups'
    claims are estimated (`report.results`); a row's link opens Predictions on that variant against
    CE, sliced by the claim's slicing, with "Contrast two slices" set to the claim's contrast and
    tested: the same Δ(A) − Δ(B) over the group's seeds."""
    from mmaux import report

    at = page("app.py", root, monkeypatch).run()
    assert not at.exception
    assert "The paper's claims" in [h.value for h in at.subheader]
    shown = next(df.value for df in at.dataframe if "slice A − slice B" in df.value.columns)
    found = runs.discover_runs(root.split(os.pathsep))
    expected = report.results(found)[1]
    assert len(shown) == len(expected) and list(shown["group"]) == list(expected["family"])
    assert list(shown["contrast"]) == [f"{d:+.1f}" for d in expected["delta"]]
    assert all(v.split(" · ")[0] in effects.VERDICTS for v in shown["verdict"])
    assert "contrast = Δ(slice A) − Δ(slice B)" in texts(at.caption)
    claim = expected.iloc[0]
    link = views.claim_link(found, claim)
    assert link["slice"] == claim["slicing"] and link["vs"].split(":")[1] in ("CE+ITC", "CE+ITM")
    assert (link["ceffect"], link["cslice"], link["ca"], link["cb"], link["contrast"]) == (
        claim["effect"], claim["slicing"], claim["slice_a"], claim["slice_b"], "1")
    predictions = page("pages/1_Predictions.py", root, monkeypatch)
    predictions.query_params.update(link)
    predictions = predictions.run()
    assert not predictions.exception, predictions.exception
    contrast = next(df.value for df in predictions.dataframe if "slice A − slice B" in df.value.index)
    assert list(contrast.columns) == ["your contrast"] and contrast.loc["effect"].iloc[0] == claim["effect"]
    assert contrast.loc["contrast"].iloc[0] == f"{claim['delta']:+.1f}"  # the claim's own estimate


def test_home_offers_the_report_and_the_effects_as_downloads(root, monkeypatch):
    at = page("app.py", root, monkeypatch).run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download report (Markdown)", "Download every effect (CSV)"]
