"""What the Predictions page and the home page's links need beyond the runs table: a checkpoint's
short name in a URL, each post's change of gold-label probability between two checkpoints, the
orders the post table can be sorted in, and the link from a home-page cell to its posts."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mmaux import selection
from mmaux.analysis import effects
from mmaux.analysis import runs as runs_lib

FLIPS_FIRST, GAIN_FIRST, BY_ID = "fixed, then broken, first", "Δp: largest gain first", "post id"
ORDERS = (FLIPS_FIRST, GAIN_FIRST, BY_ID)
ORDER_TOKENS = {FLIPS_FIRST: "flips", GAIN_FIRST: "dp", BY_ID: "id"}  # ?order=
ANY = "(any)"  # no slice / no slice value


def run_token(runs: pd.DataFrame, folder: str) -> str:
    """'attention:CE+ITC:0': a run's architecture, variant and seed, unique within one task."""
    row = runs.set_index("folder").loc[folder]
    return f"{row['architecture']}:{row['variant']}:{int(row['seed'])}"


def gold_probability(table: pd.DataFrame, post_ids) -> np.ndarray:
    """Each post's predicted probability of its gold label, from a test table's p_<class> columns."""
    rows = table.set_index("post_id").loc[list(post_ids)]
    probs = rows[[f"p_{c}" for c in runs_lib.class_names(table)]].to_numpy(dtype=float)
    return probs[np.arange(len(rows)), rows["label_index"].to_numpy(dtype=int)]


def delta_p(posts: pd.DataFrame, tables: Mapping[str, pd.DataFrame], baseline: str, variant: str) -> np.ndarray:
    """p(gold | variant) − p(gold | baseline) per post of `posts` (positive: the variant is surer
    of the right answer)."""
    ids = posts["post_id"]
    return gold_probability(tables[variant], ids) - gold_probability(tables[baseline], ids)


def order_posts(posts: pd.DataFrame, preds: Mapping[str, np.ndarray], baseline: str, variant: str,
                change: np.ndarray, order: str) -> np.ndarray:
    """Positions of `posts` in the chosen order. FLIPS_FIRST: posts the variant fixed, then the
    ones it broke (each by largest |Δp|), then the rest in id order; GAIN_FIRST: by Δp, largest
    first; BY_ID: as they are."""
    if order == BY_ID:
        return np.arange(len(posts))
    if order == GAIN_FIRST:
        return np.argsort(-change, kind="stable")
    y = posts["label_index"].to_numpy()
    fixed = runs_lib.flip_mask(y, preds, baseline, variant, runs_lib.FIXED)
    broken = runs_lib.flip_mask(y, preds, baseline, variant, runs_lib.BROKEN)
    rank = np.where(fixed, 0, np.where(broken, 1, 2))
    return np.lexsort((np.arange(len(posts)), np.where(rank < 2, -np.abs(change), 0), rank))


def cell_link(runs: pd.DataFrame, key: tuple, variant: str, slicing: str, value: str) -> dict[str, str] | None:
    """Query parameters that open Predictions on one home-page cell: the group's CE and
    `variant` at their lowest common seed, that slice, fixed and broken posts first. None when
    the two share no seed."""
    runs = runs_lib.usable(runs)
    group = runs[(runs[runs_lib.GROUP_COLUMNS] == list(key)).all(axis=1)]
    seeds = sorted(set(group.loc[group["variant"] == runs_lib.BASELINE, "seed"])
                   & set(group.loc[group["variant"] == variant, "seed"]))
    if not seeds or variant == runs_lib.BASELINE:
        return None
    dataset, task, arch = key
    choice = selection.Selection(dataset, task, (arch,), (runs_lib.BASELINE, variant), (int(seeds[0]),))
    params = choice.to_params()
    params.update(base=f"{arch}:{runs_lib.BASELINE}:{seeds[0]}", vs=f"{arch}:{variant}:{seeds[0]}",
                  order=ORDER_TOKENS[FLIPS_FIRST])
    if slicing != effects.OVERALL:
        params.update(slice=slicing, value=str(value))
    return params
