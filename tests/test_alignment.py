"""Alignment metrics: exact answers on hand-made embeddings and maps."""
import math

import numpy as np
import pytest

from mmaux.analysis.alignment import (
    accuracy_by_score, cosine_matrix, expected_calibration_error, knn_overlap, linear_cka, match_auroc,
    mean_pair_cosine, modality_gap, rank_correlation, recall_at_k, reliability_curve,
    score_predicts_correct, shuffled_pairs, silhouette_per_label, topk_overlap,
)


def _at_angles(degrees):
    radians = np.deg2rad(degrees)
    return np.c_[np.cos(radians), np.sin(radians)]


def test_cosine_matrix():
    np.testing.assert_allclose(cosine_matrix([[3, 4]], [[4, 3], [0, 2]]), [[24 / 25, 0.8]])


def test_recall_at_k_on_designed_ranks():
    sim = np.array([[0.9, 0.1, 0.2, 0.3],   # own text ranks 1
                    [0.8, 0.5, 0.1, 0.2],   # ranks 2
                    [0.7, 0.6, 0.4, 0.5],   # ranks 4
                    [0.1, 0.2, 0.9, 0.9]])  # tied with a wrong text: ranks 2 (pessimistic)
    # columns (text -> image): own image ranks 1, 2, 2, 1
    assert recall_at_k(sim, ks=(1, 2, 3)) == {
        "i2t@1": 0.25, "i2t@2": 0.75, "i2t@3": 0.75,
        "t2i@1": 0.5, "t2i@2": 1.0, "t2i@3": 1.0}


def test_recall_at_k_constant_matrix_is_not_lucky():
    assert recall_at_k(np.ones((3, 3)), ks=(1, 3)) == {
        "i2t@1": 0.0, "i2t@3": 1.0, "t2i@1": 0.0, "t2i@3": 1.0}


def test_match_auroc_by_hand():
    # 0.9 and 0.8 beat both mismatched scores, 0.3 beats one of them: 5 of 6 pairs
    assert match_auroc([0.9, 0.8, 0.3], [0.5, 0.1]) == pytest.approx(5 / 6)


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_shuffled_pairs_is_a_derangement(n):
    for seed in range(5):
        perm = shuffled_pairs(n, seed)
        assert sorted(perm) == list(range(n))
        assert not np.any(perm == np.arange(n))
    np.testing.assert_array_equal(shuffled_pairs(n, 3), shuffled_pairs(n, 3))


def test_shuffled_pairs_needs_two_posts():
    with pytest.raises(ValueError, match="at least 2"):
        shuffled_pairs(1, 0)


def test_modality_gap():
    text = np.array([[1.0, 0.0], [3.0, 0.0]])
    image = np.array([[0.0, 2.0], [0.0, 0.5]])
    assert modality_gap(text, image) == pytest.approx(math.sqrt(2))
    assert modality_gap(text, 2 * text) == pytest.approx(0.0)


def test_mean_pair_cosine():
    emb = np.eye(4)
    assert mean_pair_cosine(emb, 3 * emb, seed=1) == pytest.approx((1.0, 0.0))


def test_knn_overlap():
    a = _at_angles([0, 10, 20, 90, 100, 110])  # clusters {0, 1, 2} and {3, 4, 5}
    b = _at_angles([0, 10, 90, 20, 100, 110])  # posts 2 and 3 swap clusters
    np.testing.assert_allclose(knn_overlap(a, b, k=2), [0.5, 0.5, 0.0, 0.0, 0.5, 0.5])
    np.testing.assert_allclose(knn_overlap(a, 5 * a, k=3), np.ones(6))
    with pytest.raises(ValueError, match="k must be"):
        knn_overlap(a, b, k=6)


def test_linear_cka_by_hand():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    y = np.array([[1.0], [-1.0], [0.0], [0.0]])
    # XᵀX = 2I (‖·‖_F = √8), YᵀY = 2, YᵀX = [2, 0]: 4 / (2√8)
    assert linear_cka(x, y) == pytest.approx(1 / math.sqrt(2))


