"""Streamlit helpers shared by every dashboard page: page frame, checkpoint roots and picker,
cached loaders, the selected post, and the footer.

A page reads top to bottom as:

    ui.page_header("Predictions", "What this page shows, in one line.")
    runs = ui.sidebar_runs()                      # roots in the sidebar, broken runs warned about
    folders = ui.pick_checkpoints("predictions", min=2, max=4, runs=runs)
    table = ui.test_table(folders[0])             # cached; a DataFrame copy
    ...
    ui.footer()

Caching: models with `st.cache_resource` (one `Predictor` per checkpoint folder per process,
in eval mode and never mutated), tables with `st.cache_data`, each keyed by the folder *and* its
files' mtimes and sizes (`runs.checkpoint_stamp`), so re-training into a folder is picked up.

State shared across pages lives in `st.session_state` under plain keys (`ROOTS_KEY`,
`SELECTED_KEY`, `SELECTION_KEY`, `POST_KEY`); widgets get their own keys and copy their value there
on change, because Streamlit drops a widget's state when the page that drew it is left.

The view lives in the URL too: the picker's choice (`selection.PARAMS`), ?post= and each page's
options (`url_bound`). The URL wins over the session, so a reload or a shared link restores the
view exactly; links between pages carry it (`view_params`).
"""
from __future__ import annotations

import base64
import functools
import io
import os
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image

from mmaux import badges, selection
from mmaux.analysis import group_results
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError, SearchTooLarge, find_checkpoints, read_info, read_outputs
from mmaux.data.images import ImageLoadError, load_image
from mmaux.paths import ROOTS_ENV, default_roots  # noqa: F401  (ROOTS_ENV: tests set it)
from mmaux.predict import Predictor

# One torch thread per dashboard process by default: sessions run in parallel threads, and torch's
# per-op thread pool otherwise spins against them (and against any other busy process), which
# measured 5-20x slower here on 2 cores. MMAUX_TORCH_THREADS overrides it.
torch.set_num_threads(int(os.environ.get("MMAUX_TORCH_THREADS", "1")))

ROOTS_KEY = "checkpoint_roots"  # session_state: extra roots the user added (list of str)
SELECTED_KEY = "selected_checkpoints"  # session_state: chosen checkpoint folders (list of str)
SELECTION_KEY = "selection"  # session_state: the picker's `selection.Selection` those folders come from
POST_KEY = "post_id"  # session_state: the post the detail views show (str); also ?post=<id>
THUMBNAIL_PX = 64
OPENMOJI_CREDIT = ("Emoji artwork in SynthPosts images: [OpenMoji](https://openmoji.org), the open-source "
                   "emoji and icon project, licensed [CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/).")
NAV_PAGES = (  # (file, title in the navigation, URL path) of every page, app.py's st.navigation; home first
    ("pages/0_Checkpoints.py", "Checkpoints", "Checkpoints"),
    ("pages/1_Predictions.py", "Predictions", "Predictions"),
    ("pages/2_Match_Scores.py", "Match scores", "Match_Scores"),
    ("pages/3_Embeddings.py", "Embeddings", "Embeddings"),
    ("pages/4_Attributions.py", "Attributions", "Attributions"),
    ("pages/5_Your_Post.py", "Your post", "Your_Post"),
)
# the pages a post's detail view links to (Match scores, Embeddings, Attributions), by their navigation names
PAGE_LINKS = tuple((file, f"{title} →") for file, title, _ in NAV_PAGES[2:5])
IMPORTED_NOTE = "imported runs hold predictions only (no weights, embeddings or match scores)"
SYNTHPOSTS_NOTE = ("SynthPosts is a controlled synthetic test bed with known image-text relations, "
                   "not a claim about real social media posts.")


# --- page frame ---------------------------------------------------------------------------------

def page_header(title: str, what: str) -> None:
    """Page config, title and the one line saying what the page shows (call first on a page)."""
    st.set_page_config(page_title=f"{title} · mmaux", layout="wide")
    st.title(title)
    st.caption(what)


def footer() -> None:
    """The OpenMoji credit and the SynthPosts disclaimer, at the bottom of every page."""
    st.divider()
    st.caption(OPENMOJI_CREDIT + "  \n" + SYNTHPOSTS_NOTE)


def stop(message: str, kind: str = "info") -> None:
    """Show `message` (st.info or st.warning), the footer, and end this run of the page: the way a
    page says "nothing to show yet" instead of failing."""
    getattr(st, kind)(message)
    footer()
    st.stop()


# --- checkpoint roots and runs -----------------------------------------------------------------

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


