"""A group's effects and slice scores, kept on disk and shipped beside its checkpoints.

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

import pandas as pd

from mmaux.analysis import diskcache, effects
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CONFIG, OUTPUTS, VAL_OUTPUTS

SHIPPED = ".analysis"  # a checkpoint root's precomputed group results
EFFECTS, SLICES = "effects", "slice-scores"
SEARCH_DEPTH = 4  # folders above a checkpoint searched for SHIPPED (find_checkpoints' depth)

SplitLoader = Callable[[str, str], "pd.DataFrame | None"]  # (folder, "test" | "val") -> split table


def group_key(group: pd.DataFrame, *parts) -> str:
    """Key of a result over a group's runs: their configs and outputs (content, in group order),
    the code that computes it and `parts`."""
    def files(folder):  # validation outputs are absent from older checkpoints
        return [name for name in (CONFIG, OUTPUTS, VAL_OUTPUTS) if (Path(folder) / name).exists()]

    return diskcache.content_key(diskcache.source_key(effects, effects.stats, runs_lib),
                                 [[n, diskcache.checkpoint_key(f, n)] for f in group["folder"] for n in files(f)],
                                 *parts)


def shipped_folders(group: pd.DataFrame) -> list[Path]:
    """The `.analysis` folders above the group's checkpoints, nearest first."""
    found = {}
    for folder in group["folder"]:
        for parent in Path(folder).parents[:SEARCH_DEPTH]:
            found.setdefault(parent / SHIPPED, None)
    return [folder for folder in found if folder.is_dir()]


def group_effects(group: pd.DataFrame, load: SplitLoader = runs_lib.load_split_table) -> pd.DataFrame:
    """`effects.effects_table` of one group's runs, read from disk when it was computed before."""
    return diskcache.cached_frame(EFFECTS, group_key(group), lambda: effects.effects_table(group, load),
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
    """Compute every group's effects and slice scores and write them to `<root>/.analysis/`,
    replacing what was there (results of older runs or code would never be read again)."""
    target = Path(root) / SHIPPED
    staging = Path(root) / f"{SHIPPED}.new"
    shutil.rmtree(staging, ignore_errors=True)
    for _, group in runs_lib.groups(runs):
        frame = group_effects(group)
        _write(staging / EFFECTS / f"{group_key(group)}.parquet", frame)
        for slicing, scores in group_slice_scores(group, slicings_of(frame)).items():
            _write(staging / SLICES / f"{group_key(group, slicing)}.parquet", scores)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


# --- command line: `python -m mmaux effects` -----------------------------------------------------

def add_effects_parser(commands):
    p = commands.add_parser("effects", help="estimate each group's auxiliary-loss effects; --store ships them",
                            description="Estimate the effects of ITC and ITM in every group of checkpoints under "
                                        "ROOT (as the home page does) and print how many are supported. With "
                                        f"--store, also write them to ROOT/{SHIPPED}/, so that the dashboard "
                                        "reads them instead of recomputing them on a fresh clone.")
    p.add_argument("root", help="checkpoint root (e.g. checkpoints)")
    p.add_argument("--store", action="store_true", help=f"write the results to ROOT/{SHIPPED}/ (replaced)")
    p.set_defaults(func=_run_effects)


def _run_effects(args) -> int:
    runs = runs_lib.usable(runs_lib.discover_runs([args.root]))
    if runs.empty:
        raise FileNotFoundError(f"no usable checkpoints under {args.root}")
    for key, group in runs_lib.groups(runs):
        frame = group_effects(group)
        supported = int((frame["verdict"] == "supported").sum())
        print(f"{runs_lib.group_name(key)}: {len(group)} runs, {len(frame)} effects, {supported} supported")
    if args.store:
        try:
            print(f"stored in {store(runs, args.root)}")
        except OSError as err:
            raise ValueError(f"cannot write {Path(args.root) / SHIPPED}: {err.strerror or err}; "
                             "store into a writable copy of the checkpoints") from err
    return 0
