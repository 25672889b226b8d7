"""A group's effects, claim contrasts and slice scores, kept on disk and shipped beside its
checkpoints.

Both are read by every home page, and computing them takes a moment per group (every run scored
on every slice of both splits). So they are stored as Parquet under a key of everything they follow from:
the group's run configs and outputs (their content, not their paths) and the source of the code
that computes them (`diskcache.source_key`).

A lookup reads, in order:
1. `.analysis/<kind>/<key>.parquet` in a folder above the group's checkpoints. A rebuild writes
   its groups' results there (`python -m mmaux effects ROOT --store`), and they travel with the
   checkpoints. A fresh clone's first visit reads them instead of recomputing them. This folder
   is never written by a lookup.
2. The user's cache (`MMAUX_CACHE`). New results go there.

A stale file is never read, because its key no longer matches. A damaged or planted file is at
worst recomputed: it is Parquet, with no pickles.
"""
from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmaux import tagging
from mmaux.analysis import claims, diskcache, effects, stats, testable
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CONFIG, OUTPUTS, VAL_OUTPUTS
from mmaux.paths import SHIPPED_ANALYSIS, default_roots

SHIPPED = SHIPPED_ANALYSIS  # a checkpoint root's precomputed group results
EFFECTS, CLAIMS, SLICES = "effects", "claims", "slice-scores"
SEARCH_DEPTH = 4  # folders above a checkpoint searched for SHIPPED (find_checkpoints' depth)

SplitLoader = Callable[[str, str], "pd.DataFrame | None"]  # (folder, "test" | "val") -> split table


def group_key(group: pd.DataFrame, *parts) -> str:
    """Key of a result over a group's runs: their configs and outputs (content, in group order),
    the code that computes it, `parts`, and the relation tags their tables join (only when their
    data was tagged: `tagging.tags_key`)."""
    def files(folder):  # validation outputs are absent from older checkpoints
        return [name for name in (CONFIG, OUTPUTS, VAL_OUTPUTS) if (Path(folder) / name).exists()]

    return diskcache.content_key(diskcache.source_key(effects, effects.stats, runs_lib),
                                 [[n, diskcache.checkpoint_key(f, n)] for f in group["folder"] for n in files(f)],
                                 *parts, *[key for f in group["folder"] for key in tagging.tags_key(f)])


def shipped_folders(group: pd.DataFrame) -> list[Path]:
    """The `.analysis` folders above the group's checkpoints, nearest first."""
    found = {}
    for folder in group["folder"]:
        for parent in Path(folder).parents[:SEARCH_DEPTH]:
            found.setdefault(parent / SHIPPED, None)
    return [folder for folder in found if folder.is_dir()]


def effects_key(group: pd.DataFrame, margin: float = effects.MARGIN) -> str:
    return group_key(group, *([] if margin == effects.MARGIN else [margin]))


def group_effects(group: pd.DataFrame, load: SplitLoader = runs_lib.load_split_table,
                  margin: float = effects.MARGIN) -> pd.DataFrame:
    """`effects.effects_table` of one group's runs, read from disk when it was computed before."""
    return diskcache.cached_frame(EFFECTS, effects_key(group, margin),
                                  lambda: effects.effects_table(group, load, margin=margin), shipped_folders(group))


def claims_key(group: pd.DataFrame, margin: float = effects.MARGIN) -> str:
    return group_key(group, diskcache.source_key(claims, testable), *([] if margin == effects.MARGIN else [margin]))


def group_claims(group: pd.DataFrame, load: SplitLoader = runs_lib.load_split_table,
                 margin: float = effects.MARGIN) -> pd.DataFrame:
    """`claims.claims_table` of one group's runs, with the rows it cannot test marked
    (`testable.untestable`: loads the ITM variants' models once, then reads their cached scores),
    read from disk when it was computed before."""
    return diskcache.cached_frame(CLAIMS, claims_key(group, margin),
                                  lambda: claims.claims_table(group, load, margin=margin, checks=testable.untestable),
                                  shipped_folders(group))


def group_slice_scores(group: pd.DataFrame, slicings: Sequence[str],
                       load: SplitLoader = runs_lib.load_split_table) -> dict[str, pd.DataFrame]:
    """slicing -> `effects.slice_scores` of one group's test predictions, read from disk when
    computed before (the test tables are read only when one is missing)."""
    @functools.cache
    def split():
        tables = {f: load(f, "test") for f in group["folder"]}
        return effects.SplitPredictions.from_tables(group, tables, runs_lib.class_names(next(iter(tables.values()))))

    shipped = shipped_folders(group)
    return {slicing: diskcache.cached_frame(SLICES, group_key(group, slicing),
                                            lambda s=slicing: effects.slice_scores(split(), s), shipped)
            for slicing in slicings}


def slicings_of(frame: pd.DataFrame) -> list[str]:
    """The slicings an effects table estimates per slice (what the home page draws bars for)."""
    return [s for s in frame["slicing"].unique() if s != effects.OVERALL]


