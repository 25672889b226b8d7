"""Embeddings: the test posts in each checkpoint's trained spaces, on comparable 2-d maps: the
fused representation (every checkpoint) and the ITC space (only checkpoints trained with ITC)."""
import numpy as np
import pandas as pd
import streamlit as st

from mmaux import figures, ui, views
from mmaux.analysis import custom_slices as custom
from mmaux.analysis import embeddings, spaces
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.alignment import silhouette_per_label

MATCH_SCORE = "match score"
COLOURS = ("label", "correct")
SPACE_NAMES = {"fused": "fused (what the classifier reads)", "itc": "ITC (image and text)",
               "both": "both, side by side"}
PICKED_KEY = "_embed_picked"  # session_state: post ids of the last box or lasso selection on a map


@st.cache_data(show_spinner=False, max_entries=64)
def layout(folder: str, stamp: tuple, params: embeddings.LayoutParams) -> embeddings.Layout:
    return embeddings.checkpoint_layout(folder, params)


@st.cache_data(show_spinner="Measuring the spaces…", max_entries=64)
def fused_silhouettes(folder: str, stamp: tuple) -> pd.Series:
    return silhouette_per_label(ui.test_arrays(folder)["fused"], ui.test_table(folder)["label"])


@st.cache_data(show_spinner="Measuring the aligned space…", max_entries=64)
def itc_numbers(folder: str, stamp: tuple) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """A trained ITC space's alignment numbers beside its references, its pair cosines, and the
    silhouette per label of each modality."""
    arrays, labels = ui.test_arrays(folder), ui.test_table(folder)["label"]
    references = spaces.itc_references(arrays["text_emb"], arrays["image_emb"], ui.frozen_features(folder),
                                       spaces.checkpoint_spaces(folder).itc_after_fusion)
    silhouettes = pd.DataFrame({m: silhouette_per_label(arrays[f"{m}_emb"], labels) for m in embeddings.MODALITIES})
    return references, embeddings.space_summary(arrays["text_emb"], arrays["image_emb"]), silhouettes


@st.cache_data(show_spinner="Comparing neighbourhoods…", max_entries=64)
def comparison(first: str, other: str, stamps: tuple, space: str) -> tuple[pd.DataFrame, dict]:
    return embeddings.compare_spaces(ui.test_arrays(first), ui.test_arrays(other), space=space)


def compute_missing(folders, params, names):
    """Fit the layouts not yet cached on disk, with progress (numba compiles on first use)."""
    missing = [f for f in folders if not embeddings.is_cached(f, params)]
    if not missing:
        return
    with st.status(f"Computing {params.method.upper()} layouts ({len(missing)} checkpoint(s))…") as status:
        bar = st.progress(0.0)
        for i, folder in enumerate(missing):
            def report(fraction, message, i=i, name=names[folder]):
                bar.progress((i + fraction) / len(missing), text=f"{name}: {message}")
            embeddings.checkpoint_layout(folder, params, progress=report)
        status.update(label="Layouts computed and cached", state="complete")


def match_score(folder: str, table: pd.DataFrame) -> pd.Series:
    """The checkpoint's trained own-pair score: ITM P(match), or the cosine in its trained ITC space."""
    kind = spaces.checkpoint_spaces(folder).score_kind
    return table["itm_match"] if kind == "itm" else table["itc_cosine"] if kind == "itc" else np.nan


def panels(folders, names, params, colour) -> dict[str, pd.DataFrame]:
    """Each checkpoint's layout aligned to the first's, joined with the colouring columns."""
    layouts = [layout(f, runs_lib.checkpoint_stamp(f), params) for f in folders]
    frames = {}
    for folder, fitted in zip(folders, layouts):
        table = ui.test_table(folder)
        table[MATCH_SCORE] = match_score(folder, table)
        table["correct"] = table["correct"].map({True: "right", False: "wrong"})
        frame = embeddings.align_to(fitted, layouts[0]).frame()
        frames[names[folder]] = frame.merge(table[["post_id", colour]], on="post_id", how="left")
    return frames


def draw_maps(container, frames, colour, lines, post_id, key):
    """The maps; clicking a point selects its post on every page; a box or lasso selection keeps
    its posts (`PICKED_KEY`) for `picked_slice` and marks them in every panel (plotly itself
    marks them only in the panel the box was drawn in). The selection is read before drawing, so
    the marks follow it in the same rerun."""
    known = set(next(iter(frames.values()))["post_id"])
    selected = (st.session_state.get(key) or {}).get("selection", {})
    ids = list(dict.fromkeys(p.get("customdata") for p in selected.get("points", []) if p.get("customdata") in known))
    boxed = bool(selected.get("box") or selected.get("lasso"))
    if boxed:
        st.session_state[PICKED_KEY] = ids
    fig = figures.embedding_maps(frames, colour, lines, post_id, picked=ids if boxed else ())
    container.plotly_chart(fig, key=key, on_select="rerun", selection_mode=("points", "box", "lasso"))
    if not boxed and ids and ids[0] != post_id:
        ui.select_post(ids[0])
        st.rerun()


