"""Statistics for comparing checkpoints: over seeds, over posts, and for the ITC × ITM design.

Conventions used throughout:
- Scores are fractions in [0, 1]; multiply by 100 before `format_mean_std` to show points.
- Macro-F1 averages per-class F1 = 2·TP / (2·TP + FP + FN) over a given label set, with 0 for a
  class that is neither true nor predicted (sklearn's `zero_division=0`). On a slice it averages
  over the classes present in that slice's gold labels (`slice_labels`), so a slice holding one
  class is not scored out of 1/K; predictions of other classes still count as errors.
- Bootstrap p-values are two-sided percentile p-values: twice the share of resampled differences
  on the far side of zero (ties at zero count against the effect), capped at 1.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import f1_score

ALL = "all"  # row name for the whole test set in per-slice tables
MCNEMAR_EXACT_BELOW = 25  # discordant pairs below which McNemar uses the exact binomial test

# (y_true codes (B, n), y_pred codes (B, n), n_labels) -> (B,) scores; see `batched_macro_f1`
BatchMetric = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


# --- metrics ------------------------------------------------------------------------------------

def macro_f1(y_true, y_pred, labels: Sequence) -> float:
    """Macro-F1 over `labels` (sklearn, `zero_division=0`)."""
    return float(f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0))


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
    """Accuracy of each row of (B, n) coded labels (`n_labels` unused; same call as macro-F1)."""
    return (np.atleast_2d(y_true) == np.atleast_2d(y_pred)).mean(axis=1)


BATCH_METRICS: dict[str, BatchMetric] = {"macro_f1": batched_macro_f1, "accuracy": batched_accuracy}


def _metric(metric: str | BatchMetric) -> BatchMetric:
    if callable(metric):
        return metric
    if metric not in BATCH_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(BATCH_METRICS)}")
    return BATCH_METRICS[metric]


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


@dataclass(frozen=True)
class SeedTest:
    diff: float  # mean over seeds of (variant − baseline)
    p: float  # paired t-test p-value; NaN when undefined (see `paired_seed_test`)
    n_seeds: int


def paired_seed_test(baseline_scores, variant_scores) -> SeedTest:
    """Paired t-test across seeds (seed i of the baseline paired with seed i of the variant).

    Answers "does the variant beat its baseline beyond seed noise?". p is NaN with fewer than two
    seeds or when every seed's difference is the same (zero variance): the t statistic is then
    undefined, and reporting p = 0 for three identical differences would be a false certainty.
    """
    base = np.asarray(baseline_scores, dtype=float)
    variant = np.asarray(variant_scores, dtype=float)
    _check_same_length(baseline_scores=base, variant_scores=variant)
    diffs = variant - base
    if diffs.size == 0:
        raise ValueError("no seeds to compare")
    if diffs.size < 2 or np.ptp(diffs) == 0:
        return SeedTest(float(diffs.mean()), float("nan"), diffs.size)
    return SeedTest(float(diffs.mean()), float(stats.ttest_rel(variant, base).pvalue), diffs.size)


# --- bootstrap over posts -----------------------------------------------------------------------

@dataclass(frozen=True)
class BootstrapResult:
    score_a: float  # metric of A on all posts
    score_b: float  # metric of B on all posts
    diff: float  # score_b − score_a (the point estimate)
    ci_low: float  # 2.5th percentile of the resampled differences
    ci_high: float  # 97.5th percentile
    p: float  # two-sided bootstrap p-value


def _two_sided_p(boot_diffs: np.ndarray) -> float:
    """Twice the share of resampled differences on the far side of zero, capped at 1."""
    share = min(np.mean(boot_diffs <= 0), np.mean(boot_diffs >= 0))
    return float(min(1.0, 2 * share))


def _ci(boot_diffs: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(boot_diffs, [2.5, 97.5])
    return float(low), float(high)


def paired_bootstrap(y_true, preds_a, preds_b, metric: str | BatchMetric = "macro_f1",
                     labels: Sequence | None = None, n_boot: int = 1000,
                     seed: int = 0) -> BootstrapResult:
    """Paired bootstrap over posts: is checkpoint B better than A on these test posts?

    Each resample draws n posts with replacement and scores A and B on the same draw; the CI is
    the percentile interval of (B − A). `labels` is the set macro-F1 averages over (default:
    every value seen). `metric` is "macro_f1", "accuracy" or a `BatchMetric`.
    """
    _check_same_length(y_true=y_true, preds_a=preds_a, preds_b=preds_b)
    if labels is None:
        labels = pd.unique(np.concatenate([np.asarray(y_true), preds_a, preds_b]))
    labels = list(labels)
    t, a, b = _encode(labels, y_true, preds_a, preds_b)
    score = _metric(metric)
    score_a, score_b = float(score(t, a, len(labels))[0]), float(score(t, b, len(labels))[0])
    idx = np.random.default_rng(seed).integers(0, len(t), size=(n_boot, len(t)))
    boot = score(t[idx], b[idx], len(labels)) - score(t[idx], a[idx], len(labels))
    return BootstrapResult(score_a, score_b, score_b - score_a, *_ci(boot), _two_sided_p(boot))


# --- the ITC × ITM factorial design ------------------------------------------------------------

CELLS = [(False, False), (False, True), (True, False), (True, True)]  # (itc, itm)


def _effects(f: Mapping[tuple[bool, bool], np.ndarray]) -> dict[str, np.ndarray]:
    """Main effects and interaction from the four cell scores F(itc, itm)."""
    itc_at_itm_off = f[True, False] - f[False, False]
    itc_at_itm_on = f[True, True] - f[False, True]
    return {
        "ITC": (itc_at_itm_off + itc_at_itm_on) / 2,
        "ITM": (f[False, True] - f[False, False] + f[True, True] - f[True, False]) / 2,
        "ITC×ITM": itc_at_itm_on - itc_at_itm_off,
    }


def factorial_effects(preds: Mapping[tuple[bool, bool], np.ndarray], y_true, labels: Sequence,
                      metric: str | BatchMetric = "macro_f1", n_boot: int = 1000,
                      seed: int = 0) -> pd.DataFrame:
    """Effects of ITC and ITM in the 2×2 design, with bootstrap CIs over posts and seeds.

    `preds[(itc, itm)]` is (n_seeds, n_posts): one row of test predictions per seed; cells may
    have different seed counts. F(cell) = the metric averaged over the cell's seeds.
      ITC effect  = ½[(F(1,0) − F(0,0)) + (F(1,1) − F(0,1))]   (mean over ITM levels)
      ITM effect  = ½[(F(0,1) − F(0,0)) + (F(1,1) − F(1,0))]
      interaction = (F(1,1) − F(0,1)) − (F(1,0) − F(0,0))       (does ITC help more with ITM?)
    Each resample draws posts with replacement (the same posts for all cells, as they share the
    test set) and, per cell independently, seeds with replacement: seed i of one variant is a
    separate training run from seed i of another, so the cells are not paired by seed.
    Returns one row per effect: effect, estimate, ci_low, ci_high, p.
    """
    missing = [cell for cell in CELLS if cell not in preds]
    if missing:
        raise ValueError(f"preds lacks the (itc, itm) cells {missing}; all four are needed")
    labels = list(labels)
    t, *coded = _encode(labels, y_true, *(np.atleast_2d(preds[cell]) for cell in CELLS))
    score = _metric(metric)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), size=(n_boot, len(t)))
    point, boot = {}, {}
    for cell, p in zip(CELLS, coded):
        if p.shape[1] != len(t):
            raise ValueError(f"cell {cell} has {p.shape[1]} posts, y_true has {len(t)}")
        point[cell] = score(np.broadcast_to(t, p.shape), p, len(labels)).mean()
        per_seed = np.stack([score(t[idx], row[idx], len(labels)) for row in p], axis=1)
        seeds = rng.integers(0, len(p), size=per_seed.shape)
        boot[cell] = np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)
    boot_effects = _effects(boot)
    rows = [(name, float(est), *_ci(boot_effects[name]), _two_sided_p(boot_effects[name]))
            for name, est in _effects(point).items()]
    return pd.DataFrame(rows, columns=["effect", "estimate", "ci_low", "ci_high", "p"])


# --- per-post changes: fixed and broken ---------------------------------------------------------

@dataclass(frozen=True)
class McNemarResult:
    fixed: int  # b01: A wrong, B right
    broken: int  # b10: A right, B wrong
    statistic: float  # min(b01, b10) for the exact test, χ² otherwise, 0 when no discordance
    p: float
    method: str  # "exact", "chi2" or "none"


def _mcnemar_counts(fixed: int, broken: int) -> McNemarResult:
    n = fixed + broken
    if n == 0:
        return McNemarResult(fixed, broken, 0.0, 1.0, "none")
    if n < MCNEMAR_EXACT_BELOW:
        p = stats.binomtest(fixed, n, 0.5).pvalue
        return McNemarResult(fixed, broken, float(min(fixed, broken)), float(p), "exact")
    chi2 = (abs(fixed - broken) - 1) ** 2 / n
    return McNemarResult(fixed, broken, float(chi2), float(stats.chi2.sf(chi2, df=1)), "chi2")


def mcnemar(correct_a, correct_b) -> McNemarResult:
    """McNemar's test on paired correctness: do A and B err on the same posts equally often?

    Only discordant posts matter: b01 = A wrong & B right ("fixed"), b10 = A right & B wrong
    ("broken"). Under H0, b01 ~ Binomial(b01 + b10, ½): exact binomial test when b01 + b10 < 25,
    otherwise χ² = (|b01 − b10| − 1)² / (b01 + b10) with continuity correction (1 df).
    p = 1 when there are no discordant posts.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    _check_same_length(correct_a=a, correct_b=b)
    return _mcnemar_counts(int(np.sum(~a & b)), int(np.sum(a & ~b)))


