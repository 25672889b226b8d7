"""Models behind `st.cache_resource` (one `Predictor` per checkpoint folder per process, in eval
mode and never mutated), what the analysis pages feed them, and the caveat badges that need a
model run (ITM at chance, live vs stored predictions)."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st
import torch

from mmaux import badges
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError, read_info
from mmaux.predict import Predictor
from mmaux.ui.loaders import has_model, test_table

# One torch thread per dashboard process by default: sessions run in parallel threads, and torch's
# per-op thread pool otherwise spins against them (and against any other busy process), which
# measured 5-20x slower here on 2 cores. MMAUX_TORCH_THREADS overrides it.
torch.set_num_threads(int(os.environ.get("MMAUX_TORCH_THREADS", "1")))


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _predictor(folder: str, stamp: tuple) -> Predictor:
    return Predictor(folder)


def predictor(folder: str) -> Predictor:
    """The checkpoint's `Predictor`, loaded once per process (shared, read-only, eval mode).
    Raises `CheckpointError` for a checkpoint that cannot be loaded (pages show it with st.error)."""
    return _predictor(str(folder), runs_lib.checkpoint_stamp(folder))


@st.cache_resource(show_spinner="Preparing the test posts' model inputs…", max_entries=4)
def _post_inputs(folder: str, stamp: tuple):
    from mmaux.features import PostInputs

    return PostInputs(predictor(folder).model, test_table(folder))


def post_inputs(folder: str):
    """`PostInputs` of the checkpoint's test posts, rows in `test_table` order: frozen encoder
    outputs from the feature cache, so any subset of posts batches without re-encoding.
    Shared across sessions and read-only, like the model."""
    return _post_inputs(str(folder), runs_lib.checkpoint_stamp(folder))


@st.cache_data(show_spinner="Reading the frozen encoders' features…", max_entries=16)
def _frozen_features(folder: str, stamp: tuple):
    from mmaux.analysis.spaces import frozen_features

    return frozen_features(predictor(folder).model, post_inputs(folder))


def frozen_features(folder: str):
    """(text, image) pooled features of the test posts from the frozen encoders (what the random-
    projection reference projects), or None for ViLT (`spaces.frozen_features`)."""
    return _frozen_features(str(folder), runs_lib.checkpoint_stamp(folder))


# --- caveat badges ------------------------------------------------------------------------------

@st.cache_data(show_spinner="Checking the checkpoint (ITM head, live vs stored predictions)…", max_entries=512)
def _checkpoint_badges(folder: str, stamp: tuple, ce_folder: str | None, ce_stamp: tuple) -> list[badges.Badge]:
    from mmaux.analysis import spaces

    table = test_table(folder)
    ran = has_model(folder)  # the model's own checks need its weights; a predictions-only run has none
    trained = spaces.checkpoint_spaces(folder) if ran else None
    found = [badges.untrained_itc(read_info(folder).loss.itc, trained.itc)] if ran else []

    def load():
        return predictor(folder).model, post_inputs(folder)

    if ran and trained.itm:
        found.append(badges.itm_at_chance(badges.cached_itm_auroc(folder, table["post_id"], load)))
    if ce_folder:
        ce = test_table(ce_folder).set_index("post_id")["pred"].reindex(table["post_id"])
        found.append(badges.identical_to_ce(table["pred"].to_numpy(), None if ce.isna().any() else ce.to_numpy()))
    if ran:
        live = badges.cached_live_predictions(folder, table["post_id"], load)
        found.append(badges.live_mismatch(float((live != table["pred"].to_numpy()).mean())))
    return [b for b in found if b is not None]


def checkpoint_badges(folder: str, runs: pd.DataFrame) -> list[badges.Badge]:
    """The caveats of one checkpoint (`badges`), checked once per checkpoint and cached (in the
    process, and on disk for the model runs); a check that fails becomes a badge saying so."""
    runs = runs_lib.usable(runs)
    row = runs[runs["folder"] == folder]
    ce_folder = None
    if len(row) and row["variant"].iloc[0] != runs_lib.BASELINE:
        group = runs_lib.group_runs(runs, tuple(row[runs_lib.GROUP_COLUMNS].iloc[0]))
        same = group[(group["variant"] == runs_lib.BASELINE) & (group["seed"] == row["seed"].iloc[0])]
        ce_folder = same["folder"].iloc[0] if len(same) else None
    try:
        return _checkpoint_badges(str(folder), runs_lib.checkpoint_stamp(folder), ce_folder,
                                  runs_lib.checkpoint_stamp(ce_folder) if ce_folder else ())
    except (CheckpointError, OSError, ValueError, RuntimeError) as err:
        return [badges.Badge("checks could not run", f"{folder}: {err}", "gray")]


def show_badges(folders: Sequence[str], names: Mapping[str, str], runs: pd.DataFrame) -> None:
    """One line per chosen checkpoint that has caveats: its name and its badges (help on hover)."""
    for folder in folders:
        found = checkpoint_badges(folder, runs)
        if found:
            st.markdown(f"**{names.get(folder, folder)}** " + " ".join(b.markdown() for b in found),
                        help="  \n".join(b.help for b in found))
