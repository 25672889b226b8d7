"""Which claim rows a group can test at all.

"ITM helps where image and text are loosely related" asks what the ITM loss did to the
classifier. Two things make that unanswerable in a group, whatever the number of seeds:
- the loss cannot reach the parameters the classifier uses (`metrics.json`'s
  `aux_reaches_classifier`, recorded by the gradient-path check at training time), so "with" and
  "without" cannot differ;
- the ITM head never learned to match: its AUROC of true against shuffled test pairs, averaged
  over the variant's runs with weights, has a 95 % CI (a bootstrap over the test posts, the same
  resample for every run) that covers 0.5. A head at chance shaped nothing worth a claim.
Such rows are "untestable here" with the reason, not "inconclusive" (which says more seeds could
decide them), and they stay out of the correction family (`effects.decide`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from mmaux.analysis import effects
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError, read_info, read_metrics

LOSS_EFFECTS = {"itc": (effects.ITC, "ITC main"), "itm": (effects.ITM, "ITM main")}  # effects a loss's claim tests
HEADS = {effects.ITM: (effects.ITM,), "ITM main": (effects.ITM, effects.BOTH)}  # effect -> the variants whose heads it needs
N_BOOT = 1000


def untestable(group: pd.DataFrame) -> dict[str, str]:
    """effect -> why this group cannot test it (`effects.decide`'s `untestable`)."""
    found = {}
    for loss, names in LOSS_EFFECTS.items():
        blocked = [f for f in group["folder"] if _reaches(f).get(loss) is False]
        if blocked:
            for name in names:
                found[name] = (f"the {loss.upper()} loss cannot reach the classifier in {len(blocked)} of its runs "
                               "(gradient-path check at training time)")
    aurocs = {variant: head_auroc(group, variant) for variant in (effects.ITM, effects.BOTH)}
    for effect, variants in HEADS.items():
        chance = [aurocs[v] for v in variants if aurocs[v] is not None and aurocs[v][1] <= 0.5 <= aurocs[v][2]]
        if len(chance) == len(variants) and effect not in found:
            found[effect] = "the ITM head did not learn to match (" + "; ".join(
                f"{v} AUROC {mean:.2f} [{low:.2f}, {high:.2f}]" for v, (mean, low, high) in zip(variants, chance)) + ")"
    return found


def _reaches(folder) -> dict:
    """metrics.json's `aux_reaches_classifier` ({} for a run without one, e.g. an imported run)."""
    try:
        return read_metrics(folder).get("aux_reaches_classifier") or {}
    except (CheckpointError, OSError):
        return {}


def head_auroc(group: pd.DataFrame, variant: str, seed: int = 0) -> tuple[float, float, float] | None:
    """(mean, 95 % low, high) of the ITM head's true-vs-shuffled AUROC over `variant`'s runs with
    weights, or None when it has none (imported or predictions-only runs, no ITM head)."""
    runs = group[group["variant"] == variant]
    scores = [pair_scores(f) for f in runs["folder"] if read_info(f).has_model]
    scores = [s for s in scores if s is not None]
    if not scores:
        return None
    n = len(scores[0][0])
    if any(len(true) != n for true, _ in scores):
        raise ValueError(f"the {variant} runs of {runs_lib.group_name(tuple(runs[runs_lib.GROUP_COLUMNS].iloc[0]))} "
                         "were scored on different test posts")
    resamples = np.vstack([np.arange(n), np.random.default_rng(seed).integers(0, n, size=(N_BOOT, n))])
    mean = np.mean([auroc_rows(true[resamples], shuffled[resamples]) for true, shuffled in scores], axis=0)
    low, high = np.percentile(mean[1:], [2.5, 97.5])
    return float(mean[0]), float(low), float(high)


def auroc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUROC of each row's positives (B, n) against its negatives (B, m), ties counted half
    (Mann–Whitney U / (n·m), as `roc_auc_score`)."""
    ranks = rankdata(np.hstack([pos, neg]), axis=1)
    n, m = pos.shape[1], neg.shape[1]
    return (ranks[:, :n].sum(axis=1) - n * (n + 1) / 2) / (n * m)


def pair_scores(folder: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(true, shuffled) ITM scores of a checkpoint's test posts, or None without an ITM head or
    when its model cannot be run (it is then left out of the head's AUROC, not guessed)."""
    from mmaux.analysis import matching
    from mmaux.features import PostInputs
    from mmaux.predict import Predictor

    if not read_info(folder).loss.itm:
        return None
    table = runs_lib.load_test_table(folder)

    def load():
        model = Predictor(folder).model
        return model, PostInputs(model, table)

    try:
        true, shuffled = matching.cached_true_and_shuffled(folder, table["post_id"], load)
    except (CheckpointError, OSError, ValueError, RuntimeError):
        return None
    return true.values, shuffled.values