# --- the checkpoint picker ---------------------------------------------------------------------

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
                     runs: pd.DataFrame | None = None) -> list[str]:
    """The structured sidebar picker (task → architectures → loss variants × seeds); returns the
    chosen folders, at most `max`, all comparable (`selection.comparable`).

    The choice is shared by every page (`SELECTED_KEY`) and lives in the URL (`selection.PARAMS`):
    a link or a reload restores it, and the URL wins over the session. `key` only names this
    page's widgets. With no choice yet, `default` (else the group with the largest supported
    effect, `selection.default_group`) is used. Folders of another task, label set or data are
    refused with one line saying why. Fewer than `min` chosen stops the page with a hint.
    """
    runs = runs_lib.usable(sidebar_runs() if runs is None else runs)
    labels = checkpoint_labels(runs)
    choice = _current_selection(runs, labels, default)
    chosen = choice.folders(runs) if choice else []
    st.session_state[SELECTED_KEY], st.session_state[SELECTION_KEY] = chosen, choice
    _write_selection_params(choice)
    _selection_widgets(key, runs, choice)
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


def _selection_widgets(key: str, runs: pd.DataFrame, choice: selection.Selection | None) -> None:
    """Task, architectures, variants and seeds in the sidebar, showing `choice`; a change makes a
    new choice (a new task starts from its default comparison, keeping the variants and seeds
    chosen where it has them) and writes it to the session and the URL."""
    tasks = selection.tasks(runs)
    if not tasks:
        return
    widgets = {name: f"_pick_{key}_{name}" for name in ("task", "arch", "variant", "seed")}
    by_name = {selection.task_name(t): t for t in tasks}  # widget values are plain strings
    current = (choice.dataset, choice.task) if choice else tasks[0]
    task_runs = selection.task_runs(runs, current)
    st.session_state[widgets["task"]] = selection.task_name(current)
    if choice:
        st.session_state[widgets["arch"]] = list(choice.archs)
        st.session_state[widgets["variant"]] = list(choice.variants)
        st.session_state[widgets["seed"]] = list(choice.seeds)

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
        options = {"arch": list(dict.fromkeys(task_runs["architecture"])),
                   "variant": [v for v in runs_lib.VARIANTS if v in set(task_runs["variant"])],
                   "seed": sorted(set(int(s) for s in task_runs["seed"]))}
        st.multiselect("Architecture", options["arch"], key=widgets["arch"], on_change=changed, args=("arch",))
        st.multiselect("Loss variants", options["variant"], key=widgets["variant"], on_change=changed,
                       args=("variant",), help="CE is the baseline every auxiliary variant is compared with.")
        st.multiselect("Seeds", options["seed"], key=widgets["seed"], on_change=changed, args=("seed",),
                       format_func=lambda s: f"seed {s}")


# --- cached loaders ----------------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _predictor(folder: str, stamp: tuple) -> Predictor:
    return Predictor(folder)


def predictor(folder: str) -> Predictor:
    """The checkpoint's `Predictor`, loaded once per process (shared, read-only, eval mode).
    Raises `CheckpointError` for a checkpoint that cannot be loaded (pages show it with st.error)."""
    return _predictor(str(folder), runs_lib.checkpoint_stamp(folder))


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


def _group_frame(cached, group: pd.DataFrame, failure: str) -> pd.DataFrame | None:
    """`cached(group, stamps)`, recomputed when one of the group's checkpoints changes; None, with
    the warning '`failure` <group>: <why>', when some of its outputs cannot be read."""
    try:
        return cached(group, tuple(runs_lib.checkpoint_stamp(f) for f in group["folder"]))
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


# --- the selected post --------------------------------------------------------------------------

def selected_post(post_ids: Sequence[str] | None = None) -> str | None:
    """The post chosen for detail views: `?post=<id>` in the URL wins (it is copied into
    `st.session_state[POST_KEY]`), else the session's choice. With `post_ids`, a post not among
    them gives None."""
    from_url = st.query_params.get("post")
    if from_url:
        st.session_state[POST_KEY] = from_url
    post = st.session_state.get(POST_KEY)
    if post_ids is not None and post not in set(post_ids):
        return None
    if post and not from_url:
        st.query_params["post"] = str(post)  # a page reached by a link without ?post= gets it back
    return post


def select_post(post_id: str) -> None:
    """Make `post_id` the post every detail view shows (session state and the URL)."""
    st.session_state[POST_KEY] = str(post_id)
    st.query_params["post"] = str(post_id)


def post_links(post_id: str) -> None:
    """Links to the post on the Match Scores, Embeddings and Attributions pages."""
    select_post(post_id)
    columns = st.columns(3)
    for column, (page, label) in zip(columns, PAGE_LINKS):
        if (Path(__file__).resolve().parent.parent / page).is_file():
            column.page_link(page, label=label, query_params=view_params())



