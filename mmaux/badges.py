"""Caveat badges: the facts a reader needs beside a checkpoint's numbers before trusting them.

Per checkpoint (checked once, cached on disk by checkpoint content and library version):
- "ITC projection untrained": trained without ITC, its ITC space is random weights
  (`analysis.spaces`), so no ITC number of it means anything;
- "ITM head at chance (AUROC …)": its ITM head tells true from shuffled test pairs no better
  than `CHANCE_AUROC`;
- "predictions identical to CE": the auxiliary variant predicts exactly what the CE run of the
  same seed does, so every comparison with it reads 0;
- "stored and live predictions differ on x % of posts": the model as the library loads it now
  does not reproduce the test outputs stored with the checkpoint (the pages read the stored ones).
Per post: "borderline flip (|Δp| < 0.05)": two checkpoints disagree, but by a hair.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import mmaux
from mmaux.analysis.alignment import match_auroc
from mmaux.analysis.diskcache import cached_arrays, checkpoint_key, content_key
from mmaux.checkpoint import CONFIG, OUTPUTS, WEIGHTS

CHANCE_AUROC = 0.6  # an ITM head whose true-vs-shuffled AUROC is below this is "at chance"
BORDERLINE = 0.05  # a flip whose change of the gold label's probability is smaller is "borderline"


@dataclass(frozen=True)
class Badge:
    text: str
    help: str
    colour: str = "orange"

    def markdown(self) -> str:
        return f":{self.colour}-badge[⚠ {self.text}]"


def untrained_itc(itc_in_variant: bool, itc_trained: bool) -> Badge | None:
    """Only where the variant's name says ITC but the projections were not trained (ITC weight 0):
    a CE or CE+ITM run says by its name that it has no ITC, and a badge would repeat it."""
    if itc_trained or not itc_in_variant:
        return None
    return Badge("ITC projection untrained", "Trained with ITC at weight 0: its ITC projections are random weights, "
                                             "so its ITC cosine and ITC embedding numbers describe nothing it learned.")


def itm_at_chance(auroc: float | None) -> Badge | None:
    if auroc is None or auroc >= CHANCE_AUROC:
        return None
    return Badge(f"ITM head at chance (AUROC {auroc:.2f})",
                 f"Its ITM head tells the test posts' true image-text pairs from shuffled ones with an AUROC of "
                 f"{auroc:.2f} (chance 0.5; badge below {CHANCE_AUROC}): its match scores carry little.", "red")


def identical_to_ce(preds: np.ndarray, ce_preds: np.ndarray | None) -> Badge | None:
    if ce_preds is None or len(preds) != len(ce_preds) or not np.array_equal(preds, ce_preds):
        return None
    return Badge("predictions identical to CE", "It predicts exactly what the CE run of the same seed predicts on "
                                                 "every test post: the auxiliary loss changed no answer.", "gray")


def live_mismatch(share: float | None) -> Badge | None:
    if share is None or share == 0:
        return None
    return Badge(f"stored and live predictions differ on {100 * share:.1f} % of posts",
                 "The model as this version of mmaux loads it predicts otherwise than the test outputs stored with "
                 "the checkpoint on that share of test posts. The tables show the stored outputs; live views "
                 "(attributions, your post) run the model. Rebuild the checkpoint to make them agree.", "red")


def borderline_flip(delta_p: float, flipped: bool) -> Badge | None:
    if not flipped or abs(delta_p) >= BORDERLINE:
        return None
    return Badge(f"borderline flip (|Δp| < {BORDERLINE})", f"The two checkpoints disagree, but the probability of "
                                                           f"the gold label moved by only {delta_p:+.3f}.", "gray")


# --- the checks that run the model ---------------------------------------------------------------

@torch.no_grad()
def live_predictions(model, inputs, batch_size: int = 256) -> np.ndarray:
    """The predicted class of every post of `inputs` (a `features.PostInputs`), run now."""
    model.eval()
    return np.concatenate([model(batch).logits.argmax(-1).numpy() for batch in inputs.batches(batch_size)])


def _key(folder: str | Path, post_ids) -> str:
    return content_key(checkpoint_key(folder, CONFIG, WEIGHTS, OUTPUTS), mmaux.__version__,
                       [str(p) for p in post_ids])


def cached_live_predictions(folder: str | Path, post_ids, load) -> np.ndarray:
    """`live_predictions` of the checkpoint's test posts, stored on disk per checkpoint content
    and library version. `load()` gives (model, inputs) and is called only on a cache miss, so a
    checked checkpoint costs no model load."""
    def compute():
        model, inputs = load()
        return {"pred": live_predictions(model, inputs)}

    return cached_arrays("live-predictions", _key(folder, post_ids), compute)["pred"]


def cached_itm_auroc(folder: str | Path, post_ids, load) -> float:
    """The ITM head's AUROC of true vs shuffled test pairs, from `matching.cached_true_and_shuffled`
    (stored on disk per checkpoint; `load()` gives (model, inputs) on a miss)."""
    from mmaux.analysis import matching

    true, shuffled = matching.cached_true_and_shuffled(folder, post_ids, load)
    return match_auroc(true.values, shuffled.values)
