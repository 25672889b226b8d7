"""The structured checkpoint picker in the sidebar (task → architectures → loss variants × seeds),
shared by every page and kept in the URL (`selection.PARAMS`)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from mmaux import selection
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError, read_info
from mmaux.ui.frame import stop
from mmaux.ui.loaders import group_effects
from mmaux.ui.roots import sidebar_runs

SELECTED_KEY = "selected_checkpoints"  # session_state: chosen checkpoint folders (list of str)
SELECTION_KEY = "selection"  # session_state: the picker's `selection.Selection` those folders come from


def checkpoint_labels(runs: pd.DataFrame) -> dict[str, str]:
    """folder -> what tells it apart (`CheckpointInfo.label`); a label shared by two folders (the
    same run under two roots) gets the folder's parent added."""
    labels = dict(zip(runs["folder"], runs["label"]))
    counts = pd.Series(list(labels.values())).value_counts()
    return {f: (f"{lab} ({Path(f).parent})" if counts[lab] > 1 else lab) for f, lab in labels.items()}


def selected_checkpoints() -> list[str]:
    """The checkpoint folders chosen on any page this session (may be empty)."""
    return list(st.session_state.get(SELECTED_KEY, []))


def pick_checkpoints(key: str, min: int = 1, max: int = 4, default: Sequence[str] | None = None,
                     runs: pd.DataFrame | None = None, needs_model: bool = False) -> list[str]:
    """The structured sidebar picker (task → architectures → loss variants × seeds); returns the
    chosen folders, at most `max`, all comparable (`selection.comparable`).

    The choice is shared by every page (`SELECTED_KEY`) and lives in the URL (`selection.PARAMS`):
    a link or a reload restores it, and the URL wins over the session. `key` only names this
    page's widgets. With no choice yet, `default` (else the group with the largest supported
    effect, `selection.default_group`) is used. Folders of another task, label set or data are
    refused with one line saying why. Fewer than `min` chosen stops the page with a hint. A page
    that runs the model (`needs_model`) offers only the seeds stored with weights; the others
    (predictions only) count in the statistics, and the sidebar says so in one line.
    """
    runs = runs_lib.usable(sidebar_runs() if runs is None else runs)
    labels = checkpoint_labels(runs)
    choice = _current_selection(runs, labels, default)
    chosen = choice.folders(runs) if choice else []
    st.session_state[SELECTED_KEY], st.session_state[SELECTION_KEY] = chosen, choice
    _write_selection_params(choice)
    _selection_widgets(key, runs, choice, needs_model)
    if len(chosen) > max:
        st.sidebar.caption(f"This page shows the first {max} of the {len(chosen)} checkpoints chosen; choose "
                           "fewer variants or seeds to pick which.")
        chosen = chosen[:max]
    if len(chosen) < min:
        stop(f"Choose at least {min} checkpoint(s) in the sidebar (task, architecture, loss variants and seeds).")
    return chosen


def _current_selection(runs: pd.DataFrame, labels: dict[str, str],
                       default: Sequence[str] | None) -> selection.Selection | None:
    """The URL's choice (a partial one filled in, saying what was assumed:
    `selection.complete_params`), else the session's (`SELECTION_KEY`, or folders put into
    `SELECTED_KEY` by a page or a test), else `default`, else the default group's; checkpoints
    that cannot be compared with the first are refused with one line."""
    params, assumed = selection.complete_params(dict(st.query_params), runs)
    from_url = selection.Selection.from_params(params, runs)
    if from_url is not None:
        if assumed:  # said once: the full view is written to the URL below
            st.info("The link names only part of the view; assumed " + ", ".join(assumed) + ".")
        return from_url
    if st.query_params.get("task"):
        st.warning(f"The link names {selection.task_name((st.query_params.get('dataset', ''), st.query_params['task']))}, "
                   "which no checkpoint here has; showing the default comparison.")
    remembered = st.session_state.get(SELECTION_KEY)
    if SELECTED_KEY in st.session_state:
        asked = list(st.session_state[SELECTED_KEY])
        if remembered is not None and remembered.folders(runs) == asked:
            return remembered  # the user's choice, even an empty one
        folders = [f for f in asked if f in labels]
    else:
        folders = [f for f in (default or []) if f in labels]
    if not folders:
        key, why = default_group(runs)
        if why:
            st.sidebar.caption(f"Opened on {runs_lib.group_name(key)}: {why}.")
        return selection.default_selection(runs, key)
    identities = {}
    for folder in folders:
        try:
            identities[folder] = identity(folder)
        except (CheckpointError, OSError, ValueError) as err:
            st.warning(f"`{folder}` is left out: {err}")
    folders = [f for f in folders if f in identities]
    kept, why = selection.comparable(folders, identities, labels)
    if why:
        st.warning(why)
    return selection.Selection.of_folders(runs, kept)


