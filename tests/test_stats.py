"""Statistics for comparing checkpoints: exact answers on hand-made inputs."""
import numpy as np
import pytest
from sklearn.metrics import f1_score

from mmaux.analysis import stats
from mmaux.analysis.stats import (
    ALL, batched_macro_f1, bh_adjust, consistently_fixed, fixed_broken, format_mean_std, macro_f1,
    summarise_over_seeds,
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


def test_a_slice_is_scored_by_one_rule():
    """Several gold classes: macro-F1 over the slice's own posts and classes. One gold class c:
    c's F1 with TP and FN from the slice and FP from every post of another class."""
    y = np.array([0, 0, 1, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 1, 2])
    whole = stats.slice_scoring(y, None, "macro_f1", 3)
    assert whole.metric == "macro_f1" and whole.posts.all() and whole.labels == [0, 1, 2]
    mixed = stats.slice_scoring(y, np.array([1, 1, 1, 0, 0, 0, 0], bool), "macro_f1", 3)
    assert mixed.metric == "macro_f1" and mixed.labels == [0, 1] and mixed.posts.tolist() == [1, 1, 1, 0, 0, 0, 0]
    ones = np.array([0, 0, 1, 1, 0, 0, 0], bool)  # two posts of class 1, both right
    rule = stats.slice_scoring(y, ones, "macro_f1", 3)
    assert rule.metric == stats.CLASS_F1 and rule.labels == [0, 1, 2]
    # scored: the slice and every post not of class 1 (post 4, a class-1 post outside the slice, is left out)
    assert rule.posts.tolist() == [1, 1, 1, 1, 0, 1, 1]
    # TP 2 (posts 2, 3), FN 0, FP 2 (post 1 and post 5 called 1): F1 = 4 / 6
    score = stats._metric(rule.score)(y[rule.posts][None], pred[rule.posts][None], 3)[0]
    assert score == pytest.approx(4 / 6)


def test_one_class_slices_of_the_same_class_differ_and_a_moved_threshold_is_not_free():
    """The sarcasm case: two slices of the same class are scored apart (recall on each), and a
    variant that calls every post that class gains recall but pays for the false alarms."""
    y = np.array([0] * 10 + [1] * 10)
    a, b = np.arange(20) < 5, (np.arange(20) >= 5) & (np.arange(20) < 10)
    base = np.array([0, 0, 0, 0, 0] + [0, 1, 1, 1, 1] + [1] * 10)  # slice a all right, slice b 1 of 5
    scores = []
    for mask in (a, b):
        rule = stats.slice_scoring(y, mask, "macro_f1", 2)
        scores.append(stats._metric(rule.score)(y[rule.posts][None], base[rule.posts][None], 2)[0])
    assert scores == [pytest.approx(1.0), pytest.approx(2 / 6)]
    everything_zero = np.zeros(20, int)
    rule = stats.slice_scoring(y, b, "macro_f1", 2)
    moved = stats._metric(rule.score)(y[rule.posts][None], everything_zero[rule.posts][None], 2)[0]
    assert moved == pytest.approx(2 * 5 / (2 * 5 + 10))  # recall 1 on b, but 10 false alarms


def test_welch_heterogeneity_p_is_welchs_anova_on_the_groups_means():
    from statsmodels.stats.oneway import anova_oneway

    rng = np.random.default_rng(4)
    groups = [rng.normal(mu, sd, n) for mu, sd, n in ((0.0, 1.0, 5), (0.5, 2.0, 8), (1.5, 0.5, 6), (0.2, 1.5, 20))]
    means = [g.mean() for g in groups]
    ses = [g.std(ddof=1) / np.sqrt(len(g)) for g in groups]
    dfs = [len(g) - 1 for g in groups]
    expected = anova_oneway(groups, use_var="unequal").pvalue
    assert stats.welch_heterogeneity_p(means, ses, dfs) == pytest.approx(expected, rel=1e-9)