def store(runs: pd.DataFrame, root: str | Path) -> Path:
    """Compute every group's effects, claim contrasts and slice scores and write them to
    `<root>/.analysis/`, replacing what was there (results of older runs or code would never be
    read again)."""
    target = Path(root) / SHIPPED
    staging = Path(root) / f"{SHIPPED}.new"
    shutil.rmtree(staging, ignore_errors=True)
    for _, group in runs_lib.groups(runs):
        frame = group_effects(group)
        _write(staging / EFFECTS / f"{effects_key(group)}.parquet", frame)
        _write(staging / CLAIMS / f"{claims_key(group)}.parquet", group_claims(group))
        for slicing, scores in group_slice_scores(group, slicings_of(frame)).items():
            _write(staging / SLICES / f"{group_key(group, slicing)}.parquet", scores)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def usable_runs(roots: list[str]) -> pd.DataFrame:
    """The usable runs under `roots`; a command has nothing to do without one, and says so."""
    runs = runs_lib.usable(runs_lib.discover_runs(roots))
    if runs.empty:
        raise FileNotFoundError("no usable checkpoints under " + ", ".join(str(Path(r).resolve()) for r in roots))
    return runs


# --- the commands `mmaux effects`, `power` and `claims` (their options: `mmaux.cli`) -------------

def run_effects(args) -> int:
    """Every group's effects and claim contrasts, counted; with --store, written to ROOT/.analysis."""
    roots = args.roots or default_roots()
    if args.store and len(roots) != 1:
        raise ValueError(f"--store writes into one checkpoint root; {len(roots)} were given")
    if args.store and args.margin != effects.MARGIN:
        raise ValueError(f"--store writes what the dashboard reads, with the default --margin {effects.MARGIN:g}")
    runs = usable_runs(roots)
    for key, group in runs_lib.groups(runs):
        frame = group_effects(group, margin=args.margin)
        contrasts = group_claims(group, margin=args.margin)
        supported = int((frame["verdict"] == effects.SUPPORTED).sum())
        print(f"{runs_lib.group_name(key)}: {len(group)} runs, {len(frame)} effects, {supported} supported; "
              f"{len(contrasts)} claim contrasts, {int((contrasts['verdict'] == effects.SUPPORTED).sum())} supported")
    if args.store:
        try:
            print(f"stored in {store(runs, roots[0])}")
        except OSError as err:
            raise ValueError(f"cannot write {Path(roots[0]).resolve() / SHIPPED}: {err.strerror or err}; "
                             "store into a writable copy of the checkpoints") from err
    return 0


def run_power(args) -> int:
    """Per group and effect on all posts: the spread over seeds, what is detected now, and the
    seeds --effect would need, at the family's first Benjamini–Hochberg level (α / family size)."""
    effect, power = args.effect, args.power
    if not 0 < power < 1 or effect <= 0:
        raise ValueError(f"need 0 < --power < 1 and --effect > 0, got {power} and {effect}")
    runs = usable_runs(args.roots or default_roots())
    for key, group in runs_lib.groups(runs):
        frame = group_effects(group)
        alpha = effects.ALPHA / max(len(frame), 1)
        for row in frame[frame["slicing"] == effects.OVERALL].itertuples():
            if row.seeds < 2:
                print(f"{runs_lib.group_name(key)} | {row.effect}: one seed, no spread to plan from")
                continue
            sd = row.se * np.sqrt(row.seeds)
            now = stats.detectable_effect(row.se, row.df, alpha, power)
            need = stats.seeds_needed(sd, effect, alpha, power)
            print(f"{runs_lib.group_name(key)} | {row.effect}: {row.seeds} seeds, per-seed Δ sd {sd:.2f} points; "
                  f"detects ≥ {now:.1f} now; {effect:g} points needs "
                  + (f"{need} seeds" if need else "more than 200 seeds") + f" (α = {alpha:.4f}, power {power:g})")
    return 0


def run_claims(args) -> int:
    """One line per claim contrast of every group."""
    runs = usable_runs(args.roots or default_roots())
    frames = []
    for key, group in runs_lib.groups(runs):
        frames.append(group_claims(group, margin=args.margin))
        if frames[-1].empty:
            print(f"{runs_lib.group_name(key)}: no claim can be tested (needs CE and an ITC or ITM variant, and "
                  "the slice columns)")
        for row in frames[-1].itertuples():
            print(claims.line(row))
    every = pd.concat(frames, ignore_index=True)
    if len(every):
        pool = claims.pooled(every, margin=args.margin)
        print("\nEach claim pooled over the groups (random effects, Knapp–Hartung; the variant against CE on the "
              "claim's first slicing):")
        for row in pool.itertuples():
            print(f"{row.claim} | {row.effect} | {claims.pooled_text(row)} | {claims.verdict_text(row)}")
        if pool.empty:
            print("no claim can be tested in two or more groups")
        print("\nIn words (per claim and group: the variant against CE on the claim's first slicing):")
        for sentence in claims.sentences(every, pool=pool):
            print(f"- {sentence}")
    return 0
