"""The view in the URL: the selected post (?post=), each page's options (`url_bound`), and the
parameters links between pages carry (`view_params`). The URL wins over the session, so a reload
or a shared link restores the view exactly."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from mmaux import selection
from mmaux.analysis.custom_slices import PARAM as CUSTOM_PARAM  # the user's own slices, carried by every link

POST_KEY = "post_id"  # session_state: the post the detail views show (str); also ?post=<id>


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
    """The URL's current values of `names` (default: the picker's, the post, the slice and the
    user's own slices), for links to another page that must open on the same view."""
    names = names or (*selection.PARAMS, "post", *SLICE_PARAMS, CUSTOM_PARAM)
    return {name: st.query_params[name] for name in names if name in st.query_params}
