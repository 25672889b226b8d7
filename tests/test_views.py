"""The Predictions page's Δp and orders, the link from a home-page cell to its posts, and the findings table."""
import numpy as np
import pytest
import pandas as pd

from mmaux import views
from mmaux.analysis import effects


def _table(preds, probs):
    probs = np.asarray(probs, dtype=float)
    return pd.DataFrame({"post_id": [f"p{i}" for i in range(len(preds))], "label_index": [0, 1, 0, 1],
                         "pred": preds, "p_a": probs[:, 0], "p_b": probs[:, 1]})


def test_delta_p_is_the_change_of_the_gold_probability():
    base = _table([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    other = _table([0, 1, 0, 0], [[0.8, 0.2], [0.3, 0.7], [0.5, 0.5], [0.55, 0.45]])
    posts = base[["post_id", "label_index"]]
    change = views.delta_p(posts, {"b": base, "v": other}, "b", "v")
    np.testing.assert_allclose(change, [-0.1, 0.3, 0.2, -0.35])
    preds = {"b": base["pred"].to_numpy(), "v": other["pred"].to_numpy()}
    # fixed (posts 1 and 2, by |Δp|), broken (post 3), then the rest
    assert list(views.order_posts(posts, preds, "b", "v", change, views.FLIPS_FIRST)) == [1, 2, 3, 0]
    assert list(views.order_posts(posts, preds, "b", "v", change, views.GAIN_FIRST)) == [1, 2, 0, 3]
    assert list(views.order_posts(posts, preds, "b", "v", change, views.BY_ID)) == [0, 1, 2, 3]


def test_a_cell_links_to_its_group_variant_and_slice():
    runs = pd.DataFrame([{"folder": f"/{v}-{s}", "dataset": "SynthPosts", "task": "sarcasm", "architecture": "attention",
                          "variant": v, "seed": s, "error": ""} for v in ("CE", "CE+ITM") for s in (2, 1)])
    link = views.cell_link(runs, ("SynthPosts", "sarcasm", "attention"), "CE+ITM", "evidence", "image_only")
    assert link["variant"] == "CE,CE+ITM" and link["seed"] == "1"
    assert link["base"] == "attention:CE:1" and link["vs"] == "attention:CE+ITM:1"
    assert link["slice"] == "evidence" and link["value"] == "image_only" and link["order"] == "flips"
    overall = views.cell_link(runs, ("SynthPosts", "sarcasm", "attention"), "CE+ITM", effects.OVERALL, effects.OVERALL)
    assert overall["slice"] == views.ANY and overall["show"] == "all posts"
    assert views.cell_link(runs, ("SynthPosts", "sarcasm", "attention"), "CE+ITC", "evidence", "x") is None


def test_a_slice_name_links_to_the_variant_with_the_largest_effect_there():
    runs = pd.DataFrame([{"folder": f"/{v}-0", "dataset": "S", "task": "t", "architecture": "a", "variant": v,
                          "seed": 0, "error": ""} for v in ("CE", "CE+ITC", "CE+ITM")])
    grid = views.Heatmap(text=pd.DataFrame(), verdict=pd.DataFrame(),
                         delta=pd.DataFrame([[1.0, -4.0], [np.nan, np.nan]], columns=["CE+ITC", "CE+ITM"]),
                         cells=[("evidence", "image_only"), ("evidence", "text_only")])
    link = views.row_link(runs, ("S", "t", "a"), grid, 0)
    assert link["vs"] == "a:CE+ITM:0" and link["slice"] == "evidence" and link["value"] == "image_only"
    assert views.row_link(runs, ("S", "t", "a"), grid, 1)["vs"] == "a:CE+ITC:0"  # nothing estimated: the first


def test_batch_view_has_one_row_per_post_and_the_failures_first():
    good = pd.DataFrame([{"row": 1, "image": "a.png", "text": "hi", "checkpoint": ck, "label": "positive",
                          "confidence": c, "error": ""} for ck, c in (("CE", 0.9), ("CE+ITC", 0.8))])
    bad = pd.DataFrame([{"row": 2, "image": "b.png", "text": "yo", "error": "row 2: image 'b.png' is not in the zip"}])
    view, failed = views.batch_view(pd.concat([good, bad], ignore_index=True))
    assert failed == 1 and len(view) == 2
    assert view["error"].iloc[0].startswith("row 2") and view["row"].iloc[0] == 2
    assert list(view.columns) == ["row", "image", "text", "error", "CE", "CE+ITC"]
    assert view.iloc[1][["CE", "CE+ITC"]].tolist() == ["positive 0.90", "positive 0.80"]
    assert view["row"].tolist() == [2, 1]  # a post that succeeded has its CSV row too, not an empty cell
    only_bad, failed = views.batch_view(bad.assign(error=bad["error"]))
    assert failed == len(only_bad) == 1


def test_findings_view_puts_each_finding_in_columns_and_refuses_other_verdicts():
    rows = pd.DataFrame([
        {"family": "S · t · a", "kind": effects.VS_CE, "effect": "CE+ITC", "slicing": effects.OVERALL,
         "slice": effects.OVERALL, "metric": "macro_f1", "delta": 6.24, "ci_low": 2.61, "ci_high": 9.83, "n": 1000,
         "val_delta": 5.96, "verdict": effects.SUPPORTED},
        {"family": "S · t · a", "kind": effects.DESIGN, "effect": "ITC main", "slicing": "evidence",
         "slice": "image_only", "metric": "macro_f1", "delta": -4.0, "ci_low": -7.0, "ci_high": -1.04, "n": 120,
         "val_delta": -3.0, "verdict": effects.SUPPORTED}])
    shown = views.findings_view(rows)
    assert shown.to_dict("records") == [
        {"group": "S · t · a", "effect": "CE+ITC", "posts": "all posts", "Δ (CI)": "+6.2 (+2.6 to +9.8)", "n": 1000,
         "Δ val": "+6.0"},
        {"group": "S · t · a", "effect": "ITC main", "posts": "evidence = image_only", "Δ (CI)": "-4.0 (-7.0 to -1.0)",
         "n": 120, "Δ val": "-3.0"}]
    with pytest.raises(ValueError, match="only supported effects"):
        views.findings_view(rows.assign(verdict=[effects.SUPPORTED, effects.INCONCLUSIVE]))
