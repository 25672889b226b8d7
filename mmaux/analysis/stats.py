"""Statistics for comparing checkpoints: metrics, the seeds × posts bootstrap, multiplicity.

Conventions used throughout:
- Scores are fractions in [0, 1]; multiply by 100 before `format_mean_std` to show points.
- Macro-F1 averages per-class F1 = 2·TP / (2·TP + FP + FN) over a given label set, with 0 for a
  class that is neither true nor predicted (sklearn's `zero_division=0`). On a slice it averages
  over the classes present in that slice's gold labels (`slice_labels`); a slice holding a single
  gold class is scored by recall (= accuracy) instead, because macro-F1 there is 2r/(1+r), not a
  score anyone means (`slice_metric`).
- An effect is a contrast of runs paired by seed, estimated by `seed_post_bootstrap`: the
  two-level (seeds, then posts) bootstrap described there. Its p and CI refer the bootstrap
  standard error to a t distribution (`Estimate`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALL = "all"  # row name for the whole test set in per-slice tables
RECALL = "recall"  # the metric of a slice with one gold class (`slice_metric`)

# (y_true codes (B, n), y_pred codes (B, n), n_labels) -> (B,) scores; see `batched_macro_f1`
BatchMetric = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


# --- metrics ------------------------------------------------------------------------------------

def macro_f1(y_true, y_pred, labels: Sequence) -> float:
    """Macro-F1 over `labels`, as sklearn's `f1_score(average="macro", zero_division=0)` with
    `labels` (a label outside them counts only as an error), computed by `batched_macro_f1`:
    the home page scores thousands of slices, and sklearn's input checks took 4 ms a call."""
    index = pd.Index(list(labels))
    codes = [index.get_indexer(np.asarray(y)) for y in (y_true, y_pred)]  # -1: not among `labels`
    y_true, y_pred = (np.where(c < 0, len(index), c) for c in codes)
    return float(batched_macro_f1(y_true, y_pred, len(index))[0])


def slice_labels(y_true, labels: Sequence) -> list:
    """The labels of `labels` that occur in `y_true`, in `labels` order (macro-F1 on a slice)."""
    present = set(np.asarray(y_true).tolist())
    return [label for label in labels if label in present]


def batched_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 of each row of (B, n) integer-coded labels, averaged over codes 0..n_labels-1.

    Codes ≥ n_labels are classes outside the averaged set: they count as errors only. One
    `np.bincount` over `row·K² + true·K + pred` gives all B confusion matrices at once, so a
    1000-resample bootstrap needs no Python loop over resamples.
    """
    y_true, y_pred = np.atleast_2d(y_true), np.atleast_2d(y_pred)
    n_rows = y_true.shape[0]
    k = max(n_labels, int(y_true.max(initial=0)) + 1, int(y_pred.max(initial=0)) + 1)
    flat = np.arange(n_rows)[:, None] * k * k + y_true * k + y_pred
    counts = np.bincount(flat.ravel(), minlength=n_rows * k * k).reshape(n_rows, k, k)
    tp = np.diagonal(counts, axis1=1, axis2=2)
    denom = counts.sum(axis=2) + counts.sum(axis=1)  # (TP + FN) + (TP + FP)
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)
    return f1[:, :n_labels].mean(axis=1)


def batched_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Accuracy of each row of (B, n) coded labels (`n_labels` unused; same call as macro-F1).
    On posts of one gold class this is that class's recall."""
    return (np.atleast_2d(y_true) == np.atleast_2d(y_pred)).mean(axis=1)


BATCH_METRICS: dict[str, BatchMetric] = {"macro_f1": batched_macro_f1, "accuracy": batched_accuracy,
                                         RECALL: batched_accuracy}
METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy", RECALL: "recall"}


def _metric(metric: str | BatchMetric) -> BatchMetric:
    if callable(metric):
        return metric
    if metric not in BATCH_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(BATCH_METRICS)}")
    return BATCH_METRICS[metric]


