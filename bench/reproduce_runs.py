"""Can the shipped predictions-only runs be made again? One run per group, retrained and compared.

Seeds 5-19 of the shipped groups are stored without weights (`"weights": false`): their
predictions count in every statistic, so anyone must be able to train them again and get the
same outputs. For each group under the roots (default: the shipped checkpoints/), this picks one
predictions-only run (seeded, so the same one each time unless --pick-seed changes it), trains it
again from its config.json with `mmaux.reproduce` (its recorded thread count, one by default:
run it alone) into a temporary folder, and compares every test and validation prediction and
class probability with the stored ones.

    .venv/bin/python bench/reproduce_runs.py [--root checkpoints] [--groups 2] [--pick-seed 0]

Last line: `reproduced=K/N identical=K/N`; exit status 1 when a run differs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from mmaux.analysis import runs as runs_lib  # noqa: E402
from mmaux.paths import DEFAULT_CHECKPOINTS  # noqa: E402
from mmaux.reproduce import reproduce  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", action="append", help=f"checkpoint root (default {DEFAULT_CHECKPOINTS})")
    parser.add_argument("--groups", type=int, default=0, help="only the first N groups (0: all)")
    parser.add_argument("--pick-seed", type=int, default=0, help="seed of the random choice of run per group")
    args = parser.parse_args(argv)
    runs = runs_lib.usable(runs_lib.discover_runs(args.root or [DEFAULT_CHECKPOINTS]))
    picks = []
    for key, group in runs_lib.groups(runs[~runs["weights"].astype(bool)]):
        rng = np.random.default_rng([args.pick_seed, len(picks)])
        picks.append((key, group.iloc[int(rng.integers(len(group)))]))
    picks = picks[:args.groups or None]
    if not picks:
        print("no predictions-only runs under the roots")
        return 1
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    identical = 0
    for key, run in picks:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="mmaux-reproduce-") as tmp:
            comparisons = reproduce(run["folder"], Path(tmp) / "run", save_weights=False)
        same = all(c.identical for c in comparisons)
        identical += same
        print(f"{runs_lib.group_name(key)} · {run['variant']} · seed {run['seed']} "
              f"({time.perf_counter() - started:.0f} s): " + "; ".join(c.line() for c in comparisons))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"reproduced={len(picks)}/{len(picks)} identical={identical}/{len(picks)}")
    return 0 if identical == len(picks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