def maps(folders, names, params, colour, lines, post_id, n_posts):
    holder = st.empty()
    if params.method == "umap" and not all(embeddings.is_cached(f, params) for f in folders):
        waiting = st.empty()  # progress and the interim PCA note, cleared once UMAP is ready
        with waiting.container():
            quick = embeddings.LayoutParams(method="pca", n_posts=params.n_posts, space=params.space)
            compute_missing(folders, quick, names)
            draw_maps(holder.container(), panels(folders, names, quick, colour), colour, lines, post_id,
                      f"maps-pca-{params.space}")
            st.caption("PCA shown while the UMAP layouts are computed; they are cached for next time "
                       "(`python -m mmaux embed --checkpoint DIR` computes them ahead).")
            compute_missing(folders, params, names)
        waiting.empty()
        holder.empty()
    draw_maps(holder.container(), panels(folders, names, params, colour), colour, lines, post_id,
              f"maps-{params.method}-{params.space}")
    what = "posts (fused vectors)" if params.space == "fused" else "posts × 2 modalities (● image, × text)"
    st.caption(f"{params.method.upper()} of {n_posts} {what} per checkpoint, each Procrustes-aligned (rotation, "
               "reflection, scale) to the first panel. Match score: ITM P(match), or the cosine in a trained ITC "
               "space for checkpoints without an ITM head.")


def neighbours(folders: list[str], names, table: pd.DataFrame, row: int, space: str) -> None:
    """The selected post's nearest test posts in one space (`embeddings.nearest_posts`) of one of
    the checkpoints drawn in it (the first unless chosen); a click on one selects it."""
    what = "fused vectors" if space == "fused" else "texts nearest its image (ITC)"
    st.markdown(f"**Nearest posts** · {what}")
    folder = st.selectbox("In", folders, format_func=names.get, key=f"_near_in_{space}",
                          label_visibility="collapsed", disabled=len(folders) == 1)
    near = embeddings.nearest_posts(ui.test_arrays(folder), row, space)
    posts = table.iloc[near["row"]]
    view = pd.DataFrame({"post": posts["post_id"].to_numpy(), "gold": posts["label"].to_numpy(),
                         "cosine": near["cosine"].round(3).to_numpy(), "text": posts["text"].str[:60].to_numpy()})
    key = f"_near_{space}"
    event = st.dataframe(view, hide_index=True, key=key, on_select="rerun", selection_mode="single-row")
    rows = event.selection.get("rows", []) if event else []
    if rows and view["post"].iloc[rows[0]] != table["post_id"].iloc[row]:
        ui.select_post(view["post"].iloc[rows[0]])
        st.rerun()


def picked_slice(table: pd.DataFrame) -> None:
    """The posts of the last box or lasso selection, savable as a slice of the user's own: it goes
    into the URL and opens on Predictions, where its effects and contrasts are estimated."""
    ids = st.session_state.get(PICKED_KEY) or []
    if not ids:
        st.caption("Draw a box or a lasso on a map (toolbar, top right) to pick posts: they can be saved as a "
                   "slice of your own and opened on Predictions.")
        return
    st.markdown(f"**{len(ids)} posts picked on the map**")
    name_col, button_col = st.columns([3, 1])
    name = name_col.text_input("Name the picked posts", value="picked on the map", key="_picked_name")
    if button_col.button("Save as a slice", key="_picked_save"):
        try:
            problem = ui.add_slice(custom.CustomSlice(name.strip(), "post_id", "in", ",".join(ids)), table)
        except custom.CustomSliceError as err:
            problem = str(err)
        if problem:
            st.error(problem)
    saved = {s.name: s for s in ui.custom_slices()}
    if name.strip() in saved:
        st.page_link("pages/1_Predictions.py", label=f"Open '{name.strip()}' on Predictions →",
                     query_params={**ui.view_params(), "slice": saved[name.strip()].slicing, "value": custom.IN})


def fused_table(folders, names):
    st.subheader("The fused representation in numbers")
    stamps = {f: runs_lib.checkpoint_stamp(f) for f in folders}
    first = folders[0]
    if len(folders) > 1:
        compared = ["fused CKA", "mean fused kNN overlap"]
        table = pd.DataFrame(index=[names[f] for f in folders], columns=compared, dtype=float)
        for folder in folders[1:]:
            per_post, cka = comparison(first, folder, (stamps[first], stamps[folder]), "fused")
            table.loc[names[folder], compared] = [cka["fused CKA"], per_post.mean().iloc[0]]
        st.dataframe(views.against_first(table, compared))
        st.caption("CKA and k-NN overlap (k = 10, or the number of test posts − 1 if fewer) of each checkpoint's "
                   f"fused vectors against the first's ({names[first]}): 1 = the same representation / the same "
                   "neighbours. The fused space is trained in every checkpoint.")
    st.markdown("**Silhouette per label in the fused space** (cosine)")
    # a row per label: the labels' names (relation's are long) would push columns past 1366 px
    st.dataframe(pd.DataFrame({names[f]: fused_silhouettes(f, stamps[f]) for f in folders}).round(3))
    st.caption("1 = the label's posts tight and apart from the others, 0 = overlapping.")


