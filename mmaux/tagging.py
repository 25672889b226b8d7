"""Relation tags for any dataset: a relation checkpoint's predicted image_adds and
text_represented for every post, stored beside the dataset, so that the paper's claims (and every
page's slicings) work on data that has no such columns.

The paper's claims are about slices SynthPosts records for every post (does the image add
meaning? is the text represented in the image?), but MVSA, MHP, MICD and MSD record neither.
A checkpoint trained on the 4-class relation task (TIR, or the shipped SynthPosts relation runs)
predicts them:

    mmaux tag --relation-checkpoint DIR --preset msd --root DATA

runs it over every post of every split (the frozen encoder features come from the feature cache
the training runs filled) and writes `<dataset folder>/mmaux-tags/<fingerprint>-<checkpoint>.parquet`
(SynthPosts lives in the cache, so its tags go to the cache's `synthposts/tags/`): per post the
predicted relation with its four probabilities, and image_adds and text_represented with their
probabilities summed from the relation classes (P(image adds) = P(adds, repr) + P(adds, not
repr)). Each binary tag is its own marginal decision (P > 0.5), so on a few posts it can differ
from what the argmax relation implies.

The file is keyed by the dataset's fingerprint (ids, texts, labels, splits and image bytes) and
the checkpoint's content: tags of changed data are never joined, and tagging again with the same
checkpoint is refused rather than overwriting the file. The dataset's own files are never
written. When several checkpoints tagged the same data, the newest tags are used.

`runs.load_split_table` joins the stored tags of a run's data as slice columns named
`image_adds (predicted)`, `text_represented (predicted)` and `relation (predicted)`, with
`tagged_by` naming the checkpoint; the claims fall back on them where the dataset lacks the true
column and say so. A run is matched by the data fingerprint its config records (that of all
splits for a trained run, of one split for an imported one: both are in the file's metadata).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import mmaux
from mmaux.analysis import diskcache
from mmaux.checkpoint import CONFIG, WEIGHTS, CheckpointError, CheckpointInfo, read_info
from mmaux.data.csvdata import TIR_COLUMNS, spec_from_args
from mmaux.data.datasets import SPLITS, DatasetSpec, file_sha256, fingerprint, load_dataset
from mmaux.paths import TAGS_FOLDER, cache_dir

RELATION_LABELS = TIR_COLUMNS  # the 4 relation classes (SynthPosts' relation task uses the same names)
TAG_COLUMNS = ("image_adds", "text_represented", "relation")  # what a tag file predicts per post
PREDICTED_SUFFIX = " (predicted)"
TAGGED_BY = "tagged_by"  # split-table column: the label of the checkpoint that predicted the tags
META_KEY = b"mmaux.tags"  # the tag file's Parquet metadata: what was tagged, by which checkpoint
FILE_COLUMNS = ["post_id", "split", "relation", *(f"p_{c}" for c in RELATION_LABELS), "image_adds", "p_image_adds",
                "text_represented", "p_text_represented"]
FILE_NAME = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{16}\.parquet$")  # not the temporary files of a write


class TagsError(ValueError):
    """A checkpoint that cannot tag, or a tag file that cannot be read; the message says which."""


def predicted(column: str) -> str:
    """The split-table name of a predicted tag: 'image_adds' -> 'image_adds (predicted)'."""
    return column + PREDICTED_SUFFIX


PREDICTED_COLUMNS = tuple(predicted(c) for c in TAG_COLUMNS)


def is_predicted(column: str) -> bool:
    return column in PREDICTED_COLUMNS


# --- tagging ------------------------------------------------------------------------------------

def relation_checkpoint(folder: str | Path) -> CheckpointInfo:
    """The config of a checkpoint trained on the 4 relation classes; TagsError (one line naming
    the folder and its labels) for any other task."""
    info = read_info(folder)
    if tuple(info.label_names) != RELATION_LABELS:
        raise TagsError(f"{folder}: not a relation checkpoint (its labels are {', '.join(info.label_names)}); "
                        f"tagging needs one trained on the 4 relation classes {', '.join(RELATION_LABELS)} "
                        "(TIR, or SynthPosts relation)")
    return info


def predict_tags(folder: str | Path, posts: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
    """The tag file's rows (`FILE_COLUMNS`) for `posts` (post_id, text, image, split). Each split
    is predicted as evaluation does (`evaluate.predict` over `PostInputs`), so its frozen features
    are the ones training cached for that split and texts are read as the checkpoint was trained."""
    from mmaux.checkpoint import load_model
    from mmaux.evaluate import predict
    from mmaux.features import PostInputs

    relation_checkpoint(folder)
    model, info = load_model(folder)
    parts = []
    for split in [s for s in SPLITS if (posts["split"] == s).any()]:
        frame = posts[posts["split"] == split].reset_index(drop=True)
        outputs, _ = predict(model, PostInputs(model, frame, progress=progress), info.label_names, progress=progress)
        parts.append(outputs.assign(split=split))
    outputs = pd.concat(parts, ignore_index=True)
    probs = outputs[[f"p_{c}" for c in RELATION_LABELS]]
    p_adds = probs[[f"p_{c}" for c in RELATION_LABELS if c.startswith("image_adds")]].sum(axis=1).to_numpy()
    p_repr = probs[[f"p_{c}" for c in RELATION_LABELS if c.endswith("_text_repr")]].sum(axis=1).to_numpy()
    return pd.DataFrame({"post_id": outputs["post_id"].astype(str), "split": outputs["split"],
                         "relation": np.asarray(RELATION_LABELS, dtype=object)[probs.to_numpy().argmax(1)],
                         **{c: probs[c].to_numpy() for c in probs},
                         "image_adds": p_adds > 0.5, "p_image_adds": p_adds,
                         "text_represented": p_repr > 0.5, "p_text_represented": p_repr})[FILE_COLUMNS]


def checkpoint_identity(folder: str | Path) -> str:
    """Content hash of the checkpoint's config and weights: a retrained folder is another tagger."""
    return diskcache.checkpoint_key(folder, CONFIG, WEIGHTS)