def bh_adjust(pvals) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaN entries stay NaN and are
    left out of the family."""
    pvals = np.asarray(pvals, dtype=float)
    adjusted = np.full(pvals.shape, np.nan)
    ok = ~np.isnan(pvals)
    if ok.any():
        adjusted[ok] = stats.false_discovery_control(pvals[ok], method="bh")
    return adjusted


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


def _with_bh(table: pd.DataFrame, group_col: str) -> pd.DataFrame:
    """Add p_bh: BH across the slice rows; the ALL row is one planned test, so p_bh = p."""
    slices = table[group_col] != ALL
    table["p_bh"] = table["p"]
    table.loc[slices, "p_bh"] = bh_adjust(table.loc[slices, "p"].to_numpy())
    return table


def fixed_broken(y_true, pred_base, pred_variant, groups=None) -> pd.DataFrame:
    """Per slice (and ALL): posts the variant fixed and broke relative to the baseline.

    Columns: group, n, fixed (base wrong, variant right), broken (base right, variant wrong),
    net = fixed − broken, p (McNemar), p_bh (BH across the slices; see `_with_bh`).
    """
    y, base, variant = (np.asarray(a) for a in (y_true, pred_base, pred_variant))
    _check_same_length(y_true=y, pred_base=base, pred_variant=variant)
    base_ok, variant_ok = base == y, variant == y
    rows = []
    for value, mask in _slice_masks(groups, len(y)):
        test = mcnemar(base_ok[mask], variant_ok[mask])
        rows.append((value, int(mask.sum()), test.fixed, test.broken,
                     test.fixed - test.broken, test.p))
    table = pd.DataFrame(rows, columns=["group", "n", "fixed", "broken", "net", "p"])
    return _with_bh(table, "group")


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
    averages over `labels`.
    """
    y, pred = np.asarray(y_true), np.asarray(y_pred)
    _check_same_length(y_true=y, y_pred=pred)
    rows = []
    for value, mask in _slice_masks(slices, len(y)):
        averaged = labels if value == ALL else slice_labels(y[mask], labels)
        rows.append((value, int(mask.sum()), float(np.mean(y[mask] == pred[mask])),
                     macro_f1(y[mask], pred[mask], averaged)))
    return pd.DataFrame(rows, columns=["slice", "n", "accuracy", "macro_f1"])


