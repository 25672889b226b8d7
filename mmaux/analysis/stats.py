"""Statistics for comparing checkpoints: metrics, the seeds × posts bootstrap, multiplicity.

Conventions used throughout:
- Scores are fractions in [0, 1]; multiply by 100 before `format_mean_std` to show points.
- Macro-F1 averages per-class F1 = 2·TP / (2·TP + FP + FN) over a given label set, with 0 for a
  class that is neither true nor predicted (sklearn's `zero_division=0`). A slice is scored by
  one rule everywhere (`slice_scoring`): the metric over its own posts and gold classes, or, for
  a slice of one gold class, that class's F1 with recall on the slice and false alarms anywhere.
- An effect is a contrast of runs paired by seed (`paired_contrast`): a paired t over seeds
  (`contrast_estimate`; a bootstrap over posts only for a single seed); p and CI refer it to a
  t distribution (`Estimate`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

ALL = "all"  # row name for the whole test set in per-slice tables

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
    """Accuracy of each row of (B, n) coded labels (`n_labels` unused; same call as macro-F1)."""
    return (np.atleast_2d(y_true) == np.atleast_2d(y_pred)).mean(axis=1)


def class_f1(code: int) -> BatchMetric:
    """The F1 of class `code` (one against the rest) on each row of (B, n) coded labels."""
    def score(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
        truth, guess = np.atleast_2d(y_true) == code, np.atleast_2d(y_pred) == code
        tp, denom = (truth & guess).sum(axis=1), truth.sum(axis=1) + guess.sum(axis=1)
        return np.divide(2 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)
    return score


BATCH_METRICS: dict[str, BatchMetric] = {"macro_f1": batched_macro_f1, "accuracy": batched_accuracy}
CLASS_F1 = "class_f1"  # the metric of a slice of one gold class (`slice_scoring`)
METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy", CLASS_F1: "the class's F1"}
SCORING_HELP = ("A slice is scored by one rule everywhere: the metric over its own posts, averaged over the classes "
                "among them; a slice whose posts are all of one class by that class's F1 with its recall on the slice "
                "and its false alarms (posts of other classes given that class) over the whole split, so a decision "
                "threshold moved toward the class is not a free gain; for the gold label's own slices this is the "
                "class's F1 over all posts.")


def _metric(metric: str | BatchMetric) -> BatchMetric:
    if callable(metric):
        return metric
    if metric not in BATCH_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(BATCH_METRICS)}")
    return BATCH_METRICS[metric]


class SliceScoring(NamedTuple):
    """How one slice is scored (`slice_scoring`)."""

    metric: str  # its name: the metric asked for, or CLASS_F1
    score: str | BatchMetric  # what `_metric` turns into a batch metric
    posts: np.ndarray  # bool mask of the split's posts the score reads
    labels: list[int]  # class codes averaged over


def slice_scoring(y_true: np.ndarray, mask: np.ndarray | None, metric: str, n_labels: int) -> SliceScoring:
    """The one rule that scores a slice (heatmap, effects, claims, contrasts, report; `SCORING_HELP`).

    - The whole split (`mask` None): `metric` over every post, averaged over all `n_labels` classes.
    - A slice of several gold classes: `metric` over its own posts, averaged over its classes.
    - A slice of one gold class c: c's F1 over the slice's posts together with every post of
      another class, i.e. 2·TP / (2·TP + FN + FP) with TP and FN on the slice and FP anywhere.

    Why the third: recall alone (what a one-class slice's macro-F1 reduces to) calls a decision
    threshold moved toward c a gain on every c slice and a loss elsewhere; c's F1 over the whole
    split charges those false alarms but gives every slice of class c the same number (three
    evidence slices of sarcasm's "not sarcastic" posts tied at +0.9 while their recalls moved
    +0.6 and +7.9). Recall on the slice with false alarms over the split keeps both: the slice's
    own posts, and the price of a moved threshold. For a slicing by the gold label it is exactly
    the class's F1 over all posts."""
    y = np.asarray(y_true)
    if mask is None:
        return SliceScoring(metric, metric, np.ones(len(y), dtype=bool), list(range(n_labels)))
    classes = np.unique(y[mask])
    if len(classes) == 1:
        code = int(classes[0])
        return SliceScoring(CLASS_F1, class_f1(code), mask | (y != code), list(range(n_labels)))
    return SliceScoring(metric, metric, mask, [int(c) for c in classes])


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


# --- seed-paired contrasts ----------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """A seed-paired contrast with its standard error and t reference (`contrast_estimate`).

    p and the CI refer delta / se to Student's t with `df` degrees of freedom: with S ≥ 2 seeds,
    the paired t-test over seeds (se = sd(c_s)/√S, df = S − 1), whose per-seed contrasts c_s
    already carry each run's post-by-post noise; with one seed, a bootstrap over posts (df = inf).
    Measured on simulated groups with seed-to-seed model variance (`bench/effects_calibration.py`):
    null p-values uniform and 95 % intervals covering 93–97 % of the time, at 3 and at 5 seeds.
    """
    delta: float  # mean over seeds of the per-seed contrast, on all the posts
    se: float  # standard error of delta
    df: float  # degrees of freedom of the t reference (seeds − 1; inf with one seed: posts only)
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


def welch_heterogeneity_p(delta, se, df) -> float:
    """p of Welch's (1951) test that k estimates `delta` with standard errors `se`, each on `df`
    degrees of freedom, share one true value: F = A / B with A = Σ w(δ − δ̄_w)² / (k − 1), w = 1/se²,
    B = 1 + 2(k − 2)λ / (k² − 1), λ = Σ (1 − w/Σw)² / df, referred to F(k − 1, (k² − 1) / 3λ).
    Unlike Cochran's Q it does not take the standard errors as known, which matters when each
    comes from a handful of seeds."""
    delta, se, df = (np.asarray(a, dtype=float) for a in (delta, se, df))
    k = len(delta)
    w = 1 / se ** 2
    mean = (w * delta).sum() / w.sum()
    spread = (w * (delta - mean) ** 2).sum() / (k - 1)
    lam = ((1 - w / w.sum()) ** 2 / df).sum()
    f = spread / (1 + 2 * (k - 2) * lam / (k ** 2 - 1))
    return float(stats.f.sf(f, k - 1, (k ** 2 - 1) / (3 * lam)))


def detectable_effect(se: float, df: float, alpha: float, power: float = 0.8) -> float:
    """The true effect δ at which a two-sided t test of level `alpha` with standard error `se`
    and `df` degrees of freedom rejects with probability `power` (noncentral t, solved for δ).
    0 when nothing varies (any non-zero effect is then found); inf when no effect can reach
    `power` (e.g. `alpha` so small that the critical value is unbounded)."""
    if se == 0:
        return 0.0
    critical = stats.t.ppf(1 - alpha / 2, df)
    if not np.isfinite(critical):
        return float("inf")

    def shortfall(delta_over_se: float) -> float:
        nc = stats.nct(df, delta_over_se) if df < 1e4 else stats.norm(delta_over_se)
        wrong_side = np.nan_to_num(nc.cdf(-critical))  # scipy's nct gives NaN for a negligible tail
        return float(nc.sf(critical) + wrong_side) - power

    upper = critical + 10.0
    while shortfall(upper) < 0:
        upper *= 2
    return float(se * optimize.brentq(shortfall, 0.0, upper, xtol=1e-6))


def seeds_needed(seed_sd: float, effect: float, alpha: float, power: float = 0.8, most: int = 200) -> int | None:
    """The fewest seeds S at which a paired t over seeds (se = seed_sd/√S, df = S − 1) detects a
    true `effect` with probability `power` at level `alpha`; None when more than `most` seeds
    would be needed."""
    for n_seeds in range(2, most + 1):
        if detectable_effect(seed_sd / np.sqrt(n_seeds), n_seeds - 1, alpha, power) <= abs(effect):
            return n_seeds
    return None


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


def contrast_estimate(point: np.ndarray, boot: np.ndarray | None, posts: int) -> Estimate:
    """The `Estimate` of a contrast from its per-seed values `point` (S,) on all posts.

    S ≥ 2: the paired t over seeds. Each seed's contrast already holds that run pair's own
    post-by-post noise, so the seeds' spread is the whole error of "these models on these
    posts"; another sample of posts is the validation split's question (`effects.verdict`).
    An earlier version added a bootstrap over posts on top of the spread: it counted the runs'
    post noise twice (intervals 1.4× too wide where seeds agree), and its Welch–Satterthwaite
    degrees of freedom grew exactly when three seeds agreed by chance (a null group "supported"
    18 % of the time where seeds disagree). S = 1: the only error left to see is the posts',
    the standard deviation of `boot` (B, 1), the contrast on B resamples of the posts.
    """
    point = np.asarray(point, float)
    n_seeds = point.size
    if n_seeds >= 2:
        return Estimate(float(point.mean()), float(point.std(ddof=1) / np.sqrt(n_seeds)), float(n_seeds - 1),
                        n_seeds, posts)
    boot = np.atleast_2d(boot) if boot is not None else np.zeros((1, 1))
    se = float(boot[:, 0].std(ddof=1)) if boot.shape[0] > 1 else 0.0
    return Estimate(float(point.mean()), se, float("inf"), n_seeds, posts)


def paired_contrast(y_true, arms, weights, labels: Sequence, metric: str | BatchMetric = "macro_f1",
                        n_boot: int = 1000, seed: int = 0) -> Estimate:
    """A contrast of runs paired by seed (`contrast_estimate`).

    `arms` is (K, S, n): K variants × S seeds × n posts of predicted labels, seed s of every arm
    being the same training seed; `weights` (K,) define the contrast: per seed,
    c_s = Σ_k weights[k] · metric(arms[k, s]), e.g. (−1, +1) for "variant − CE" or the 2 × 2
    main effects. The estimate is delta = mean_s c_s. With one seed, `n_boot` resamples of the n
    posts give its standard error. `labels` is the set macro-F1 averages over.
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
    n_boot = n_boot if s < 2 else 0  # several seeds: their spread is the error (`contrast_estimate`)
    post_idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    point, boot = resampled_scores(y, coded.reshape(k * s, n), metric, len(labels), post_idx)
    per_seed = np.einsum("k,ks->s", weights, point.reshape(k, s))
    per_seed_boot = np.einsum("k,bks->bs", weights, boot.reshape(n_boot, k, s))
    return contrast_estimate(per_seed, per_seed_boot, n)


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
    pair of runs. Counts only: whether a variant helps is `paired_contrast`'s question.

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
