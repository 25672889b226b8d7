"""Is the effects procedure calibrated? Simulated groups, with seed-to-seed model variance, run
through `effects.group_effects` itself, beside a plain comparator.

A simulated group has the four loss variants × `--seeds` training seeds, 1000 test and 1000
validation posts, 3 classes, and two slicings (`relation`, `evidence`: 4 values each, drawn
independently of the label), so with the gold label its family holds 3 × (1 + 4 + 4 + 3) + 3 = 39
effects. Run (variant v, seed s) answers post i right when its latent

    base + √0.55·z_i + √0.10·w_si + √0.35·ε_vsi + r_vs + c_vs[y_i] + e_vs[relation_i] + f_vs[evidence_i] + δ_v

is above 0, else a random wrong class: z is the post's difficulty (shared by every run), w a
post × seed term shared by the runs of one seed (what pairing by seed removes), ε the run's own
noise; r, c, e, f are the run's luck as a whole, per class and per slice (what differs between
training seeds), the same on test and validation because validation is scored by the same
models. δ is a planted effect. Regimes set the run-level spread: "calibrated" (per-seed Δ
macro-F1 spread ≈ 1.6 points, like the shipped groups), "seed-heavy" (≈ 3.3, like the shipped
relation CE+ITM runs) and "shipped-like" between them.

Printed per regime × seeds: the share of null groups with any "supported" effect (the family-wise
error the verdicts make), the share of null effects with raw p ≤ 0.05 (5 % for a valid test),
the 95 % interval's coverage of the true effect (null effects, and CE+ITC on all posts with a
planted effect), and the power to call a true +3-point effect on all posts "supported". The
comparator is a paired t over seeds (df = seeds − 1) of the same per-seed Δs, with the same BH
family and validation sign rule. Last line: key=value pairs of the worst cells.

    python bench/effects_calibration.py                # 100 groups per cell (≈ 30 min on 2 cores)
    python bench/effects_calibration.py --groups 40    # a quick look
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sstats

from mmaux.analysis import effects, stats
from mmaux.analysis.runs import VARIANTS

CLASSES, POSTS = 3, 1000
RHO_POST, RHO_SEED = 0.55, 0.10
BASE = 0.67  # about 75 % of posts answered right
PLANTED = "CE+ITC"


@dataclass(frozen=True)
class Regime:
    name: str
    run_sd: float  # a run's luck as a whole
    class_sd: float  # ... per gold class
    slice_sd: float  # ... per slice value


REGIMES = (Regime("calibrated", 0.012, 0.012, 0.012), Regime("shipped-like", 0.03, 0.03, 0.03),
           Regime("seed-heavy", 0.05, 0.05, 0.05))


def _split(rng, posts: int) -> pd.DataFrame:
    y = rng.integers(0, CLASSES, posts)
    return pd.DataFrame({"post_id": [f"p{i}" for i in range(posts)], "label_index": y,
                         "label": np.array(["neg", "neu", "pos"])[y],
                         "relation": rng.choice(list("ABCD"), posts), "evidence": rng.choice(list("WXYZ"), posts)})


def simulate_group(rng, regime: Regime, seeds: int, planted: float = 0.0, posts: int = POSTS):
    """(test, val) SplitPredictions of one simulated group; `planted` is δ of the PLANTED variant."""
    luck = {(v, s): (rng.normal(0, regime.run_sd), rng.normal(0, regime.class_sd, CLASSES),
                     rng.normal(0, regime.slice_sd, 4), rng.normal(0, regime.slice_sd, 4))
            for v in VARIANTS for s in range(seeds)}  # the trained model: shared by both splits
    splits = []
    for _ in ("test", "val"):
        frame = _split(rng, posts)
        y = frame["label_index"].to_numpy()
        rel = frame["relation"].map("ABCD".index).to_numpy()
        evi = frame["evidence"].map("WXYZ".index).to_numpy()
        z = rng.normal(0, 1, posts)
        w = rng.normal(0, 1, (seeds, posts))
        preds = {}
        for (v, s), (r, c, e, f) in luck.items():
            latent = (BASE + np.sqrt(RHO_POST) * z + np.sqrt(RHO_SEED) * w[s]
                      + np.sqrt(1 - RHO_POST - RHO_SEED) * rng.normal(0, 1, posts)
                      + r + c[y] + e[rel] + f[evi] + (planted if v == PLANTED else 0.0))
            wrong = (y + rng.integers(1, CLASSES, posts)) % CLASSES
            preds[v, s] = np.where(latent > 0, y, wrong)
        splits.append(effects.SplitPredictions(frame, preds, ("neg", "neu", "pos")))
    return splits


def true_delta(regime: Regime, planted: float, seeds: int = 60, posts: int = 50_000) -> float:
    """E[macro-F1(PLANTED) − macro-F1(CE)] in points, by one large simulation."""
    rng = np.random.default_rng(99)
    test, _ = simulate_group(rng, regime, seeds, planted, posts)
    y = test.posts["label_index"].to_numpy()
    score = lambda v: np.mean([stats.macro_f1(y, test.preds[v, s], range(CLASSES)) for s in range(seeds)])  # noqa: E731
    return 100 * (score(PLANTED) - score("CE"))


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=100, help="simulated groups per cell (null and planted each)")
    parser.add_argument("--seeds", default="3,5")
    parser.add_argument("--planted", type=float, default=0.10, help="δ of the planted CE+ITC effect (latent units)")
    parser.add_argument("--no-comparator", action="store_true", help="the procedure alone (e.g. an older one)")
    args = parser.parse_args(argv)
    start = time.time()
    print("| regime | seeds | per-seed Δ spread | method | null groups with ≥ 1 supported | null p ≤ 0.05 | "
          "95 % CI covers (null) | covers (planted) | power, true +Δ |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = dict(fwer=0.0, p05_low=1.0, p05_high=0.0, cover_low=1.0, cover_high=0.0)
    for regime in REGIMES:
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
    print(f"{args.groups} groups per cell, {time.time() - start:.0f} s")
    print(" ".join(f"calib_{k}={v:.3f}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