def slice_metric(y_true, metric: str) -> str:
    """The metric a set of posts is scored by: `metric`, except RECALL when its gold labels hold
    a single class (macro-F1 of one class is 2r/(1+r) for recall r, and accuracy is recall)."""
    return RECALL if pd.Series(np.asarray(y_true)).nunique() == 1 else metric


def _encode(labels: Sequence, *arrays) -> list[np.ndarray]:
    """Integer codes for label arrays: `labels` get 0..len-1, other values seen get later codes."""
    seen = pd.unique(np.concatenate([np.asarray(a).ravel() for a in arrays]))
    known = set(labels)
    extras = [v for v in seen if v not in known]
    index = pd.Index(list(labels) + extras)
    return [index.get_indexer(np.asarray(a).ravel()).reshape(np.shape(a)) for a in arrays]


def _check_same_length(**arrays) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have the same number of posts, got {lengths}")


# --- over seeds ---------------------------------------------------------------------------------

def summarise_over_seeds(values) -> tuple[float, float]:
    """(mean, sample std with ddof=1) of one score over seeds; std is 0 for a single seed."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values to summarise")
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return float(values.mean()), std


def format_mean_std(mean: float, std: float, digits: int = 1) -> str:
    """'71.2 ± 1.3' (pass values already in the unit to show, e.g. F1 × 100)."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


# --- the seeds × posts bootstrap ----------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """A seed-paired contrast with its two-level bootstrap standard error (`seed_post_bootstrap`).

    p and the CI refer delta / se to Student's t with `df` degrees of freedom, the
    Welch–Satterthwaite share of the variance that comes from the few seeds:
    df = (seeds − 1) · (se² / v_seed)², v_seed = var(per-seed contrasts, ddof=1) / seeds, and
    df ≥ seeds − 1. With many posts and seeds that agree, df is large and t is the normal; when
    one seed disagrees, df falls to seeds − 1 and the interval widens accordingly. Measured on
    simulated runs (tests/test_effects.py, 200 simulations each, α = 0.05): with 5 seeds a true
    null is rejected 0–5 % of the time whether posts or seeds dominate the noise; with 3 seeds
    that disagree strongly, 5.5–10 % (df is then itself estimated from 3 values). A plain
    percentile interval rejected 14–24 % in the seed-dominated case, which is why it is not used.
    """
    delta: float  # mean over seeds of the per-seed contrast, on all the posts
    se: float  # standard deviation of the bootstrap replicates of delta
    df: float  # degrees of freedom of the t reference (inf with one seed: posts only)
    seeds: int  # seed pairs (or quadruples, for the 2 × 2 contrasts) used
    posts: int  # posts scored

    @property
    def p(self) -> float:
        """Two-sided p of delta = 0 (1 when nothing varies and delta is 0; 0 when only delta ≠ 0)."""
        if self.se == 0:
            return 1.0 if self.delta == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.delta) / self.se, self.df))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The `level` confidence interval delta ± t_{df}((1 + level) / 2) · se."""
        half = float(stats.t.ppf((1 + level) / 2, self.df)) * self.se if self.se > 0 else 0.0
        return self.delta - half, self.delta + half


