"""The structured choice of checkpoints: URL round trip, comparability, the default comparison."""
import pandas as pd
import pytest

from mmaux import selection
from mmaux.analysis import effects


def _runs() -> pd.DataFrame:
    rows = []
    for task in ("sarcasm", "sentiment"):
        for arch in ("attention", "mmbt"):
            for variant in ("CE", "CE+ITC", "CE+ITM", "CE+ITC+ITM"):
                for seed in (0, 1, 2):
                    rows.append({"folder": f"/ck/{task}/{arch}/{variant}-{seed}", "dataset": "SynthPosts", "task": task,
                                 "architecture": arch, "variant": variant, "seed": seed, "error": ""})
    return pd.DataFrame(rows)


def test_selection_of_folders_is_their_product_and_survives_the_url():
    runs = _runs()
    choice = selection.Selection.of_folders(runs, ["/ck/sarcasm/attention/CE+ITM-1", "/ck/sarcasm/attention/CE-0",
                                                   "/ck/sentiment/attention/CE-0"])  # other task: ignored
    assert choice == selection.Selection("SynthPosts", "sarcasm", ("attention",), ("CE", "CE+ITM"), (0, 1))
    assert choice.folders(runs) == ["/ck/sarcasm/attention/CE-0", "/ck/sarcasm/attention/CE-1",
                                    "/ck/sarcasm/attention/CE+ITM-0", "/ck/sarcasm/attention/CE+ITM-1"]
    params = choice.to_params()
    assert params == {"dataset": "SynthPosts", "task": "sarcasm", "arch": "attention", "variant": "CE,CE+ITM",
                      "seed": "0,1"}
    assert selection.Selection.from_params(params, runs) == choice


def test_a_url_naming_what_is_not_here_restores_nothing_absent():
    runs = _runs()
    assert selection.Selection.from_params({"dataset": "MSD", "task": "MSD"}, runs) is None
    odd = selection.Selection.from_params({"dataset": "SynthPosts", "task": "sentiment", "arch": "vilt,mmbt",
                                           "variant": "CE,bogus", "seed": "x"}, runs)
    assert odd == selection.Selection("SynthPosts", "sentiment", ("mmbt",), ("CE",), ())
    assert odd.folders(runs) == []


def test_a_partial_link_is_filled_in_and_says_what_it_assumed():
    runs = _runs()
    params, assumed = selection.complete_params({"task": "sentiment", "post": "p1"}, runs)
    assert params == {"task": "sentiment", "post": "p1", "dataset": "SynthPosts", "arch": "attention",
                      "variant": "CE,CE+ITC,CE+ITM,CE+ITC+ITM", "seed": "0"}
    assert assumed == ["dataset SynthPosts", "architecture attention", "variants CE, CE+ITC, CE+ITM, CE+ITC+ITM",
                       "seed 0"]
    params, assumed = selection.complete_params({"task": "sarcasm", "variant": "CE,CE+ITM", "seed": "2"}, runs)
    assert (params["variant"], params["seed"], assumed) == ("CE,CE+ITM", "2", ["dataset SynthPosts",
                                                                                "architecture attention"])
    full = selection.Selection("SynthPosts", "sarcasm", ("mmbt",), ("CE",), (1,)).to_params()
    assert selection.complete_params(full, runs) == (full, [])
    assert selection.complete_params({"post": "p1"}, runs) == ({"post": "p1"}, [])  # no view named
    assert selection.complete_params({"task": "MSD"}, runs) == ({"task": "MSD"}, [])  # not here: the caller says so


def test_a_new_task_keeps_the_variants_and_seeds_chosen_where_it_has_them():
    runs = _runs()
    chosen = selection.Selection("SynthPosts", "sarcasm", ("mmbt",), ("CE", "CE+ITM"), (2,))
    default = selection.Selection("SynthPosts", "sentiment", ("attention",), ("CE", "CE+ITC", "CE+ITM", "CE+ITC+ITM"),
                                  (0,))
    assert default.keeping(chosen, runs) == selection.Selection("SynthPosts", "sentiment", ("attention",),
                                                                ("CE", "CE+ITM"), (2,))
    elsewhere = selection.Selection("SynthPosts", "sarcasm", ("mmbt",), ("bogus",), (7,))
    assert default.keeping(elsewhere, runs) == default  # nothing of it in the new task: its default


