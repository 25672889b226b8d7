"""Simulated groups of runs with known answers, for calibrating the effects procedure and the
claims' contrasts (`bench/effects_calibration.py`, `tests/test_claims.py`).

A group has the four loss variants × S training seeds and a test and a validation split of
posts with SynthPosts' slice columns (evidence, image_adds, text_represented, relation), drawn
independently of the 3-class label. Run (variant v, seed s) answers post i right when its latent

    BASE + √0.55·z_i + √0.10·w_si + √0.35·ε_vsi + r_vs + c_vs[y_i] + e_vs[relation_i] + f_vs[evidence_i] + δ_v,i

is above 0, else a random wrong class: z is the post's difficulty (shared by every run), w a
post × seed term shared by the runs of one seed (what pairing by seed removes), ε the run's own
noise; r, c, e, f are the run's luck as a whole, per class and per slice, which is what differs
between training seeds, the same on test and validation because validation is scored by the
same models. δ is a planted effect of one variant, on every post or on one slice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmaux.analysis import claims, effects, stats
from mmaux.analysis.runs import VARIANTS
from mmaux.data import synthposts

CLASSES, POSTS = 3, 1000  # classes; posts per split
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
    """Posts with SynthPosts' slice columns, drawn independently of the label."""
    y = rng.integers(0, CLASSES, posts)
    evidence = np.array(synthposts.EVIDENCE)[rng.choice(4, posts, p=synthposts.EVIDENCE_P)]
    image_adds = np.isin(evidence, ("image_only", "both_conflict"))
    text_represented = rng.random(posts) < 0.5
    return pd.DataFrame({"post_id": [f"p{i}" for i in range(posts)], "label_index": y,
                         "label": np.array(["neg", "neu", "pos"])[y], "evidence": evidence, "image_adds": image_adds,
                         "text_represented": text_represented,
                         "relation": [synthposts.relation_name(a, t) for a, t in zip(image_adds, text_represented)]})


def simulate_group(rng, regime: Regime, seeds: int, planted: float = 0.0, posts: int = POSTS,
                   where: str | None = None):
    """(test, val) SplitPredictions of one simulated group; `planted` is δ of the PLANTED variant,
    on every post or only where the boolean column `where` is true."""
    luck = {(v, s): (rng.normal(0, regime.run_sd), rng.normal(0, regime.class_sd, CLASSES),
                     rng.normal(0, regime.slice_sd, 4), rng.normal(0, regime.slice_sd, 4))
            for v in VARIANTS for s in range(seeds)}  # the trained model: shared by both splits
    splits = []
    for _ in ("test", "val"):
        frame = _split(rng, posts)
        y = frame["label_index"].to_numpy()
        rel = pd.Index(synthposts.TASKS["relation"]).get_indexer(frame["relation"])
        evi = pd.Index(synthposts.EVIDENCE).get_indexer(frame["evidence"])
        boost = planted * (frame[where].to_numpy() if where else 1.0)
        z = rng.normal(0, 1, posts)
        w = rng.normal(0, 1, (seeds, posts))
        preds = {}
        for (v, s), (r, c, e, f) in luck.items():
            latent = (BASE + np.sqrt(RHO_POST) * z + np.sqrt(RHO_SEED) * w[s]
                      + np.sqrt(1 - RHO_POST - RHO_SEED) * rng.normal(0, 1, posts)
                      + r + c[y] + e[rel] + f[evi] + (boost if v == PLANTED else 0.0))
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


CLAIM_ROW = ("ITC helps where the image adds meaning", PLANTED, "image_adds")


def true_contrast(regime: Regime, planted: float, seeds: int = 40, posts: int = 40_000) -> float:
    """E[Δ(image_adds) − Δ(not image_adds)] of PLANTED in points, by one large simulation."""
    test, _ = simulate_group(np.random.default_rng(98), regime, seeds, planted, posts, where="image_adds")
    return float(claims.split_contrasts(test).set_index(["claim", "effect", "slicing"]).loc[CLAIM_ROW, "delta"])


