"""What the analysis pages (Match scores, Embeddings, Attributions) start from: comparable
checkpoints that have a model, one selected test post, and the links from a post to those pages."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from mmaux.analysis import runs as runs_lib
from mmaux.ui.frame import PAGE_LINKS, PREDICTIONS_ONLY_NOTE, stop
from mmaux.ui.loaders import has_model, test_table
from mmaux.ui.picker import checkpoint_labels, pick_checkpoints
from mmaux.ui.roots import sidebar_runs
from mmaux.ui.urlstate import select_post, selected_post, view_params


def post_links(post_id: str) -> None:
    """Links to the post on the Match Scores, Embeddings and Attributions pages."""
    select_post(post_id)
    columns = st.columns(3)
    for column, (page, label) in zip(columns, PAGE_LINKS):
        if (Path(__file__).resolve().parents[2] / page).is_file():
            column.page_link(page, label=label, query_params=view_params())


def pick_post(table: pd.DataFrame, key: str) -> str:
    """Sidebar choice of one test post (default: the post selected on any page, else the first);
    a choice here becomes the selected post everywhere, and a post selected elsewhere on the
    page (e.g. by clicking a chart) shows up here."""
    ids = list(table["post_id"])
    current = selected_post(ids) or ids[0]
    widget = f"_post_{key}"
    if st.session_state.get(widget) != current:
        st.session_state[widget] = current
    texts = dict(zip(table["post_id"], table["text"]))
    st.sidebar.selectbox("Post", ids, key=widget, format_func=lambda p: f"{p}: {texts[p][:60]}",
                         on_change=lambda: select_post(st.session_state[widget]))
    return current


def with_model(folders: Sequence[str]) -> list[str]:
    """The folders whose model a page can run. Predictions-only runs (imported, or stored without
    weights) are left out with one line saying why; when nothing is left, that line ends the page."""
    kept = [f for f in folders if has_model(f)]
    if len(kept) < len(folders):
        left_out = len(folders) - len(kept)
        message = (f"{left_out} chosen run(s) left out: {PREDICTIONS_ONLY_NOTE}, and this page runs the model. Their "
                   "effects and posts are on the Checkpoints and Predictions pages.")
        if not kept:
            stop(message)
        st.info(message)
    return kept


def same_posts(folders: Sequence[str]) -> list[str]:
    """The folders whose test posts are those of the first, in the same order (rows can then be
    compared one to one); the others are left out with a warning."""
    first = test_table(folders[0])["post_id"].to_numpy()
    kept = [f for f in folders if np.array_equal(test_table(f)["post_id"].to_numpy(), first)]
    if len(kept) < len(folders):
        st.warning("Left out (other test posts than the first checkpoint's): "
                   + ", ".join(f"`{f}`" for f in folders if f not in kept))
    return kept


@dataclass(frozen=True)
class PostChoice:
    """What the analysis pages start from: comparable checkpoints and one selected test post."""

    folders: list[str]  # chosen checkpoints whose test posts match the first's
    names: dict[str, str]  # folder -> the part of its label that differs from the others
    table: pd.DataFrame  # the first checkpoint's test table
    post_id: str
    row: int  # the post's row in `table` (and in every folder's outputs)
    runs: pd.DataFrame  # every run found (for `show_badges`)


def pick_checkpoints_and_post(key: str, max: int) -> PostChoice:
    """Sidebar: checkpoints (1 to `max`, same test posts, with a model: `with_model`) and a post,
    shared across pages."""
    runs = sidebar_runs()
    folders = same_posts(with_model(pick_checkpoints(key, min=1, max=max, runs=runs, needs_model=True)))
    labels = checkpoint_labels(runs)
    names = dict(zip(folders, runs_lib.distinguishing_names([labels[f] for f in folders])))
    table = test_table(folders[0])
    post_id = pick_post(table, key)
    row = int(np.flatnonzero(table["post_id"].to_numpy() == post_id)[0])
    return PostChoice(folders, names, table, post_id, row, runs)


def show_post(row: pd.Series, width: int = 160) -> None:
    """A post's image, text and gold label, compactly."""
    left, right = st.columns([1, 5])
    if row["image"]:
        left.image(row["image"], width=width)
    right.markdown(f"**Post {row['post_id']}** · gold **{row['label']}**  \n{row['text']}")
