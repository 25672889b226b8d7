"""Is the image-text space aligned? Retrieval, matching, geometry and representation similarity.

Embeddings are (n_posts, dim) arrays with row i of the image and text arrays belonging to the
same post. Cosine similarity is used throughout, as ITC trains on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, silhouette_samples

_EPS = 1e-12  # a zero vector normalises to zero (cosine 0 with everything) instead of NaN


def _normalise(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)


def _check_pairs(text_emb, image_emb) -> None:
    if len(text_emb) != len(image_emb):
        raise ValueError(f"text has {len(text_emb)} rows, image has {len(image_emb)}; "
                         "row i of each must be the same post")


def cosine_matrix(a, b) -> np.ndarray:
    """(len(a), len(b)) cosine similarities: rows L2-normalised, then a · bᵀ."""
    return _normalise(a) @ _normalise(b).T


# --- retrieval and matching ---------------------------------------------------------------------

def _match_ranks(sim: np.ndarray) -> np.ndarray:
    """1-based rank of each row's diagonal entry within its row; ties count against it."""
    return (sim >= np.diag(sim)[:, None]).sum(axis=1)


def recall_at_k(sim, ks=(1, 5, 10)) -> dict[str, float]:
    """Retrieval recall@k from an (n, n) image × text similarity matrix, true pairs on the diagonal.

    i2t@k: share of images whose own text ranks in the top k of their row; t2i@k: share of texts
    whose own image ranks in the top k of their column. Ties are pessimistic: a true match tied
    with a wrong one ranks below it, so a constant matrix scores recall@k = 0 for every k < n
    rather than a lucky 1.
    """
    sim = np.asarray(sim, dtype=float)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"need a square image × text matrix, got shape {sim.shape}")
    ranks = {"i2t": _match_ranks(sim), "t2i": _match_ranks(sim.T)}
    return {f"{way}@{k}": float(np.mean(r <= k)) for way, r in ranks.items() for k in ks}


def match_auroc(scores_true_pairs, scores_shuffled_pairs) -> float:
    """AUROC of telling true image-text pairs from mismatched ones by their score
    (0.5 = no better than chance, 1 = every true pair outscores every mismatched one)."""
    pos = np.asarray(scores_true_pairs, dtype=float)
    neg = np.asarray(scores_shuffled_pairs, dtype=float)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    return float(roc_auc_score(y, np.r_[pos, neg]))


def shuffled_pairs(n: int, seed: int = 0) -> np.ndarray:
    """A derangement of range(n): perm[i] != i for all i, for pairing image i with text perm[i].

    Built as one random n-cycle (shuffle the posts, map each to the next in the shuffled order),
    so it is vectorised and never pairs a post with itself. It is not uniform over all
    derangements, which does not matter for drawing mismatched pairs.
    """
    if n < 2:
        raise ValueError(f"need at least 2 posts to mismatch pairs, got n={n}")
    order = np.random.default_rng(seed).permutation(n)
    perm = np.empty(n, dtype=int)
    perm[order] = np.roll(order, -1)
    return perm


# --- geometry of the joint space -----------------------------------------------------------------

def modality_gap(text_emb, image_emb) -> float:
    """‖mean(normalised image) − mean(normalised text)‖₂ (Liang et al. 2022, "Mind the Gap"):
    how far apart the two modalities' clouds sit on the sphere (0 = same centre, ≤ 2)."""
    return float(np.linalg.norm(_normalise(image_emb).mean(0) - _normalise(text_emb).mean(0)))


def mean_pair_cosine(text_emb, image_emb, seed: int = 0) -> tuple[float, float]:
    """(mean cosine of true image-text pairs, mean cosine of mismatched pairs from
    `shuffled_pairs`): alignment shows as a true-pair mean well above the mismatched one."""
    _check_pairs(text_emb, image_emb)
    text, image = _normalise(text_emb), _normalise(image_emb)
    mismatched = text[shuffled_pairs(len(text), seed)]
    return float(np.sum(image * text, axis=1).mean()), float(np.sum(image * mismatched, 1).mean())


