"""One description of "which posts": the built-in SynthPosts benchmark or a CSV dataset in the
paper's format. A checkpoint records it (`DatasetSpec.to_dict()`), so evaluation and the
dashboard can reload exactly the posts a model was trained and tested on.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from mmaux.data import synthposts
from mmaux.data.csvdata import CsvDatasetSpec, apply_bad_row_policy, load_posts, validate

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")
# ground-truth columns the analysis slices by, where a dataset has them (TIR's own, and
# has_image where posts without an image get the blank one)
SLICE_COLUMNS = ("evidence", "relation", "image_adds", "text_represented", "text_is_represented",
                 "has_image")


@dataclass(frozen=True)
class Posts:
    """Posts of some splits: columns post_id, text, image (absolute path), label (name),
    label_index, split, plus any slice columns."""

    frame: pd.DataFrame
    label_names: tuple[str, ...]
    name: str  # e.g. "synthposts/sentiment" or "msd"

    def split(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == name].reset_index(drop=True)

    @property
    def slice_columns(self) -> list[str]:
        return [c for c in SLICE_COLUMNS if c in self.frame.columns]


@dataclass(frozen=True)
class DatasetSpec:
    """Either `synth` (a SynthPosts generation) or `csv` (a dataset in the paper's format)."""

    synth: synthposts.SynthSpec | None = None
    csv: CsvDatasetSpec | None = None

    def __post_init__(self):
        if (self.synth is None) == (self.csv is None):
            raise ValueError("a dataset is either a SynthPosts spec or a CSV spec, exactly one of them")

    @property
    def name(self) -> str:
        return f"synthposts/{self.synth.task}" if self.synth else self.csv.name

    def to_dict(self) -> dict:
        if self.synth:
            return {"kind": "synthposts", **asdict(self.synth)}
        return {"kind": "csv", **self.csv.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> "DatasetSpec":
        values = dict(values)
        kind = values.pop("kind", None)
        if kind == "synthposts":
            values.setdefault("version", 1)  # recorded before generator versions were
            return cls(synth=synthposts.SynthSpec(**values))
        if kind == "csv":
            return cls(csv=CsvDatasetSpec.from_dict(values))
        raise ValueError(f"dataset kind must be 'synthposts' or 'csv', got {kind!r}")


def load_dataset(spec: DatasetSpec, splits=SPLITS, progress: bool = False, on_bad_rows: str = "fail") -> Posts:
    """Load (for SynthPosts: generate once, then read from the cache) the requested splits.

    A CSV dataset is validated first: bad rows (missing images, unknown labels, ...) stop the
    load with the list (`on_bad_rows="fail"`) or are dropped and logged (`"skip"`).
    """
    if spec.synth:
        folder = synthposts.ensure(spec.synth, splits=tuple(splits), progress=progress)
        names = tuple(synthposts.TASKS[spec.synth.task])
        stat = (folder / "posts.csv").stat()
        frame = _synth_frame(str(folder), names, stat.st_mtime_ns, stat.st_size).copy()
    else:
        frame = load_posts(spec.csv)
        names = tuple(frame.attrs["classes"])
        # every image of these splits decoded (once: remembered in the cache), so train cannot fail later
        report = validate(spec.csv, progress=progress, image_splits=tuple(splits))
        frame, skipped = apply_bad_row_policy(frame, report, on_bad_rows, tuple(splits))
        for problem in skipped:
            log.warning("skipped row %s (%s): %s %s", problem.row, problem.post_id, problem.kind, problem.detail)
    frame = frame[frame["split"].isin(splits)].reset_index(drop=True)
    return Posts(frame, names, spec.name)


@lru_cache(maxsize=32)
def _synth_frame(folder: str, names: tuple[str, ...], mtime_ns: int, size: int) -> pd.DataFrame:
    """A generated split's posts.csv as a frame, remembered per file version: the dashboard
    joins every checkpoint's outputs with the same posts (hundreds of reads on one page)."""
    frame = pd.read_csv(Path(folder) / "posts.csv", keep_default_na=False, dtype={"post_id": str})
    frame["image"] = [str(Path(folder) / p) for p in frame["image"]]
    frame["label_index"] = frame["label"].map({n: i for i, n in enumerate(names)}).astype(int)
    return frame


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, remembered per (path, size, mtime): a sweep keys its feature
    cache and its checkpoints' fingerprints by the same thousands of images, run after run."""
    stat = os.stat(path)
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=1 << 16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(frame: pd.DataFrame) -> str:
    """Content hash of posts: ids, texts, labels, splits and the bytes of every image.

    Keys the feature cache and is recorded in checkpoints, so a changed dataset is noticed.
    """
    digest = hashlib.sha256()
    for row in frame[["post_id", "text", "label", "split", "image"]].itertuples(index=False):
        digest.update("\x1f".join(map(str, row[:4])).encode())
        digest.update(file_sha256(row.image).encode() if Path(row.image).is_file() else b"<missing>")
    return digest.hexdigest()
