"""The user's own slices and contrasts in the dashboard (`mmaux.analysis.custom_slices`).

Slices live in the URL (?custom=, every page carries them), so a shared link opens the same
slices; a contrast's four choices live in the URL of Predictions. Their effects are estimated live (the
shipped results know only the datasets' slicings), cached per group, slices and checkpoint stamps.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from mmaux.analysis import custom_slices as custom
from mmaux.analysis import effects
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.claims import REST  # slice B = every other post: the claims' own name for it
from mmaux.checkpoint import CheckpointError, read_outputs
from mmaux.ui.loaders import _group_frame, group_effects, split_table
from mmaux.ui.urlstate import url_bound


def custom_slices() -> list[custom.CustomSlice]:
    """The slices named in the URL; a malformed ?custom= is said once and left out."""
    try:
        return custom.parse(st.query_params.get(custom.PARAM))
    except custom.CustomSliceError as err:
        st.warning(f"The link's own slices cannot be read ({err}); they are left out.")
        return []


def _write(slices: Sequence[custom.CustomSlice]) -> None:
    if slices:
        st.query_params[custom.PARAM] = custom.to_text(slices)
    elif custom.PARAM in st.query_params:
        del st.query_params[custom.PARAM]


def add_slice(new: custom.CustomSlice, posts: pd.DataFrame) -> str:
    """Put `new` into the URL (replacing a slice of its name); '' or why it cannot be added.
    `posts` carry the derived columns (`with_custom_columns`)."""
    try:
        inside = int(new.mask(posts).sum())
    except custom.CustomSliceError as err:
        return str(err)
    if inside == 0:
        return f"No test post is in '{new.name}' ({new.describe()}); nothing was added."
    _write([s for s in custom_slices() if s.name != new.name] + [new])
    return ""


@st.cache_data(max_entries=32)
def _ce_confidence(group: pd.DataFrame, stamps: tuple) -> pd.Series | None:
    ce = group[group["variant"] == runs_lib.BASELINE]["folder"]
    return custom.ce_confidence(group, {f: _confidence(f) for f in ce})


def _confidence(folder: str) -> pd.DataFrame | None:
    """A run's post_id and test confidence, read alone: none of its posts' texts or slices are
    needed for a mean confidence. None when the outputs cannot be read (that run is left out)."""
    try:
        frame = read_outputs(folder, columns=("post_id", "confidence"))[0]
    except CheckpointError:
        return None
    return frame.assign(post_id=frame["post_id"].astype(str))  # as `runs.join_posts` keys posts


def group_confidence(runs: pd.DataFrame, folder: str) -> pd.Series | None:
    """post_id -> the mean test confidence of the CE runs of `folder`'s group (`custom.ce_confidence`),
    cached until one of the group's checkpoints changes. Only two columns of each CE run are read:
    joining all twenty CE tables with their posts took a third of a Predictions rerun on a group
    not seen before."""
    group = group_of(runs, folder)
    return _ce_confidence(group, tuple(runs_lib.checkpoint_stamp(f) for f in group["folder"]))


def group_of(runs: pd.DataFrame, folder: str) -> pd.DataFrame:
    """The usable runs of `folder`'s group (dataset, task, architecture)."""
    usable = runs_lib.usable(runs)
    key = tuple(usable.loc[usable["folder"] == folder, runs_lib.GROUP_COLUMNS].iloc[0])
    return runs_lib.group_runs(usable, key).reset_index(drop=True)


def with_custom_columns(runs: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                        slices: Sequence[custom.CustomSlice]) -> dict[str, pd.DataFrame]:
    """The chosen checkpoints' test tables with the derived columns and one column per slice, the
    CE confidence taken from the first checkpoint's group. A slice that cannot be applied (its
    column is not in these posts) is said and left out."""
    first = next(iter(tables))
    confidence = group_confidence(runs, first)
    posts = custom.derive(tables[first], confidence)
    usable = []
    for one in slices:
        try:
            one.mask(posts)
            usable.append(one)
        except custom.CustomSliceError as err:
            st.warning(f"Slice '{one.name}' is left out: {err}")
    return custom.apply(tables, usable, confidence)


