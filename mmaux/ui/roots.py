"""Where checkpoints are looked for: the default roots (`paths.default_roots`, MMAUX_CHECKPOINTS)
plus folders added in the sidebar, searched with a bounded walk and cached, and the runs table
built from them."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import SearchTooLarge, find_checkpoints
from mmaux.paths import default_roots
from mmaux.ui.frame import stop

ROOTS_KEY = "checkpoint_roots"  # session_state: extra roots the user added (list of str)


def checkpoint_roots() -> list[str]:
    """The default roots plus the ones added in the sidebar this session (no sidebar drawn)."""
    return list(dict.fromkeys(default_roots() + st.session_state.get(ROOTS_KEY, [])))


def parse_roots(text: str) -> list[str]:
    """Folders typed into the sidebar: one per line or separated by commas; blanks ignored."""
    return [p.strip() for line in text.splitlines() for p in line.split(",") if p.strip()]


def sidebar_roots() -> list[str]:
    """Draw the root chooser in the sidebar and return the roots to search: a root that is not a
    folder, or too large to search (`SearchTooLarge`), gets one sidebar warning and is left out."""
    def remember():
        st.session_state[ROOTS_KEY] = parse_roots(st.session_state["_roots_text"])

    with st.sidebar:
        st.caption("Checkpoint folders: " + ", ".join(f"`{r}`" for r in default_roots()))
        st.text_area("Add checkpoint folders (one per line)", value="\n".join(st.session_state.get(ROOTS_KEY, [])),
                     key="_roots_text", on_change=remember, height=68)
    searched = []
    for root in checkpoint_roots():
        if not Path(root).is_dir():
            st.sidebar.warning(f"`{root}` is not a folder; nothing is read from it.")
            continue
        try:
            checkpoint_folders(root)
        except SearchTooLarge as err:
            st.sidebar.warning(str(err))
            continue
        searched.append(root)
    return searched


SEARCH_TTL_S = 30  # a root's folder list is reused this long; new checkpoint folders show up after it


@st.cache_data(show_spinner="Looking for checkpoint folders…", ttl=SEARCH_TTL_S, max_entries=64)
def _checkpoint_folders(root: str, mtime_ns: int) -> list[str]:
    return [str(f) for f in find_checkpoints(root)]


def checkpoint_folders(root: str) -> list[str]:
    """`find_checkpoints(root)` (depth-pruned, bounded), cached between reruns for
    `SEARCH_TTL_S` seconds or until the root folder itself changes. Raises `SearchTooLarge`."""
    try:
        mtime = Path(root).stat().st_mtime_ns
    except OSError:
        return []
    return _checkpoint_folders(str(root), mtime)


@st.cache_data(show_spinner="Reading checkpoints…", max_entries=16)
def _runs(roots: tuple[str, ...], stamp: tuple) -> pd.DataFrame:
    return runs_lib.discover_runs(roots)


def load_runs(roots: Sequence[str]) -> pd.DataFrame:
    """The runs table of `runs_lib.discover_runs`, cached until a checkpoint file changes (the
    folder lists come from `checkpoint_folders`, so a rerun does not walk the roots again)."""
    stamp = tuple((f, runs_lib.checkpoint_stamp(f)) for root in roots for f in checkpoint_folders(root))
    return _runs(tuple(roots), stamp)


def sidebar_runs(warn: bool = True) -> pd.DataFrame:
    """Roots in the sidebar, then their runs table (broken runs included). With `warn`, broken
    checkpoints are listed in a sidebar warning; an empty root stops the page with a hint."""
    roots = sidebar_roots()
    table = load_runs(roots)
    broken = table[table["error"] != ""]
    if warn and not broken.empty:
        with st.sidebar.expander(f"⚠️ {len(broken)} checkpoint(s) cannot be used"):
            for row in broken.itertuples():
                st.warning(f"`{row.folder}`: {row.error}")
    if runs_lib.usable(table).empty:
        stop("No usable checkpoints found in " + ", ".join(f"`{r}`" for r in roots) + ". Train some with "
             "`python -m mmaux sweep ...` (or `make checkpoints`), or add a folder in the sidebar.")
    return table