def test_linear_cka_invariances():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, x @ q) == pytest.approx(1.0)
    assert linear_cka(x, 3.5 * x + 2.0) == pytest.approx(1.0)
    assert 0.0 <= linear_cka(x, rng.normal(size=(30, 3))) < 1.0


def test_silhouette_per_label():
    apart = silhouette_per_label([[1, 0], [2, 0], [0, 1], [0, 3]], ["a", "a", "b", "b"])
    assert apart.to_dict() == pytest.approx({"a": 1.0, "b": 1.0})
    # each point: own-class cosine distance 1, other class mean (0 + 1) / 2 -> (0.5 - 1) / 1
    mixed = silhouette_per_label([[1, 0], [0, 1], [1, 0], [0, 1]], ["a", "a", "b", "b"])
    assert mixed.to_dict() == pytest.approx({"a": -0.5, "b": -0.5})


def test_attribution_agreement_by_hand():
    a = [0.1, -0.9, 0.5, 0.0]
    b = [0.2, 0.8, -0.1, 0.7]
    assert topk_overlap(a, b, k=2) == 0.5  # |a| top 2 {1, 2}, |b| top 2 {1, 3}
    # |a| ranks 2 4 3 1, |b| ranks 2 4 1 3: Σd² = 8, ρ = 1 − 6·8 / (4·15)
    assert rank_correlation(a, b) == pytest.approx(0.2)
    assert topk_overlap(np.reshape(a, (2, 2)), np.reshape(a, (2, 2)), k=3) == 1.0


def test_reliability_curve_and_ece_by_hand():
    conf, correct = [0.15, 0.15, 0.85, 0.95], [1, 0, 1, 1]
    curve = reliability_curve(conf, correct, n_bins=10)
    assert curve["count"].tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 1, 1]
    busy = curve[curve["count"] > 0]
    np.testing.assert_allclose(busy["bin_centre"], [0.15, 0.85, 0.95])
    np.testing.assert_allclose(busy["mean_confidence"], [0.15, 0.85, 0.95])
    np.testing.assert_allclose(busy["accuracy"], [0.5, 1.0, 1.0])
    # 2/4 · 0.35 + 1/4 · 0.15 + 1/4 · 0.05
    assert expected_calibration_error(conf, correct) == pytest.approx(0.225)
    assert reliability_curve([1.0], [1], n_bins=4)["count"].tolist() == [0, 0, 0, 1]


def test_score_predicts_correct():
    assert score_predicts_correct([0.9, 0.8, 0.2, 0.4], [1, 1, 0, 1]).auroc == 1.0
    # right: 0.9, 0.4; wrong: 0.8, 0.2 -> 3 of 4 pairs ordered
    assert score_predicts_correct([0.9, 0.8, 0.2, 0.4], [1, 0, 0, 1]).auroc == 0.75
    undefined = score_predicts_correct([0.3, 0.6], [1, 1])
    assert math.isnan(undefined.auroc) and "every prediction is right" in undefined.reason


def test_reliability_curve_agrees_with_scikit_learn():
    """The classifier's calibration chart is scikit-learn's `calibration_curve`, bins and all,
    including confidences that sit exactly on a bin edge."""
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    conf = np.r_[rng.uniform(1 / 3, 1, 500), [0.4, 0.5, 0.7, 1.0]]
    correct = rng.uniform(size=len(conf)) < conf
    curve = reliability_curve(conf, correct).query("count > 0")
    accuracy, mean_conf = calibration_curve(correct, conf, n_bins=10)
    np.testing.assert_allclose(curve["accuracy"], accuracy)
    np.testing.assert_allclose(curve["mean_confidence"], mean_conf)
    assert curve["count"].sum() == len(conf)
    # 0.2 sits on an edge: in [0, 0.2], as scikit-learn bins it; 0.3 in (0.2, 0.4]
    assert reliability_curve([0.3, 0.2], [1, 0], n_bins=5)["count"].tolist() == [1, 1, 0, 0, 0]


def test_accuracy_by_score_uses_equal_count_bins():
    scores = np.arange(10.0)
    correct = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    table = accuracy_by_score(scores, correct, n_bins=2)
    assert table.to_dict("list") == {"mean_score": [2.0, 7.0], "accuracy": [0.0, 1.0], "count": [5, 5]}
