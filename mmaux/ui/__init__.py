"""Streamlit helpers shared by every dashboard page, one module per concern:

    frame      page title line, footer, navigation names, `stop`
    roots      where checkpoints are looked for, the runs table
    picker     the sidebar's checkpoint picker (task → architectures → variants × seeds)
    loaders    cached readers of what checkpoints store (tables, embeddings, effects, thumbnails)
    urlstate   the view in the URL: the selected post, page options, links between pages
    slices     the user's own slices and contrasts (kept in the URL), and their effects
    posts      what the analysis pages start from: checkpoints with a model and one post
    models     models behind `st.cache_resource` and the badges that need a model run

A page reads top to bottom as:

    ui.page_header("Predictions", "What this page shows, in one line.")
    runs = ui.sidebar_runs()                      # roots in the sidebar, broken runs warned about
    folders = ui.pick_checkpoints("predictions", min=2, max=4, runs=runs)
    table = ui.test_table(folder)                 # cached; a DataFrame copy
    ...
    ui.footer()

Every page imports `mmaux.ui` and calls `ui.<name>`; the names of `models` load on first use, so
a page that runs no model (the home page) never imports the predictor.

State shared across pages lives in `st.session_state` under plain keys (`ROOTS_KEY`,
`SELECTED_KEY`, `SELECTION_KEY`, `POST_KEY`); widgets get their own keys and copy their value there
on change, because Streamlit drops a widget's state when the page that drew it is left. The view
lives in the URL too (`urlstate`): the URL wins over the session, so a reload or a shared link
restores the view exactly, and links between pages carry it (`view_params`).
"""
from __future__ import annotations

import importlib

from mmaux.paths import ROOTS_ENV, default_roots  # noqa: F401  (ROOTS_ENV: tests set it)
from mmaux.ui.frame import (PREDICTIONS_ONLY_NOTE, NAV_PAGES, OPENMOJI_CREDIT, PAGE_LINKS, SYNTHPOSTS_NOTE,  # noqa: F401
                            footer, page_header, stop)
from mmaux.ui.loaders import (THUMBNAIL_PX, group_claims, group_effects, group_slice_scores,  # noqa: F401
                              has_model, image_data_uri, imported, split_table, test_arrays, test_table, test_tables, thumbnail)
from mmaux.ui.picker import (SELECTED_KEY, SELECTION_KEY, checkpoint_labels, default_group, identity,  # noqa: F401
                             pick_checkpoints, selected_checkpoints)
from mmaux.ui.posts import (PostChoice, pick_checkpoints_and_post, pick_post, post_links, same_posts,  # noqa: F401
                            show_post, with_model)
from mmaux.ui.roots import (ROOTS_KEY, SEARCH_TTL_S, checkpoint_folders, checkpoint_roots, load_runs,  # noqa: F401
                            parse_roots, sidebar_roots, sidebar_runs)
from mmaux.ui.slices import (add_slice, contrast_form, custom_slices, group_contrast, group_effects_with,  # noqa: F401
                             group_of, slice_form, slices_caption, with_custom_columns)
from mmaux.ui.urlstate import (CUSTOM_PARAM, POST_KEY, SLICE_PARAMS, select_post, selected_post, url_bound,  # noqa: F401
                               view_params)

_MODELS = ("predictor", "post_inputs", "frozen_features", "checkpoint_badges", "show_badges")


def __getattr__(name: str):
    """The `models` names, imported when a page first uses one (PEP 562)."""
    if name in _MODELS:
        return getattr(importlib.import_module("mmaux.ui.models"), name)
    raise AttributeError(f"module 'mmaux.ui' has no attribute {name!r}")