def test_other_task_labels_or_data_are_refused_in_one_line():
    ident = {"a": selection.Identity("SynthPosts", "sarcasm", ("no", "yes"), "f1"),
             "b": selection.Identity("SynthPosts", "sarcasm", ("no", "yes"), "f1"),
             "c": selection.Identity("SynthPosts", "sentiment", ("neu", "pos", "neg"), "f2"),
             "d": selection.Identity("SynthPosts", "sarcasm", ("no", "yes"), "f9"),
             "e": selection.Identity("SynthPosts", "sarcasm", ("yes", "no"), "f1")}
    assert selection.comparable(["a", "b"], ident) == (["a", "b"], "")
    kept, why = selection.comparable(["a", "c", "b"], ident, {"a": "sarcasm CE", "c": "sentiment CE"})
    assert kept == ["a", "b"] and "\n" not in why
    assert why.startswith("Not compared: sentiment CE is SynthPosts · sentiment, another task than sarcasm CE")
    assert "other data" in selection.comparable(["a", "d"], ident)[1]
    assert "other labels (yes, no)" in selection.comparable(["a", "e"], ident)[1]


def _frame(task, delta, ci, verdict, slicing="all"):
    return pd.DataFrame([{"dataset": "SynthPosts", "task": task, "architecture": "attention", "effect": "CE+ITC",
                          "kind": effects.VS_CE, "slicing": slicing, "slice": "x", "delta": delta,
                          "ci_low": delta - ci, "ci_high": delta + ci, "verdict": verdict}])


def test_default_group_is_the_largest_supported_effect_else_the_clearest_estimate():
    runs = _runs()
    noisy, clear = _frame("sentiment", -9.0, 40.0, effects.INCONCLUSIVE), _frame("sarcasm", 1.5, 2.0, effects.INCONCLUSIVE)
    key, why = selection.default_group(runs, {("s",): noisy, ("c",): clear})
    assert key == ("SynthPosts", "sarcasm", "attention") and "no effect is supported" in why
    found = _frame("sentiment", 3.0, 1.0, effects.SUPPORTED, slicing="evidence")
    key, why = selection.default_group(runs, {("s",): found, ("c",): clear})
    assert key == ("SynthPosts", "sentiment", "attention") and why.startswith("the largest supported effect")
    choice = selection.default_selection(runs, key)
    assert choice == selection.Selection("SynthPosts", "sentiment", ("attention",),
                                         ("CE", "CE+ITC", "CE+ITM", "CE+ITC+ITM"), (0,))


@pytest.mark.parametrize("key,name", [(("SynthPosts", "sarcasm"), "SynthPosts · sarcasm"), (("MSD", "MSD"), "MSD")])
def test_task_name(key, name):
    assert selection.task_name(key) == name


def test_seed_options_split_the_seeds_stored_with_weights_from_the_outputs_only_ones():
    task = pd.DataFrame({"seed": [0, 0, 1, 1, 5, 5, 6, 7], "weights": [True, True, True, True, False, False, False,
                                                                     False]})
    seeds = selection.seed_options(task)
    assert (seeds.all, seeds.with_weights, seeds.outputs_only) == ([0, 1, 5, 6, 7], [0, 1], [5, 6, 7])
    assert seeds.note(needs_model=True) == ("Seeds 5–7 are stored as predictions only (no weights), so this page, "
                                            "which runs the model, offers seeds 0, 1; every statistic uses all 5.")
    assert "pages that run the model offer seeds 0, 1" in seeds.note(needs_model=False)
    mixed = selection.seed_options(pd.DataFrame({"seed": [2, 2], "weights": [True, False]}))
    assert mixed.with_weights == []  # a seed counts as runnable only when every run of it has weights
    assert selection.seed_options(pd.DataFrame({"seed": [3, 1]})).with_weights == [1, 3]  # no column: all weights
