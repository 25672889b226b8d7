"""How long the command line takes to answer: `--help`, a command's `--help`, `--version` and a
refused argument, each in a fresh process (what a user waits for), median of --runs.

    .venv/bin/python bench/cli_speed.py [--runs 5] [--repo DIR]

--repo times the `mmaux` package of another checkout (e.g. a worktree of an older commit) with the
same interpreter, so two versions are compared on one machine in one run. Last line:
`cli_help_median_s=… cli_worst_median_s=…`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {  # what the user types after `mmaux`
    "--help": ["--help"],
    "train --help": ["train", "--help"],
    "import predictions --help": ["import", "predictions", "--help"],
    "--version": ["--version"],
    "train --arch nope (refused)": ["train", "--arch", "nope"],
}


def timed(argv: list[str], repo: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mmaux", *argv], cwd=repo, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(repo)}, check=False)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per case (median reported)")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent),
                        help="the checkout whose mmaux is timed")
    args = parser.parse_args(argv)
    repo = Path(args.repo).resolve()
    print(f"{repo}; load average {os.getloadavg()[0]:.2f} before")
    medians = {}
    for name, case in CASES.items():
        timed(case, repo)  # warm the file cache
        times = [timed(case, repo) for _ in range(args.runs)]
        medians[name] = statistics.median(times)
        print(f"  mmaux {name:32s} median {medians[name]:.2f} s (min {min(times):.2f}, max {max(times):.2f})")
    print(f"load average {os.getloadavg()[0]:.2f} after")
    print(f"cli_help_median_s={medians['--help']:.2f} cli_worst_median_s={max(medians.values()):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
