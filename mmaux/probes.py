"""Posts of your own: named probe sets, their predictions by several checkpoints, and batch input
from a CSV plus a zip of images.

A probe set is a folder that can be re-run later, from the dashboard or the command line:

    <sets root>/<name>/probes.csv   columns: name, text, image (a path relative to the folder)
    <sets root>/<name>/images/      the probes' images as PNG

    python -m mmaux probe --set DIR --checkpoint DIR [--checkpoint DIR ...] [--out FILE.csv]

A set is never overwritten: saving under an existing name is refused. Set names are sanitised
(no path separators, no leading dots), so a name cannot point outside the sets root.
"""
from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mmaux.data.csvdata import DatasetError, read_table
from mmaux.data.images import MAX_BYTES, ImageLoadError, load_image
from mmaux.paths import REPO_ROOT
from mmaux.predict import Prediction, Predictor, predict_many

PROBES_ENV = "MMAUX_PROBES"  # where the dashboard saves probe sets (default <repo>/probes)
PROBES_CSV, IMAGES_DIR = "probes.csv", "images"
ORIGINAL = "original"  # name of the unperturbed probe in a perturbation run
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")  # accepted inside a batch zip
UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")  # accepted as a single upload
MAX_ZIP_MEMBERS = 2_000  # images per batch upload
MAX_ZIP_TOTAL = 200 * 1024 * 1024  # uncompressed bytes over all images of a batch upload


@dataclass(frozen=True)
class Probe:
    """One post to run through the checkpoints."""

    name: str  # what the row is called in tables ("original", "strip emoji", "my meme 3", ...)
    text: str
    image: Image.Image  # RGB, as `load_image` returns it


def sets_root() -> Path:
    """Folder of saved probe sets: `MMAUX_PROBES`, else `<repo>/probes`."""
    return Path(os.environ.get(PROBES_ENV) or REPO_ROOT / "probes")


# --- probe sets on disk -------------------------------------------------------------------------

def sanitise_set_name(name: str) -> str:
    """A safe folder name: the pieces of letters, digits, '-', '_' and '.' between anything else
    (path separators, spaces, ...), leading dots dropped, joined by '_': '../a b' -> 'a_b'.
    Raises ValueError when nothing usable is left."""
    pieces = (piece.lstrip(".") for piece in re.split(r"[^A-Za-z0-9._-]+", name))
    safe = "_".join(piece for piece in pieces if piece)
    if not safe:
        raise ValueError(f"probe set name {name!r} has no letters or digits; choose a name like 'negation-tests'")
    return safe[:80]


def save_probe_set(probes: Sequence[Probe], name: str, root: str | Path | None = None) -> Path:
    """Write `probes` as the set `name` under `root` (default `sets_root()`); returns its folder.
    Refuses (FileExistsError) when a set of that name exists. Written to a temporary folder and
    renamed into place, so an interrupted save leaves no half set."""
    if not probes:
        raise ValueError("a probe set needs at least one probe")
    root = Path(root) if root is not None else sets_root()
    folder = root / sanitise_set_name(name)
    if folder.exists():
        raise FileExistsError(f"{folder}: a probe set of that name exists; choose another name (nothing was changed)")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=root))
    try:
        (tmp / IMAGES_DIR).mkdir()
        rows = []
        for i, probe in enumerate(probes):
            image = f"{IMAGES_DIR}/{i:03d}.png"
            probe.image.save(tmp / image, format="PNG")
            rows.append({"name": probe.name, "text": probe.text, "image": image})
        pd.DataFrame(rows).to_csv(tmp / PROBES_CSV, index=False)
        tmp.rename(folder)  # fails rather than merges if the name was taken meanwhile
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_probe_set(folder: str | Path) -> list[Probe]:
    """Read a saved set. Image paths must stay inside the set's folder; a bad image raises
    ImageLoadError naming the file."""
    folder = Path(folder)
    csv = folder / PROBES_CSV
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: missing; a probe set folder holds {PROBES_CSV} and {IMAGES_DIR}/")
    table = read_table(csv)
    missing = {"name", "text", "image"} - set(table.columns)
    if missing:
        raise DatasetError(f"{csv}: missing column(s) {sorted(missing)}")
    probes = []
    for row in table.itertuples(index=False):
        path = (folder / row.image).resolve()
        if not path.is_relative_to(folder.resolve()):
            raise DatasetError(f"{csv}: image {row.image!r} of probe {row.name!r} is outside the set's folder")
        probes.append(Probe(row.name, row.text, load_image(path)))
    return probes


