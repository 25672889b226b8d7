"""Shared by the Streamlit page tests: which checkpoint root the pages open, and a page runner.

The pages are tested on the shipped checkpoints/ (skipped, saying why, when it holds none yet).
`MMAUX_CHECKPOINTS` may point the tests elsewhere while developing, as it does the app.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mmaux.analysis import runs
from mmaux.paths import DEFAULT_CHECKPOINTS, REPO_ROOT
from mmaux.ui import ROOTS_ENV

TIMEOUT = 180  # seconds; the first run of a page reads every checkpoint and loads models


def checkpoint_root() -> str:
    """The root the page tests use; skips the test when it holds no usable checkpoint."""
    root = os.environ.get(ROOTS_ENV) or str(DEFAULT_CHECKPOINTS)
    if runs.usable(runs.discover_runs(root.split(os.pathsep))).empty:
        pytest.skip(f"no usable checkpoints under {root}: run `make checkpoints` (or wait for the sweep)")
    return root


def page(path: str, root: str, monkeypatch, **session) -> AppTest:
    """An AppTest of the page `path` (relative to the repo) opening `root`, with `session` state
    preset. It starts from app.py, as `streamlit run` does, so that links between pages resolve."""
    monkeypatch.setenv(ROOTS_ENV, root)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT)
    if path != "app.py":
        at.switch_page(path)
    for key, value in session.items():
        at.session_state[key] = value
    return at


def texts(elements) -> str:
    """All the values of a list of text elements (markdown, caption, info...), joined."""
    return "\n".join(str(e.value) for e in elements)


def empty_root(tmp_path: Path) -> str:
    (tmp_path / "no-checkpoints").mkdir()
    return str(tmp_path / "no-checkpoints")


def open_late_cells(page_file: str, app_runs, monkeypatch, cells, state=None) -> tuple[AppTest, list[str]]:
    """`page_file` run on one checkpoint per (itc, itm) cell of the first late-fusion group,
    seed 0 first; returns the run page and the chosen folders."""
    from mmaux.analysis.runs import GROUP_COLUMNS

    root, table = app_runs
    monkeypatch.setenv("MMAUX_CHECKPOINTS", root)
    late = table[table["architecture"] != "mmbt"]
    group = late[(late[GROUP_COLUMNS] == late[GROUP_COLUMNS].iloc[0]).all(axis=1)].sort_values("seed")
    chosen = [group[(group["itc"] == itc) & (group["itm"] == itm)]["folder"].iloc[0] for itc, itm in cells]
    at = AppTest.from_file(str(REPO_ROOT / page_file), default_timeout=180)
    at.session_state["selected_checkpoints"] = chosen
    for key, value in (state or {}).items():
        at.session_state[key] = value
    return at.run(), chosen
