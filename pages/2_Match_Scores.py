"""ITM match scores and alignment health: does each checkpoint tell a post's own text from others?"""
import numpy as np
import pandas as pd
import streamlit as st

from mmaux import figures, ui
from mmaux.analysis import alignment, matching
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.embeddings import stratified_sample


@st.cache_data(show_spinner="Scoring texts…", max_entries=64)
def ranked(folder: str, stamp: tuple, row: int, n: int) -> tuple[pd.DataFrame, str]:
    """The post's image against its own text and the n most / least similar other texts."""
    most, least = matching.similar_texts(ui.test_arrays(folder)["text_emb"], row, n)
    scores = matching.rank_texts_for_image(ui.predictor(folder).model, ui.post_inputs(folder), row, np.r_[most, least])
    texts = ui.test_table(folder)["text"].to_numpy()[np.r_[row, most, least]]
    groups = ["own text"] + ["most similar texts"] * len(most) + ["least similar texts"] * len(least)
    return pd.DataFrame({"text": [t[:70] for t in texts], "score": scores.values, "group": groups}), scores.label


@st.cache_data(show_spinner="Scoring image × text pairs…", max_entries=32)
def heatmap(folder: str, stamp: tuple, rows: tuple[int, ...]) -> tuple[np.ndarray, str]:
    scores = matching.match_matrix(ui.predictor(folder).model, ui.post_inputs(folder).batch(list(rows)))
    return scores.values, scores.label


@st.cache_data(show_spinner="Scoring true and shuffled pairs of every test post…", max_entries=16)
def health(folder: str, stamp: tuple) -> tuple[dict, np.ndarray, np.ndarray, pd.DataFrame, str]:
    """Per checkpoint: retrieval recall@k from the stored ITC embeddings, true vs shuffled pair
    scores with their AUROC, and whether the score predicts a right classification."""
    arrays, table = ui.test_arrays(folder), ui.test_table(folder)
    if table["itm_match"].notna().all():
        true, shuffled = matching.cached_true_and_shuffled(folder, ui.predictor(folder).model, ui.post_inputs(folder))
        confidence = true.values
    else:
        true, shuffled = matching.itc_true_and_shuffled(arrays["text_emb"], arrays["image_emb"])
        confidence = (true.values + 1) / 2  # cosine [-1, 1] read as a [0, 1] score for the curve
    predicts = alignment.score_predicts_correct(true.values, table["correct"])
    numbers = {"score": true.label, "true vs shuffled AUROC": alignment.match_auroc(true.values, shuffled.values),
               **alignment.recall_at_k(alignment.cosine_matrix(arrays["image_emb"], arrays["text_emb"])),
               "score → right AUROC": predicts.auroc}
    curve = alignment.reliability_curve(confidence, table["correct"])
    return numbers, true.values, shuffled.values, curve, predicts.reason


def one_post(folders, names, row, n):
    st.subheader("One post against other texts")
    st.caption(f"The post's image scored with its own text, the {n} other texts most similar to it and the {n} "
               "least similar (cosine of each checkpoint's ITC text embeddings).")
    for column, folder in zip(st.columns(len(folders)), folders):
        frame, label = ranked(folder, runs_lib.checkpoint_stamp(folder), row, n)
        column.markdown(f"**{names[folder]}**")
        column.plotly_chart(figures.ranked_texts(frame, label), key=f"ranked-{folder}")


def pair_heatmaps(folders, names, rows):
    st.subheader("Images × texts of a sample of posts")
    st.caption("Diagonal = true pairs. A well-aligned model lights up the diagonal only.")
    ids = ui.test_table(folders[0])["post_id"].to_numpy()[list(rows)]
    for column, folder in zip(st.columns(min(len(folders), 2)) * 2, folders):
        matrix, label = heatmap(folder, runs_lib.checkpoint_stamp(folder), rows)
        column.markdown(f"**{names[folder]}**")
        column.plotly_chart(figures.match_heatmap(matrix, ids, label), key=f"heat-{folder}")


def alignment_health(folders, names):
    st.subheader("Alignment health over the test set")
    results = {names[f]: health(f, runs_lib.checkpoint_stamp(f)) for f in folders}
    table = pd.DataFrame({name: r[0] for name, r in results.items()}).T
    st.dataframe(table, column_config={c: st.column_config.NumberColumn(format="%.3f")
                                       for c in table.columns if c != "score"})
    st.caption("true vs shuffled AUROC: telling each image's own text from another post's. i2t/t2i@k: retrieval "
               "recall from ITC cosine (stored test embeddings). score → right AUROC: does a higher own-pair "
               "score mean the classifier is right? (0.5 = unrelated)")
    for name, r in results.items():
        if r[4]:
            st.caption(f"{name}: {r[4]}")
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.true_vs_shuffled({n: (r[1], r[2]) for n, r in results.items()},
                                               {n: r[0]["score"] for n, r in results.items()}), key="distributions")
    right.plotly_chart(figures.reliability({n: r[3] for n, r in results.items()},
                                           "own-pair score (ITC cosine rescaled to [0, 1])"), key="reliability")


ui.page_header("ITM match scores", "How strongly each checkpoint's ITM head (or, without one, its ITC cosine) "
               "ties an image to its own text rather than to other posts' texts, and whether that predicts a "
               "right classification.")
choice = ui.pick_checkpoints_and_post("match", max=4)
folders, names, table, post_id, row = choice.folders, choice.names, choice.table, choice.post_id, choice.row
n_texts = st.sidebar.slider("Other texts each way", 1, 10, 5)
sample_size = st.sidebar.slider("Posts in the heatmap", 4, 30, 12)
without_itm = [names[f] for f in folders if ui.test_table(f)["itm_match"].isna().all()]
if without_itm:
    st.info("No ITM head in " + ", ".join(without_itm) + ": their scores are the cosine of the ITC embeddings "
            "(−1 to 1), not a match probability.")
sample = stratified_sample(table["label_index"], sample_size - 1, seed=0)
rows = tuple(int(r) for r in np.r_[row, sample[sample != row]][:sample_size])
ui.show_post(table.iloc[row])
one_post(folders, names, row, n_texts)
pair_heatmaps(folders, names, rows)
alignment_health(folders, names)
ui.footer()