def tags_folder(spec: DatasetSpec) -> Path:
    """Where a dataset's tag files live: beside its CSV file, or in the cache for SynthPosts."""
    if spec.synth:
        return cache_dir("synthposts", "tags")
    return Path(spec.csv.csv).resolve().parent / TAGS_FOLDER


def tag_dataset(checkpoint: str | Path, spec: DatasetSpec, progress: bool = False) -> tuple[Path, pd.DataFrame]:
    """Tag every post of `spec` (all splits; rows that fail validation are skipped, as a run
    trained with --on-bad-rows skip would) and write the tag file: (its path, the tags).
    FileExistsError, with nothing written, when this checkpoint tagged these posts before."""
    info = relation_checkpoint(checkpoint)
    posts = load_dataset(spec, progress=progress, on_bad_rows="skip")
    data = fingerprint(posts.frame)
    path = tags_folder(spec) / f"{data[:16]}-{checkpoint_identity(checkpoint)[:16]}.parquet"
    if path.exists():
        raise FileExistsError(f"{path}: these posts were tagged by this checkpoint before; the file is kept "
                              "(delete it to tag again)")
    tags = predict_tags(checkpoint, posts.frame, progress)
    meta = {"format": 1, "fingerprints": [data, *(fingerprint(posts.split(s)) for s in SPLITS)],
            "dataset": spec.to_dict(), "checkpoint": str(Path(checkpoint).resolve()),
            "checkpoint_identity": checkpoint_identity(checkpoint), "checkpoint_label": info.label,
            "tagged_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "mmaux_version": mmaux.__version__}
    table = pa.Table.from_pandas(tags, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    try:
        path.parent.mkdir(exist_ok=True)
        diskcache.write_atomically(path, lambda tmp: pq.write_table(table, tmp))
    except OSError as err:
        raise TagsError(f"cannot write {path.parent}: {err.strerror or err}; tag a writable copy of the "
                        "dataset") from None
    return path, tags


# --- reading ------------------------------------------------------------------------------------

def _unreadable(path: Path, what: str) -> TagsError:
    return TagsError(f"{path}: {what}; delete it and run `mmaux tag` again")


def tags_meta(path: Path) -> dict:
    """The metadata of a tag file (what it tagged, by which checkpoint, when)."""
    st = path.stat()
    return _tags_meta(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=256)
def _tags_meta(path: str, mtime_ns: int, size: int) -> dict:
    try:
        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    except (OSError, pa.ArrowException) as err:
        raise _unreadable(Path(path), f"not a readable Parquet file ({err})") from None
    try:
        meta = json.loads(raw)
        if not (isinstance(meta["fingerprints"], list) and isinstance(meta["checkpoint_label"], str)
                and isinstance(meta["tagged_at"], str)):
            raise TypeError("wrong types")
    except (TypeError, ValueError, KeyError) as err:
        raise _unreadable(Path(path), f"not a tag file (metadata {META_KEY.decode()}: {err})") from None
    return meta


def read_tags(path: Path) -> pd.DataFrame:
    """A tag file's rows, checked (columns, one row per post, boolean tags, known relations).
    Remembered per file version; callers must not modify the frame."""
    st = path.stat()
    return _read_tags(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _read_tags(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    try:
        frame = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as err:
        raise _unreadable(Path(path), f"not a readable Parquet file ({err})") from None
    missing = [c for c in FILE_COLUMNS if c not in frame.columns]
    if missing:
        raise _unreadable(Path(path), f"missing column(s) {missing}")
    frame = frame.assign(post_id=frame["post_id"].astype(str))
    problem = ("duplicate post ids" if frame["post_id"].duplicated().any() else
               "image_adds and text_represented must be booleans" if not all(
                   pd.api.types.is_bool_dtype(frame[c]) for c in ("image_adds", "text_represented")) else
               "unknown relation values" if not frame["relation"].isin(RELATION_LABELS).all() else "")
    if problem:
        raise _unreadable(Path(path), problem)
    return frame


def find_tags(spec: DatasetSpec, data_fingerprint: str) -> Path | None:
    """The newest tag file of the posts with this fingerprint, or None."""
    folder = tags_folder(spec)
    if not data_fingerprint or not folder.is_dir():
        return None
    found = [(meta["tagged_at"], path.name, path) for path in folder.iterdir() if FILE_NAME.match(path.name)
             and data_fingerprint in (meta := tags_meta(path))["fingerprints"]]
    return max(found)[2] if found else None


def attach(table: pd.DataFrame, tags: pd.DataFrame, tagged_by: str) -> pd.DataFrame:
    """`table` (a split table) with the predicted tags of its posts as `PREDICTED_COLUMNS` (empty
    for posts the tags lack) and `TAGGED_BY`."""
    columns = tags.set_index("post_id")[list(TAG_COLUMNS)].rename(columns=predicted)
    return table.join(columns, on="post_id").assign(**{TAGGED_BY: tagged_by})


def join_tags(table: pd.DataFrame, info: CheckpointInfo) -> pd.DataFrame:
    """`attach` the stored tags of the run's data (`find_tags`); `table` as it is without any."""
    path = find_tags(info.dataset, info.data_fingerprint)
    if path is None:
        return table
    return attach(table, read_tags(path), tags_meta(path)["checkpoint_label"])


def tags_key(folder: str | Path) -> tuple:
    """What a cached result over the run's split tables must also follow: (('tags', file name,
    content hash),) of the tags `join_tags` uses, () when none or when its config is unreadable
    (loading it then says why)."""
    config = Path(folder) / CONFIG
    try:
        st = config.stat()
        spec, data = _run_data(str(config), st.st_mtime_ns, st.st_size)
    except (OSError, CheckpointError):
        return ()
    path = find_tags(spec, data)
    return () if path is None else (("tags", path.name, file_sha256(path)),)


@lru_cache(maxsize=1024)
def _run_data(config: str, mtime_ns: int, size: int) -> tuple[DatasetSpec, str]:
    info = read_info(Path(config).parent)
    return info.dataset, info.data_fingerprint


# --- command line: `python -m mmaux tag` ---------------------------------------------------------

def run_tag(args) -> int:
    """`mmaux tag`: tag every post of a CSV dataset with a relation checkpoint."""
    spec = DatasetSpec(csv=spec_from_args(args))
    path, tags = tag_dataset(args.relation_checkpoint, spec, progress=True)
    counts = tags["relation"].value_counts()
    print(f"tagged {len(tags)} posts of {spec.name}: image_adds {tags['image_adds'].mean():.0%}, "
          f"text_represented {tags['text_represented'].mean():.0%}; relation "
          + ", ".join(f"{c} {counts.get(c, 0)}" for c in RELATION_LABELS) + f" -> {path}")
    return 0