def list_probe_sets(root: str | Path | None = None) -> list[Path]:
    """Saved sets under `root` (default `sets_root()`), by name."""
    root = Path(root) if root is not None else sets_root()
    return sorted(p.parent for p in root.glob(f"*/{PROBES_CSV}")) if root.is_dir() else []


# --- posts of your own: uploads and examples ---------------------------------------------------

def upload_image(name: str, data: bytes) -> Image.Image:
    """An uploaded image as RGB. Refuses (ImageLoadError, naming the upload and the fix) files
    whose name is not an image's or whose bytes are not a supported, sane image."""
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        raise ImageLoadError(f"upload {name}", "not an image file name",
                             f"Upload a {', '.join(s.lstrip('.').upper() for s in UPLOAD_SUFFIXES)} file")
    return load_image(data, name=name)


def example_posts(table: pd.DataFrame, count: int = 8, column: str = "evidence") -> pd.DataFrame:
    """A few test posts to start from, spread over the values of `column` (round robin in table
    order), so the examples cover text-only, image-only, agreeing and conflicting posts."""
    if column not in table.columns:
        return table.head(count)
    ranked = table.assign(_rank=table.groupby(column).cumcount())
    return ranked.sort_values(["_rank", column], kind="stable").head(count).drop(columns="_rank")


# --- predictions --------------------------------------------------------------------------------

def predict_probes(predictors: Mapping[str, Predictor], probes: Sequence[Probe]) -> pd.DataFrame:
    """One row per (probe, checkpoint): probe, checkpoint, label, itm_match, itc_cosine,
    p_<class>... Each checkpoint sees all probes in one batch. `predictors` maps the name to
    show (a checkpoint label) to its Predictor."""
    images, texts = [p.image for p in probes], [p.text for p in probes]
    rows = []
    for checkpoint, predictions in zip(predictors, predict_many(list(predictors.values()), images, texts)):
        for probe, prediction in zip(probes, predictions):
            rows.append({"probe": probe.name, "checkpoint": checkpoint, **prediction_row(prediction)})
    return pd.DataFrame(rows)


def prediction_row(prediction: Prediction) -> dict:
    """A Prediction as flat table columns (itm_match NaN without an ITM head)."""
    return {"label": prediction.label, "confidence": max(prediction.probabilities.values()),
            "itm_match": float("nan") if prediction.itm_match is None else prediction.itm_match,
            "itc_cosine": prediction.itc_cosine,
            **{f"p_{k}": v for k, v in prediction.probabilities.items()}}


def deltas(table: pd.DataFrame, baseline: str = ORIGINAL) -> pd.DataFrame:
    """Each probe's numbers minus the `baseline` probe's, per checkpoint, plus `flipped` (the
    label differs from the baseline's). The baseline's own rows are dropped."""
    numbers = [c for c in table.columns if c.startswith("p_") or c in ("confidence", "itm_match", "itc_cosine")]
    base = table[table["probe"] == baseline].set_index("checkpoint")
    others = table[table["probe"] != baseline].copy()
    reference = base.loc[others["checkpoint"]]
    for column in numbers:
        others[f"Δ {column}"] = others[column].to_numpy() - reference[column].to_numpy()
    others["flipped"] = others["label"].to_numpy() != reference["label"].to_numpy()
    own = [f"p_{label}" for label in reference["label"]]  # each row's original predicted class
    others["Δ p(original label)"] = _per_row(others, own) - _per_row(reference, own)
    return others.reset_index(drop=True)


