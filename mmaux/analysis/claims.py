"""The paper's two claims, tested as claims: does each auxiliary loss help *more* where the paper
says it does?

Sánchez Villegas et al. read their results as: ITC helps on posts where the image adds meaning
the text lacks; ITM on posts whose image and text are only loosely related. Each is a claim about
a difference between slices, so it is tested as one:

    contrast = Δ(slice A) − Δ(slice B),   Δ = the effect (variant − CE, or a 2 × 2 main effect),

per seed on the same posts and runs, then the same procedure as every effect
(`stats.contrast_estimate`: a paired t over seeds), its own Benjamini–Hochberg family per group
(every claim × operationalisation × effect), FCR-adjusted CIs, the smallest contrast this design
detects with 80 % power, the validation check and the verdict words of `effects.verdict`. A
claim has a direction (A more than B); the verdict is about the contrast differing from 0, and
`direction` says whether the estimate goes the claimed way, so "supported · against the claim"
reads as the opposite being found.

Each claim has the operationalisations a reader would check (`CLAIMS`); one whose slicing a
dataset lacks (a user's data without a relation column) falls back on the relation tags a
relation checkpoint predicted for its posts (`mmaux.tagging`: `image_adds (predicted)`...), and
`slice_source` says "predicted by <checkpoint>"; without those it is left out, and `missing`
says which. Each side is scored as the heatmap scores a slice (`stats.slice_scoring`: the group's
metric over its own posts and gold classes; a side of one gold class by that class's F1, recall
on the side and false alarms over the split), so A and B may be scored differently and
`metric_a`, `metric_b` say how.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmaux.analysis import effects, stats
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.effects import INCONCLUSIVE
from mmaux.tagging import TAGGED_BY, is_predicted, predicted

REST = "the rest"  # slice B of an operationalisation that sets one value against all others
AS_CLAIMED, AGAINST = "as claimed", "against the claim"  # the sign of a contrast
TRUE_VALUES, FALSE_VALUES = ("True", "true", "1", "1.0"), ("False", "false", "0", "0.0")
RECORDED = "recorded"  # slice_source of a dataset's own column (else "predicted by <checkpoint>")


@dataclass(frozen=True)
class Operationalisation:
    """Slice A against slice B of one slicing: the values that make each side."""

    slicing: str  # a post column (the first of `columns` present)
    a: tuple[str, ...]  # values of slice A (as strings)
    b: tuple[str, ...] | None  # values of slice B; None: every other post (REST)
    a_name: str
    b_name: str
    columns: tuple[str, ...] = ()  # its names in other datasets, then its predicted tag (`mmaux.tagging`)

    def column(self, posts: pd.DataFrame) -> str | None:
        return next((c for c in (self.slicing, *self.columns) if c in posts), None)

    def source(self, posts: pd.DataFrame) -> str:
        """RECORDED when the posts have the slicing's own column, else 'predicted by <checkpoint>'."""
        column = self.column(posts)
        return f"predicted by {posts[TAGGED_BY].iloc[0]}" if is_predicted(column) else RECORDED

    def masks(self, posts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """(A, B) post masks, or None when the posts lack the slicing."""
        column = self.column(posts)
        if column is None:
            return None
        values = posts[column].astype(str)
        a = values.isin(self.a).to_numpy()
        b = values.isin(self.b).to_numpy() if self.b is not None else (~a & posts[column].notna().to_numpy())
        return a, b

    def describe(self) -> str:
        """'image_adds = True − image_adds = False'"""
        return f"{self.slicing} = {self.a_name} − " + (REST if self.b is None else f"{self.slicing} = {self.b_name}")


@dataclass(frozen=True)
class Claim:
    name: str
    effects: tuple[str, ...]  # keys of `effects.CONTRASTS`: the variant vs CE, and the main effect
    operationalisations: tuple[Operationalisation, ...]


ITC_CLAIM = Claim("ITC helps where the image adds meaning", ("CE+ITC", "ITC main"), (
    Operationalisation("image_adds", TRUE_VALUES, FALSE_VALUES, "True", "False", columns=(predicted("image_adds"),)),
    Operationalisation("evidence", ("image_only",), ("text_only",), "image_only", "text_only"),
))
ITM_CLAIM = Claim("ITM helps where image and text are loosely related", ("CE+ITM", "ITM main"), (
    Operationalisation("text_represented", FALSE_VALUES, TRUE_VALUES, "False", "True",
                       columns=("text_is_represented", predicted("text_represented"))),
    Operationalisation("relation", ("image_notadds_text_notrepr",), None, "image_notadds_text_notrepr", REST,
                       columns=(predicted("relation"),)),
))
CLAIMS = (ITC_CLAIM, ITM_CLAIM)

COLUMNS = [*runs_lib.GROUP_COLUMNS, "claim", "effect", "slicing", "slice_source", "slice_a", "slice_b", "n_a", "n_b",
           "metric_a", "metric_b", "delta_a", "delta_b", "seeds", "delta", "se", "df", "ci_low", "ci_high", "ci_level",
           "p", "p_bh", "detectable", "margin", "family", "family_size", "val_delta", "val_n",
           "verdict", "direction", "reason", "small"]


def _side_scores(split: effects.SplitPredictions, mask: np.ndarray, metric: str) -> tuple[str, dict]:
    """(metric used, (variant, seed) -> score) of every run on the posts of `mask`, scored as the
    heatmap scores a slice (`stats.slice_scoring`)."""
    y_all = split.posts["label_index"].to_numpy()
    used, score, scored, averaged = stats.slice_scoring(y_all, mask, metric, len(split.labels))
    keys = list(split.preds)
    y_code, pred_code = stats._encode(averaged, y_all[scored], np.stack([split.preds[k][scored] for k in keys]))
    scores = stats._metric(score)(np.broadcast_to(y_code, pred_code.shape), pred_code, len(averaged))
    return used, dict(zip(keys, scores))


def _per_seed(split: effects.SplitPredictions, scores: dict, effect: str) -> np.ndarray | None:
    """The effect's value per seed (over the seeds all its variants have), or None."""
    weights = effects.CONTRASTS[effect][1]
    if any(not split.seeds(v) for v in weights):
        return None
    seeds = sorted(set.intersection(*(set(split.seeds(v)) for v in weights)))
    return sum(w * np.array([scores[v, s] for s in seeds]) for v, w in weights.items())


def split_contrasts(split: effects.SplitPredictions, claims: Iterable[Claim] = CLAIMS,
                    metric: str = "macro_f1") -> pd.DataFrame:
    """Every claim × operationalisation × effect the split's posts and runs allow, unadjusted.
    Columns (points): claim, effect, slicing (the column used), slice_source, slice_a, slice_b, n_a,
    n_b, metric_a, metric_b, delta_a, delta_b, seeds, delta, se, df, p, n (the smaller side)."""
    rows = []
    for claim in claims:
        for op in claim.operationalisations:
            masks = op.masks(split.posts)
            if masks is None or not masks[0].any() or not masks[1].any():
                continue
            (metric_a, a), (metric_b, b) = (_side_scores(split, m, metric) for m in masks)
            for effect in claim.effects:
                per_a, per_b = _per_seed(split, a, effect), _per_seed(split, b, effect)
                if per_a is None:
                    continue
                n_a, n_b = int(masks[0].sum()), int(masks[1].sum())
                estimate = stats.contrast_estimate(per_a - per_b, None, n_a + n_b)
                rows.append((claim.name, effect, op.column(split.posts), op.source(split.posts), op.a_name,
                             op.b_name, n_a, n_b, metric_a, metric_b, 100 * per_a.mean(), 100 * per_b.mean(),
                             estimate.seeds, 100 * estimate.delta, 100 * estimate.se, estimate.df, estimate.p,
                             min(n_a, n_b)))
    return pd.DataFrame(rows, columns=["claim", "effect", "slicing", "slice_source", "slice_a", "slice_b", "n_a", "n_b",
                                       "metric_a", "metric_b", "delta_a", "delta_b", "seeds", "delta", "se", "df", "p",
                                       "n"])


def group_contrasts(test: effects.SplitPredictions, val: effects.SplitPredictions | None = None,
                    claims: Iterable[Claim] = CLAIMS, metric: str = "macro_f1", alpha: float = effects.ALPHA,
                    family: str = "", margin: float = effects.MARGIN,
                    untestable: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The claims' contrasts of one group as one BH family, checked on `val`, with verdicts
    (`effects.decide`: a contrast from a single seed is inconclusive, as an effect is; one within
    ±`margin` (its corrected CI inside it) is equivalent; one whose effect is in `untestable`, effect ->
    why, is untestable and stays out of the family)."""
    claims = list(claims)
    table = split_contrasts(test, claims, metric)
    check = split_contrasts(val, claims, metric) if val is not None else None
    bound = 2 * table["effect"].map(effects.score_range)  # a difference of two effects
    table = effects.decide(table, check, ["claim", "effect", "slicing"], alpha, family, bound, margin, untestable)
    table["direction"] = _direction(table["delta"])
    return table


def _direction(delta: pd.Series) -> np.ndarray:
    return np.where(delta > 0, AS_CLAIMED, np.where(delta < 0, AGAINST, ""))


Checks = Callable[[pd.DataFrame], Mapping[str, str]]  # a group's runs -> {effect: why it cannot differ}


def claims_table(runs: pd.DataFrame, load: effects.TableLoader = runs_lib.load_split_table,
                 claims: Iterable[Claim] = CLAIMS, metric: str = "macro_f1",
                 alpha: float = effects.ALPHA, margin: float = effects.MARGIN,
                 checks: Checks | None = None) -> pd.DataFrame:
    """One tidy frame (`COLUMNS`) of every group's claim contrasts; each group is one family.
    `checks(group)` names the effects a group cannot test (`mmaux.analysis.testable.untestable`);
    None tests every row."""
    frames = []
    for key, group in runs_lib.groups(runs_lib.usable(runs)):
        test, val = effects.group_splits(group, load)
        frame = group_contrasts(test, val, claims, metric, alpha, family=runs_lib.group_name(key), margin=margin,
                                untestable=checks(group) if checks else None)
        frames.append(frame.assign(**dict(zip(runs_lib.GROUP_COLUMNS, key))))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def missing(posts: pd.DataFrame, claims: Iterable[Claim] = CLAIMS) -> list[str]:
    """The operationalisations these posts cannot test (their slicing is not a column), in words."""
    return [f"{claim.name}: {op.describe()}" for claim in claims for op in claim.operationalisations
            if op.column(posts) is None]


def line(row) -> str:
    """One printed line per contrast: group, claim, the two slices, both Δs, the contrast with
    its CI, and the verdict (`verdict_text`); and which checkpoint predicted slices that are tags."""
    return (f"{row.family} | {row.claim} | {row.effect} | {row.slicing}: {row.slice_a} (n={row.n_a}) vs "
            f"{row.slice_b} (n={row.n_b}) | Δ {row.delta_a:+.1f} vs {row.delta_b:+.1f} | contrast "
            f"{row.delta:+.1f} [{row.ci_low:+.1f}, {row.ci_high:+.1f}] ({ci_label(row.ci_level)}) | "
            f"val {row.val_delta:+.1f} | {verdict_text(row)}"
            + (f" · would detect ≥ {row.detectable:.1f}" if row.verdict == INCONCLUSIVE else "")
            + (f" · {row.reason}" if row.verdict == effects.UNTESTABLE else "")
            + ("" if row.slice_source == RECORDED else f" | slices {row.slice_source}"))


def ci_label(level: float) -> str:
    """'99.4 % CI, FCR-adjusted' (the level every printed CI of a family carries)."""
    return f"{100 * level:.1f} % CI, FCR-adjusted"


# --- the claims in words: one verdict per contrast, one line per claim and group, one sentence per claim

OUTCOMES = {  # (verdict, direction) -> the claim's outcome in a word or two
    (effects.SUPPORTED, AS_CLAIMED): "holds",
    (effects.SUPPORTED, AGAINST): "contradicted",
    (effects.TEST_ONLY, AS_CLAIMED): "holds on test only",
    (effects.TEST_ONLY, AGAINST): "contradicted on test only",
}
NOT_DECIDED, DISAGREE = "not decided", "test and validation disagree"


def equal_within(margin: float) -> str:
    """The outcome of an equivalent contrast: 'no difference beyond ±3 points'."""
    return f"no difference beyond ±{margin:g} points"


def verdict_text(row) -> str:
    """The verdict as every table, the report and the command line word it: the verdict, and for
    one whose CI excludes 0 the direction ('supported · against the claim'); an equivalent one
    says its margin; an inconclusive or untestable contrast has no direction to state."""
    if row.verdict == effects.EQUIVALENT:
        return f"{row.verdict} · within ±{row.margin:g} points"
    if row.verdict in (INCONCLUSIVE, effects.UNTESTABLE):
        return row.verdict
    return f"{row.verdict} · {row.direction}"


def outcome(row) -> str:
    """What a contrast says of its claim: holds, contradicted, no difference beyond ±margin, test and
    validation disagree, untestable, or not decided."""
    if row.verdict == effects.VALIDATION_DISAGREES:
        return DISAGREE
    if row.verdict == effects.EQUIVALENT:
        return equal_within(row.margin)
    if row.verdict == effects.UNTESTABLE:
        return effects.UNTESTABLE
    return OUTCOMES.get((row.verdict, row.direction), NOT_DECIDED)


def headline_rows(frame: pd.DataFrame, claims: Iterable[Claim] = CLAIMS) -> pd.DataFrame:
    """Per claim and group, the contrast that stands for the claim: its first operationalisation
    the group can test, with the variant against CE (the claim's first effect); the other rows
    are the same question asked another way, and stay in the details."""
    rows = []
    for claim in claims:
        mine = frame[(frame["claim"] == claim.name) & (frame["effect"] == claim.effects[0])]
        rows += [part.index[0] for _, part in mine.groupby("family", sort=False)]
    return frame.loc[rows]


def glance(frame: pd.DataFrame) -> pd.DataFrame:
    """One short row per claim and group: what the home page shows first (fits 1366 px)."""
    head = headline_rows(frame)
    return pd.DataFrame({
        "claim": head["claim"], "group": head["task"] + " · " + head["architecture"],
        "verdict": [outcome(r) for r in head.itertuples()],
        "contrast [CI]": [f"{r.delta:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}]" for r in head.itertuples()],
        "would detect": [("—" if r.verdict == effects.UNTESTABLE else f"≥ {r.detectable:.1f}")
                         for r in head.itertuples()],
    }).reset_index(drop=True)


def _where(rows) -> str:
    return ", ".join(f"{r.task} · {r.architecture} ({r.delta:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}])" for r in rows)


def _untestable(rows) -> list[str]:
    """'untestable where <cause>: <group> (<detail>), ...', one part per cause: a reason is a cause
    with its figures in parentheses (`testable.untestable`), so groups that share a cause are
    named once, each with its own figures."""
    by_cause: dict[str, list[str]] = {}
    for r in rows:
        cause, _, detail = r.reason.partition(" (")
        by_cause.setdefault(cause, []).append(f"{r.task} · {r.architecture}" + (f" ({detail[:-1]})" if detail else ""))
    return [f"untestable where {cause}: " + ", ".join(where) for cause, where in by_cause.items()]


def sentences(frame: pd.DataFrame, claims: Iterable[Claim] = CLAIMS, pool: pd.DataFrame | None = None) -> list[str]:
    """One sentence per claim a reader can quote: where it holds, is contradicted or is equal
    within the margin (with the contrast and its CI), where it is untestable and why, in how many
    groups it is not decided with what the design could have detected there, and (given `pool`,
    `pooled`) the claim pooled over the groups."""
    head = headline_rows(frame, claims)
    said = []
    for claim in claims:
        mine = head[head["claim"] == claim.name]
        if mine.empty:
            continue
        parts = []
        margins = sorted(set(mine["margin"]))
        for word in (*OUTCOMES.values(), *map(equal_within, margins), DISAGREE):
            rows = [r for r in mine.itertuples() if outcome(r) == word]
            if rows:
                parts.append(f"{word} in " + _where(rows))
        untested = [r for r in mine.itertuples() if r.verdict == effects.UNTESTABLE]
        parts += _untestable(untested)
        open_rows = mine[[outcome(r) == NOT_DECIDED for r in mine.itertuples()]]
        if len(open_rows):
            where = "the other" if parts else "all"
            parts.append(f"not decided in {where} {len(open_rows)} group{'s' * (len(open_rows) > 1)} (would "
                         f"detect ≥ {open_rows['detectable'].min():.1f}–{open_rows['detectable'].max():.1f})"
                         if len(open_rows) > 1 else
                         f"not decided in {open_rows.iloc[0]['task']} · {open_rows.iloc[0]['architecture']} "
                         f"(would detect ≥ {open_rows.iloc[0]['detectable']:.1f})")
        mine_pooled = pool[pool["claim"] == claim.name] if pool is not None else pd.DataFrame()
        if len(mine_pooled):
            parts.append(pooled_text(mine_pooled.iloc[0]))
        elif pool is not None:
            parts.append("not pooled: testable in fewer than two groups")
        said.append(f"{claim.name}: " + "; ".join(parts) + ".")
    return said


# --- the claim as a whole: each claim's contrast pooled over the groups --------------------------

POOLED_COLUMNS = ["claim", "effect", "groups", "group_names", "left_out", "delta", "se", "df", "ci_low", "ci_high",
                  "ci_level", "p", "p_bh", "detectable", "margin", "val_delta", "q", "p_het",
                  "i2", "tau", "heterogeneity", "verdict", "direction", "reason"]
CONSISTENT, DIFFERS = "consistent across groups", "differs by group"
HET_LEVEL = 0.10  # a test of heterogeneity is weak with few groups; the customary level for calling it


def pooled(frame: pd.DataFrame, claims: Iterable[Claim] = CLAIMS, alpha: float = effects.ALPHA,
           margin: float = effects.MARGIN) -> pd.DataFrame:
    """Each claim's headline contrast (`headline_rows`) pooled over the groups that can test it: a
    random-effects meta-analysis (statsmodels' `combine_effects`, Paule–Mandel τ², which stays ≥ 0
where statsmodels' DerSimonian–Laird does not) with the
    Knapp–Hartung standard error (never below the plain random-effects one) and a t reference on
    groups − 1 degrees of freedom, which keeps its level with as few as five groups (measured:
    `bench/effects_calibration.py --part pooled`). The claims form one family: BH over them,
    FCR-adjusted CIs, the equivalence rule and verdict words of `effects.decide`, the validation
    contrasts pooled with the same weights as the check. Heterogeneity: Cochran's Q, I² and τ
    describe it; `heterogeneity` says "differs by group" when Welch's test of equal contrasts
    (`stats.welch_heterogeneity_p`, p_het) has p < `HET_LEVEL`. Cochran's Q treats each group's
    standard error as known; from 5 seeds it is not, and Q called a homogeneous set of groups
    heterogeneous 27 % of the time at the 10 % level (`bench/effects_calibration.py --part
    pooled`); Welch's test counts each group's degrees of freedom. A claim testable in fewer than
    two groups is not pooled. Columns: `POOLED_COLUMNS` (points)."""
    from statsmodels.stats.meta_analysis import combine_effects

    head = headline_rows(frame, claims)
    rows, checks = [], []
    for claim in claims:
        mine = head[head["claim"] == claim.name]
        usable = mine[(mine["verdict"] != effects.UNTESTABLE) & (mine["seeds"] >= 2) & (mine["se"] > 0)]
        if len(usable) < 2:
            continue
        result = combine_effects(usable["delta"].to_numpy(), usable["se"].to_numpy() ** 2, method_re="pm")
        se = float(max(result.sd_eff_w_re_hksj, result.sd_eff_w_re))
        k = len(usable)
        posts = int(np.minimum(usable["n_a"], usable["n_b"]).min())  # the smallest side of any group
        estimate = stats.Estimate(float(result.mean_effect_re), se, float(k - 1), k, posts)
        weights = np.asarray(result.weights_rel_re)
        val = usable["val_delta"].to_numpy()
        left_out = mine.loc[~mine.index.isin(usable.index)]
        rows.append(dict(claim=claim.name, effect=claim.effects[0], groups=k,
                         group_names=", ".join(usable["task"] + " · " + usable["architecture"]),
                         left_out=", ".join(left_out["task"] + " · " + left_out["architecture"]),
                         delta=estimate.delta, se=se, df=estimate.df, p=estimate.p, seeds=k, n=estimate.posts,
                         q=float(result.q), p_het=stats.welch_heterogeneity_p(usable["delta"], usable["se"], usable["df"]),
                         i2=float(np.clip(np.nan_to_num(result.i2), 0, 1)),
                         tau=float(np.sqrt(result.tau2))))
        checks.append(dict(claim=claim.name, delta=float(weights @ val) if np.isfinite(val).all() else np.nan,
                           n=int(usable["val_n"].min())))
    if not rows:
        return pd.DataFrame(columns=POOLED_COLUMNS)
    table = pd.DataFrame(rows)
    bound = 2 * table["effect"].map(effects.score_range)
    table = effects.decide(table, pd.DataFrame(checks), ["claim"], alpha, "the claims pooled over groups", bound,
                           margin)
    table["direction"] = _direction(table["delta"])
    table["heterogeneity"] = np.where(table["p_het"] < HET_LEVEL, DIFFERS, CONSISTENT)
    return table[POOLED_COLUMNS]


def pooled_glance(pool: pd.DataFrame) -> pd.DataFrame:
    """One short row per claim pooled over the groups (as `glance`, for the page and the report)."""
    return pd.DataFrame({
        "claim": pool["claim"], "groups": pool["groups"],
        "verdict": [outcome(r) for r in pool.itertuples()],
        "pooled contrast [CI]": [f"{r.delta:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}] ({100 * r.ci_level:.1f} %)"
                                 for r in pool.itertuples()],
        "would detect": pool["detectable"].map("≥ {:.1f}".format),
        "between groups": [f"{r.heterogeneity} (I² {100 * r.i2:.0f} %)" for r in pool.itertuples()],
    }).reset_index(drop=True)


def pooled_text(row) -> str:
    """'pooled over 5 groups: −3.1 [−9.0, +2.8] (97.5 % CI), not decided (would detect ≥ 6.2); differs
    by group (I² 92 %, Welch p < 0.001)'"""
    word = outcome(row)
    if word == NOT_DECIDED:
        word += f" (would detect ≥ {row.detectable:.1f})"
    p_het = "< 0.001" if row.p_het < 0.001 else f"{row.p_het:.3f}"
    return (f"pooled over {row.groups} groups: {row.delta:+.1f} [{row.ci_low:+.1f}, {row.ci_high:+.1f}] "
            f"({100 * row.ci_level:.1f} % CI), {word}; {row.heterogeneity} (I² {100 * row.i2:.0f} %, Welch p {p_het})"
            + (f"; not pooled: {row.left_out}" if row.left_out else ""))