def slice_form(posts: pd.DataFrame, slices: Sequence[custom.CustomSlice]) -> None:
    """The 'Your slices' expander: the slices in the URL, each with its size and a remove button,
    and a form that defines a new one (it goes into the URL and every page's slice choices)."""
    with st.expander(f"Your slices ({len(slices)})" if slices else "Define a slice of your own",
                     expanded=False):
        for one in slices:
            left, right = st.columns([5, 1])
            n = int((posts[one.slicing] == custom.IN).sum()) if one.slicing in posts else 0
            left.markdown(f"**{one.name}**: {one.describe()} · {n} of {len(posts)} test posts")
            if right.button("Remove", key=f"_remove_slice_{one.name}"):
                _write([s for s in slices if s.name != one.name])
                st.rerun()
        with st.form("_new_slice", clear_on_submit=False, border=False):
            name_col, column_col, op_col, value_col = st.columns([2, 2, 1, 2])
            name = name_col.text_input("Name", placeholder="e.g. sad words")
            column = column_col.selectbox("Column", custom.filter_columns(posts),
                                          help="hashtags and words are counted in the text; CE confidence is the "
                                               "mean confidence of the group's CE runs on the post.")
            op = op_col.selectbox("Operator", custom.OPS)
            value = value_col.text_input("Value", placeholder="e.g. sad, 2, 0.6, or a,b,c for 'in'")
            if st.form_submit_button("Add the slice"):
                try:
                    problem = add_slice(custom.CustomSlice(name.strip(), column, op, value.strip()), posts)
                except custom.CustomSliceError as err:
                    problem = str(err)
                if problem:
                    st.error(problem)
                else:
                    st.rerun()
        st.caption("A slice is kept in the link and offered wherever the page slices posts; its effects join the "
                   "group's correction family (more slices, more tests corrected for).")


def slices_caption(slices: Sequence[custom.CustomSlice]) -> str:
    """One line naming the slices in use, for a caption ('' without any)."""
    if not slices:
        return ""
    return "Your slices: " + "; ".join(f"**{s.name}** ({s.describe()})" for s in slices) + "."


@st.cache_data(show_spinner="Estimating the effects on your slices…", max_entries=32)
def _custom_group_effects(group: pd.DataFrame, texts: str, stamps: tuple) -> pd.DataFrame:
    return custom.group_effects(group, custom.parse(texts), split_table)


def group_effects_with(group: pd.DataFrame, slices: Sequence[custom.CustomSlice]) -> pd.DataFrame | None:
    """The group's effects: the stored ones (`loaders.group_effects`), or with `slices` re-estimated
    over its slicings and theirs as one family (`custom.group_effects`); the stored ones, after a
    warning, when the slices cannot be applied."""
    if slices:
        frame = _group_frame(_custom_group_effects, group, "The effects on your slices cannot be estimated for",
                             custom.to_text(slices))
        if frame is not None:
            return frame
    return group_effects(group)


@st.cache_data(show_spinner="Testing your contrast…", max_entries=32)
def _group_contrast(group: pd.DataFrame, contrast: str, texts: str, stamps: tuple) -> pd.DataFrame:
    return custom.group_contrast(group, custom.Contrast.from_text(contrast), custom.parse(texts), split_table)


def group_contrast(group: pd.DataFrame, contrast: custom.Contrast,
                   slices: Sequence[custom.CustomSlice]) -> pd.DataFrame | None:
    """`custom.group_contrast`, cached; None, with a warning, when it cannot be computed."""
    return _group_frame(_group_contrast, group, "Your contrast cannot be tested on", contrast.to_text(),
                        custom.to_text(slices))


def contrast_form(posts: pd.DataFrame, slicings: Sequence[str], variant: str) -> custom.Contrast | None:
    """Widgets for a contrast of the user's own: an effect (default `variant` vs CE), a slicing,
    slice A and slice B (default: every other post), each in the URL (?ceffect=, ?cslice=, ?ca=,
    ?cb=). None when the posts have no slicing."""
    choices = [s for s in slicings if s in posts]
    if not choices:
        return None
    names = list(effects.CONTRASTS)
    effect_col, slicing_col, a_col, b_col = st.columns(4)
    effect = effect_col.selectbox("Effect", names, help="A variant against CE, or a main effect or the "
                                  "interaction of the 2 × 2 design.",
                                  **url_bound("ceffect", names, default=variant if variant in names else names[0]))
    slicing = slicing_col.selectbox("Slicing", choices, **url_bound("cslice", choices, default=choices[0]))
    values = sorted(posts[slicing].astype(str).unique())
    a = a_col.selectbox("Slice A", values, **url_bound("ca", values, default=values[0]))
    others = [REST, *(v for v in values if v != a)]
    b = b_col.selectbox("Slice B", others, **url_bound("cb", others, default=REST))
    return custom.Contrast(effect, slicing, a, None if b == REST else b)
