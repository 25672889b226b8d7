"""Your post: an uploaded (or example) image and a typed text through the chosen checkpoints,
with one-click perturbations, saved probe sets, and batch predictions for a CSV + zip of images."""
import hashlib

import pandas as pd
import streamlit as st

from mmaux import figures, ood, perturb, probes, ui, views
from mmaux.analysis import embeddings
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError
from mmaux.data.csvdata import DatasetError
from mmaux.data.images import ImageLoadError, load_image

IMAGE_KEY = "your_post_image"  # session_state: (file name, image bytes) of the post being probed
TEXT_KEY = "your_post_text"  # session_state: its text (kept when the page is left, unlike a widget's)
TEXT_WIDGET = "_your_post_text"  # the text area's key
ERROR_KEY = "your_post_upload_error"  # session_state: why the last upload was refused
RESULT_KEY = "your_post_perturbed"  # session_state: (signature, perturbation table) of the last run
UPLOADS_KEY = "your_post_uploads"  # session_state: {name: (image bytes, text)} of this session's uploads
UPLOAD_DONOR = "upload: "  # prefix of an upload among the swap donors
IMAGE_LIMIT_MB = probes.MAX_BYTES // 2**20  # the real per-image limit (the uploader says it)


# --- choosing the post --------------------------------------------------------------------------

def use_example(examples: pd.DataFrame) -> None:
    """Make the example chosen in the picker the post being probed."""
    chosen = st.session_state.get("_example", examples["post_id"].iloc[0])
    if chosen is None:  # the picker was cleared by an upload
        return
    example = examples[examples["post_id"] == chosen].iloc[0]
    with open(example["image"], "rb") as handle:
        st.session_state[IMAGE_KEY] = (example["post_id"] + ".png", handle.read())
    st.session_state[TEXT_KEY] = st.session_state[TEXT_WIDGET] = example["text"]
    st.session_state[ERROR_KEY] = ""


def on_upload() -> None:
    """Keep an upload only when it decodes; otherwise remember why, for st.error below (and clear
    it once the refused file is taken out of the uploader)."""
    uploaded = st.session_state.get("_upload")
    if uploaded is None:
        st.session_state[ERROR_KEY] = ""
        return
    try:
        probes.upload_image(uploaded.name, uploaded.getvalue())
        st.session_state[IMAGE_KEY] = (uploaded.name, uploaded.getvalue())
        st.session_state[ERROR_KEY] = ""
        st.session_state["_example"] = None  # the post is no longer the example: its text goes too
        st.session_state[TEXT_KEY] = st.session_state[TEXT_WIDGET] = ""
    except ImageLoadError as err:
        st.session_state[ERROR_KEY] = str(err)


def choose_post(examples: pd.DataFrame, token_help: str = "") -> tuple[str, object, str] | None:
    """Example picker, uploader and text box; returns (image name, RGB image, text), or None while
    there is no image or the last upload was refused (the previous post's results would read as
    the refused upload's)."""
    if IMAGE_KEY not in st.session_state and len(examples):
        use_example(examples)
    left, right = st.columns(2)
    if len(examples):
        texts = examples.set_index("post_id")["text"]
        left.selectbox("Start from an example test post", examples["post_id"], key="_example",
                       format_func=lambda p: f"{p}: {texts[p][:70]}", on_change=use_example, args=(examples,),
                       placeholder="your upload (choose an example to go back)")
    right.file_uploader(f"…or upload an image (at most {IMAGE_LIMIT_MB} MiB)",
                        type=[s.lstrip(".") for s in probes.UPLOAD_SUFFIXES], key="_upload", on_change=on_upload,
                        max_upload_size=IMAGE_LIMIT_MB)
    if st.session_state.get(ERROR_KEY):
        st.error(st.session_state[ERROR_KEY])
    if TEXT_WIDGET not in st.session_state:
        st.session_state[TEXT_WIDGET] = st.session_state.get(TEXT_KEY, "")
    st.session_state[TEXT_KEY] = st.text_area("Text of the post", key=TEXT_WIDGET, max_chars=2000,
                                              help=token_help)
    if IMAGE_KEY not in st.session_state or st.session_state.get(ERROR_KEY):
        return None
    name, data = st.session_state[IMAGE_KEY]
    if st.session_state.get("_example") is None:  # an upload: a swap donor for later posts too
        st.session_state.setdefault(UPLOADS_KEY, {})[name] = (data, st.session_state[TEXT_KEY])
    try:
        image = load_image(data, name=name)
    except ImageLoadError as err:
        st.error(str(err))
        return None
    return name, image, st.session_state[TEXT_KEY]