def _per_row(table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """table[columns[i]] at row i, for every row i."""
    values = table.reindex(columns=list(dict.fromkeys(columns)))
    return values.to_numpy(dtype=float)[np.arange(len(table)), values.columns.get_indexer(columns)]


# --- batch input: a CSV and a zip of images ----------------------------------------------------

def read_image_zip(data: bytes, max_members: int = MAX_ZIP_MEMBERS, max_total: int = MAX_ZIP_TOTAL,
                   max_member: int = MAX_BYTES) -> dict[str, bytes]:
    """Image files of a zip, in memory: normalised member path -> bytes. Nothing is written to
    disk, so no member can escape a folder; members that are not images, or whose path is
    absolute or climbs out ('..'), are ignored; sizes are checked against the header and again
    while reading (a lying header cannot inflate past `max_member`)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise ValueError(f"the images upload is not a zip file ({err}); zip the image files and upload that") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and member_path(m.filename)]
        if len(members) > max_members:
            raise ValueError(f"the zip holds {len(members)} images, more than the limit of {max_members}")
        if sum(m.file_size for m in members) > max_total:
            raise ValueError(f"the zip's images unpack to more than {max_total / 2**20:g} MiB; split the batch")
        images = {}
        for member in members:
            if member.file_size > max_member:
                continue  # load_image would refuse it anyway; the row reports the image as missing
            with archive.open(member) as handle:
                images[member_path(member.filename)] = handle.read(max_member + 1)
    return images


def member_path(name: str) -> str | None:
    """The normalised path of a zip member or CSV image name ('a\\b/../c.png' -> 'a/c.png'), or
    None when it is not an image file or is absolute, climbs out ('..'), names a drive, or is
    macOS metadata."""
    path = posixpath.normpath(name.replace("\\", "/"))
    unsafe = path.startswith(("/", "../")) or path == ".." or ":" in path or "__MACOSX" in path
    return None if unsafe or not path.lower().endswith(IMAGE_SUFFIXES) else path


def read_csv_upload(data: bytes, name: str = "upload.csv") -> pd.DataFrame:
    """An uploaded CSV read like a dataset file (`read_table`: UTF-8, sniffed delimiter, all
    strings); DatasetError names the upload."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / (Path(name).name or "upload.csv")
        path.write_bytes(data)
        try:
            return read_table(path)
        except DatasetError as err:
            raise DatasetError(str(err).replace(str(path), f"upload {name}")) from None


def batch_predictions(predictors: Mapping[str, Predictor], table: pd.DataFrame, images: Mapping[str, bytes],
                      image_column: str = "image", text_column: str = "text", chunk: int = 32) -> pd.DataFrame:
    """Predictions of every checkpoint for every row of `table` (columns `image`: a file name in
    the zip, `text`). One row per (CSV row, checkpoint), numbered by its CSV row (`row`, from 1);
    a row whose image is missing from the zip or unreadable gets its reason in `error` instead of
    stopping the batch."""
    missing = [c for c in (image_column, text_column) if c not in table.columns]
    if missing:
        raise DatasetError(f"the CSV lacks column(s) {missing}; it has {list(table.columns)}")
    by_base = {posixpath.basename(k): v for k, v in images.items()}
    probes, numbers, errors = [], [], []
    for i, row in enumerate(table.itertuples(index=False)):
        name = str(getattr(row, image_column))
        key = member_path(name) or ""
        data = images.get(key, by_base.get(posixpath.basename(key)))
        try:
            if data is None:
                raise ImageLoadError(f"row {i + 1}", f"image {name!r} is not in the zip", "Add it to the zip")
            probes.append(Probe(name, str(getattr(row, text_column)), load_image(data, name=name)))
            numbers.append(i + 1)
        except ImageLoadError as err:
            errors.append({"row": i + 1, "image": name, "text": getattr(row, text_column), "error": str(err)})
    parts = [_chunked(predictors, probes[start:start + chunk], numbers[start:start + chunk])
             for start in range(0, len(probes), chunk)]
    good = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return pd.concat([good, pd.DataFrame(errors)], ignore_index=True).fillna({"error": ""})


def _chunked(predictors, probes: Sequence[Probe], rows: Sequence[int]) -> pd.DataFrame:
    """`predict_probes` of one chunk, each prediction with its CSV row and text (by position: two
    rows may share an image)."""
    table = predict_probes(predictors, probes).rename(columns={"probe": "image"})
    table.insert(0, "row", np.tile(rows, len(predictors)))  # predict_probes: every probe, per checkpoint
    table.insert(2, "text", np.tile([p.text for p in probes], len(predictors)))
    return table


# --- command line -------------------------------------------------------------------------------

def run_probe_command(args) -> int:
    from mmaux.checkpoint import CheckpointError

    if args.out and Path(args.out).exists():
        raise FileExistsError(f"{args.out} exists; choose another --out (nothing was overwritten)")
    try:
        probes = load_probe_set(args.probe_set)
        predictors = {}
        for folder in args.checkpoint:
            predictor = Predictor(folder)
            predictors[predictor.info.label] = predictor
    except (ImageLoadError, CheckpointError) as err:
        raise ValueError(str(err).splitlines()[0]) from None
    table = predict_probes(predictors, probes)
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table)} predictions ({len(probes)} probes × {len(predictors)} checkpoints) to {args.out}")
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.4f")
    return 0
