"""Match scores and alignment: does each checkpoint tell a post's own text from others, in what it
trained (an ITM head, an ITC space), against chance and a random projection? And is its
classifier calibrated?"""
import numpy as np
import pandas as pd
import streamlit as st

from mmaux import figures, ui, views
from mmaux.analysis import alignment, matching, spaces
from mmaux.analysis import runs as runs_lib
from mmaux.analysis.embeddings import stratified_sample
from mmaux.checkpoint import read_info


def frozen(folder: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray] | None:
    return ui.frozen_features(folder)


@st.cache_data(show_spinner="Choosing the other texts…", max_entries=64)
def other_texts(folder: str, stamp: tuple, row: int, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Rows of the n texts most and least like the post's own, by this checkpoint's pretrained
    text encoder's features (its ITC text embeddings for ViLT, which has none apart)."""
    features = frozen(folder, stamp)
    text = features[0] if features is not None else ui.test_arrays(folder)["text_emb"]
    most, least = matching.similar_texts(text, row, n)
    return tuple(int(r) for r in most), tuple(int(r) for r in least)


@st.cache_data(show_spinner="Scoring texts…", max_entries=64)
def ranked(folder: str, stamp: tuple, row: int, most: tuple[int, ...], least: tuple[int, ...]) -> tuple[pd.DataFrame, str]:
    """The post's image scored with its own text and with the texts of rows `most` and `least`."""
    scores = matching.rank_texts_for_image(ui.predictor(folder).model, ui.post_inputs(folder), row, np.r_[most, least])
    texts = ui.test_table(folder)["text"].to_numpy()[np.r_[row, most, least].astype(int)]
    groups = ["own text"] + ["most similar texts"] * len(most) + ["least similar texts"] * len(least)
    return pd.DataFrame({"text": [t[:70] for t in texts], "score": scores.values, "group": groups}), scores.label


@st.cache_data(show_spinner="Scoring image × text pairs…", max_entries=32)
def heatmap(folder: str, stamp: tuple, rows: tuple[int, ...]) -> tuple[np.ndarray, str]:
    scores = matching.match_matrix(ui.predictor(folder).model, ui.post_inputs(folder).batch(list(rows)))
    return scores.values, scores.label


@st.cache_data(show_spinner="Scoring true and shuffled pairs of every test post…", max_entries=16)
def health(folder: str, stamp: tuple) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, str]:
    """One checkpoint's alignment numbers, each with the random projection's and chance beside
    it; its own-pair and shuffled-pair scores; the score's label."""
    trained, arrays = spaces.checkpoint_spaces(folder), ui.test_arrays(folder)
    extra = {}
    if trained.itm:
        true, shuffled = matching.cached_true_and_shuffled(
            folder, ui.test_table(folder)["post_id"], lambda: (ui.predictor(folder).model, ui.post_inputs(folder)))
        extra["ITM true vs shuffled AUROC"] = ("true vs shuffled AUROC", alignment.match_auroc(true.values,
                                                                                                shuffled.values))
    else:
        true, shuffled = matching.itc_true_and_shuffled(arrays["text_emb"], arrays["image_emb"])
    if trained.itc:
        table = spaces.itc_references(arrays["text_emb"], arrays["image_emb"], frozen(folder, stamp),
                                      trained.itc_after_fusion, extra)
    else:  # ITM only: its AUROC against the random projection's
        features = frozen(folder, stamp)
        random = None if features is None else spaces.alignment_numbers(
            *spaces.random_baseline(*features, dim=read_info(folder).model.proj_dim))
        table = spaces.reference_table({k: v for k, (_, v) in extra.items()}, random, len(arrays["text_emb"]),
                                       {k: number for k, (number, _) in extra.items()})
    return table, true.values, shuffled.values, true.label


@st.cache_data(show_spinner=False, max_entries=16)
def cross_pairs(folder: str, stamp: tuple, rows: tuple[int, ...]) -> pd.DataFrame:
    """Early fusion: retrieval with each text scored against other posts' images through the
    joint layers, on a sample; the random projection's and chance beside it."""
    bar = st.progress(0.0, text="Running every image × text pair of the sample through the joint layers…")
    sim = matching.cached_cross_pair_similarity(folder, ui.predictor(folder).model, ui.post_inputs(folder), rows,
                                                progress=bar.progress)
    bar.empty()
    features = frozen(folder, stamp)
    random = None if features is None else alignment.recall_at_k(alignment.cosine_matrix(
        *reversed(spaces.random_baseline(features[0][list(rows)], features[1][list(rows)],
                                         dim=read_info(folder).model.proj_dim))))
    return spaces.reference_table(alignment.recall_at_k(sim), random, len(rows))


def notes(folders, names, trained):
    """One line per checkpoint for what it lacks, and the early-fusion caveat."""
    for folder in folders:
        t, name = trained[folder], names[folder]
        if t.score_kind is None:
            st.info(f"**{name}**: {spaces.NO_SCORE}; its fused representation is on the Embeddings page.")
        elif not t.itm:
            st.info(f"**{name}**: {spaces.NO_ITM}; its score is the cosine in its trained ITC space (−1 to 1), "
                    "not a match probability.")
        if t.itc_after_fusion and t.itc:
            st.warning(f"**{name}** is {spaces.EARLY_FUSION_NOTE}. Cross-pair retrieval below scores each text "
                       "against other posts' images instead.")


def one_post(folders, names, row, n):
    """One set of other texts, chosen once (by the first checkpoint's pretrained text encoder), scored
    by every checkpoint: their bars compare the same texts."""
    st.subheader("One post against other texts")
    most, least = other_texts(folders[0], runs_lib.checkpoint_stamp(folders[0]), row, n)
    st.caption(f"The post's image scored with its own text, the {n} other texts most similar to it and the {n} "
               f"least similar (by the pretrained text encoder's features of {names[folders[0]]}): the same texts "
               "for every checkpoint.")
    for column, folder in zip(st.columns(len(folders)), folders):
        frame, label = ranked(folder, runs_lib.checkpoint_stamp(folder), row, most, least)
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