# --- running checkpoints -----------------------------------------------------------------------

def load_predictors(folders: list[str], labels: dict[str, str]) -> dict:
    """folder -> Predictor (cached per process); a checkpoint that fails to load is reported
    and left out."""
    predictors = {}
    for folder in folders:
        try:
            predictors[folder] = ui.predictor(folder)
        except (CheckpointError, OSError, ValueError) as err:
            st.error(f"{labels[folder]}: cannot be loaded. {err}")
    return predictors


@st.cache_data(show_spinner="Predicting…", max_entries=64)
def predict_post(checkpoints: tuple[tuple[str, str], ...], stamps: tuple, data: bytes, name: str,
                 text: str) -> pd.DataFrame:
    """`probes.predict_probes` for the post, cached so that reruns of the page (any widget) do
    not run the models again; `stamps` renews it when a checkpoint changes."""
    predictors = {label: ui.predictor(folder) for folder, label in checkpoints}
    return probes.predict_probes(predictors, [probes.Probe(probes.ORIGINAL, text, load_image(data, name=name))])


def show_predictions(table: pd.DataFrame) -> None:
    """Per checkpoint: label, probabilities, ITM match (or 'no ITM head'), ITC cosine."""
    classes = list(dict.fromkeys(c[2:] for c in table.columns if c.startswith("p_")))
    checkpoints = list(dict.fromkeys(table["checkpoint"]))
    short = dict(zip(checkpoints, runs_lib.distinguishing_names(checkpoints)))  # what differs fits the width
    view = table.assign(itm_match=table["itm_match"].map(lambda v: "no ITM head" if pd.isna(v) else f"{v:.3f}"),
                        itc_cosine=table["itc_cosine"].map(lambda v: "not trained with ITC" if pd.isna(v) else f"{v:.3f}"),
                        checkpoint=table["checkpoint"].map(short))
    columns = ["checkpoint", "label", "confidence", *[f"p_{c}" for c in classes], "itm_match", "itc_cosine"]
    st.dataframe(view[columns].round(3), hide_index=True, column_config={"itm_match": "ITM match P",
                                                                          "itc_cosine": "ITC cosine"})
    st.plotly_chart(figures.probability_bars(table, classes), key="your-post-probs")


def show_placement(checkpoint: tuple[str, str], image, text: str) -> None:
    """The post's ITC-projected image and text placed into the first checkpoint's cached map
    (UMAP if computed, else PCA) of the test posts."""
    folder, label = checkpoint
    layout = embeddings.available_layout(folder)
    out = ui.predictor(folder).forward([image], [text])
    frame = embeddings.placement_frame(layout, out.text_emb.numpy(), out.image_emb.numpy(), YOUR_POST)
    frame = frame.merge(ui.test_table(folder)[["post_id", "label"]], on="post_id", how="left").fillna({"label": YOUR_POST})
    st.plotly_chart(figures.embedding_maps({label: frame}, "label", lines=False, highlight=YOUR_POST),
                    key="your-post-map")
    st.caption(f"{layout.params.method.upper()} map of {len(layout.post_ids)} test posts (● image, × text); your post's "
               "image and text are the large markers, placed by their nearest test posts (UMAP) or the exact "
               "projection (PCA).")