def variant_differences(y_true, baseline_pred, variant_preds: Mapping[str, np.ndarray],
                        labels: Sequence, slices=None, metric: str | BatchMetric = "macro_f1",
                        n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Each variant's difference from the CE baseline, per slice and on ALL posts.

    `variant_preds` maps a variant name (e.g. "+ITC") to its test predictions. Each row is a
    paired bootstrap over the slice's posts (`paired_bootstrap`, same `seed` everywhere); p_bh
    applies BH across the slices of one variant (the ALL row keeps its own p).
    Columns: variant, slice, n, baseline, score, diff, ci_low, ci_high, p, p_bh.
    """
    y, base = np.asarray(y_true), np.asarray(baseline_pred)
    tables = []
    for name, pred in variant_preds.items():
        pred = np.asarray(pred)
        _check_same_length(y_true=y, baseline_pred=base, **{name: pred})
        rows = []
        for value, mask in _slice_masks(slices, len(y)):
            averaged = labels if value == ALL else slice_labels(y[mask], labels)
            r = paired_bootstrap(y[mask], base[mask], pred[mask], metric, averaged, n_boot, seed)
            rows.append((name, value, int(mask.sum()), r.score_a, r.score_b, r.diff,
                         r.ci_low, r.ci_high, r.p))
        table = pd.DataFrame(rows, columns=["variant", "slice", "n", "baseline", "score", "diff",
                                            "ci_low", "ci_high", "p"])
        tables.append(_with_bh(table, "slice"))
    return pd.concat(tables, ignore_index=True)
