"""Is the effects procedure calibrated? Simulated groups, with seed-to-seed model variance, run
through `effects.group_effects` itself, beside a plain comparator.

Groups come from `mmaux.analysis.simulate` (its docstring gives the model): four loss variants
× `--seeds` training seeds, 1000 test and 1000 validation posts, 3 classes, SynthPosts' slice
columns drawn independently of the label, and run-level luck (as a whole, per class, per
slice) that differs between training seeds and is shared by a run's test and validation
outputs. Regimes set that luck's spread: "calibrated" (per-seed Δ macro-F1 spread ≈ 1.6 points,
like the shipped groups), "seed-heavy" (≈ 3.3, like the shipped relation CE+ITM runs) and
"shipped-like" between them.

Printed per regime × seeds: the share of null groups with any "supported" effect (the family-wise
error the verdicts make), the share of null effects with raw p ≤ 0.05 (5 % for a valid test),
the 95 % interval's coverage of the true effect (null effects, and CE+ITC on all posts with a
planted effect), and the power to call a true +3-point effect on all posts "supported". The
comparator is a paired t over seeds (df = seeds − 1) of the same per-seed Δs, with the same BH
family and validation sign rule. Then the paper's claims (`claims.group_contrasts`, 8 contrasts
a family): null families with any "supported" contrast, and the power to find a contrast
planted on image_adds posts only. Last lines: key=value pairs of the worst cells.

    python bench/effects_calibration.py                # 100 groups per cell (≈ 30 min on 2 cores)
    python bench/effects_calibration.py --groups 40    # a quick look
"""
from __future__ import annotations

import argparse
import time
import numpy as np
import pandas as pd
from scipy import stats as sstats

from mmaux.analysis import claims, effects, simulate, stats
from mmaux.analysis.runs import VARIANTS

CLASSES = simulate.CLASSES
PLANTED = simulate.PLANTED
REGIMES = simulate.REGIMES
Regime = simulate.Regime
simulate_group, true_delta, true_contrast = simulate.simulate_group, simulate.true_delta, simulate.true_contrast
CLAIM_ROW = simulate.CLAIM_ROW


def comparator(test, val) -> pd.DataFrame:
    """Paired t over seeds (df = seeds − 1) of the per-seed Δs the procedure uses, same BH family
    and validation sign rule. Columns: effect, slicing, slice, delta, p, verdict, lo, hi (95 %)."""
    def per_seed(split):
        out = {}
        slicings = effects.distinct_slicings(split.posts, ("relation", "evidence", "label"))
        for slicing, value, mask in effects._slices(split.posts, slicings):
            used, fn, scored, averaged = effects._scoring(split.posts, slicing, mask, "macro_f1", CLASSES)
            y = split.posts["label_index"].to_numpy()[scored]
            seeds = split.seeds("CE")
            score = {v: np.array([stats._metric(fn)(*stats._encode(averaged, y, split.preds[v, s][scored]),
                                                    len(averaged))[0] for s in seeds]) for v in VARIANTS}
            for effect, (kind, weights) in effects.CONTRASTS.items():
                if kind == effects.DESIGN and slicing != effects.OVERALL:
                    continue
                out[effect, slicing, value] = 100 * sum(w * score[v] for v, w in weights.items())
        return out
    test_c, val_c = per_seed(test), per_seed(val)
    rows = []
    for key, c in test_c.items():
        se = c.std(ddof=1) / np.sqrt(c.size)
        p = 1.0 if se == 0 else 2 * sstats.t.sf(abs(c.mean()) / se, c.size - 1)
        half = sstats.t.ppf(0.975, c.size - 1) * se
        rows.append((*key, c.mean(), p, val_c[key].mean(), c.mean() - half, c.mean() + half))
    frame = pd.DataFrame(rows, columns=["effect", "slicing", "slice", "delta", "p", "val_delta", "lo", "hi"])
    frame["p_bh"] = stats.bh_adjust(frame["p"])
    agree = np.sign(frame["val_delta"]) == np.sign(frame["delta"])
    frame["verdict"] = np.where((frame["p_bh"] <= effects.ALPHA) & agree, effects.SUPPORTED, "")
    return frame


def procedure(test, val) -> pd.DataFrame:
    """The shipped procedure, with each row's unadjusted 95 % interval (lo, hi)."""
    frame = effects.group_effects(test, val, slicings=("relation", "evidence", "label"))
    bounds = [stats.Estimate(r.delta, r.se, r.df, r.seeds, r.n).interval(0.95) for r in frame.itertuples()]
    return frame.assign(lo=[b[0] for b in bounds], hi=[b[1] for b in bounds])


def cell(regime: Regime, seeds: int, groups: int, planted: float, truth: float, with_comparator: bool) -> dict:
    rng = np.random.default_rng([seeds, REGIMES.index(regime)])
    methods = {"procedure": procedure, **({"comparator": comparator} if with_comparator else {})}
    tallies = {m: dict(any_supported=0, raw05=0, effects=0, covered=0, found=0, covered_planted=0) for m in methods}
    spread = []
    for _ in range(groups):
        null = simulate_group(rng, regime, seeds)
        planted_group = simulate_group(rng, regime, seeds, planted)
        for name, method in methods.items():
            tally = tallies[name]
            frame = method(*null)
            tally["any_supported"] += (frame["verdict"] == effects.SUPPORTED).any()
            tally["raw05"] += (frame["p"] <= 0.05).sum()
            tally["effects"] += len(frame)
            tally["covered"] += ((frame["lo"] <= 0) & (0 <= frame["hi"])).sum()
            row = method(*planted_group).set_index(["effect", "slicing"]).loc[(PLANTED, effects.OVERALL)]
            tally["found"] += row["verdict"] == effects.SUPPORTED
            tally["covered_planted"] += row["lo"] <= truth <= row["hi"]
        y = null[0].posts["label_index"].to_numpy()
        per_seed = [stats.macro_f1(y, null[0].preds[PLANTED, s], range(CLASSES))
                    - stats.macro_f1(y, null[0].preds["CE", s], range(CLASSES)) for s in range(seeds)]
        spread.append(100 * np.std(per_seed, ddof=1))
    return {name: dict(null_fwer=t["any_supported"] / groups, raw_p05=t["raw05"] / t["effects"],
                       coverage_null=t["covered"] / t["effects"], coverage_planted=t["covered_planted"] / groups,
                       power=t["found"] / groups) for name, t in tallies.items()} | {"spread": float(np.median(spread))}