def run_perturbations(predictors: dict, image, text: str, examples: pd.DataFrame, signature: str) -> None:
    """The perturbation controls; a click runs every perturbation on every checkpoint (one batch
    per checkpoint) and keeps the table until the post or the checkpoints change."""
    left, right = st.columns([3, 2])
    names = left.multiselect("Perturbations", perturb.NAMES, default=list(perturb.NAMES))
    donors = donor_choices(examples)
    donor_id = right.selectbox("Other post for the swaps", donors, index=0 if donors else None,
                               help="Your earlier uploads this session and the example test posts; never the "
                                    "post itself.")
    if st.button("Run perturbations", type="primary"):
        with st.status("Running perturbations…", expanded=False) as status:
            variants = perturb.perturbations(image, text, names, donor=donor_post(examples, donor_id))
            post = [probes.Probe(probes.ORIGINAL, text, image)]
            post += [probes.Probe(v.name, v.text, v.image) for v in variants]
            table = probes.predict_probes(predictors, post)
            status.update(label=f"Ran {len(post)} versions through {len(predictors)} checkpoint(s)", state="complete")
        st.session_state[RESULT_KEY] = (signature, table, post)
    result = st.session_state.get(RESULT_KEY)
    if result and result[0] == signature:
        show_perturbations(*result[1:])


def current_name() -> str | None:
    """The post being probed: its example id, or the upload's donor name."""
    example = st.session_state.get("_example")
    if example is not None:
        return example
    return UPLOAD_DONOR + st.session_state[IMAGE_KEY][0] if IMAGE_KEY in st.session_state else None


def donor_choices(examples: pd.DataFrame) -> list[str]:
    """Posts the swaps can take a text or image from: this session's uploads, then the example
    test posts, without the post being probed."""
    uploads = [UPLOAD_DONOR + name for name in st.session_state.get(UPLOADS_KEY, {})]
    me = current_name()
    return [d for d in uploads + list(examples["post_id"]) if d != me]


def donor_post(examples: pd.DataFrame, post_id: str | None) -> tuple | None:
    """(image, text) of the post whose text or image the swaps take; None without one."""
    if post_id is None:
        return None
    if post_id.startswith(UPLOAD_DONOR):
        data, text = st.session_state[UPLOADS_KEY][post_id[len(UPLOAD_DONOR):]]
        return load_image(data, name=post_id[len(UPLOAD_DONOR):]), text
    donor = examples[examples["post_id"] == post_id].iloc[0]
    return load_image(donor["image"]), donor["text"]


def show_perturbations(table: pd.DataFrame, post: list) -> None:
    changes = probes.deltas(table)
    st.plotly_chart(figures.delta_heatmap(changes, "Δ p(original label)"), key="your-post-deltas")
    st.caption("Change of each checkpoint's probability for the label it gave the original post; ✗ marks a "
               "flipped prediction.")
    columns = ["probe", "checkpoint", "label", "flipped", "Δ p(original label)", "Δ itm_match", "Δ itc_cosine"]
    st.dataframe(changes[columns].round(3), hide_index=True)
    with st.expander("The perturbed posts"):
        cells = st.columns(4)
        for i, probe in enumerate(post):
            cells[i % 4].image(probe.image, caption=f"{probe.name}: {probe.text[:80]}", width="stretch")
    save_probe_set(post)


def save_probe_set(post: list) -> None:
    left, right = st.columns([3, 1])
    name = left.text_input("Save these versions as a probe set named", placeholder="e.g. negation-check")
    if right.button("Save probe set", disabled=not name.strip()):
        try:
            folder = probes.save_probe_set(post, name)
            st.success(f"Saved {len(post)} probes to `{folder}`. Re-run them here or with "
                       f"`python -m mmaux probe --set {folder} --checkpoint DIR`.")
        except (FileExistsError, ValueError, OSError) as err:
            st.error(str(err))


def run_saved_sets(predictors: dict) -> None:
    sets = probes.list_probe_sets()
    if not sets:
        st.info(f"No saved probe sets in `{probes.sets_root()}` yet.")
        return
    chosen = st.selectbox("Probe set", sets, format_func=lambda p: p.name)
    if st.button("Run probe set"):
        try:
            with st.status("Running the probe set…"):
                st.dataframe(probes.predict_probes(predictors, probes.load_probe_set(chosen)).round(3),
                             hide_index=True)
        except (ImageLoadError, DatasetError, OSError) as err:
            st.error(str(err))


