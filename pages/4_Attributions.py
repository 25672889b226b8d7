"""Attributions: which words and image regions drive a post's prediction, and how much each
modality matters, for two checkpoints side by side."""
import pandas as pd
import streamlit as st

from mmaux import figures, ui
from mmaux.analysis import attributions, reliance
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.alignment import shuffled_pairs
from mmaux.data.images import load_image

PREDICTED = "predicted class"


@st.cache_data(show_spinner="Computing attributions…", max_entries=64)
def attribution(folder: str, stamp: tuple, image_path: str, text: str, target: int | None, method: str,
                image_steps: int) -> attributions.PostAttribution:
    steps = (attributions.TEXT_IG_STEPS, image_steps)
    return attributions.attribute_post(ui.predictor(folder), load_image(image_path), text, target, method, steps)


@st.cache_data(show_spinner="Blanking, emptying and swapping…", max_entries=64)
def one_post_reliance(folder: str, stamp: tuple, image_path: str, text: str, other_image: str) -> pd.Series:
    return reliance.post_reliance(ui.predictor(folder), load_image(image_path), text, load_image(other_image))


def show_attribution(column, name, result, image, classes):
    column.markdown(f"**{name}** explains **{classes[result.target]}** (P = {result.probability:.2f})")
    column.html(attributions.token_html(result.tokens, result.token_scores))
    pooled = attributions.pooled_map(result.image_scores)
    column.plotly_chart(figures.image_attribution(image, pooled), key=f"image-{name}")
    if result.method == "integrated gradients":
        column.caption(f"Convergence delta |Σ attributions − (F(post) − F(baseline))|: text "
                       f"{result.text_delta:.4f}, image {result.image_delta:.4f} (logit units; "
                       f"Σ text {result.token_scores.sum():+.3f}, Σ image {result.image_scores.sum():+.3f}).")


def show_difference(results, names, image):
    """Where the two checkpoints' explanations differ, and how much they agree."""
    (name_a, a), (name_b, b) = zip(names, results)
    st.subheader(f"{name_b} − {name_a}")
    maps = [attributions.normalised(attributions.pooled_map(r.image_scores)) for r in results]
    tokens = [attributions.normalised(r.token_scores) for r in results]
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.image_attribution(image, maps[1] - maps[0], "difference of the normalised maps",
                                                diverging=False), key="image-difference")
    agreement = pd.DataFrame({"text tokens": attributions.compare_maps(*tokens, top_share=0.2),
                              "image (56 × 56 cells)": attributions.compare_maps(*maps, top_share=0.05)}).T
    right.dataframe(agreement, column_config={"k": st.column_config.NumberColumn(format="%d")})
    right.html(attributions.token_html(b.tokens, tokens[1] - tokens[0]))
    right.caption("Token colours: green = more weight for the class in the second checkpoint. Top-k overlap "
                  "and Spearman rank correlation of |attribution| (each map scaled to its largest value).")


def show_reliance(folders, names, table, row):
    st.subheader("Modality reliance")
    partner = int(shuffled_pairs(len(table))[row])
    post, other = table.iloc[row], table.iloc[partner]
    drops = pd.DataFrame({names[f]: one_post_reliance(f, runs_lib.checkpoint_stamp(f), post["image"], post["text"],
                                                      other["image"]) for f in folders}).T
    st.markdown(f"This post: drop in P(predicted class) when its image is blanked, its text emptied, or its image "
                f"swapped with post {other['post_id']}'s")
    st.dataframe(drops.drop(columns="pred").round(3))
    ids = table["post_id"].to_numpy()
    ready = all(reliance.is_cached(f, ids) for f in folders)
    if not (ready or st.checkbox(f"Average over all {len(table)} test posts per slice (up to a minute per "
                                 "checkpoint the first time, cached afterwards)", key="_reliance_all")):
        return
    parts = []
    for folder in folders:
        bar = st.progress(0.0, text=f"{names[folder]}: perturbing the test posts…")
        per_post = reliance.cached_reliance_table(folder, ui.predictor(folder).model, ui.post_inputs(folder),
                                                  progress=lambda f: bar.progress(f))
        bar.empty()
        slices = [c for c in runs_lib.slice_columns(table) if c in table.columns]
        parts.append(reliance.per_slice(per_post, table, slices).assign(checkpoint=names[folder]))
    averaged = pd.concat(parts, ignore_index=True)
    st.plotly_chart(figures.reliance_bars(averaged, reliance.PERTURBATIONS), key="reliance-bars")
    st.dataframe(averaged.set_index(["checkpoint", "slice", "value"]).round(3))


ui.page_header("Attributions", "Integrated gradients (or occlusion) over a post's words and pixels for two "
               "checkpoints side by side, and how much each prediction relies on the image and on the text.")
choice = ui.pick_checkpoints_and_post("attributions", max=2)
folders, names, table, post_id, row = choice.folders, choice.names, choice.table, choice.post_id, choice.row
classes = runs_lib.class_names(table)
method = st.sidebar.radio("Method", attributions.METHODS, key="_attr_method")
image_steps = st.sidebar.select_slider(
    "Image IG steps", (8, 16, 32, 64), value=attributions.IMAGE_IG_STEPS, disabled=method != "integrated gradients",
    help="Each step is a forward and backward pass of the image encoder: more steps, a smaller convergence delta, "
         "proportionally slower (16: about 4 s on 2 CPU cores).")
explained = st.sidebar.selectbox("Class explained", [PREDICTED, *classes])
target = None if explained == PREDICTED else classes.index(explained)
post = table.iloc[row]
ui.show_post(post, width=96)
image = load_image(post["image"])
results = [attribution(f, runs_lib.checkpoint_stamp(f), post["image"], post["text"], target, method, image_steps)
           for f in folders]
for column, folder, result in zip(st.columns(len(folders)), folders, results):
    show_attribution(column, names[folder], result, image, classes)
if len(folders) == 2:
    show_difference(results, [names[f] for f in folders], image)
show_reliance(folders, names, table, row)
ui.footer()
