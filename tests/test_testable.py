"""Which claim rows a group can test: the ITM head's AUROC with its bootstrap CI, the
gradient-path record, and the reasons the claims print."""
import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mmaux.analysis import effects, testable
from mmaux.analysis import runs as runs_lib


def test_auroc_rows_is_roc_auc_per_row_with_ties():
    rng = np.random.default_rng(3)
    pos, neg = rng.integers(0, 5, (4, 30)).astype(float), rng.integers(0, 4, (4, 40)).astype(float)
    expected = [roc_auc_score(np.r_[np.ones(30), np.zeros(40)], np.r_[p, n]) for p, n in zip(pos, neg)]
    np.testing.assert_allclose(testable.auroc_rows(pos, neg), expected)


@pytest.fixture(scope="module")
def itm_group(app_runs):
    """One shipped group's runs with weights (CE, CE+ITM, CE+ITC+ITM), seeds 0-1."""
    _, runs = app_runs
    key, group = runs_lib.groups(runs)[0]
    return group[group["seed"].isin([0, 1]) & group["variant"].isin(["CE", "CE+ITM", "CE+ITC+ITM"])]


def test_the_head_auroc_is_the_mean_over_runs_with_a_bootstrap_ci(itm_group):
    from mmaux.analysis.alignment import match_auroc

    mean, low, high = testable.head_auroc(itm_group, effects.ITM)
    scores = [testable.pair_scores(f) for f in itm_group[itm_group["variant"] == effects.ITM]["folder"]]
    assert mean == pytest.approx(np.mean([match_auroc(t, s) for t, s in scores]))
    assert low < mean < high and high - low < 0.2
    assert testable.head_auroc(itm_group, effects.CE) is None  # no ITM head
    reasons = testable.untestable(itm_group)
    chance = low <= 0.5 <= high
    assert (effects.ITM in reasons) == chance
    if chance:
        assert reasons[effects.ITM].startswith(f"the ITM head did not learn to match (CE+ITM AUROC {mean:.2f} [")


def test_a_loss_that_cannot_reach_the_classifier_makes_its_rows_untestable(itm_group, tmp_path):
    """Copies made predictions-only (no weights: no head to score), so only the gradient-path
    record decides."""
    folders = []
    for i, folder in enumerate(itm_group["folder"]):
        copy = tmp_path / f"run{i}"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("model.safetensors", "layouts.npz"))
        config = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps({**config, "weights": False}))
        folders.append(str(copy))
    group = itm_group.assign(folder=folders)
    assert testable.untestable(group) == {}
    metrics_path = tmp_path / f"run{len(folders) - 1}" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics_path.write_text(json.dumps({**metrics, "aux_reaches_classifier": {"itc": True, "itm": False}}))
    reasons = testable.untestable(group)
    assert set(reasons) == {effects.ITM, "ITM main"}
    assert reasons[effects.ITM] == ("the ITM loss cannot reach the classifier in 1 of its runs (gradient-path "
                                    "check at training time)")
