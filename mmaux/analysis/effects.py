"""Where each auxiliary loss helps: one estimand, one procedure and one verdict per effect.

Every page, the README table and `bench/checkpoint_table.py` read their effects from
`effects_table` (or `group_effects` for one group), so they agree to the digit.

- **Estimand.** The effect of a loss variant V on a set of posts is the mean over seeds s of
  metric(V, s) − metric(CE, s), paired by seed. The 2 × 2 design's ITC and ITM main effects and
  their interaction are the same kind of seed-paired contrast over the four cells (`CONTRASTS`).
- **Procedure.** `stats.contrast_estimate`: a paired t over seeds (what differs between training
  runs is in the seeds' spread, and each seed's Δ already carries its posts' noise); a bootstrap
  over posts only for a single seed. Its calibration is measured by `bench/effects_calibration.py` on simulated groups with
  seed-to-seed model variance.
- **Metric per slice.** One rule, `stats.slice_scoring`: macro-F1 (or the metric asked for) on
  the whole split and over a slice's own posts and gold classes; a slice of one gold class by
  that class's F1 with recall on the slice and false alarms over the split (recall alone would
  call a moved decision threshold a gain on one class and a loss on another).
- **One family.** A slicing that cuts the posts exactly as an earlier one does (for the relation
  task, `relation` and the gold label) is dropped before the family is formed (`distinct_slicings`).
  Benjamini–Hochberg over every remaining effect of a group (all variants × all slices, and the
  2 × 2 effects), which is what one view shows at once; the CIs are false-coverage-rate adjusted
  to match (`stats.fcr_level`), so a CI excludes 0 exactly when p_bh ≤ α. Beside each effect,
  the smallest effect this design detects with 80 % power at the family's first BH level,
  α / family size (`detectable`, a priori: the level does not move with the discoveries made),
  so an "inconclusive" says how large an effect could have been seen.
- **Validation check and verdict.** Each effect is estimated again on the validation split.
  That split is scored by *the same trained models* on other posts: it guards against a fluke
  of the test posts, not against the luck of a few seeds (only the seed-level t does that), so
  it is a check on posts, not a replication. SUPPORTED: the corrected test CI excludes 0 and the
  validation Δ has the same sign. VALIDATION_DISAGREES: the test CI excludes 0 but the
  validation Δ does not agree. TEST_ONLY: the test CI excludes 0 and there are no validation
  outputs (imported runs). EQUIVALENT: the corrected test CI covers 0 and lies within ±`MARGIN`
  points (two one-sided tests at the CI's own level, so the verdict can be read off the CI
  shown), the validation Δ inside the margin too: "no difference larger than ±3 points". UNTESTABLE: a row the caller marks as unable to differ (its auxiliary loss cannot
  reach the classifier, or the ITM head never learned to match: `mmaux.analysis.testable`); it
  stays out of the family. INCONCLUSIVE: anything else (CI covers 0 but not precise enough for
  equivalence, one seed, n < MIN_POSTS); `reason` says which.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmaux.analysis import ALPHA, MARGIN, POWER, stats  # noqa: F401  (read as effects.ALPHA … by callers)
from mmaux.analysis import runs as runs_lib

N_BOOT = 1000  # bootstrap replicates per slice, for an effect estimated from a single seed
MIN_POSTS = 30  # slices with fewer posts are flagged and never "supported"
SUPPORTED, VALIDATION_DISAGREES, INCONCLUSIVE = "supported", "validation disagrees", "inconclusive"
TEST_ONLY = "supported on test only (no validation predictions)"  # runs imported without validation outputs
EQUIVALENT, UNTESTABLE = "equivalent", "untestable here"
VERDICTS = (SUPPORTED, TEST_ONLY, VALIDATION_DISAGREES, EQUIVALENT, INCONCLUSIVE, UNTESTABLE)
OVERALL = stats.ALL  # slicing and slice value of the whole split
VS_CE, DESIGN = "vs CE", "2 × 2"  # the two kinds of effect
CE, ITC, ITM, BOTH = runs_lib.VARIANTS
CONTRASTS: dict[str, tuple[str, dict[str, float]]] = {  # effect -> (kind, weight per variant)
    ITC: (VS_CE, {CE: -1, ITC: 1}),
    ITM: (VS_CE, {CE: -1, ITM: 1}),
    BOTH: (VS_CE, {CE: -1, BOTH: 1}),
    "ITC main": (DESIGN, {CE: -0.5, ITC: 0.5, ITM: -0.5, BOTH: 0.5}),  # ½[(F10 − F00) + (F11 − F01)]
    "ITM main": (DESIGN, {CE: -0.5, ITC: -0.5, ITM: 0.5, BOTH: 0.5}),  # ½[(F01 − F00) + (F11 − F10)]
    "ITC×ITM": (DESIGN, {CE: 1, ITC: -1, ITM: -1, BOTH: 1}),  # (F11 − F01) − (F10 − F00)
}
COLUMNS = [*runs_lib.GROUP_COLUMNS, "effect", "kind", "slicing", "slice", "metric", "n", "seeds", "delta", "se", "df",
           "ci_low", "ci_high", "ci_level", "p", "p_bh", "detectable", "margin", "family", "family_size", "val_delta", "val_n", "verdict", "reason", "small", "slicing_note"]
HELP = ("Each effect is the mean over seeds of (variant − CE), the two runs of a seed scored on the same "
        "posts; its CI and p come from a paired t over seeds (se = sd of the per-seed Δs / √seeds, seeds − 1 "
        "degrees of freedom; each seed's Δ already carries its posts' noise; a single seed falls back on a "
        "bootstrap over posts). "
        "p_bh is Benjamini–Hochberg over every effect of the group shown here, the CI is adjusted to match, "
        "and an effect is 'supported' only when that CI excludes 0 and the validation posts give the same sign "
        "(the same models on other posts: a check on posts, not on seeds). 'equivalent': that CI covers 0 and lies "
        f"within ±{MARGIN:g} points (on validation too): no difference larger than that. 'detectable' is the smallest effect "
        "this design finds with 80 % power at the family's first BH level (α / number of effects), fixed before "
        "the data are seen; `mmaux power` plans with the same level. " + stats.SCORING_HELP)


# --- one split of one group ---------------------------------------------------------------------

@dataclass(frozen=True)
class SplitPredictions:
    """One split's posts and every run's predictions on them, for the runs of one group."""

    posts: pd.DataFrame  # one row per post common to every run: label_index and slice columns
    preds: dict[tuple[str, int], np.ndarray]  # (variant, seed) -> predicted class index per post
    labels: tuple[str, ...]  # class names, in class-index order

    @classmethod
    def from_tables(cls, group: pd.DataFrame, tables: Mapping[str, pd.DataFrame | None],
                    labels: Iterable[str]) -> SplitPredictions | None:
        """From `group` (runs: folder, variant, seed) and folder -> split table (post_id,
        label_index, pred and slice columns; None or absent when the run lacks that split).
        None when no run of the group has the split."""
        present = [(row.folder, row.variant, int(row.seed)) for row in group.itertuples()
                   if tables.get(row.folder) is not None]
        if not present:
            return None
        posts, preds = runs_lib.align({folder: tables[folder] for folder, _, _ in present})
        return cls(posts, {(variant, seed): preds[folder] for folder, variant, seed in present}, tuple(labels))

    def seeds(self, variant: str) -> list[int]:
        return sorted(seed for v, seed in self.preds if v == variant)


def by_class(posts: pd.DataFrame, slicing: str) -> bool:
    """Whether every slice of `slicing` holds a single gold class (the gold label, or a slicing
    that duplicates or refines it)."""
    if slicing == OVERALL or slicing not in posts:
        return False
    return bool((posts.groupby(posts[slicing].astype(str))["label_index"].nunique() == 1).all())


def distinct_slicings(posts: pd.DataFrame, slicings: Iterable[str]) -> list[str]:
    """The `slicings` present in `posts`, in order, less any that cuts the posts exactly as an
    earlier one does (the same effects under two names would count twice in the BH family)."""
    kept, seen = [], set()
    for slicing in slicings:
        if slicing not in posts:
            continue
        partition = tuple(pd.factorize(posts[slicing].astype(str))[0])
        if partition not in seen:
            kept.append(slicing)
            seen.add(partition)
    return kept


def slicing_note(posts: pd.DataFrame, slicing: str) -> str:
    """'' for an ordinary slicing; names one whose every slice holds a single gold class (each
    slice is then scored by its class's F1, `stats.slice_scoring`)."""
    if slicing == runs_lib.LABEL_SLICE:
        return "the gold label: each slice is one class, scored by that class's F1 over all posts"
    if by_class(posts, slicing):
        return ("every slice is one gold class: each scored by its class's F1 (recall on the slice, false alarms "
                "over all posts)")
    return ""


def _slices(posts: pd.DataFrame, slicings: Iterable[str]):
    """(slicing, value, mask) for the whole split (mask None), then each value of each distinct slicing."""
    yield OVERALL, OVERALL, None
    for slicing in distinct_slicings(posts, slicings):
        values = posts[slicing].astype(str)
        for value in sorted(values.unique()):
            yield slicing, value, (values == value).to_numpy()


def split_estimates(split: SplitPredictions, slicings: Iterable[str] = runs_lib.COMPARISON_SLICES,
                    metric: str = "macro_f1", n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Every effect of `CONTRASTS` whose variants are present, on the whole split (all effects)
    and on every slice (the vs-CE effects), unadjusted. Scores in points (× 100).

    Columns: effect, kind, slicing, slice, metric, n, seeds, delta, se, df, p. One bootstrap draw
    of posts per slice serves every run (common random numbers), and one draw of seeds per seed
    count, all from `seed`, so the table is repeatable."""
    y_all = split.posts["label_index"].to_numpy()
    keys = list(split.preds)
    stacked = np.stack([split.preds[k] for k in keys]) if keys else np.zeros((0, len(y_all)), int)
    single_seed = any(len(split.seeds(v)) < 2 for v, _ in keys)
    rows = []
    for slicing, value, mask in _slices(split.posts, slicings):
        if mask is not None and not mask.any():
            continue
        used, score_fn, scored, averaged = stats.slice_scoring(y_all, mask, metric, len(split.labels))
        y, preds = y_all[scored], stacked[:, scored]
        y_code, pred_code = stats._encode(averaged, y, preds)
        n = len(y_all) if mask is None else int(mask.sum())
        resamples = n_boot if single_seed else 0  # only a single seed's error comes from the posts
        post_idx = np.random.default_rng([seed, len(y)]).integers(0, len(y), size=(resamples, len(y)))
        point, boot = stats.resampled_scores(y_code, pred_code, score_fn, len(averaged), post_idx)
        score = {key: (point[i], boot[:, i]) for i, key in enumerate(keys)}
        for effect, (kind, weights) in CONTRASTS.items():
            if kind == DESIGN and slicing != OVERALL:
                continue
            estimate = _contrast(split, score, weights, n)
            if estimate is None:
                continue
            rows.append((effect, kind, slicing, value, used, n, estimate.seeds,
                         100 * estimate.delta, 100 * estimate.se, estimate.df, estimate.p))
    return pd.DataFrame(rows, columns=["effect", "kind", "slicing", "slice", "metric", "n", "seeds", "delta",
                                       "se", "df", "p"])


def _contrast(split: SplitPredictions, score: Mapping, weights: Mapping[str, float],
              posts: int) -> stats.Estimate | None:
    """The `stats.Estimate` of one contrast over the seeds every one of its variants has."""
    if any(v not in {k[0] for k in split.preds} for v in weights):
        return None
    seeds = sorted(set.intersection(*(set(split.seeds(v)) for v in weights)))
    if not seeds:
        return None
    point = sum(w * np.array([score[v, s][0] for s in seeds]) for v, w in weights.items())
    boot = sum(w * np.stack([score[v, s][1] for s in seeds], axis=1) for v, w in weights.items())
    return stats.contrast_estimate(point, boot, posts)


# --- a group: test, validation, family, verdicts ------------------------------------------------

def group_effects(test: SplitPredictions, val: SplitPredictions | None = None,
                  slicings: Iterable[str] = runs_lib.COMPARISON_SLICES, metric: str = "macro_f1",
                  n_boot: int = N_BOOT, alpha: float = ALPHA, seed: int = 0, family: str = "",
                  margin: float = MARGIN) -> pd.DataFrame:
    """The effects of one group, BH-corrected as one family, checked on `val`, with verdicts.

    Columns (scores in points): effect, kind, slicing, slice, metric, n, seeds, delta, ci_low,
    ci_high (FCR-adjusted, at ci_level), p, p_bh, detectable (smallest |Δ| found with `POWER` at
    the family's first BH level, α / family size), family, family_size, val_delta, val_n (NaN and 0 without
    validation outputs), verdict, reason, small (n < MIN_POSTS), slicing_note; and se, df (of the
    t reference, in points)."""
    slicings = list(slicings)
    table = split_estimates(test, slicings, metric, n_boot, seed)
    check = split_estimates(val, slicings, metric, n_boot, seed) if val is not None else None
    table = decide(table, check, ["effect", "slicing", "slice"], alpha, family, table["effect"].map(score_range),
                   margin)
    table["slicing_note"] = [slicing_note(test.posts, s) for s in table["slicing"]]
    return table


def score_range(effect: str) -> float:
    """The largest |value| an effect can take, in points: 100 for a difference of two scores,
    200 for the interaction (Σ|weights| × 50)."""
    return 50 * sum(abs(w) for w in CONTRASTS[effect][1].values())


def decide(table: pd.DataFrame, check: pd.DataFrame | None, key: list[str], alpha: float, family: str,
           bound: pd.Series, margin: float = MARGIN, untestable: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One family's estimates (`table`: key, delta, se, df, p, seeds, n, in points) with the same
    estimates on the validation split (`check`, or None) as val_delta and val_n, then
    Benjamini–Hochberg over the family, FCR-adjusted CIs (clipped to ±`bound`, the values each
    can take: with 2 degrees of freedom a t interval reaches past them), the effect `detectable`
    with `POWER` at the family's first BH level α / family size (one a-priori definition, the one
    `mmaux power` plans with: the FCR level would move with how many discoveries the family made),
    the equivalence margin (`margin`: a corrected CI inside ±margin is equivalent), and verdicts (`verdict`). Rows whose effect is a key of `untestable` (effect ->
    why) are UNTESTABLE with that reason and stay out of the family. Shared by the effects and
    the claims' contrasts, so both decide alike."""
    if check is not None and not table.empty:
        check = check[[*key, "delta", "n"]].rename(columns={"delta": "val_delta", "n": "val_n"})
        table = table.merge(check, on=key, how="left")
    else:
        table = table.assign(val_delta=np.nan, val_n=0)
    table["val_n"] = table["val_n"].fillna(0).astype(int)
    untestable = dict(untestable or {})
    tested = ~table["effect"].isin(list(untestable)).to_numpy() if len(table) else np.zeros(0, bool)
    table["p_bh"] = stats.bh_adjust(np.where(tested, table["p"], np.nan))
    level = stats.fcr_level(table["p_bh"], alpha)
    intervals = [stats.Estimate(r.delta, r.se, r.df, r.seeds, r.n).interval(level) for r in table.itertuples()]
    table["ci_low"] = np.maximum([low for low, _ in intervals], -bound.to_numpy()) if len(table) else []
    table["ci_high"] = np.minimum([high for _, high in intervals], bound.to_numpy()) if len(table) else []
    table["ci_level"] = level
    first_level = alpha / max(int(tested.sum()), 1)  # the family's first BH level: fixed before any p is seen
    table["detectable"] = [100 * stats.detectable_effect(r.se / 100, r.df, first_level, POWER)
                           for r in table.itertuples()]
    table["margin"] = margin
    table["family"], table["family_size"] = family, int(tested.sum())
    table["small"] = table["n"] < MIN_POSTS
    verdicts = [(UNTESTABLE, untestable[row.effect]) if row.effect in untestable else verdict(row, alpha)
                for row in table.itertuples()]
    table["verdict"], table["reason"] = [v for v, _ in verdicts], [r for _, r in verdicts]
    return table


def verdict(row, alpha: float = ALPHA) -> tuple[str, str]:
    """(verdict, reason) of one effect row (needs delta, p_bh, seeds, n, val_delta, val_n; and
    margin, ci_low, ci_high for the equivalence verdict)."""
    problems = []
    power = f"; would detect ≥ {row.detectable:.1f} points" if np.isfinite(getattr(row, "detectable", np.nan)) else ""
    if row.seeds < 2:
        problems.append("one seed: seed variation cannot be estimated")
    if row.n < MIN_POSTS:
        problems.append(f"n = {int(row.n)} < {MIN_POSTS} posts")
    significant = not problems and row.p_bh <= alpha
    if not problems and not significant:
        if _equivalent(row):
            return EQUIVALENT, (f"no difference larger than ±{row.margin:g} points: the corrected CI lies within "
                                f"the margin; validation Δ {row.val_delta:+.1f} within it too")
        problems.append("corrected CI covers 0" + power)
    if pd.isna(row.val_delta):
        if significant:
            return TEST_ONLY, "corrected CI excludes 0; no validation outputs to check it on"
        problems.append("no validation outputs")
        return INCONCLUSIVE, "; ".join(problems)
    if not significant:
        return INCONCLUSIVE, "; ".join(problems)
    if np.sign(row.val_delta) == np.sign(row.delta):
        return SUPPORTED, f"corrected CI excludes 0; validation Δ {row.val_delta:+.1f} agrees"
    return VALIDATION_DISAGREES, f"validation Δ {row.val_delta:+.1f} does not share the sign of the test Δ"


def _equivalent(row) -> bool:
    """The corrected CI inside ±margin (two one-sided tests at the CI's level: a reader can check
    it on the CI shown), and the validation Δ inside it too (a check on other posts, as for a
    supported effect). An earlier rule ran the one-sided tests at their own BH level, which is
    laxer than the CI's once many rows are equivalent, and called a contrast with a CI of
    [−4.3, +2.5] equivalent within ±3."""
    margin = getattr(row, "margin", np.nan)
    return bool(np.isfinite(margin) and -margin < row.ci_low and row.ci_high < margin and pd.notna(row.val_delta)
                and abs(row.val_delta) < margin)


# --- every group of a runs table ----------------------------------------------------------------

TableLoader = Callable[[str, str], pd.DataFrame | None]  # (folder, split) -> split table or None


def group_splits(group: pd.DataFrame, load: TableLoader = runs_lib.load_split_table
                 ) -> tuple[SplitPredictions, SplitPredictions | None]:
    """(test, validation) predictions of one group's runs, by seed (validation None when no run
    has validation outputs)."""
    group = group.sort_values("seed")
    test_tables = {f: load(f, "test") for f in group["folder"]}
    labels = runs_lib.class_names(next(t for t in test_tables.values() if t is not None))
    test = SplitPredictions.from_tables(group, test_tables, labels)
    return test, SplitPredictions.from_tables(group, {f: load(f, "val") for f in group["folder"]}, labels)


def effects_table(runs: pd.DataFrame, load: TableLoader = runs_lib.load_split_table,
                  slicings: Iterable[str] = runs_lib.COMPARISON_SLICES, metric: str = "macro_f1",
                  n_boot: int = N_BOOT, alpha: float = ALPHA, seed: int = 0, margin: float = MARGIN) -> pd.DataFrame:
    """One tidy frame of every group × effect × slice of the usable `runs` (`COLUMNS`).

    `load(folder, "test" | "val")` gives a run's split table (`runs.load_split_table`: post_id,
    label_index, pred, slice columns, p_<class> columns) or None when the run has no outputs for
    that split; the dashboard passes a cached loader. Each group is one BH family."""
    frames = []
    for key, group in runs_lib.groups(runs_lib.usable(runs)):
        test, val = group_splits(group, load)
        frame = group_effects(test, val, slicings, metric, n_boot, alpha, seed, family=runs_lib.group_name(key),
                              margin=margin)
        frames.append(frame.assign(**dict(zip(runs_lib.GROUP_COLUMNS, key))))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def slice_scores(split: SplitPredictions, slicing: str, metric: str = "macro_f1") -> pd.DataFrame:
    """Each variant's score per slice value of `slicing` (then on the whole split, `stats.ALL`),
    mean and std over seeds, in points, each slice scored as its effects are
    (`stats.slice_scoring`; `metric` says how). Columns: variant, slice, n, metric, score, std."""
    y = split.posts["label_index"].to_numpy()
    values = split.posts[slicing].astype(str)
    masks = [(v, (values == v).to_numpy()) for v in sorted(values.unique())]
    masks.append((stats.ALL, None))
    rows = []
    for variant in (v for v in runs_lib.VARIANTS if split.seeds(v)):
        preds = np.stack([split.preds[variant, s] for s in split.seeds(variant)])
        for value, mask in masks:
            used, score, scored, averaged = stats.slice_scoring(y, mask, metric, len(split.labels))
            y_code, pred_code = stats._encode(averaged, y[scored], preds[:, scored])
            per_seed = stats._metric(score)(np.broadcast_to(y_code, pred_code.shape), pred_code, len(averaged))
            mean, std = stats.summarise_over_seeds(100 * per_seed)
            rows.append((variant, value, len(y) if mask is None else int(mask.sum()), used, mean, std))
    return pd.DataFrame(rows, columns=["variant", "slice", "n", "metric", "score", "std"])


# --- words ---------------------------------------------------------------------------------------

def family_caption(frame: pd.DataFrame) -> str:
    """'BH family: the 39 effects of SynthPosts · sarcasm · attention (…); CIs at 99.9 %.'"""
    if frame.empty:
        return ""
    row = frame.iloc[0]
    return (f"BH family: the {int(row.family_size)} effects of {row.family} (every variant × slice, and the "
            f"2 × 2 effects); CIs are FCR-adjusted to {100 * row.ci_level:.2f} %.")


def finding(row) -> str:
    """A supported effect as a sentence; refuses any other verdict (only supported effects are
    phrased as findings)."""
    if row.verdict != SUPPORTED:
        raise ValueError(f"only supported effects are findings; this one is {row.verdict!r}")
    where = "all posts" if row.slicing == OVERALL else f"posts with {row.slicing} = {row.slice}"
    what = f"{row.effect} (vs CE)" if row.kind == VS_CE else f"the {row.effect} effect"
    direction = "raises" if row.delta > 0 else "lowers"
    return (f"{what} {direction} {stats.METRIC_NAMES.get(row.metric, row.metric)} on {where} by "
            f"{abs(row.delta):.1f} points (CI {row.ci_low:+.1f} to {row.ci_high:+.1f}, n = {row.n}; "
            f"validation {row.val_delta:+.1f}).")