def alignment_health(folders, names, trained):
    st.subheader("Alignment over the test set, against references")
    results = {names[f]: health(f, runs_lib.checkpoint_stamp(f)) for f in folders}
    table = pd.concat({name: r[0] for name, r in results.items()}, names=["checkpoint"]).reset_index(0)
    st.dataframe(views.reference_text(table), hide_index=True)
    st.caption("Each number beside the same number for a seeded random projection of the same frozen features "
               "(the pretrained encoders' pooled text and image vectors, before anything trained: what the measure "
               "reads when nothing is aligned) and beside chance (k / n for recall@k, 0.5 for an AUROC; the "
               "modality gap has none). i2t/t2i@k: retrieval recall from cosine in the trained ITC space.")
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.true_vs_shuffled({n: (r[1], r[2]) for n, r in results.items()},
                                               {n: r[3] for n, r in results.items()}), key="distributions")
    early = [f for f in folders if trained[f].itc_after_fusion and trained[f].itc]
    n = matching.CROSS_PAIR_POSTS
    if early and right.checkbox(f"Cross-pair retrieval of early fusion over {n} posts (each text scored with "
                                "other posts' images through the joint layers; up to a minute per checkpoint "
                                "the first time, cached)", key="_cross_pairs"):
        rows = tuple(int(r) for r in stratified_sample(ui.test_table(early[0])["label_index"], n))
        for folder in early:
            right.markdown(f"**{names[folder]}**: cross-pair retrieval, {len(rows)} posts")
            right.dataframe(views.reference_text(cross_pairs(folder, runs_lib.checkpoint_stamp(folder), rows)),
                            hide_index=True)


def calibration(folders, names, trained):
    st.subheader("Is the classifier calibrated, and is it right more often on well-matched posts?")
    tables = {names[f]: ui.test_table(f) for f in folders}
    curves = {n: alignment.reliability_curve(t["confidence"], t["correct"]) for n, t in tables.items()}
    eces = {n: alignment.expected_calibration_error(t["confidence"], t["correct"]) for n, t in tables.items()}
    left, right = st.columns(2)
    left.markdown("**Reliability diagram** of the classifier (10 equal-width confidence bins)")
    left.plotly_chart(figures.calibration(curves, eces), key="calibration")
    rows = {}
    for kind, label in matching.SCORE_LABELS.items():
        scored = [f for f in folders if trained[f].score_kind == kind]
        if not scored:
            continue
        by_score, column = {}, "itm_match" if kind == "itm" else "itc_cosine"
        for folder in scored:
            table = tables[names[folder]]
            by_score[names[folder]] = alignment.accuracy_by_score(table[column], table["correct"])
            predicts = alignment.score_predicts_correct(table[column], table["correct"])
            rows[names[folder]] = {"ECE": eces[names[folder]], "own-pair score → right AUROC": predicts.auroc,
                                   "note": predicts.reason}
        right.markdown(f"**Share classified right by own-pair {label}** (10 equal-count bins; not a calibration "
                       "curve, so no diagonal)")
        right.plotly_chart(figures.accuracy_by_score(by_score, f"own-pair {label}"), key=f"by-score-{kind}")
    summary = pd.DataFrame({n: {"ECE": e} for n, e in eces.items()}).T
    if rows:  # a checkpoint without a trained own-pair score says so in words (an empty cell reads "None")
        summary = summary.combine_first(pd.DataFrame(rows).T)
        auroc = summary["own-pair score → right AUROC"]
        summary["own-pair score → right AUROC"] = [f"{v:.3f}" if pd.notna(v) else "undefined (see note)" if name in rows
                                                   else "no own-pair score" for name, v in auroc.items()]
        summary["note"] = summary["note"].fillna("")
    st.dataframe(summary, column_config={"ECE": st.column_config.NumberColumn(format="%.3f")})
    st.caption("ECE: expected calibration error (0 = confidence equals accuracy). Own-pair score → right AUROC: "
               "does a higher own-pair score mean the classifier is right? (0.5 = unrelated)")


ui.page_header("Match scores", "How strongly each checkpoint ties an image to its own text rather than to other "
               "posts' texts, in what it trained (its ITM head, or its ITC space), with chance and a random "
               "projection beside every number; and whether its classifier's confidence is calibrated.")
choice = ui.pick_checkpoints_and_post("match", max=4)
folders, names, table, post_id, row = choice.folders, choice.names, choice.table, choice.post_id, choice.row
variants = choice.runs.set_index("folder").loc[folders, "variant"]
st.markdown("**Loss variants shown:** " + ", ".join(dict.fromkeys(variants)))  # which runs the names below are
ui.show_badges(folders, names, choice.runs)
n_texts = st.sidebar.slider("Other texts each way", 1, 10, 5)
sample_size = st.sidebar.slider("Posts in the heatmap", 4, 30, 12)
trained = {f: spaces.checkpoint_spaces(f) for f in folders}
scored = [f for f in folders if trained[f].score_kind]
notes(folders, names, trained)
sample = stratified_sample(table["label_index"], sample_size - 1, seed=0)
rows = tuple(int(r) for r in np.r_[row, sample[sample != row]][:sample_size])
ui.show_post(table.iloc[row])
if scored:
    one_post(scored, names, row, n_texts)
    pair_heatmaps(scored, names, rows)
    alignment_health(scored, names, trained)
calibration(folders, names, trained)
ui.footer()
