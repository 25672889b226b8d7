"""Attributions: which words and image regions drive a post's prediction, and how much each
modality matters, for two checkpoints side by side."""
import pandas as pd
import streamlit as st

from mmaux import figures, ui
from mmaux.analysis import attributions, reliance
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.alignment import shuffled_pairs
from mmaux.data import normalize
from mmaux.data.images import load_image

PREDICTED = "predicted class"


@st.cache_data(show_spinner="Computing attributions…", max_entries=64)
def attribution(folder: str, stamp: tuple, image_path: str, text: str, target: int | None,
                method: str) -> attributions.PostAttribution:
    return attributions.attribute_post(ui.predictor(folder), load_image(image_path), text, target, method)


@st.cache_data(show_spinner="Blanking, emptying and swapping…", max_entries=64)
def one_post_reliance(folder: str, stamp: tuple, image_path: str, text: str, other_image: str) -> pd.Series:
    return reliance.post_reliance(ui.predictor(folder), load_image(image_path), text, load_image(other_image))


def show_attribution(column, folder, name, result, image, classes, post, peak):
    """One checkpoint's word and image maps; its image map coloured on the scale `peak` that every
    checkpoint's map of the same method shares."""
    column.markdown(f"**{name}** explains **{classes[result.target]}** (P = {result.probability:.2f})")
    column.html(attributions.token_html(result.tokens, result.token_scores))
    if ui.predictor(folder).model.cfg.normalize_tweets:
        column.caption(normalize.NOTE)
    if result.method != "integrated gradients":
        column.plotly_chart(figures.image_attribution(image, attributions.on_grid(result.image_scores), peak=peak),
                            key=f"image-{name}")
        return
    h, w = result.image_scores.shape
    title = f"IG over the image encoder's {h} × {w} cells"
    if result.image.converged:
        column.plotly_chart(figures.image_attribution(image, attributions.on_grid(result.image_scores), title,
                                                      peak=peak), key=f"image-{name}")
    else:  # the unconverged map, labelled, with occlusion beside it
        column.warning(f"Image map {result.image.describe()}: its values do not add up; occlusion beside it.")
        left, right = column.columns(2)
        left.plotly_chart(figures.image_attribution(image, attributions.on_grid(result.image_scores),
                                                    f"{title} (did not converge)", peak=peak), key=f"image-{name}")
        occluded = attribution(folder, runs_lib.checkpoint_stamp(folder), post["image"], post["text"], result.target,
                               "occlusion")
        right.plotly_chart(figures.image_attribution(image, attributions.on_grid(occluded.image_scores), "occlusion"),
                           key=f"occlusion-{name}")
    if not result.text.converged:
        column.warning(f"Text map {result.text.describe()}: its values do not add up.")
    global_part = f"; pooled image vector {result.image_global:+.3f}" if result.image_global else ""
    column.caption(f"Integrated gradients, text: {result.text.describe()}. Image: {result.image.describe()}. "
                   f"Σ text {result.token_scores.sum():+.3f}, Σ image cells {result.image_scores.sum():+.3f}"
                   f"{global_part} (completeness: each Σ = F(post) − F(reference) − delta).")


def show_difference(results, names, image):
    """Where the two checkpoints' explanations differ, and how much they agree."""
    (name_a, a), (name_b, b) = zip(names, results)
    st.subheader(f"{name_b} − {name_a}")
    native = [r.image_scores for r in results]
    same_grid = native[0].shape == native[1].shape and min(native[0].shape) < attributions.DISPLAY_CELLS
    maps = [attributions.normalised(attributions.on_grid(m)) for m in native]
    tokens = [attributions.normalised(r.token_scores) for r in results]
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.image_attribution(image, maps[1] - maps[0], "difference of the normalised maps",
                                                diverging=False), key="image-difference")
    compared = [attributions.normalised(m) for m in native] if same_grid else maps
    cells = "{} × {} cells".format(*compared[0].shape)
    agreement = pd.DataFrame({"text tokens": attributions.compare_maps(*tokens, top_share=0.2),
                              f"image ({cells})": attributions.compare_maps(
                                  *compared, top_share=0.1 if same_grid else 0.05)}).T
    right.dataframe(agreement, column_config={  # short headers: the long ones cut the table in its 2/5 column
        "k": st.column_config.NumberColumn(format="%d"),
        "top-k overlap": st.column_config.NumberColumn("top-k", format="%.2f", help="top-k overlap of |attribution|"),
        "rank correlation": st.column_config.NumberColumn("Spearman ρ", format="%.2f",
                                                          help="Spearman rank correlation of |attribution|")})
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


ui.page_header("Attributions", "Integrated gradients (or occlusion) over a post's words and image regions for "
               "two checkpoints side by side, and how much each prediction relies on the image and on the text.")
choice = ui.pick_checkpoints_and_post("attributions", max=2)
folders, names, table, post_id, row = choice.folders, choice.names, choice.table, choice.post_id, choice.row
ui.show_badges(folders, names, choice.runs)
classes = runs_lib.class_names(table)
method = st.sidebar.radio(
    "Method", attributions.METHODS, **ui.url_bound("method", attributions.METHODS, key="_attr_method"),
    help="Integrated gradients: steps are added per post until each map adds up to within 5 % of the logit change "
         "it explains (or 0.05 logits); a map that does not is labelled and shown beside occlusion.")
explained = st.sidebar.selectbox("Class explained", [PREDICTED, *classes])
target = None if explained == PREDICTED else classes.index(explained)
post = table.iloc[row]
ui.show_post(post, width=96)
image = load_image(post["image"])
results = [attribution(f, runs_lib.checkpoint_stamp(f), post["image"], post["text"], target, method) for f in folders]
peak = max(float(abs(attributions.on_grid(r.image_scores)).max()) for r in results)  # one colour scale for all
for column, folder, result in zip(st.columns(len(folders)), folders, results):
    show_attribution(column, folder, names[folder], result, image, classes, post, peak)
if len(folders) > 1:
    st.caption(f"The image maps share one colour scale, ±{peak:.3g} (the largest |attribution| of either), so a "
               "colour means the same attribution in each; a map that stays pale attributes little to the image. "
               "The difference below compares the maps each scaled to its own largest value.")
if len(folders) == 2:
    show_difference(results, [names[f] for f in folders], image)
show_reliance(folders, names, table, row)
ui.footer()