def default_group(runs: pd.DataFrame) -> tuple[tuple | None, str]:
    """`selection.default_group` over every group's effects (cached, as on the home page)."""
    groups = runs_lib.groups(runs_lib.usable(runs))
    return selection.default_group(runs, {key: group_effects(group) for key, group in groups})


@st.cache_data(max_entries=4096)
def _identity(folder: str, stamp: tuple) -> selection.Identity:
    info = read_info(folder)
    identity = runs_lib.run_identity(info)
    return selection.Identity(identity["dataset"], identity["task"], tuple(info.label_names), info.data_fingerprint)


def identity(folder: str) -> selection.Identity:
    """What a checkpoint must share with another to be compared with it (cached per stamp)."""
    return _identity(str(folder), runs_lib.checkpoint_stamp(folder))


def _write_selection_params(choice: selection.Selection | None) -> None:
    params = choice.to_params() if choice else {}
    for name in selection.PARAMS:
        if params.get(name):
            if st.query_params.get(name) != params[name]:
                st.query_params[name] = params[name]
        elif name in st.query_params:
            del st.query_params[name]


def _selection_widgets(key: str, runs: pd.DataFrame, choice: selection.Selection | None,
                       needs_model: bool = False) -> None:
    """Task, architectures, variants and seeds in the sidebar, showing `choice`; a change makes a
    new choice (a new task starts from its default comparison, keeping the variants and seeds
    chosen where it has them) and writes it to the session and the URL. With `needs_model`, the
    seeds offered are those stored with weights."""
    tasks = selection.tasks(runs)
    if not tasks:
        return
    widgets = {name: f"_pick_{key}_{name}" for name in ("task", "arch", "variant", "seed")}
    by_name = {selection.task_name(t): t for t in tasks}  # widget values are plain strings
    current = (choice.dataset, choice.task) if choice else tasks[0]
    task_runs = selection.task_runs(runs, current)
    seeds = selection.seed_options(task_runs)
    options = {"arch": list(dict.fromkeys(task_runs["architecture"])),
               "variant": [v for v in runs_lib.VARIANTS if v in set(task_runs["variant"])],
               "seed": seeds.with_weights if needs_model else seeds.all}
    st.session_state[widgets["task"]] = selection.task_name(current)
    if choice:
        st.session_state[widgets["arch"]] = list(choice.archs)
        st.session_state[widgets["variant"]] = list(choice.variants)
        st.session_state[widgets["seed"]] = [s for s in choice.seeds if s in options["seed"]]

    def changed(what: str) -> None:
        task = by_name[st.session_state[widgets["task"]]]
        if what == "task":
            group = selection.task_runs(runs, task)
            new = selection.Selection.of_folders(runs, runs_lib.default_comparison(group))
            new = new.keeping(choice, runs) if new and choice else new
        else:
            new = selection.Selection(*task, *(tuple(st.session_state[widgets[n]]) for n in ("arch", "variant", "seed")))
        st.session_state[SELECTED_KEY], st.session_state[SELECTION_KEY] = (new.folders(runs) if new else []), new
        _write_selection_params(new)

    counts = runs_lib.usable(runs).groupby(selection.TASK_COLUMNS, sort=False).size()
    with st.sidebar:
        st.markdown("**Compare checkpoints** (shared by every page)")
        st.selectbox("Task", list(by_name), key=widgets["task"], on_change=changed, args=("task",),
                     format_func=lambda t: f"{t} ({counts[by_name[t]]} checkpoints)",
                     help="Only checkpoints of one dataset, task and label set are compared.")
        st.multiselect("Architecture", options["arch"], key=widgets["arch"], on_change=changed, args=("arch",))
        st.multiselect("Loss variants", options["variant"], key=widgets["variant"], on_change=changed,
                       args=("variant",), help="CE is the baseline every auxiliary variant is compared with.")
        st.multiselect("Seeds", options["seed"], key=widgets["seed"], on_change=changed, args=("seed",),
                       format_func=lambda s: f"seed {s}" + ("" if s in seeds.with_weights else " (outputs only)"),
                       help="Every statistic (effects, claims, power) uses all seeds of a group, whatever is "
                            "chosen here; the choice is what the page puts side by side.")
        if seeds.outputs_only:
            st.caption(seeds.note(needs_model))
