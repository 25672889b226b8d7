"""Embedding space: the test posts' ITC image and text embeddings on comparable 2-d maps."""
import pandas as pd
import streamlit as st

from mmaux import figures, ui
from mmaux.analysis import embeddings
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.alignment import silhouette_per_label

MATCH_SCORE = "match score"
COLOURS = ("label", "correct", MATCH_SCORE)


@st.cache_data(show_spinner=False, max_entries=64)
def layout(folder: str, stamp: tuple, params: embeddings.LayoutParams) -> embeddings.Layout:
    return embeddings.checkpoint_layout(folder, params)


@st.cache_data(show_spinner="Measuring the spaces…", max_entries=64)
def space_numbers(folder: str, stamp: tuple) -> tuple[dict, pd.DataFrame]:
    """Modality gap, true/random pair cosine, and silhouette per label of each modality."""
    arrays, labels = ui.test_arrays(folder), ui.test_table(folder)["label"]
    silhouettes = pd.DataFrame({m: silhouette_per_label(arrays[f"{m}_emb"], labels) for m in embeddings.MODALITIES})
    return embeddings.space_summary(arrays["text_emb"], arrays["image_emb"]), silhouettes


@st.cache_data(show_spinner="Comparing neighbourhoods…", max_entries=64)
def comparison(first: str, other: str, stamps: tuple) -> tuple[pd.DataFrame, dict]:
    return embeddings.compare_spaces(ui.test_arrays(first), ui.test_arrays(other))


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


def panels(folders, names, params, colour) -> dict[str, pd.DataFrame]:
    """Each checkpoint's layout aligned to the first's, joined with the colouring columns."""
    layouts = [layout(f, runs_lib.checkpoint_stamp(f), params) for f in folders]
    frames = {}
    for folder, fitted in zip(folders, layouts):
        table = ui.test_table(folder)
        table[MATCH_SCORE] = table["itm_match"].fillna(table["itc_cosine"])
        table["correct"] = table["correct"].map({True: "right", False: "wrong"})
        frame = embeddings.align_to(fitted, layouts[0]).frame()
        frames[names[folder]] = frame.merge(table[["post_id", colour]], on="post_id", how="left")
    return frames


def draw_maps(container, frames, colour, lines, post_id, key):
    """The maps; clicking a point selects its post on every page."""
    fig = figures.embedding_maps(frames, colour, lines, post_id)
    event = container.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points")
    points = (event or {}).get("selection", {}).get("points", [])
    clicked = next((p.get("customdata") for p in points if p.get("customdata")), None)
    if clicked and clicked != post_id:
        ui.select_post(clicked)
        st.rerun()


def numbers(folders, names):
    st.subheader("The spaces in numbers")
    summaries, silhouettes = {}, {}
    for folder in folders:
        summaries[names[folder]], silhouettes[names[folder]] = space_numbers(folder, runs_lib.checkpoint_stamp(folder))
    table = pd.DataFrame(summaries).T
    first = folders[0]
    for folder in folders[1:]:
        per_post, cka = comparison(first, folder, (runs_lib.checkpoint_stamp(first), runs_lib.checkpoint_stamp(folder)))
        table.loc[names[folder], [*cka, *(f"mean {c}" for c in per_post)]] = [*cka.values(), *per_post.mean()]
    st.dataframe(table, column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns})
    st.caption("Modality gap: distance between the centres of the normalised image and text clouds (0 = same "
               "centre). CKA and k-NN overlap (k = 10): each checkpoint against the first "
               f"({names[first]}); 1 = the same representation / the same neighbours.")
    st.markdown("**Silhouette per label** (cosine; 1 = classes tight and apart, 0 = overlapping)")
    st.dataframe(pd.concat(silhouettes, axis=1).round(3))


ui.page_header("Embedding space", "The test posts' ITC-projected image (●) and text (×) embeddings on 2-d maps, "
               "one per checkpoint, aligned to the first so that a post keeps its place across panels.")
choice = ui.pick_checkpoints_and_post("embeddings", max=4)
folders, names, table, post_id = choice.folders, choice.names, choice.table, choice.post_id
method = st.sidebar.radio("Map", ("UMAP", "PCA"), horizontal=True, key="_embed_method").lower()
colour = st.sidebar.selectbox("Colour by", [*COLOURS, *(c for c in runs_lib.slice_columns(table) if c != "label")])
lines = st.sidebar.checkbox("Join each post's image and text", value=False)
n_posts = st.sidebar.number_input("Posts (stratified by label)", 50, 5000, 1000, step=50, key="_embed_posts")
params = embeddings.LayoutParams(method=method, n_posts=int(n_posts))
ui.show_post(table[table["post_id"] == post_id].iloc[0], width=96)
maps = st.empty()
if method == "umap" and not all(embeddings.is_cached(f, params) for f in folders):
    waiting = st.empty()  # progress and the interim PCA note, cleared once UMAP is ready
    with waiting.container():
        quick = embeddings.LayoutParams(method="pca", n_posts=int(n_posts))
        compute_missing(folders, quick, names)
        draw_maps(maps.container(), panels(folders, names, quick, colour), colour, lines, post_id, "maps-pca")
        st.caption("PCA shown while the UMAP layouts are computed; they are cached for next time "
                   "(`python -m mmaux embed --checkpoint DIR` computes them ahead).")
        compute_missing(folders, params, names)
    waiting.empty()
    maps.empty()
draw_maps(maps.container(), panels(folders, names, params, colour), colour, lines, post_id, f"maps-{method}")
st.caption(f"{method.upper()} of {min(int(n_posts), len(table))} posts × 2 modalities per checkpoint, each "
           "Procrustes-aligned (rotation, reflection, scale) to the first panel. Marker: ● image, × text. "
           "Match score: ITM P(match), or the ITC cosine for checkpoints without an ITM head.")
numbers(folders, names)
ui.footer()