def run_batch(predictors: dict) -> None:
    """CSV (columns image, text) + zip of images -> predictions of every checkpoint, downloadable."""
    st.caption("CSV columns: `image` (the file's name in the zip) and `text`. The zip may hold at most "
               f"{probes.MAX_ZIP_MEMBERS} images; other members are ignored.")
    left, right = st.columns(2)
    csv = left.file_uploader(f"Posts CSV (at most {IMAGE_LIMIT_MB} MiB)", type=["csv", "tsv", "txt"], key="_batch_csv",
                             max_upload_size=IMAGE_LIMIT_MB)
    archive = right.file_uploader(f"Images zip (at most {probes.MAX_ZIP_TOTAL // 2**20} MiB)", type=["zip"],
                                  key="_batch_zip", max_upload_size=probes.MAX_ZIP_TOTAL // 2**20)
    if csv is None or archive is None or not st.button("Predict the batch"):
        return
    try:
        with st.status("Predicting the batch…") as status:
            table = probes.batch_predictions(predictors, probes.read_csv_upload(csv.getvalue(), csv.name),
                                             probes.read_image_zip(archive.getvalue()))
            view, failed = views.batch_view(table)
            status.update(label=f"{len(view) - failed} of {len(view)} posts predicted",
                          state="error" if failed == len(view) else "complete")
    except (DatasetError, ValueError) as err:
        st.error(str(err))
        return
    if failed:
        st.error(f"{failed} of {len(view)} rows failed (listed first, with the reason in `error`).")
    st.dataframe(view, hide_index=True, column_config={"row": st.column_config.NumberColumn("CSV row", format="%d"),
                                                       "error": st.column_config.TextColumn(width="large")})
    left, right = st.columns(2)
    left.download_button("Download predictions (CSV, one row per post)", view.to_csv(index=False).encode(),
                         "predictions.csv", "text/csv")
    right.download_button("Download every number (CSV, one row per post × checkpoint)",
                          table.round(4).to_csv(index=False).encode(), "predictions_long.csv", "text/csv")


def trained_on_banner(predictors: dict, labels: dict[str, str]) -> None:
    """Which data each chosen checkpoint learned from: the reference for every number below."""
    by_data: dict[str, list[str]] = {}
    for folder, predictor in predictors.items():
        by_data.setdefault(ood.training_data(predictor.info), []).append(labels[folder])
    lines = [f"**{data}** — {len(names)} checkpoint(s)" for data, names in by_data.items()]
    st.info("The chosen checkpoints were trained on:  \n" + "  \n".join(lines) + "  \nA post unlike that "
            "data (a real photo, a real tweet) gets an answer all the same: the out-of-distribution score below "
            "says how far from the data it lies.")


def token_help(predictors: dict, labels: dict[str, str]) -> str:
    """How many tokens each chosen checkpoint reads of the text (the rest is cut)."""
    lengths: dict[int, list[str]] = {}
    for folder, predictor in predictors.items():
        lengths.setdefault(int(predictor.model.cfg.max_text_length), []).append(labels[folder])
    return ("The model reads only the first tokens of the text: " + "; ".join(
        f"{n} tokens ({len(names)} checkpoint(s))" for n, names in sorted(lengths.items())) + ".")


def text_tokens(predictors: dict, text: str) -> str:
    """'23 tokens; checkpoints read 40' (a caption under the text box)."""
    first = next(iter(predictors.values()))
    count = len(first.tokenizer(first.model_texts([text])[0], truncation=False)["input_ids"])
    limits = sorted({int(p.model.cfg.max_text_length) for p in predictors.values()})
    cut = [n for n in limits if count > n]
    return (f"{count} tokens; the chosen checkpoints read the first {', '.join(map(str, limits))}"
            + (f" — the rest of this text is not seen by the checkpoints that read {', '.join(map(str, cut))}."
               if cut else "."))


@st.cache_resource(show_spinner="Indexing the test posts' frozen features…", max_entries=8)
def _references(key: str, _folder: str) -> ood.References | None:
    from mmaux.analysis import spaces

    features = spaces.frozen_features(ui.predictor(_folder).model, ui.post_inputs(_folder))
    if features is None or len(features[0]) < ood.MIN_POSTS:
        return None
    return ood.References.fit(*features)


def references(folder: str) -> ood.References | None:
    """The checkpoint's test posts' frozen features, indexed (shared by checkpoints with the same
    frozen encoders and test data)."""
    predictor = ui.predictor(folder)
    return _references(repr((predictor.frozen_key(), ui.identity(folder).data, runs_lib.checkpoint_stamp(folder)[3])),
                       folder)


def show_ood(predictors: dict, labels: dict[str, str], image, text: str) -> None:
    """Per checkpoint (by the part of its label that differs, as in the predictions table: full
    labels pushed the last column out of the page): how unlike its test posts the post's frozen
    text and image features are."""
    rows = []
    short = dict(zip(predictors, runs_lib.distinguishing_names([labels[f] for f in predictors])))
    for folder, predictor in predictors.items():
        refs, features = references(folder), ood.post_features(predictor, [image], [text])
        if refs is None or features is None:
            why = "no separate frozen encoders" if features is None else f"fewer than {ood.MIN_POSTS} test posts"
            rows.append({"checkpoint": short[folder], "out-of-distribution": f"no score: {why}"})
            continue
        score = ood.scores(refs, *features).iloc[0]
        rows.append({"checkpoint": short[folder], "text percentile": score["text_percentile"],
                     "image percentile": score["image_percentile"], "out-of-distribution": ood.describe(score)})
    table = pd.DataFrame(rows)
    for column in ("text percentile", "image percentile"):  # "no score" is said in the last column
        if column in table:
            table[column] = [f"{v:.1f}" if pd.notna(v) else "—" for v in table[column]]
    unlike = table["out-of-distribution"].str.endswith("unlike the data")
    if unlike.any():
        st.warning(f"This post is unlike the data of {int(unlike.sum())} of {len(table)} checkpoint(s) (past the "
                   f"{ood.WARN_PERCENTILE:g}th percentile of the test posts' nearest-neighbour distances): their "
                   "answers are extrapolations, whatever their confidence.")
    with st.container(key="ood"):  # the browser test measures the table inside this key's element
        st.dataframe(table, hide_index=True, width="stretch")
    st.caption(f"Percentile: the share of test posts that lie closer to their {ood.K} nearest test posts than this "
               "post does, by cosine distance between the frozen encoders' features (text and image apart).")


YOUR_POST = "your post"

ui.page_header("Your post", "An image and a text of your own through every chosen checkpoint: prediction, "
                            "ITM match and ITC cosine, and how they move under one-click perturbations.")
runs = ui.sidebar_runs()
folders = ui.with_model(ui.pick_checkpoints("your_post", min=1, max=8, runs=runs, needs_model=True))
labels = ui.checkpoint_labels(runs)
tables = ui.test_tables(folders[:1])
examples = probes.example_posts(next(iter(tables.values()))) if tables else pd.DataFrame(
    columns=["post_id", "text", "image"])
predictors = load_predictors(folders, labels)
if predictors:
    trained_on_banner(predictors, labels)
post = choose_post(examples, token_help(predictors, labels) if predictors else "")
if post is None or not predictors:
    ui.stop("Pick an example or upload an image to see predictions.")
name, image, text = post
if not text.strip():  # an image alone is not a post: the checkpoints would read an empty text
    st.image(image, caption=name, width=240)
    ui.stop("Type the post's text in the box above: every checkpoint reads an image together with its text.")
st.caption(text_tokens(predictors, text))
data = st.session_state[IMAGE_KEY][1]
checkpoints = tuple((folder, labels[folder]) for folder in predictors)
by_label = {label: predictors[folder] for folder, label in checkpoints}
picture, numbers = st.columns([1, 3])
picture.image(image, caption=name, width="stretch")
with numbers:
    stamps = tuple(runs_lib.checkpoint_stamp(folder) for folder, _ in checkpoints)
    show_predictions(predict_post(checkpoints, stamps, data, name, text))
    show_ood(predictors, labels, image, text)
signature = hashlib.sha256(data + text.encode() + "|".join(by_label).encode()).hexdigest()
st.subheader("Where it lands in the embedding space")
show_placement(checkpoints[0], image, text)
st.subheader("Perturbations")
run_perturbations(by_label, image, text, examples, signature)
st.subheader("Probe sets")
run_saved_sets(by_label)
st.subheader("Batch: a CSV and a zip of images")
run_batch(by_label)
ui.footer()