def claims_cell(regime: Regime, seeds: int, groups: int, planted: float, truth: float) -> dict:
    """The claims' families under the null and with PLANTED's effect on image_adds posts only."""
    rng = np.random.default_rng([seeds, REGIMES.index(regime), 7])
    any_supported = raw05 = tests = found = covered = 0
    for _ in range(groups):
        null = claims.group_contrasts(*simulate_group(rng, regime, seeds))
        any_supported += (null["verdict"] == effects.SUPPORTED).any()
        raw05 += (null["p"] <= 0.05).sum()
        tests += len(null)
        planted_frame = claims.group_contrasts(*simulate_group(rng, regime, seeds, planted, where="image_adds"))
        row = planted_frame.set_index(["claim", "effect", "slicing"]).loc[CLAIM_ROW]
        found += row["verdict"] == effects.SUPPORTED and row["direction"] == claims.AS_CLAIMED
        low, high = stats.Estimate(row["delta"], row["se"], row["df"], row["seeds"], row["n"]).interval(0.95)
        covered += low <= truth <= high
    return dict(null_fwer=any_supported / groups, raw_p05=raw05 / tests, coverage_planted=covered / groups,
                power=found / groups)


def run_claims(args) -> None:
    print("\nThe paper's claims (contrasts between slices; 8 a family):\n")
    print("| regime | seeds | null families with ≥ 1 supported | null p ≤ 0.05 | 95 % CI covers (planted) | "
          "power, true contrast |")
    print("|---|---|---|---|---|---|")
    worst = dict(claims_fwer=0.0, claims_power_5seeds=1.0)
    for regime in (r for r in REGIMES if r.name in args.regimes.split(",")):
        truth = true_contrast(regime, args.planted_contrast)
        for seeds in (int(s) for s in args.seeds.split(",")):
            r = claims_cell(regime, seeds, args.groups, args.planted_contrast, truth)
            print(f"| {regime.name} | {seeds} | {r['null_fwer']:.3f} | {100 * r['raw_p05']:.1f} % | "
                  f"{100 * r['coverage_planted']:.1f} % | {r['power']:.2f} (+{truth:.1f}) |", flush=True)
            worst["claims_fwer"] = max(worst["claims_fwer"], r["null_fwer"])
            if seeds == 5:
                worst["claims_power_5seeds"] = min(worst["claims_power_5seeds"], r["power"])
    print(" ".join(f"{k}={v:.3f}" for k, v in worst.items()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=100, help="simulated groups per cell (null and planted each)")
    parser.add_argument("--seeds", default="3,5")
    parser.add_argument("--planted", type=float, default=0.10, help="δ of the planted CE+ITC effect (latent units)")
    parser.add_argument("--no-comparator", action="store_true", help="the procedure alone (e.g. an older one)")
    parser.add_argument("--part", choices=("effects", "claims", "both"), default="both")
    parser.add_argument("--regimes", default=",".join(r.name for r in REGIMES), help="comma-separated regime names")
    parser.add_argument("--planted-contrast", type=float, default=0.165,
                        help="δ of CE+ITC on image_adds posts only (latent units; ≈ a 5-point contrast)")
    args = parser.parse_args(argv)
    start = time.time()
    if args.part == "claims":
        run_claims(args)
        print(f"{args.groups} groups per cell, {time.time() - start:.0f} s")
        return
    print("| regime | seeds | per-seed Δ spread | method | null groups with ≥ 1 supported | null p ≤ 0.05 | "
          "95 % CI covers (null) | covers (planted) | power, true +Δ |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = dict(fwer=0.0, p05_low=1.0, p05_high=0.0, cover_low=1.0, cover_high=0.0)
    for regime in (r for r in REGIMES if r.name in args.regimes.split(",")):
        truth = true_delta(regime, args.planted)
        for seeds in (int(s) for s in args.seeds.split(",")):
            result = cell(regime, seeds, args.groups, args.planted, truth, not args.no_comparator)
            for name in ("procedure", "comparator"):
                if name not in result:
                    continue
                r = result[name]
                print(f"| {regime.name} | {seeds} | {result['spread']:.1f} | {name} | {r['null_fwer']:.3f} | "
                      f"{100 * r['raw_p05']:.1f} % | {100 * r['coverage_null']:.1f} % | "
                      f"{100 * r['coverage_planted']:.1f} % | {r['power']:.2f} (+{truth:.1f}) |", flush=True)
                if name == "procedure":
                    worst = dict(fwer=max(worst["fwer"], r["null_fwer"]), p05_low=min(worst["p05_low"], r["raw_p05"]),
                                 p05_high=max(worst["p05_high"], r["raw_p05"]),
                                 cover_low=min(worst["cover_low"], r["coverage_null"], r["coverage_planted"]),
                                 cover_high=max(worst["cover_high"], r["coverage_null"], r["coverage_planted"]))
    print(" ".join(f"calib_{k}={v:.3f}" for k, v in worst.items()))
    if args.part == "both":
        run_claims(args)
    print(f"{args.groups} groups per cell, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
