"""Statistics for comparing checkpoints: exact answers on hand-made inputs."""
import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score

from mmaux.analysis import stats
from mmaux.analysis.stats import (
    ALL, batched_macro_f1, bh_adjust, consistently_fixed, factorial_effects, fixed_broken,
    format_mean_std, macro_f1, mcnemar, paired_bootstrap, paired_seed_test, per_slice_scores,
    summarise_over_seeds, variant_differences,
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


def test_bootstrap_scores_match_sklearn_with_a_label_subset():
    rng = np.random.default_rng(1)
    y, a, b = (rng.choice(["neg", "neu", "pos"], size=80) for _ in range(3))
    result = paired_bootstrap(y, a, b, labels=["neg", "pos"], n_boot=10)
    assert result.score_a == pytest.approx(macro_f1(y, a, ["neg", "pos"]))
    assert result.score_b == pytest.approx(macro_f1(y, b, ["neg", "pos"]))


def test_summarise_and_format():
    assert summarise_over_seeds([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert summarise_over_seeds([5.0]) == (5.0, 0.0)
    assert format_mean_std(71.234, 1.26) == "71.2 ± 1.3"
    assert format_mean_std(0.5, 0.0, digits=2) == "0.50 ± 0.00"


def test_paired_seed_test():
    result = paired_seed_test([0.70, 0.72, 0.71], [0.73, 0.74, 0.75])
    # differences 0.03, 0.02, 0.04: mean 0.03, sd 0.01, t = 0.03 / (0.01 / √3) = 3√3, 2 df
    assert result.diff == pytest.approx(0.03)
    assert result.p == pytest.approx(2 * sps.t.sf(3 * math.sqrt(3), df=2))
    assert result.n_seeds == 3


def test_paired_seed_test_is_nan_when_undefined():
    assert math.isnan(paired_seed_test([0.7], [0.8]).p)
    constant = paired_seed_test([0.70, 0.71], [0.72, 0.73])
    assert constant.diff == pytest.approx(0.02) and math.isnan(constant.p)


def test_two_sided_bootstrap_p():
    assert stats._two_sided_p(np.array([-1.0, 1.0, 2.0, 3.0])) == 0.5
    assert stats._two_sided_p(np.array([0.0, 0.0, 1.0, 1.0])) == 1.0
    assert stats._two_sided_p(np.array([1.0, 2.0])) == 0.0


def test_paired_bootstrap_identical_and_perfect():
    y = np.array([0, 1] * 10)
    same = paired_bootstrap(y, y, y, "accuracy", n_boot=200)
    assert (same.diff, same.ci_low, same.ci_high, same.p) == (0.0, 0.0, 0.0, 1.0)
    better = paired_bootstrap(y, 1 - y, y, "accuracy", n_boot=200)
    assert (better.score_a, better.score_b) == (0.0, 1.0)
    assert (better.diff, better.ci_low, better.ci_high, better.p) == (1.0, 1.0, 1.0, 0.0)


def test_paired_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    y, a, b = (rng.integers(0, 3, 300) for _ in range(3))
    first = paired_bootstrap(y, a, b, n_boot=300, seed=7)
    assert first == paired_bootstrap(y, a, b, n_boot=300, seed=7)
    assert first.ci_low <= first.diff <= first.ci_high


def _cells(off, on, n_seeds=3):
    """A 2×2 design where only ITC changes the predictions."""
    seeds = lambda p: np.tile(p, (n_seeds, 1))  # noqa: E731
    return {(False, False): seeds(off), (False, True): seeds(off),
            (True, False): seeds(on), (True, True): seeds(on)}


def test_factorial_effects_only_itc_helps():
    y = np.array([0, 0, 1, 1] * 5)
    base = np.array([0, 1, 1, 1] * 5)  # macro-F1 11/15 (see test_macro_f1_by_hand)
    table = factorial_effects(_cells(base, y), y, labels=[0, 1], n_boot=200)
    effects = table.set_index("effect")
    assert list(effects.index) == ["ITC", "ITM", "ITC×ITM"]
    assert effects.loc["ITC", "estimate"] == pytest.approx(4 / 15)
    assert effects.loc["ITC", "ci_low"] > 0 and effects.loc["ITC", "p"] == 0.0
    for name in ["ITM", "ITC×ITM"]:
        row = effects.loc[name]
        assert (row.estimate, row.ci_low, row.ci_high, row.p) == (0.0, 0.0, 0.0, 1.0)


def test_factorial_effects_formulas():
    y = np.zeros(10, dtype=int)
    right = lambda k: np.r_[np.zeros(k, int), np.ones(10 - k, int)]  # noqa: E731
    # accuracy F(itc, itm): F00 0.5, F01 0.6, F10 0.7, F11 1.0
    preds = {(False, False): right(5)[None], (False, True): right(6)[None],
             (True, False): right(7)[None], (True, True): right(10)[None]}
    table = factorial_effects(preds, y, [0, 1], metric="accuracy", n_boot=50)
    estimate = table.set_index("effect")["estimate"]
    assert estimate["ITC"] == pytest.approx(((0.7 - 0.5) + (1.0 - 0.6)) / 2)
    assert estimate["ITM"] == pytest.approx(((0.6 - 0.5) + (1.0 - 0.7)) / 2)
    assert estimate["ITC×ITM"] == pytest.approx((1.0 - 0.6) - (0.7 - 0.5))


def test_factorial_effects_needs_all_cells():
    y = np.array([0, 1])
    with pytest.raises(ValueError, match="cells"):
        factorial_effects({(False, False): y[None]}, y, [0, 1])


def _paired(fixed, broken, both_right=0, both_wrong=0):
    a = [False] * fixed + [True] * broken + [True] * both_right + [False] * both_wrong
    b = [True] * fixed + [False] * broken + [True] * both_right + [False] * both_wrong
    return a, b


def test_mcnemar_exact_by_hand():
    result = mcnemar(*_paired(5, 0, both_right=3, both_wrong=2))
    assert (result.fixed, result.broken, result.method) == (5, 0, "exact")
    assert result.p == pytest.approx(2 * 0.5 ** 5)
    assert mcnemar(*_paired(6, 1)).p == pytest.approx(2 * (1 + 7) / 2 ** 7)
    assert mcnemar(*_paired(12, 12)).p == pytest.approx(1.0)


def test_mcnemar_chi_square_by_hand():
    result = mcnemar(*_paired(30, 10))
    assert result.method == "chi2"
    assert result.statistic == pytest.approx((20 - 1) ** 2 / 40)
    assert result.p == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))  # χ²(1) tail
    assert mcnemar(*_paired(13, 12)).p == pytest.approx(1.0)


def test_mcnemar_without_discordant_posts():
    result = mcnemar(*_paired(0, 0, both_right=4))
    assert (result.p, result.method) == (1.0, "none")


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
    assert table[["n", "fixed", "broken", "net"]].values.tolist() == [
        [7, 5, 0, 5], [8, 6, 1, 5], [15, 11, 1, 10]]
    np.testing.assert_allclose(table["p"], [2 / 32, 16 / 128, 2 * 13 / 4096])
    np.testing.assert_allclose(table["p_bh"], [0.125, 0.125, 2 * 13 / 4096])


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
    y = ["pos", "neg", "pos", "neu"]
    pred = ["pos", "pos", "pos", "neu"]
    table = per_slice_scores(y, pred, ["x", "x", "y", "y"], ["neg", "neu", "pos"])
    table = table.set_index("slice")
    assert table["n"].tolist() == [2, 2, 4]
    np.testing.assert_allclose(table["accuracy"], [0.5, 1.0, 0.75])
    # x averages over its gold classes neg (F1 0) and pos (2/3); ALL over all three
    np.testing.assert_allclose(table["macro_f1"], [1 / 3, 1.0, (0 + 1 + 0.8) / 3])


def test_variant_differences():
    y = np.array([0, 1] * 20)
    slices = np.repeat(["a", "b"], 20)
    baseline = np.where(slices == "a", 1 - y, y)  # wrong on every post of a, right on b
    table = variant_differences(y, baseline, {"+ITC": y}, labels=[0, 1], slices=slices,
                                n_boot=200)
    assert table["variant"].tolist() == ["+ITC"] * 3
    assert table["slice"].tolist() == ["a", "b", ALL]
    np.testing.assert_allclose(table["baseline"], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(table["diff"], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(table[["ci_low", "ci_high"]].iloc[1], [0.0, 0.0])
    np.testing.assert_allclose(table["p"].iloc[:2], [0.0, 1.0])
    np.testing.assert_allclose(table["p_bh"].iloc[:2], [0.0, 1.0])