# --- analysis pages: Match Scores, Embeddings, Attributions -------------------------------------
# (added for pages 2-4; kept apart from the helpers above)

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


@st.cache_data(max_entries=4096)
def _imported(folder: str, stamp: tuple) -> bool:
    return read_info(folder).imported is not None


def imported(folder: str) -> bool:
    """Whether the checkpoint is a predictions-only run imported from elsewhere (cached per stamp)."""
    return _imported(str(folder), runs_lib.checkpoint_stamp(folder))


def with_model(folders: Sequence[str]) -> list[str]:
    """The folders whose model a page can run. Imported runs (predictions only) are left out with
    one line saying why; when nothing is left, that line ends the page."""
    kept = [f for f in folders if not imported(f)]
    if len(kept) < len(folders):
        left_out = len(folders) - len(kept)
        message = (f"{left_out} chosen run(s) left out: {IMPORTED_NOTE}, and this page runs the model. Their effects "
                   "and posts are on the Checkpoints and Predictions pages.")
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
    folders = same_posts(with_model(pick_checkpoints(key, min=1, max=max, runs=runs)))
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


# --- the view in the URL ------------------------------------------------------------------------
# The picker writes `selection.PARAMS`, `select_post` writes ?post=; a page's own options (filters,
# sort order, ...) use `url_bound`. The URL wins over the session, so a reload or a shared link
# restores the view; the last value is also kept in the session, so leaving a page and coming
# back restores it too.

def url_bound(param: str, options: Sequence | None = None, tokens: Mapping | None = None, multi: bool = False,
              cast=str, default=None, key: str | None = None) -> dict:
    """Keyword arguments (key, on_change) for a widget whose value lives in the URL as ?param=.

    Before the widget is drawn, the URL's value (else the one remembered this session, else
    `default`) is put into its state when valid for `options`; a change writes the URL.
    `tokens` maps an option to its text in the URL (default: str(option)); without `options`
    the text is converted back by `cast`. Multiselects (`multi`) join their values with commas.
    `key` keeps a widget's existing key (default `_url_<param>`). Do not pass the widget an
    index/default too: its value comes from here."""
    key, kept = key or f"_url_{param}", f"_url_value_{param}"
    to_token = (lambda o: str(tokens[o])) if tokens is not None else str
    known = {to_token(o): o for o in options} if options is not None else None

    def parse(text: str):
        parts = [t for t in text.split(",") if t] if multi else [text]
        try:
            values = [known[t] if known is not None else cast(t) for t in parts if known is None or t in known]
        except (TypeError, ValueError):
            return None
        if multi:
            return values
        return values[0] if values else None

    def valid(value) -> bool:
        if options is None:
            return value is not None
        return all(v in known.values() for v in value) if multi else value in known.values()

    text = st.query_params.get(param)
    value = parse(text) if text is not None else st.session_state.get(kept, default)
    if value is not None and valid(value):
        st.session_state[key] = value
    elif key in st.session_state and not valid(st.session_state[key]):
        del st.session_state[key]

    def write() -> None:
        value = st.session_state.get(key)
        st.session_state[kept] = value
        text = ",".join(map(to_token, value)) if multi else ("" if value is None else to_token(value))
        if text and value != default:
            st.query_params[param] = text
        elif param in st.query_params:
            del st.query_params[param]

    if text is None and st.session_state.get(kept) not in (None, default):
        write()  # back on the page: the remembered value goes into the URL again
    return {"key": key, "on_change": write}


SLICE_PARAMS = ("slice", "value")  # the slice Predictions filters by (?slice=evidence&value=image_only)


def view_params(*names: str) -> dict[str, str]:
    """The URL's current values of `names` (default: the picker's, the post and the slice), for
    links to another page that must open on the same view."""
    names = names or (*selection.PARAMS, "post", *SLICE_PARAMS)
    return {name: st.query_params[name] for name in names if name in st.query_params}


# --- caveat badges ------------------------------------------------------------------------------

@st.cache_data(show_spinner="Checking the checkpoint (ITM head, live vs stored predictions)…", max_entries=512)
def _checkpoint_badges(folder: str, stamp: tuple, ce_folder: str | None, ce_stamp: tuple) -> list[badges.Badge]:
    from mmaux.analysis import spaces

    table = test_table(folder)
    ran = not imported(folder)  # the model's own checks need its weights; an imported run has none
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
        same = runs[(runs[runs_lib.GROUP_COLUMNS] == row[runs_lib.GROUP_COLUMNS].iloc[0]).all(axis=1)
                    & (runs["variant"] == runs_lib.BASELINE) & (runs["seed"] == row["seed"].iloc[0])]
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
