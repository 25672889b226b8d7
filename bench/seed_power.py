"""What the shipped design can see: seeds per arm, the a priori detectable effect, and the verdicts.

For the checkpoints under the roots (default: the shipped checkpoints/), with all their seeds or
only seeds up to --max-seed (`--max-seed 4` gives the five-seed design from the same runs):

- runs per group × variant, and how many keep their weights;
- the a priori "would detect": the smallest effect a paired t over the seeds detects with 80 %
  power at the first Benjamini–Hochberg level of its group's family (α / family size; the
  definition `mmaux power` uses), over every group × effect row on all posts and over every
  claim contrast: median and range;
- the effects supported and the claim verdicts.

    .venv/bin/python bench/seed_power.py [--root checkpoints] [--max-seed 4] [--list]

Last line: `seeds=… detect_median=… detect_min=… detect_max=… claims_detect_median=…
supported=K/N claims_supported=K/N`. The estimates are the dashboard's own (`report.results`: read
from the roots' .analysis/ or the cache when computed before, else computed and cached).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from mmaux import report  # noqa: E402
from mmaux.analysis import claims, effects  # noqa: E402
from mmaux.analysis import runs as runs_lib  # noqa: E402
from mmaux.paths import DEFAULT_CHECKPOINTS  # noqa: E402


def spread(values: pd.Series) -> str:
    return f"median {values.median():.1f} (range {values.min():.1f}–{values.max():.1f}) over {len(values)} rows"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", action="append", help=f"checkpoint root (default {DEFAULT_CHECKPOINTS})")
    parser.add_argument("--max-seed", type=int, help="only seeds up to this one (e.g. 4: the five-seed design)")
    parser.add_argument("--list", action="store_true", help="print every supported effect and every claim verdict")
    args = parser.parse_args(argv)
    runs = runs_lib.usable(runs_lib.discover_runs(args.root or [DEFAULT_CHECKPOINTS]))
    if args.max_seed is not None:
        runs = runs[runs["seed"] <= args.max_seed].reset_index(drop=True)
    arms = runs.groupby([*runs_lib.GROUP_COLUMNS, "variant"]).agg(runs=("seed", "size"),
                                                                 with_weights=("weights", "sum"))
    print("runs per group × variant (with weights):")
    for (dataset, task, arch, variant), row in arms.iterrows():
        print(f"  {dataset} · {task} · {arch} · {variant}: {row['runs']} ({row['with_weights']})")
    effect_frame, claim_frame = report.results(runs)
    overall = effect_frame[effect_frame["slicing"] == effects.OVERALL]
    detect = overall["detectable"]  # a priori: 80 % power at α / family size (`effects.decide`)
    claim_detect = claim_frame["detectable"]
    print(f"would detect (α/m, 80 % power), effects on all posts: {spread(detect)}")
    print(f"would detect (α/m, 80 % power), claim contrasts: {spread(claim_detect)}")
    supported = effect_frame[effect_frame["verdict"] == effects.SUPPORTED]
    print(f"effects: {len(supported)} of {len(effect_frame)} supported; "
          + ", ".join(f"{v} {n}" for v, n in effect_frame["verdict"].value_counts().items()))
    words = pd.Series([claims.verdict_text(r) for r in claim_frame.itertuples()])
    print("claim contrasts: " + ", ".join(f"{v} {n}" for v, n in words.value_counts().items()))
    if args.list:
        for row in supported.itertuples():
            print(f"  supported: {row.task} · {row.architecture} | {row.effect} | {row.slicing} = {row.slice} | "
                  f"Δ {row.delta:+.1f} [{row.ci_low:+.1f}, {row.ci_high:+.1f}] | val {row.val_delta:+.1f}")
        for row, a_priori in zip(claim_frame.itertuples(), claim_detect):
            print(f"  claim: {row.task} · {row.architecture} | {row.claim} | {row.effect} | {row.slicing}: "
                  f"{row.slice_a} vs {row.slice_b} | contrast {row.delta:+.1f} [{row.ci_low:+.1f}, {row.ci_high:+.1f}] "
                  f"| {claims.verdict_text(row)} | would detect ≥ {a_priori:.1f}")
    seeds = sorted(set(runs["seed"]))
    print(f"seeds={len(seeds)} detect_median={detect.median():.1f} detect_min={detect.min():.1f} "
          f"detect_max={detect.max():.1f} claims_detect_median={claim_detect.median():.1f} "
          f"supported={len(supported)}/{len(effect_frame)} "
          f"claims_supported={int((claim_frame['verdict'] == effects.SUPPORTED).sum())}/{len(claim_frame)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
