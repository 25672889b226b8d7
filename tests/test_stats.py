"""Statistics for comparing checkpoints: exact answers on hand-made inputs."""
import numpy as np
import pytest
from sklearn.metrics import f1_score

from mmaux.analysis import stats
from mmaux.analysis.stats import (
    ALL, batched_macro_f1, bh_adjust, consistently_fixed, fixed_broken, format_mean_std, macro_f1,
    per_slice_scores, slice_metric, summarise_over_seeds,
)


def test_macro_f1_by_hand():
    # class 0: TP 1, FN 1 -> 2/3; class 1: TP 2, FP 1 -> 4/5
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1], labels=[0, 1]) == pytest.approx(11 / 15)


@pytest.mark.parametrize("seed", range(5))
def test_batched_macro_f1_matches_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, size=(6, 150))
    y_pred = rng.integers(0, 4, size=(6, 150))
    y_pred[0] = 0  # a row that never predicts classes 1-3
    n_labels = 5  # class 4 never occurs: F1 0, as sklearn's zero_division=0
    expected = [f1_score(t, p, labels=range(n_labels), average="macro", zero_division=0)
                for t, p in zip(y_true, y_pred)]
    np.testing.assert_allclose(batched_macro_f1(y_true, y_pred, n_labels), expected)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_over_a_subset_of_labels_matches_sklearn(seed):
    """A slice averages over the classes it holds; predictions of other classes are errors only."""
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 4, size=200), rng.integers(0, 4, size=200)
    for labels in ([0, 1, 2, 3], [1, 3], [2], [3, 0, 5]):
        expected = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        assert macro_f1(y_true, y_pred, labels) == pytest.approx(expected, abs=1e-12)
    names = np.array(["neg", "neu", "pos", "x"])  # string labels too
    assert macro_f1(names[y_true], names[y_pred], ["pos", "neg"]) == pytest.approx(
        f1_score(names[y_true], names[y_pred], labels=["pos", "neg"], average="macro", zero_division=0), abs=1e-12)


def test_summarise_and_format():
    assert summarise_over_seeds([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert summarise_over_seeds([5.0]) == (5.0, 0.0)
    assert format_mean_std(71.234, 1.26) == "71.2 ± 1.3"
    assert format_mean_std(0.5, 0.0, digits=2) == "0.50 ± 0.00"


def test_bh_adjust_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> ×4/rank: 0.02, 0.02, 0.04, 0.04 (already monotone)
    np.testing.assert_allclose(bh_adjust([0.01, 0.04, 0.03, 0.005]), [0.02, 0.04, 0.04, 0.02])
    # 0.03 × 2/1 = 0.06 is capped by the step-up minimum 0.04 × 2/2
    np.testing.assert_allclose(bh_adjust([0.04, np.nan, 0.03]), [0.04, np.nan, 0.04])
    assert bh_adjust([]).shape == (0,)


def test_fixed_broken_per_group():
    y = np.zeros(15, dtype=int)
    # group a: 5 fixed, 2 both right; group b: 6 fixed, 1 broken, 1 both wrong
    base = np.r_[[1] * 5, [0] * 2, [1] * 6, [0], [1]]
    variant = np.r_[[0] * 5, [0] * 2, [0] * 6, [1], [1]]
    groups = ["a"] * 7 + ["b"] * 8
    table = fixed_broken(y, base, variant, groups).set_index("group")
    assert list(table.index) == ["a", "b", ALL]
    assert list(table.columns) == ["n", "fixed", "broken", "net"]  # counts only: no per-run test
    assert table.values.tolist() == [[7, 5, 0, 5], [8, 6, 1, 5], [15, 11, 1, 10]]


def test_fixed_broken_rejects_a_slice_named_all():
    with pytest.raises(ValueError, match="reserved"):
        fixed_broken([0, 1], [0, 1], [0, 1], groups=["all", "x"])


def test_consistently_fixed():
    y = np.zeros(3, dtype=int)
    base = np.array([[1, 1, 0]] * 3)
    variant = np.array([[0, 0, 0], [0, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(consistently_fixed(y, base, variant), [True, False, False])
    # fixed in exactly half the seeds is not "more than half"
    assert not consistently_fixed([0], [[1], [1]], [[0], [1]])[0]


def test_per_slice_scores_by_hand():
    y = ["pos", "neg", "pos", "neu", "pos"]
    pred = ["pos", "pos", "pos", "neu", "neg"]
    table = per_slice_scores(y, pred, ["x", "x", "y", "y", "z"], ["neg", "neu", "pos"])
    table = table.set_index("slice")
    assert table["n"].tolist() == [2, 2, 1, 5]
    np.testing.assert_allclose(table["accuracy"], [0.5, 1.0, 0.0, 0.6])
    # x averages over its gold classes neg (F1 0) and pos (2/3); ALL over all three (pos: 2 TP, 1 FP, 1 FN)
    np.testing.assert_allclose(table["macro_f1"], [1 / 3, 1.0, 0.0, (0 + 1 + 2 / 3) / 3])
    # z holds one gold class: its score is recall, not macro-F1 = 2r/(1+r)
    assert table["metric"].tolist() == ["macro_f1", "macro_f1", "recall", "macro_f1"]
    np.testing.assert_allclose(table["score"], [1 / 3, 1.0, 0.0, (0 + 1 + 2 / 3) / 3])


def test_one_class_slice_is_scored_by_recall():
    y, pred = np.array([1] * 10), np.array([1] * 5 + [0] * 5)
    assert slice_metric(y, "macro_f1") == "recall" and slice_metric([0, 1], "macro_f1") == "macro_f1"
    recall = stats.batched_accuracy(y, pred, 2)[0]
    assert recall == 0.5 and macro_f1(y, pred, [1]) == pytest.approx(2 * 0.5 / 1.5)  # what it used to show
