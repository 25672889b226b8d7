"""The findings as one file a researcher can keep, send or attach: `mmaux report ROOT` and the home
page's "Download report".

A self-contained Markdown document: what the procedure supports (the findings), the paper's
claims as contrasts, every effect with its CI, p after Benjamini–Hochberg, the effect this design
detects with 80 % power and its verdict, the checkpoints it was computed from (folder, a hash of
its config.json, seed) so that a reader can tell which runs these are, and the link that reopens
the view. The effects also go out as CSV (`effects_csv`) for analysis elsewhere. Everything in
it comes from `group_results` (the same frames the home page shows), so the file and the page
agree to the digit.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd

from mmaux.analysis import claims, effects, group_results
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.stats import METRIC_NAMES
from mmaux.checkpoint import CONFIG
from mmaux.data.datasets import file_sha256
from mmaux.paths import default_roots



def _num(value, digits: int = 1, sign: bool = True) -> str:
    return "" if pd.isna(value) else f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _ci(row) -> str:
    """'+0.4 to +2.1 (99.4 %)': a CI with its level."""
    return f"{_num(row.ci_low)} to {_num(row.ci_high)} ({100 * row.ci_level:.1f} %)"


def _table(header: list[str], rows: Iterable[list]) -> list[str]:
    """A Markdown table (cells' '|' escaped)."""
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def _shown(folder: str, roots: list[str]) -> str:
    """A checkpoint folder relative to the root it was found under."""
    for root in roots:
        path, base = Path(folder).resolve(), Path(root).resolve()
        if path.is_relative_to(base):
            return str(Path(base.name) / path.relative_to(base))
    return folder


def results(runs: pd.DataFrame, margin: float = effects.MARGIN) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(effects, claims) of every group of `runs`, as the home page reads them."""
    groups = runs_lib.groups(runs_lib.usable(runs))
    return (combined([group_results.group_effects(group, margin=margin) for _, group in groups], effects.COLUMNS),
            combined([group_results.group_claims(group, margin=margin) for _, group in groups], claims.COLUMNS))


def combined(frames: Iterable[pd.DataFrame | None], columns: list[str]) -> pd.DataFrame:
    """The groups' frames as one (a group that could not be estimated, None, or had nothing to
    test, empty, is left out); an empty frame with `columns` when none is left."""
    kept = [f for f in frames if f is not None and len(f)]
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=columns)


def effects_csv(frame: pd.DataFrame) -> str:
    """Every effect, one row each, in `effects.COLUMNS` order (scores in points)."""
    return frame[effects.COLUMNS].to_csv(index=False)


def markdown(runs: pd.DataFrame, frame: pd.DataFrame, contrasts: pd.DataFrame, roots: list[str],
             link: str) -> str:
    """The report (see the module docstring)."""
    usable = runs_lib.usable(runs)
    counts = frame["verdict"].value_counts()
    supported = frame[frame["verdict"] == effects.SUPPORTED]
    glance = claims.glance(contrasts)  # one line per claim and group
    pool = claims.pooled(contrasts, margin=float(contrasts["margin"].iloc[0])) if len(contrasts) else None
    lines = [
        "# mmaux report: where each auxiliary loss helps", "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from {len(usable)} checkpoints under "
        + ", ".join(f"`{r}`" for r in roots) + f". Reopen this view: <{link}>", "",
        "## How to read it", "", effects.HELP, "",
        "## Findings", "",
        f"{len(frame)} effects in {frame['family'].nunique()} families: "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in effects.VERDICTS) + ".", "",
        *([f"- **{r.family}**: {effects.finding(r)}" for r in supported.itertuples()]
          or ["No effect is supported, so none is stated as a finding."]), "",
        "## The paper's claims", "",
        *[f"- {sentence}" for sentence in claims.sentences(contrasts, pool=pool)], "",
        *_table(list(glance.columns), glance.values.tolist()), "",
        *(_pooled_table(pool) if pool is not None and len(pool) else []),
        "contrast = Δ(slice A) − Δ(slice B) of the effect, per seed; one BH family per group, the CI "
        "false-coverage-adjusted to match; 'as claimed': slice A gains more than slice B. Every contrast:", "",
        *_table(["group", "claim", "effect", "slice A − slice B", "Δ on A", "Δ on B", "contrast", "CI (FCR-adjusted)",
                 "Δ val",
                 "verdict", "detectable"],
                [[r.family, r.claim, r.effect, f"{r.slicing}: {r.slice_a} (n={r.n_a}) − {r.slice_b} (n={r.n_b})",
                  _num(r.delta_a), _num(r.delta_b), _num(r.delta), _ci(r),
                  _num(r.val_delta), claims.verdict_text(r), _num(r.detectable, sign=False)]
                 for r in contrasts.itertuples()]), "",
        "## Every effect", "",
        *_table(["group", "effect", "slicing", "slice", "n", "metric", "Δ (points)", "CI (FCR-adjusted)", "p (BH)",
                 "detectable (80 % power)", "Δ val", "verdict"],
                [[r.family, r.effect, r.slicing, r.slice, r.n, METRIC_NAMES.get(r.metric, r.metric),
                  _num(r.delta, 2), _ci(r), f"{r.p_bh:.3f}",
                  _num(r.detectable, sign=False), _num(r.val_delta, 2), r.verdict] for r in frame.itertuples()]), "",
        "## Checkpoints", "",
        *_table(["group", "variant", "seed", "folder", "config.json sha256 (first 16)"],
                [[runs_lib.group_name(tuple(r[c] for c in runs_lib.GROUP_COLUMNS)), r["variant"], int(r["seed"]),
                  _shown(r["folder"], roots), file_sha256(Path(r["folder"]) / CONFIG)[:16]]
                 for _, r in usable.iterrows()]), "",
    ]
    return "\n".join(lines)


def _pooled_table(pool: pd.DataFrame) -> list[str]:
    """Each claim pooled over the groups (`claims.pooled`), as a table."""
    glance = claims.pooled_glance(pool)
    return [*_table(list(glance.columns), glance.values.tolist()), "",
            "Pooled: a random-effects meta-analysis of each claim's contrast over the groups that can test it "
            "(Paule–Mandel τ², Knapp–Hartung CI on groups − 1 degrees of freedom); 'differs by group' when "
            f"Welch's test of equal contrasts has p < {claims.HET_LEVEL:g} (I²: Cochran's share of variation "
            "between groups).", ""]


def view_link(base: str, params: dict[str, str]) -> str:
    """The dashboard's URL with the view's query parameters."""
    return base + ("?" + urlencode(params) if params else "")


# --- command line: `python -m mmaux report` ------------------------------------------------------

def run_report(args) -> int:
    """`mmaux report`: the Markdown report (and CSV) of the checkpoints under the roots."""
    roots = args.roots or default_roots()
    targets = [t for t in (args.out, args.csv) if t]
    for target in targets:
        if os.path.exists(target):
            raise FileExistsError(f"{target} exists; choose another --out/--csv file (nothing was written)")
    runs = group_results.usable_runs(roots)
    frame, contrasts = results(runs, args.margin)
    Path(args.out).write_text(markdown(runs, frame, contrasts, roots, view_link(args.url, {})), encoding="utf-8")
    if args.csv:
        Path(args.csv).write_text(effects_csv(frame), encoding="utf-8")
    print(f"wrote {' and '.join(targets)}: {len(frame)} effects, {len(contrasts)} claim contrasts, "
          f"{int((frame['verdict'] == effects.SUPPORTED).sum())} supported")
    return 0