def resampled_scores(y_true: np.ndarray, preds: np.ndarray, metric: str | BatchMetric, n_labels: int,
                     post_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each run's score on all posts and on every resample of the posts.

    `y_true` (n,) and `preds` (R, n) are integer codes (R runs); `post_idx` (B, n) holds the B
    resamples. Every run is scored on the same resampled posts. Returns ((R,), (B, R)).
    """
    score = _metric(metric)
    y, preds = np.asarray(y_true), np.atleast_2d(preds)
    point = score(np.broadcast_to(y, preds.shape), preds, n_labels)
    y_boot = y[post_idx]
    boot = np.stack([score(y_boot, run[post_idx], n_labels) for run in preds], axis=1)
    return point, boot


def contrast_estimate(point: np.ndarray, boot: np.ndarray, seed_idx: np.ndarray, posts: int) -> Estimate:
    """The `Estimate` of a contrast from its per-seed values: `point` (S,) on all posts, `boot`
    (B, S) on the post resamples, `seed_idx` (B, S) the seed resamples (indices into S). Each
    replicate is the mean of the drawn seeds' values on its post resample, their deviations from
    that resample's all-seed mean scaled by √(S / (S − 1)) (see `seed_post_bootstrap`)."""
    point, boot = np.asarray(point, float), np.atleast_2d(boot)
    n_seeds = point.size
    centre = boot.mean(axis=1, keepdims=True)  # all seeds on each post resample
    inflate = np.sqrt(n_seeds / (n_seeds - 1)) if n_seeds > 1 else 1.0
    drawn = np.take_along_axis(boot, seed_idx, axis=1)
    replicates = (centre + inflate * (drawn - centre)).mean(axis=1)
    se = float(replicates.std(ddof=1)) if replicates.size > 1 else 0.0
    v_seed = float(point.var(ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    df = np.inf if v_seed == 0 or n_seeds < 2 else (n_seeds - 1) * max(1.0, se ** 2 / v_seed) ** 2
    return Estimate(float(point.mean()), se, float(df), n_seeds, posts)


def seed_post_bootstrap(y_true, arms, weights, labels: Sequence, metric: str | BatchMetric = "macro_f1",
                        n_boot: int = 1000, seed: int = 0) -> Estimate:
    """A contrast of runs paired by seed, with a two-level (seeds, then posts) bootstrap.

    `arms` is (K, S, n): K variants × S seeds × n posts of predicted labels, seed s of every arm
    being the same training seed; `weights` (K,) define the contrast: per seed,
    c_s = Σ_k weights[k] · metric(arms[k, s]), e.g. (−1, +1) for "variant − CE" or the 2 × 2
    main effects. The estimate is delta = mean_s c_s. Each of `n_boot` replicates draws the n
    posts with replacement (the same post indices for every arm and seed, since all runs are
    scored on one test set) and the S seeds with replacement, and averages c over the drawn
    seeds on the drawn posts; the replicates' standard deviation is the standard error
    (see `Estimate` for p and CI). The drawn seeds' deviations from the mean of all seeds are
    scaled by √(S / (S − 1)), so that the seed part of the variance is s²/S, as in a paired
    t-test, rather than the plain bootstrap's (S − 1)/S of it, which with 3 seeds rejects a
    true null too often (`contrast_estimate`). `labels` is the set macro-F1 averages over.
    """
    labels = list(labels)
    arms = np.asarray(arms)
    if arms.ndim != 3 or arms.shape[-1] != len(y_true):
        raise ValueError(f"arms must be (variants, seeds, {len(y_true)} posts), got {arms.shape}")
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (arms.shape[0],):
        raise ValueError(f"need one weight per arm ({arms.shape[0]}), got {weights.shape}")
    k, s, n = arms.shape
    y, coded = _encode(labels, y_true, arms)
    rng = np.random.default_rng(seed)
    post_idx = rng.integers(0, n, size=(n_boot, n))
    seed_idx = rng.integers(0, s, size=(n_boot, s))
    point, boot = resampled_scores(y, coded.reshape(k * s, n), metric, len(labels), post_idx)
    per_seed = np.einsum("k,ks->s", weights, point.reshape(k, s))
    per_seed_boot = np.einsum("k,bks->bs", weights, boot.reshape(n_boot, k, s))
    return contrast_estimate(per_seed, per_seed_boot, seed_idx, n)


# --- multiplicity -------------------------------------------------------------------------------

def bh_adjust(pvals) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaN entries stay NaN and are
    left out of the family."""
    pvals = np.asarray(pvals, dtype=float)
    adjusted = np.full(pvals.shape, np.nan)
    ok = ~np.isnan(pvals)
    if ok.any():
        adjusted[ok] = stats.false_discovery_control(pvals[ok], method="bh")
    return adjusted


def fcr_level(p_bh, alpha: float = 0.05) -> float:
    """Confidence level of false-coverage-rate adjusted intervals for a BH family (Benjamini &
    Yekutieli 2005): 1 − R·α/m for R discoveries among m tests (1 − α/m when R = 0). Such an
    interval excludes 0 exactly when its test is a BH discovery at level α."""
    p_bh = np.asarray(p_bh, dtype=float)
    m = int(np.sum(~np.isnan(p_bh)))
    discoveries = int(np.sum(p_bh <= alpha))
    return 1 - max(discoveries, 1) * alpha / max(m, 1)


# --- per-post changes: fixed and broken ---------------------------------------------------------

def _slice_masks(slices, n_posts: int) -> Iterator[tuple[object, np.ndarray]]:
    """(value, mask) for each slice value in sorted order, then (ALL, every post)."""
    if slices is not None:
        values = np.asarray(slices)
        if len(values) != n_posts:
            raise ValueError(f"slices has {len(values)} entries for {n_posts} posts")
        if np.any(values == ALL):
            raise ValueError(f"slice value {ALL!r} is reserved for the whole-test-set row; "
                             "rename it")
        for value in sorted(pd.Series(values).dropna().unique()):
            yield value, values == value
    yield ALL, np.ones(n_posts, dtype=bool)


def fixed_broken(y_true, pred_base, pred_variant, groups=None) -> pd.DataFrame:
    """Per slice (and ALL): posts the variant fixed and broke relative to the baseline, for one
    pair of runs. Counts only: whether a variant helps is `seed_post_bootstrap`'s question.

    Columns: group, n, fixed (base wrong, variant right), broken (base right, variant wrong),
    net = fixed − broken.
    """
    y, base, variant = (np.asarray(a) for a in (y_true, pred_base, pred_variant))
    _check_same_length(y_true=y, pred_base=base, pred_variant=variant)
    fixed, broken = (base != y) & (variant == y), (base == y) & (variant != y)
    rows = [(value, int(mask.sum()), int(fixed[mask].sum()), int(broken[mask].sum()))
            for value, mask in _slice_masks(groups, len(y))]
    table = pd.DataFrame(rows, columns=["group", "n", "fixed", "broken"])
    return table.assign(net=table["fixed"] - table["broken"])


def consistently_fixed(y_true, base_preds, variant_preds, min_share: float = 0.5) -> np.ndarray:
    """Posts fixed in more than `min_share` of seeds, i.e. fixed not by chance of one run.

    base_preds and variant_preds are (n_seeds, n_posts); seed i of the baseline is paired with
    seed i of the variant, and "fixed" means baseline wrong and variant right in that pair.
    """
    y = np.asarray(y_true)
    base, variant = np.atleast_2d(base_preds), np.atleast_2d(variant_preds)
    if base.shape != variant.shape or base.shape[1] != len(y):
        raise ValueError(f"need two (n_seeds, {len(y)}) arrays, got {base.shape} and "
                         f"{variant.shape}")
    fixed = (base != y) & (variant == y)
    return fixed.mean(axis=0) > min_share


# --- per slice ----------------------------------------------------------------------------------

def per_slice_scores(y_true, y_pred, slices, labels: Sequence) -> pd.DataFrame:
    """n, accuracy and macro-F1 per slice value (relation, label, evidence source) and ALL.

    A slice's macro-F1 averages over the classes in its gold labels (`slice_labels`); ALL
    averages over `labels`. `score` is the slice's headline figure (`slice_metric`): macro-F1,
    or recall where the slice holds one gold class; `metric` names it.
    """
    y, pred = np.asarray(y_true), np.asarray(y_pred)
    _check_same_length(y_true=y, y_pred=pred)
    rows = []
    for value, mask in _slice_masks(slices, len(y)):
        averaged = labels if value == ALL else slice_labels(y[mask], labels)
        accuracy = float(np.mean(y[mask] == pred[mask]))
        f1 = macro_f1(y[mask], pred[mask], averaged)
        metric = "macro_f1" if value == ALL else slice_metric(y[mask], "macro_f1")
        rows.append((value, int(mask.sum()), accuracy, f1, metric, accuracy if metric == RECALL else f1))
    return pd.DataFrame(rows, columns=["slice", "n", "accuracy", "macro_f1", "metric", "score"])