def itc_tables(folders, names):
    st.subheader("The aligned (ITC) space in numbers, against references")
    stamps = {f: runs_lib.checkpoint_stamp(f) for f in folders}
    results = {names[f]: itc_numbers(f, stamps[f]) for f in folders}
    references = pd.concat({n: r[0] for n, r in results.items()}, names=["checkpoint"]).reset_index(0)
    st.dataframe(views.reference_text(references), hide_index=True)
    st.caption("Each number beside the same number for a seeded random projection of the same frozen features "
               "(nothing aligned) and chance (k / n for recall@k, 0.5 for an AUROC; the modality gap has none). "
               "Modality gap: distance between "
               "the centres of the normalised image and text clouds (0 = same centre).")
    table = pd.DataFrame({n: r[1] for n, r in results.items()}).T
    first, compared = folders[0], []
    for folder in folders[1:]:
        per_post, cka = comparison(first, folder, (stamps[first], stamps[folder]), "itc")
        compared = [*cka, *(f"mean {c}" for c in per_post)]
        table.loc[names[folder], compared] = [*cka.values(), *per_post.mean()]
    st.dataframe(views.against_first(table, compared), column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if c not in compared})
    st.caption(f"CKA and k-NN overlap of each ITC space against the first ITC-trained checkpoint's ({names[first]}).")
    st.markdown("**Silhouette per label in the ITC space** (cosine)")
    st.dataframe(pd.concat({n: r[2] for n, r in results.items()}, axis=1).round(3))


ui.page_header("Embeddings", "The test posts in each checkpoint's trained spaces on 2-d maps, one per "
               "checkpoint, aligned to the first so that a post keeps its place across panels: the fused "
               "representation that the classifier reads, and the ITC space of checkpoints trained with ITC.")
choice = ui.pick_checkpoints_and_post("embeddings", max=4)
folders, names, table, post_id = choice.folders, choice.names, choice.table, choice.post_id
trained = {f: spaces.checkpoint_spaces(f) for f in folders}
space = st.sidebar.radio("Space", tuple(SPACE_NAMES), format_func=SPACE_NAMES.get,
                         **ui.url_bound("space", tuple(SPACE_NAMES), key="_embed_space"))
method = st.sidebar.radio("Map", ("UMAP", "PCA"), horizontal=True,
                          **ui.url_bound("map", ("UMAP", "PCA"), key="_embed_method")).lower()
drawn = ("fused", "itc") if space == "both" else (space,)
shown = {s: [f for f in folders if s == "fused" or trained[f].itc] for s in drawn}
every = list(dict.fromkeys(f for s in drawn for f in shown[s]))
scored = bool(every) and all(trained[f].score_kind for f in every)
colour = st.sidebar.selectbox("Colour by", [*COLOURS, *([MATCH_SCORE] if scored else []),
                                            *(c for c in runs_lib.slice_columns(table) if c != "label")])
lines = "itc" in drawn and st.sidebar.checkbox("Join each post's image and text", value=False)
n_posts = st.sidebar.number_input("Posts (stratified by label)", 50, 5000, 1000, step=50, key="_embed_posts")
ui.show_post(table[table["post_id"] == post_id].iloc[0], width=96)
if "itc" in drawn:
    for folder in folders:
        if not trained[folder].itc:
            st.info(f"**{names[folder]}**: {spaces.NO_ITC}; see it in the fused space.")
        elif trained[folder].itc_after_fusion:
            st.warning(f"**{names[folder]}** is {spaces.EARLY_FUSION_NOTE}; the Match scores page has cross-pair "
                       "retrieval.")
# the maps side by side, each space's nearest posts under it at the maps' full width (a side column
# cut the table at 1366 px)
for column, one in zip(st.columns(len(drawn)), drawn):
    if shown[one]:
        with column:
            if len(drawn) > 1:
                st.markdown(f"**{SPACE_NAMES[one]}**")
            params = embeddings.LayoutParams(method=method, n_posts=int(n_posts), space=one)
            maps(shown[one], names, params, colour, lines and one == "itc", post_id, min(int(n_posts), len(table)))
            neighbours(shown[one], names, table, choice.row, one)
picked_slice(table)
for one in drawn:  # statements, not an expression: Streamlit would write the expression's None
    if shown[one] and one == "fused":
        fused_table(shown[one], names)
    elif shown[one]:
        itc_tables(shown[one], names)
ui.footer()