def _knn_sets(emb: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k most cosine-similar other rows."""
    sim = cosine_matrix(emb, emb)
    np.fill_diagonal(sim, -np.inf)
    return np.argpartition(-sim, k - 1, axis=1)[:, :k]


def knn_overlap(emb_a, emb_b, k: int = 10) -> np.ndarray:
    """Per post |kNN_a ∩ kNN_b| / k: do two checkpoints see the same neighbours for a post?

    Neighbours by cosine, excluding the post itself; 1 = same neighbourhood, 0 = disjoint.
    Ties at the k-th neighbour are broken arbitrarily.
    """
    _check_pairs(emb_a, emb_b)
    if not 1 <= k < len(emb_a):
        raise ValueError(f"k must be between 1 and n_posts − 1 = {len(emb_a) - 1}, got {k}")
    na, nb = _knn_sets(np.asarray(emb_a), k), _knn_sets(np.asarray(emb_b), k)
    shared = (na[:, :, None] == nb[:, None, :]).any(axis=2).sum(axis=1)
    return shared / k


def linear_cka(x, y) -> float:
    """Linear CKA (Kornblith et al. 2019) between two representations of the same posts.

    With column-centred X (n, d1) and Y (n, d2): ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F). 1 for identical
    representations; invariant to orthogonal transforms and isotropic scaling; d1 ≠ d2 allowed.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    _check_pairs(x, y)
    x, y = x - x.mean(0), y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def silhouette_per_label(emb, labels) -> pd.Series:
    """Mean cosine silhouette per label: how well each class separates in the embedding
    (1 = tight and apart, 0 = overlapping, < 0 = closer to another class)."""
    labels = np.asarray(labels)
    scores = silhouette_samples(np.asarray(emb, dtype=float), labels, metric="cosine")
    return pd.Series(scores).groupby(labels).mean().rename("silhouette")


# --- attributions --------------------------------------------------------------------------------

def _abs_flat(attr) -> np.ndarray:
    return np.abs(np.asarray(attr, dtype=float)).ravel()


def topk_overlap(attr_a, attr_b, k: int) -> float:
    """Share of the k largest-|attribution| positions two maps have in common (ties arbitrary)."""
    a, b = _abs_flat(attr_a), _abs_flat(attr_b)
    if a.shape != b.shape or not 1 <= k <= a.size:
        raise ValueError(f"need maps of equal size and 1 ≤ k ≤ size, got {a.size}, {b.size}, k={k}")
    top_a = np.argpartition(-a, k - 1)[:k]
    top_b = np.argpartition(-b, k - 1)[:k]
    return len(np.intersect1d(top_a, top_b)) / k


def rank_correlation(attr_a, attr_b) -> float:
    """Spearman correlation of two attribution maps' |values|: do they rank positions alike?"""
    return float(stats.spearmanr(_abs_flat(attr_a), _abs_flat(attr_b)).statistic)


# --- calibration and "does the match score predict correctness?" ---------------------------------

def reliability_curve(confidence, correct, n_bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data of a classifier: its confidence (P of the predicted class) against
    how often it is right, in equal-width bins on [0, 1] binned as scikit-learn's
    `calibration_curve` bins them (each bin (a, b], the first closed on the left).

    One row per bin: bin_centre, mean_confidence, accuracy (NaN for empty bins), count.
    """
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    _check_pairs(conf, hit)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    count = np.bincount(np.searchsorted(edges[1:-1], conf), minlength=n_bins)
    accuracy, mean_conf = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    accuracy[count > 0], mean_conf[count > 0] = calibration_curve(hit.astype(int), conf, n_bins=n_bins)
    centre = (edges[:-1] + edges[1:]) / 2
    return pd.DataFrame({"bin_centre": centre, "mean_confidence": mean_conf,
                         "accuracy": accuracy, "count": count})


def expected_calibration_error(confidence, correct, n_bins: int = 10) -> float:
    """ECE = Σ_bins (count / N) · |accuracy − mean confidence| over `reliability_curve` bins."""
    curve = reliability_curve(confidence, correct, n_bins).query("count > 0")
    gap = (curve["accuracy"] - curve["mean_confidence"]).abs()
    return float((curve["count"] * gap).sum() / curve["count"].sum())


def accuracy_by_score(scores, correct, n_bins: int = 10) -> pd.DataFrame:
    """How often the classifier is right per bin of another score (e.g. the own-pair match score):
    equal-count bins, one row each: mean_score, accuracy, count. Not a calibration curve: the
    score is not a probability of being right, so no diagonal belongs beside it."""
    scores = np.asarray(scores, dtype=float)
    hit = np.asarray(correct, dtype=float)
    _check_pairs(scores, hit)
    bins = pd.qcut(pd.Series(scores).rank(method="first"), q=min(n_bins, len(scores)), labels=False)
    frame = pd.DataFrame({"score": scores, "hit": hit, "bin": bins})
    return (frame.groupby("bin").agg(mean_score=("score", "mean"), accuracy=("hit", "mean"), count=("hit", "size"))
            .reset_index(drop=True))


@dataclass(frozen=True)
class ScoreAuroc:
    auroc: float  # NaN when undefined
    reason: str = ""  # why auroc is NaN; empty otherwise


def score_predicts_correct(scores, correct) -> ScoreAuroc:
    """AUROC of "a higher match score means the classifier is right" (0.5 = unrelated).

    Undefined (NaN, with the reason) when every prediction is right or every one is wrong.
    """
    scores = np.asarray(scores, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    _check_pairs(scores, correct)
    if correct.all() or not correct.any():
        state = "right" if correct.all() else "wrong"
        return ScoreAuroc(float("nan"), f"every prediction is {state}; AUROC needs both")
    return ScoreAuroc(float(roc_auc_score(correct, scores)))
