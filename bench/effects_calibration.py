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

Two more parts check the verdicts built on top of those contrasts:
- `--part pooled`: studies of `--study-groups` simulated groups (the shipped set has five), each
  group's claim contrasts pooled per claim (`claims.pooled`: random effects, Knapp–Hartung).
  Printed: studies with a pooled "supported" under the null, the pooled 95 % CI's coverage and
  the power for a contrast planted in every group, "differs by group" under a homogeneous
  planted contrast (its false rate, about `claims.HET_LEVEL`) and when only some groups carry it
  (its power), and a false "equivalent" when the margin is set to the true pooled contrast.
- `--part equivalence`: single groups through `effects.group_effects` and `claims.group_contrasts`
  with the margin set to the true size of a planted effect (or contrast), so that "equivalent"
  would be a false verdict: its rate must stay ≤ 0.05; and how often a null effect on all posts
  is called equivalent at the default ±3 points (the test's power).

    python bench/effects_calibration.py                # 100 groups per cell (≈ 30 min on 2 cores)
    python bench/effects_calibration.py --groups 40    # a quick look
    python bench/effects_calibration.py --part pooled --groups 100 --seeds 5,20
    python bench/effects_calibration.py --part equivalence --groups 100 --seeds 5,20
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
            y_all = split.posts["label_index"].to_numpy()
            used, fn, scored, averaged = stats.slice_scoring(y_all, mask, "macro_f1", CLASSES)
            y = y_all[scored]
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


def _study(rng, regime: Regime, seeds: int, groups: int, planted: float, carrying: int, margin: float):
    """Claim contrasts of `groups` simulated groups, the first `carrying` with PLANTED's effect on
    image_adds posts, as one frame with a family per group, and their pooling at `margin`."""
    frames = []
    for g in range(groups):
        delta = planted if g < carrying else 0.0
        frame = claims.group_contrasts(*simulate_group(rng, regime, seeds, delta, where="image_adds"),
                                       family=f"group {g}", margin=margin)
        frames.append(frame.assign(dataset="sim", task="sim", architecture=f"g{g}"))
    return claims.pooled(pd.concat(frames, ignore_index=True), margin=margin).set_index("claim")


def run_pooled(args) -> None:
    print(f"\nEach claim pooled over {args.study_groups} groups (`claims.pooled`), {args.groups} studies per cell:\n")
    print("| regime | seeds | null studies with a pooled 'supported' | 95 % CI covers (planted) | power, planted in "
          "every group | 'differs by group', homogeneous | 'differs by group', planted in 2 groups | false "
          "'equivalent' (margin = truth) |")
    print("|---|---|---|---|---|---|---|---|")
    worst = dict(pooled_false_supported=0.0, pooled_false_equivalent=0.0)
    itc = claims.ITC_CLAIM.name
    for regime in (r for r in REGIMES if r.name in args.regimes.split(",")):
        truth = true_contrast(regime, args.planted_contrast)
        for seeds in (int(s) for s in args.seeds.split(",")):
            rng = np.random.default_rng([seeds, REGIMES.index(regime), 11])
            tally = dict(false=0, covered=0, found=0, het_false=0, het_found=0, equiv=0)
            k = args.study_groups
            for _ in range(args.groups):
                null = _study(rng, regime, seeds, k, 0.0, 0, effects.MARGIN)
                tally["false"] += (null["verdict"] == effects.SUPPORTED).any()
                planted = _study(rng, regime, seeds, k, args.planted_contrast, k, truth).loc[itc]
                tally["found"] += planted["verdict"] == effects.SUPPORTED and planted["direction"] == claims.AS_CLAIMED
                low, high = stats.Estimate(planted["delta"], planted["se"], planted["df"], k, 1).interval(0.95)
                tally["covered"] += low <= truth <= high
                tally["het_false"] += planted["heterogeneity"] == claims.DIFFERS
                tally["equiv"] += planted["verdict"] == effects.EQUIVALENT
                some = _study(rng, regime, seeds, k, 2 * args.planted_contrast, 2, effects.MARGIN).loc[itc]
                tally["het_found"] += some["heterogeneity"] == claims.DIFFERS
            r = {key: value / args.groups for key, value in tally.items()}
            print(f"| {regime.name} | {seeds} | {r['false']:.3f} | {100 * r['covered']:.1f} % | {r['found']:.2f} "
                  f"(+{truth:.1f}) | {r['het_false']:.2f} | {r['het_found']:.2f} | {r['equiv']:.3f} |", flush=True)
            worst["pooled_false_supported"] = max(worst["pooled_false_supported"], r["false"])
            worst["pooled_false_equivalent"] = max(worst["pooled_false_equivalent"], r["equiv"])
    print(" ".join(f"{k}={v:.3f}" for k, v in worst.items()))


def run_equivalence(args) -> None:
    print(f"\nEquivalence (the corrected CI within the margin), {args.groups} groups per cell:\n")
    print("| regime | seeds | false 'equivalent': effect, margin = its true size | false 'equivalent': claim "
          "contrast, margin = its true size | null effects on all posts called equivalent at ±3 |")
    print("|---|---|---|---|---|")
    worst = dict(effect_false_equivalent=0.0, contrast_false_equivalent=0.0)
    for regime in (r for r in REGIMES if r.name in args.regimes.split(",")):
        truth, contrast_truth = true_delta(regime, args.planted), true_contrast(regime, args.planted_contrast)
        for seeds in (int(s) for s in args.seeds.split(",")):
            rng = np.random.default_rng([seeds, REGIMES.index(regime), 13])
            effect_false = contrast_false = null_equivalent = null_effects = 0
            for _ in range(args.groups):
                frame = effects.group_effects(*simulate_group(rng, regime, seeds, args.planted),
                                              slicings=("relation", "evidence", "label"), margin=truth)
                row = frame.set_index(["effect", "slicing"]).loc[(PLANTED, effects.OVERALL)]
                effect_false += row["verdict"] == effects.EQUIVALENT
                table = claims.group_contrasts(*simulate_group(rng, regime, seeds, args.planted_contrast,
                                                               where="image_adds"), margin=contrast_truth)
                contrast_false += table.set_index(["claim", "effect", "slicing"]).loc[CLAIM_ROW, "verdict"] == \
                    effects.EQUIVALENT
                null = effects.group_effects(*simulate_group(rng, regime, seeds), slicings=("relation", "evidence",
                                                                                            "label"))
                overall = null[(null["slicing"] == effects.OVERALL) & (null["kind"] == effects.VS_CE)]
                null_equivalent += (overall["verdict"] == effects.EQUIVALENT).sum()
                null_effects += len(overall)
            r = dict(effect=effect_false / args.groups, contrast=contrast_false / args.groups)
            print(f"| {regime.name} | {seeds} | {r['effect']:.3f} (margin {truth:.1f}) | {r['contrast']:.3f} "
                  f"(margin {contrast_truth:.1f}) | {null_equivalent / null_effects:.2f} |", flush=True)
            worst["effect_false_equivalent"] = max(worst["effect_false_equivalent"], r["effect"])
            worst["contrast_false_equivalent"] = max(worst["contrast_false_equivalent"], r["contrast"])
    print(" ".join(f"{k}={v:.3f}" for k, v in worst.items()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=100, help="simulated groups per cell (null and planted each)")
    parser.add_argument("--seeds", default="3,5")
    parser.add_argument("--planted", type=float, default=0.10, help="δ of the planted CE+ITC effect (latent units)")
    parser.add_argument("--no-comparator", action="store_true", help="the procedure alone (e.g. an older one)")
    parser.add_argument("--part", choices=("effects", "claims", "both", "pooled", "equivalence"), default="both")
    parser.add_argument("--study-groups", type=int, default=5, help="groups pooled in one study (--part pooled)")
    parser.add_argument("--regimes", default=",".join(r.name for r in REGIMES), help="comma-separated regime names")
    parser.add_argument("--planted-contrast", type=float, default=0.165,
                        help="δ of CE+ITC on image_adds posts only (latent units; ≈ a 5-point contrast)")
    args = parser.parse_args(argv)
    start = time.time()
    parts = {"claims": run_claims, "pooled": run_pooled, "equivalence": run_equivalence}
    if args.part in parts:
        parts[args.part](args)
        print(f"{args.groups} groups (studies) per cell, {time.time() - start:.0f} s")
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
