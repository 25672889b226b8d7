"""The results tables of docs/results.md and the answer on README.md's first screen, generated from
the checkpoints by the procedure the dashboard uses.

Reads every checkpoint under MMAUX_CHECKPOINTS (os.pathsep-separated; default checkpoints/) or
--root, and prints in markdown:
1. per group (dataset · task · architecture) × loss variant: seeds and test scores, mean ± std;
2. one row per group × effect × slice (`mmaux.analysis.effects.effects_table`): Δ in points,
   its CI (paired t over seeds, FCR-adjusted for the group's BH family), p after
   Benjamini–Hochberg, the smallest effect the design detects with 80 % power, the validation Δ
   and the verdict word;
3. the paper's two claims as contrasts between slices (`mmaux.analysis.claims.claims_table`):
   one row per group × claim × operationalisation × effect.
With --write, also rewrites the block between docs/results.md's checkpoint-table markers and the
answer between README.md's answer markers.

    python bench/checkpoint_table.py [--root DIR] [--write]

The estimates are the dashboard's own (`report.results`: read from the roots' .analysis/ or the
cache when computed before).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from mmaux import report
from mmaux.analysis import claims, effects, stats
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.stats import METRIC_NAMES
from mmaux.paths import REPO_ROOT, default_roots

README, RESULTS = REPO_ROOT / "README.md", REPO_ROOT / "docs" / "results.md"
TABLE = ("<!-- checkpoint-table:begin -->", "<!-- checkpoint-table:end -->")
ANSWER = ("<!-- answer:begin -->", "<!-- answer:end -->")


def _num(value, digits=1, sign=True) -> str:
    return "" if pd.isna(value) else f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _p(value) -> str:
    return "" if pd.isna(value) else "< 0.001" if value < 0.001 else f"{value:.3f}"


def scores_table(usable: pd.DataFrame) -> list[str]:
    lines = ["| dataset | task | architecture | variant | seeds | macro-F1 | accuracy |", "|---|---|---|---|---|---|---|"]
    for row in runs_lib.seed_summary(usable).itertuples():
        lines.append(f"| {row.dataset} | {row.task} | {row.architecture} | {row.variant} | {row.seeds} | "
                     f"{row.macro_f1} | {row.accuracy} |")
    return lines


def effects_rows(frame: pd.DataFrame) -> list[str]:
    lines = ["| group | effect | slicing | slice | n | metric | Δ (points) | CI (FCR-adjusted) | "
             "p (BH) | detectable | Δ val | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        n = f"{r.n} ⚠" if r.small else str(r.n)
        slicing = r.slicing + (" (one class a slice)" if r.slicing_note and r.slicing != runs_lib.LABEL_SLICE else "")
        lines.append(f"| {r.family} | {r.effect} | {slicing} | {r.slice} | {n} | "
                     f"{METRIC_NAMES.get(r.metric, r.metric)} | {_num(r.delta, 2)} | "
                     f"[{_num(r.ci_low)}, {_num(r.ci_high)}] | {_p(r.p_bh)} | {_num(r.detectable, sign=False)} | "
                     f"{_num(r.val_delta, 2)} | {r.verdict} |")
    return lines


def claims_rows(frame: pd.DataFrame) -> list[str]:
    lines = ["| group | claim | effect | slice A − slice B | Δ on A | Δ on B | contrast | CI (FCR-adjusted) | "
             "Δ val | verdict | detectable |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        verdict = claims.verdict_text(r)
        lines.append(f"| {r.family} | {r.claim} | {r.effect} | {r.slicing}: {r.slice_a} (n={r.n_a}) − {r.slice_b} "
                     f"(n={r.n_b}) | {_num(r.delta_a)} | {_num(r.delta_b)} | {_num(r.delta)} | "
                     f"[{_num(r.ci_low)}, {_num(r.ci_high)}] | {_num(r.val_delta)} | {verdict} | "
                     f"{_num(r.detectable, sign=False)} |")
    return lines


def summary(frame: pd.DataFrame) -> list[str]:
    """What the procedure supports, in words: the supported effects, or why there are none."""
    counts = frame["verdict"].value_counts()
    line = (f"{len(frame)} effects in {frame['family'].nunique()} families: "
            + ", ".join(f"{counts.get(v, 0)} {v}" for v in effects.VERDICTS) + ".")
    supported = frame[frame["verdict"] == effects.SUPPORTED]
    if len(supported):
        return [line, ""] + [f"- **{r.family}**: {effects.finding(r)}" for r in supported.itertuples()]
    reasons = frame["reason"].value_counts()
    return [line + " No effect is supported, so none is stated as a finding. Reasons: "
            + "; ".join(f"{reason} ({n})" for reason, n in reasons.items()) + "."]


def _shown(root: str) -> str:
    """A root as the README shows it: relative to the repository when inside it."""
    path = Path(root).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else root


def block(usable: pd.DataFrame, frame: pd.DataFrame, contrasts: pd.DataFrame, roots: list[str]) -> list[str]:
    overall = frame[frame["slicing"] == effects.OVERALL]
    families = "; ".join(f"{name}: {size}" for name, size in
                         frame.drop_duplicates("family")[["family", "family_size"]].itertuples(index=False))
    return [
        f"Generated by `python bench/checkpoint_table.py --write` from {len(usable)} checkpoints under "
        f"`{os.pathsep.join(_shown(root) for root in roots)}`.", "",
        *summary(frame), "",
        "The paper's claims (`mmaux claims`): contrast = Δ(slice A) − Δ(slice B) of the effect, per seed, then "
        "the same paired t over seeds, one BH family per group (" + ", ".join(
            f"{n} contrasts" for n in contrasts.drop_duplicates("family")["family_size"].unique()) + "), the "
        "validation posts' contrast as a check; 'as claimed': slice A gains more than slice B. "
        f"{int((contrasts['verdict'] == effects.SUPPORTED).sum())} of {len(contrasts)} supported.", "",
        *[f"- {sentence}" for sentence in claims.sentences(contrasts, pool=claims.pooled(contrasts))], "",
        *claims_rows(contrasts), "",
        "Test scores (× 100, mean ± std over seeds):", "",
        *scores_table(usable), "",
        "Effects on the whole test set (vs CE, and the 2 × 2 main effects and interaction). Δ is the mean over "
        "seeds of (variant − CE) paired by seed; the CI is the paired t over seeds (seeds − 1 degrees of freedom), "
        "adjusted for the Benjamini–Hochberg family of its group (tests per family: " + families + "); "
        "'detectable' is the smallest |Δ| this design finds with 80 % power at that corrected level; "
        "Δ val is the same estimate on the validation posts (the same models: a check on posts, not on seeds).", "",
        *effects_rows(overall), "",
        "<details><summary>Every group × effect × slice (⚠: n < 30; " + stats.SCORING_HELP + ")</summary>", "",
        *effects_rows(frame[frame["slicing"] != effects.OVERALL]), "", "</details>",
    ]


def answer(usable: pd.DataFrame, frame: pd.DataFrame, contrasts: pd.DataFrame) -> list[str]:
    """The answer in three lines for the README: what is supported on all posts, what the claims
    come to, and what the design could see where nothing is supported."""
    seeds = usable.groupby([*runs_lib.GROUP_COLUMNS, "variant"])["seed"].nunique()
    design = (f"{seeds.min()}–{seeds.max()}" if seeds.min() != seeds.max() else f"{seeds.min()}") + " seeds per arm"
    overall = frame[(frame["slicing"] == effects.OVERALL) & (frame["verdict"] == effects.SUPPORTED)]
    said = "; ".join(f"{r.task} · {r.architecture} {r.effect} {r.delta:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}]"
                     for r in overall.itertuples()) or "none"
    supported = contrasts[contrasts["verdict"] == effects.SUPPORTED]
    directions = supported["direction"].value_counts()
    inconclusive = frame[(frame["slicing"] == effects.OVERALL) & (frame["verdict"] == effects.INCONCLUSIVE)]
    open_contrasts = contrasts[contrasts["verdict"] == effects.INCONCLUSIVE]
    counts = contrasts["verdict"].value_counts()
    equivalent = frame[(frame["slicing"] == effects.OVERALL) & (frame["verdict"] == effects.EQUIVALENT)]
    pool = claims.pooled(contrasts)
    return [
        f"- **{int((frame['verdict'] == effects.SUPPORTED).sum())} of {len(frame)} effects supported** "
        f"({len(usable)} runs, {design}; paired t over seeds, Benjamini–Hochberg per group, checked on "
        f"validation). On all posts (macro-F1 points, FCR-adjusted CI): {said}. No difference beyond "
        f"±{effects.MARGIN:g} points (the corrected CI within the margin): "
        + ("; ".join(f"{r.task} · {r.architecture} {r.effect} {r.delta:+.1f}" for r in equivalent.itertuples())
           or "none") + ".",
        f"- **The paper's claims**: {len(supported)} of {len(contrasts)} contrasts supported"
        + (" (" + ", ".join(f"{n} {d}" for d, n in directions.items()) + ")" if len(supported) else "")
        + f", {counts.get(effects.EQUIVALENT, 0)} equivalent (no difference beyond ±{effects.MARGIN:g} points), "
        f"{counts.get(effects.UNTESTABLE, 0)} untestable here (the loss could not shape the classifier: "
        "the reason is on each row), " + f"{len(open_contrasts)} inconclusive"
        + (f" (would have seen a contrast of {open_contrasts['detectable'].median():.1f} points, median; "
           f"{open_contrasts['detectable'].min():.1f}–{open_contrasts['detectable'].max():.1f})" if len(open_contrasts)
           else "") + ". Each claim over the groups: " + "; ".join(
            f"*{claim.name}*, " + (claims.pooled_text(pool.set_index("claim").loc[claim.name])
                                   if claim.name in set(pool["claim"]) else "not pooled (testable in fewer than two groups)")
            for claim in claims.CLAIMS) + ".",
        f"- Effects on all posts left inconclusive ({len(inconclusive)}) would have been seen from "
        + " to ".join(dict.fromkeys(f"{v:.1f}" for v in (inconclusive['detectable'].min(),
                                                          inconclusive['detectable'].max()))) + " points. **SynthPosts is a synthetic test bed**: these "
        "numbers show what the tool finds, not the size of the paper's gains on real posts.",
    ]


def write_block(path: Path, markers: tuple[str, str], lines: list[str]) -> None:
    begin, end = markers
    text = path.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        sys.exit(f"{path}: no {begin} … {end} block to replace; add the two markers where it belongs")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", action="append", help="checkpoint root (repeatable); default MMAUX_CHECKPOINTS "
                                                        "or checkpoints/")
    parser.add_argument("--write", action="store_true",
                        help="also rewrite the generated blocks of docs/results.md and README.md")
    args = parser.parse_args()
    roots = args.root or default_roots()
    start = time.perf_counter()
    runs = runs_lib.discover_runs(roots)
    usable = runs_lib.usable(runs)
    if usable.empty:
        sys.exit(f"no usable checkpoints under {os.pathsep.join(roots)}")
    frame, contrasts = report.results(usable)
    lines = block(usable, frame, contrasts, roots)
    short = answer(usable, frame, contrasts)
    print("\n".join(short + [""] + lines))
    broken = len(runs) - len(usable)
    print(f"\n({len(usable)} usable checkpoints" + (f", {broken} broken" if broken else "")
          + f"; {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    if args.write:
        write_block(RESULTS, TABLE, lines)
        write_block(README, ANSWER, short)


if __name__ == "__main__":
    main()
