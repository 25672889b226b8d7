"""Cached readers of what checkpoints store (test and validation tables, embeddings, the groups'
effects, claims and slice scores, thumbnails): `st.cache_data`, each keyed by the folder *and*
its files' mtimes and sizes (`runs.checkpoint_stamp`), so re-training into a folder is picked up.
Nothing here runs a model (`mmaux.ui.models` does)."""
from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from mmaux.analysis import group_results
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError, read_info, read_outputs
from mmaux.data.images import ImageLoadError, load_image

THUMBNAIL_PX = 64


@st.cache_data(show_spinner="Reading test outputs…", max_entries=64)
def _test_table(folder: str, stamp: tuple) -> pd.DataFrame:
    return runs_lib.load_test_table(folder)


def test_table(folder: str) -> pd.DataFrame:
    """The checkpoint's test outputs joined with the test posts (`runs_lib.load_test_table`):
    post_id, text, image, label, label_index, pred, pred_label, correct, confidence, itm_match,
    itc_cosine, p_<class>..., slice columns."""
    return _test_table(str(folder), runs_lib.checkpoint_stamp(folder))


@st.cache_data(show_spinner="Reading embeddings…", max_entries=64)
def _test_arrays(folder: str, stamp: tuple) -> dict[str, np.ndarray]:
    return read_outputs(folder)[1]


def test_arrays(folder: str) -> dict[str, np.ndarray]:
    """The checkpoint's test embeddings (float32, rows in the order of `test_table`): text_emb,
    image_emb (ITC-projected) and fused."""
    return _test_arrays(str(folder), runs_lib.checkpoint_stamp(folder))


def test_tables(folders: Sequence[str]) -> dict[str, pd.DataFrame]:
    """folder -> `test_table(folder)`, with a progress bar while more than four are read. A
    checkpoint whose outputs or posts cannot be read is left out with a warning."""
    tables = {}
    bar = st.progress(0.0, text="Reading test outputs…") if len(folders) > 4 else None
    for i, folder in enumerate(folders):
        try:
            tables[folder] = test_table(folder)
        except (CheckpointError, OSError, ValueError) as err:
            st.warning(f"`{folder}`: test outputs cannot be read ({err})")
        if bar is not None:
            bar.progress((i + 1) / len(folders), text="Reading test outputs…")
    if bar is not None:
        bar.empty()
    return tables


@st.cache_data(show_spinner="Reading validation outputs…", max_entries=64)
def _val_table(folder: str, stamp: tuple) -> pd.DataFrame | None:
    return runs_lib.load_split_table(folder, "val")


def split_table(folder: str, split: str) -> pd.DataFrame | None:
    """`test_table` for split "test"; for "val" the validation outputs joined with the validation
    posts, or None when the checkpoint has none (`runs_lib.load_split_table`)."""
    if split == "test":
        return test_table(folder)
    return _val_table(str(folder), runs_lib.checkpoint_stamp(folder))


@st.cache_data(show_spinner="Estimating the effects…", max_entries=32)
def _group_effects(group: pd.DataFrame, stamps: tuple) -> pd.DataFrame:
    # on disk too, and shipped with the checkpoints: scoring every slice took most of a cold home page
    return group_results.group_effects(group, split_table)


@st.cache_data(show_spinner="Testing the paper's claims…", max_entries=32)
def _group_claims(group: pd.DataFrame, stamps: tuple) -> pd.DataFrame:
    return group_results.group_claims(group, split_table)


def _group_frame(cached, group: pd.DataFrame, failure: str, *args) -> pd.DataFrame | None:
    """`cached(group, *args, stamps)`, recomputed when one of the group's checkpoints changes; None,
    with the warning '`failure` <group>: <why>', when some of its outputs cannot be read (or a
    user's slice does not apply to them)."""
    try:
        return cached(group, *args, tuple(runs_lib.checkpoint_stamp(f) for f in group["folder"]))
    except (CheckpointError, OSError, ValueError) as err:
        st.warning(f"{failure} {runs_lib.group_name(tuple(group[runs_lib.GROUP_COLUMNS].iloc[0]))}: {err}")
        return None


def group_claims(group: pd.DataFrame) -> pd.DataFrame | None:
    """`claims.claims_table` of one group's runs (`_group_frame`)."""
    return _group_frame(_group_claims, group, "The paper's claims cannot be tested on")


def group_effects(group: pd.DataFrame) -> pd.DataFrame | None:
    """`effects.effects_table` of one group's runs (every variant × slice, one BH family, with
    verdicts) (`_group_frame`)."""
    return _group_frame(_group_effects, group, "The effects cannot be estimated for")


@st.cache_data(show_spinner="Scoring the slices…", max_entries=32)
def _group_slice_scores(group: pd.DataFrame, slicings: tuple[str, ...], stamps: tuple) -> dict[str, pd.DataFrame]:
    return group_results.group_slice_scores(group, slicings, split_table)


def group_slice_scores(group: pd.DataFrame, slicings: Sequence[str]) -> dict[str, pd.DataFrame]:
    """slicing -> `effects.slice_scores` of one group's test predictions, cached until one of
    its checkpoints changes (the home page's slice bars; recomputing them cost most of a rerun)."""
    return _group_slice_scores(group, tuple(slicings), tuple(runs_lib.checkpoint_stamp(f) for f in group["folder"]))


@functools.lru_cache(maxsize=8192)
def thumbnail(path: str, size: int = THUMBNAIL_PX) -> str | None:
    """A small PNG of the image as a data URI (for st.column_config.ImageColumn); None when the
    image cannot be read. Cached per process: test images never change under a path."""
    try:
        image = load_image(path)
    except ImageLoadError:
        return None
    return image_data_uri(image, size)


def image_data_uri(image: Image.Image, size: int = THUMBNAIL_PX) -> str:
    """`image` shrunk to fit size × size, as a base64 PNG data URI."""
    small = image.copy()
    small.thumbnail((size, size))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@st.cache_data(max_entries=4096)
def _kind(folder: str, stamp: tuple) -> tuple[bool, bool]:
    info = read_info(folder)
    return info.imported is not None, info.has_model


def imported(folder: str) -> bool:
    """Whether the checkpoint is a predictions-only run imported from elsewhere (cached per stamp):
    its match scores were never recorded."""
    return _kind(str(folder), runs_lib.checkpoint_stamp(folder))[0]


def has_model(folder: str) -> bool:
    """Whether the checkpoint holds weights a page can run (not predictions only; cached per stamp)."""
    return _kind(str(folder), runs_lib.checkpoint_stamp(folder))[1]
