"""The paper's dataset format: one CSV per dataset plus one image file per post.

A CSV has at least an id, a text, a label and a split column (split in train/val/test); the
image of a post is found by filling `{id}` in a path template relative to the dataset root.
Presets encode the five datasets of the paper (TIR with its three tasks, MVSA-Single, MHP, MSD,
MICD) laid out as the authors' code reads them; anything else is described by a `CsvDatasetSpec`
built from CLI options.

Users bring these datasets, often scraped, re-saved in Excel or half downloaded, so reading is
forgiving about the container (BOM, `;`/tab/`|` delimiters, `dev`/`validation` split names,
labels given as indices or names) and strict about content: `validate` lists every problem row
by kind, and `apply_bad_row_policy` either fails with that list or skips those rows. Both
`validate` (exit status) and `train` take their verdict from `ValidationReport.verdict`.

CSV file names: a preset looks in its root for the authors' name first (`data_key_imgtxt_random.csv`,
`data_key_mvsa.csv`, `data_key_mhp.csv`, `data_key_msd.csv`, `data_key_mic.csv`), then for the
short `<preset>.csv`; `csv=` / `--csv` wins over both.

Image files: `find_image` resolves each templated path (a missing `{id}.jpg` stored as `{id}.png`
is used, as the authors' loader does; `validate` counts those). Posts without an image file: a
row problem, except where the spec says `missing_image="blank"` (the `micd` preset; mmaux's own
policy, not the authors'): those posts get `BLANK_IMAGE` and a `has_image` slice column.

Id column: MICD's is `id` in the authors' code but `tweet_id` in the sample file they publish; the
preset takes whichever the CSV has (`DatasetPreset.other_id_columns`) and records it in the spec.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import sys
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from tqdm.auto import tqdm

from mmaux.data.images import BLANK_IMAGE, ImageLoadError, check_image, find_image
from mmaux.data.presets import (BAD_ROW_POLICIES, MAX_EXAMPLES, MISSING_IMAGE_POLICIES, PRESETS,  # noqa: F401
                                TIR_COLUMNS, DatasetPreset, preset_csv)
from mmaux.paths import cache_dir

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"valid": "val", "validation": "val", "dev": "val"}
DELIMITERS = ",;\t|"
PROBLEM_KINDS = {  # kind -> heading in the report, in report order
    "missing_id": "empty id",
    "duplicate_id": "duplicate id (first occurrence kept)",
    "empty_text": "empty text",
    "unknown_label": "unknown label",
    "bad_split": "bad split value (expected train/val/test)",
    "missing_image": "missing image file",
    "unreadable_image": "unreadable, truncated or corrupt image",
}
FIRST_DATA_LINE = 2  # the file line of the first data row (the header is line 1): how messages number rows
SHOWN_CHARS = 60  # a value quoted in a message is cut to this many characters


def brief(value: object) -> str:
    """`value` quoted for a message, cut to a readable length (a 50 MB field must not reach stderr)."""
    text = str(value)
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return repr(text[:SHOWN_CHARS]) + f"… ({len(text):,} characters)"


class DatasetError(ValueError):
    """A dataset that cannot be used as is; the message says what is wrong and how to fix it."""


@dataclass
class CsvDatasetSpec:
    """Everything needed to read one CSV dataset; JSON-able so a checkpoint can record it."""
    csv: str  # path of the CSV file
    image_root: str  # folder that image_template is relative to
    image_template: str  # e.g. "images/{id}.jpg"
    id_column: str = "tweet_id"
    text_column: str = "text"
    label_column: str = "label"
    split_column: str = "split"
    classes: tuple[str, ...] = ()  # class names by label index; () = taken from the data
    label_from_argmax: tuple[str, ...] = ()  # label = argmax over these columns instead
    name: str = "custom"  # preset key, or "custom"
    missing_image: str = "fail"  # a post without an image file: "fail" (bad row) or "blank"

    def __post_init__(self):
        if self.missing_image not in MISSING_IMAGE_POLICIES:
            raise DatasetError(f"missing_image must be one of {', '.join(MISSING_IMAGE_POLICIES)}, "
                               f"got {self.missing_image!r}")

    @classmethod
    def from_preset(cls, name: str, root: str | Path, csv: str | Path | None = None
                    ) -> CsvDatasetSpec:
        """The spec of a paper dataset unpacked at `root` (CSV: `csv` if given, else
        `preset_csv(name, root)`)."""
        key = name.lower()
        if key not in PRESETS:
            raise DatasetError(f"unknown dataset preset {name!r}; known: {', '.join(PRESETS)}")
        preset = PRESETS[key]
        csv = Path(csv) if csv is not None else preset_csv(key, root)
        return cls(csv=str(csv), image_root=str(root), image_template=preset.image_template,
                   id_column=_id_column(preset, csv), text_column=preset.text_column,
                   label_column=preset.label_column, split_column=preset.split_column,
                   classes=preset.classes, label_from_argmax=preset.label_from_argmax, name=key,
                   missing_image=preset.missing_image)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CsvDatasetSpec:
        data = dict(data)
        for key in ("classes", "label_from_argmax"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)

    def required_columns(self) -> list[str]:
        labels = list(self.label_from_argmax) or [self.label_column]
        return [self.id_column, self.text_column, *labels, self.split_column]

    def image_path(self, post_id: str) -> str:
        """The templated path of a post's image (`find_image` says which file holds it)."""
        return str(Path(self.image_root) / self.image_template.format(id=post_id))

    def id_note(self) -> str:
        """Which id column was used, for a preset that accepts several; else ''."""
        preset = PRESETS.get(self.name)
        if preset is None or not preset.other_id_columns:
            return ""
        accepted = " or ".join((preset.id_column, *preset.other_id_columns))
        return f"ids from column {self.id_column} (the {self.name} preset accepts {accepted})"


def _id_column(preset: DatasetPreset, csv: Path) -> str:
    """The preset's id column in `csv`: its own name, else the first of `other_id_columns` the
    header has; its own name when the file cannot be read or has none (validation says so)."""
    if not preset.other_id_columns or not csv.is_file():
        return preset.id_column
    try:
        header = read_table(csv).columns
    except (DatasetError, OSError):
        return preset.id_column
    return next((c for c in (preset.id_column, *preset.other_id_columns) if c in header), preset.id_column)


# --- reading ---------------------------------------------------------------------------------

def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV as strings (ids keep leading zeros and all 19 digits; a text "NA" stays "NA").

    Accepts a UTF-8 BOM and `,` `;` tab or `|` delimiters; other encodings are refused with the
    first bad line, rather than guessed, because a wrong guess silently garbles every text.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = raw[:exc.start].count(b"\n") + 1
        line = raw.split(b"\n")[line_no - 1][:80]
        raise DatasetError(
            f"{path}: not UTF-8 text (line {line_no}: {line!r}). Re-save the file as UTF-8, "
            f"e.g. 'CSV UTF-8' in Excel or `iconv -f latin1 -t utf-8 in.csv > out.csv`") from exc
    delimiter = _sniff_delimiter(text[:20_000])
    try:
        return pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"{path}: cannot be read as a CSV table ({exc})") from exc


def _sniff_delimiter(head: str) -> str:
    """csv.Sniffer over the head; if it cannot decide, the candidate most frequent in the header."""
    try:
        return csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = head.splitlines()[0] if head else ""
        return max(DELIMITERS, key=header.count)


def load_posts(spec: CsvDatasetSpec) -> pd.DataFrame:
    """The dataset with normalised columns: post_id, text, image, label, label_index, split, plus
    the CSV's other columns (slice columns; numbers where a column is all numbers).

    Rows are not filtered: an unknown label has label_index -1, a bad split keeps its raw value.
    Run `validate` + `apply_bad_row_policy` before training. The class list is in
    `df.attrs["classes"]`.
    """
    raw = read_table(spec.csv)
    missing = [c for c in spec.required_columns() if c not in raw.columns]
    if missing:
        raise DatasetError(_missing_columns_message(spec, missing, list(raw.columns)))
    return _normalise(raw, spec)


def _missing_columns_message(spec: CsvDatasetSpec, missing: list[str], present: list[str]) -> str:
    also = PRESETS[spec.name].other_id_columns if spec.name in PRESETS and spec.id_column in missing else ()
    accepted = f" (or {' or '.join(also)})" if also else ""
    return (f"{spec.csv}: missing column(s) {', '.join(missing)}{accepted}; the file has "
            f"{', '.join(present) or 'no columns'}. Rename the columns or pass the column options")


def _normalise(raw: pd.DataFrame, spec: CsvDatasetSpec) -> pd.DataFrame:
    """Dataset-specific column names -> the fixed names the rest of mmaux uses."""
    ids = raw[spec.id_column].str.strip()
    labels, classes = _resolve_labels(raw, spec)
    templated = [spec.image_path(i) for i in ids]
    images = [find_image(p) for p in templated]
    core = pd.DataFrame({
        "post_id": ids,
        "text": raw[spec.text_column],
        "image": images,
        "label": [classes[i] if i >= 0 else str(r) for i, r in zip(labels, _raw_labels(raw, spec))],
        "label_index": np.asarray(labels, dtype=np.int64),
        "split": raw[spec.split_column].str.strip().str.lower().replace(SPLIT_ALIASES),
    }, index=raw.index)
    if spec.missing_image == "blank":  # posts without an image file get the blank image
        core["has_image"] = [bool(i) and os.path.isfile(p) for i, p in zip(ids, core["image"])]
        core.loc[~core["has_image"], "image"] = str(BLANK_IMAGE)
    used = set(spec.required_columns()) | set(core.columns)
    extras = raw[[c for c in raw.columns if c not in used]].apply(_restore_type)
    df = pd.concat([core, extras], axis=1)
    df.attrs["classes"] = list(classes)
    df.attrs["png_images"] = sum(found != path for found, path in zip(images, templated))
    return df


def _raw_labels(raw: pd.DataFrame, spec: CsvDatasetSpec) -> pd.Series:
    if spec.label_from_argmax:
        return "scores " + raw[list(spec.label_from_argmax)].agg("/".join, axis=1)
    return raw[spec.label_column].str.strip()


def _resolve_labels(raw: pd.DataFrame, spec: CsvDatasetSpec) -> tuple[list[int], tuple[str, ...]]:
    """Label index per row (-1 = unknown) and the class list (inferred when the spec has none)."""
    if spec.label_from_argmax:
        scores = raw[list(spec.label_from_argmax)].apply(pd.to_numeric, errors="coerce")
        valid = scores.notna().all(axis=1).to_numpy()
        index = np.where(valid, np.argmax(scores.fillna(-np.inf).to_numpy(), axis=1), -1)
        return index.tolist(), spec.classes or spec.label_from_argmax
    values = raw[spec.label_column].str.strip()
    classes = spec.classes or _infer_classes(values)
    lookup = {_name_key(name): i for i, name in enumerate(classes)}
    return [_label_index(v, classes, lookup) for v in values], classes


def _infer_classes(values: pd.Series) -> tuple[str, ...]:
    """Integer labels -> "0".."max"; names -> sorted unique names."""
    present = [v for v in values.unique() if v]
    indices = [_as_index(v) for v in present]
    if present and all(i is not None and i >= 0 for i in indices):
        return tuple(str(i) for i in range(max(indices) + 1))
    return tuple(sorted(present))


def _label_index(value: str, classes: tuple[str, ...], lookup: dict[str, int]) -> int:
    if _name_key(value) in lookup:
        return lookup[_name_key(value)]
    index = _as_index(value)
    return index if index is not None and 0 <= index < len(classes) else -1


def _as_index(value: str) -> int | None:
    """Parse an integer label; "2.0" counts too (pandas writes ints that way next to NaNs)."""
    return int(float(value)) if re.fullmatch(r"[+-]?\d+(\.0*)?", value) else None


def _name_key(name: str) -> str:
    """Match class names loosely: "Not sarcastic" == "not_sarcastic" == "not-sarcastic"."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _restore_type(column: pd.Series) -> pd.Series:
    """Extra (slice) columns were read as strings; give back numbers where they all are."""
    column = column.replace("", np.nan)
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


# --- validation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One bad row: `row` is the DataFrame index (0 = first data row after the header); messages
    name it by the file's line number (`FIRST_DATA_LINE`), as every command does."""
    kind: str  # a key of PROBLEM_KINDS
    row: int
    post_id: str
    detail: str

    def __str__(self) -> str:
        return f"line {self.row + FIRST_DATA_LINE} (id {brief(self.post_id) if self.post_id else '<empty>'}): {self.detail}"


@dataclass
class ValidationReport:
    """What `validate` found. `fatal` problems (unreadable CSV, missing columns) stop everything;
    row problems can be skipped (`bad_rows`). `verdict(policy)` is the one answer to "will this
    train?", given by `validate`'s exit status and applied by `train`."""
    csv: str
    classes: list[str] = field(default_factory=list)
    total_rows: int = 0
    fatal: list[str] = field(default_factory=list)
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # kind -> problems
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> clean rows
    without_image: int = 0  # clean rows that get the blank image (missing_image="blank")
    png_images: int = 0  # rows whose templated .jpg is missing but the .png is there (find_image)
    id_note: str = ""  # which id column was used, where the preset accepts several

    @property
    def bad_rows(self) -> set[int]:
        return {p.row for found in self.problems.values() for p in found}

    def absent_classes(self, splits: tuple[str, ...] = SPLITS) -> dict[str, list[str]]:
        """split -> the classes with no clean row in it (for the splits that have rows at all)."""
        absent = {}
        for split in splits:
            per_label = self.counts.get(split, {})
            missing = [c for c in self.classes if not per_label.get(c)]
            if sum(per_label.values()) and missing:
                absent[split] = missing
        return absent

    def class_warnings(self, splits: tuple[str, ...] = SPLITS) -> list[str]:
        """One line per split that lacks a class. A warning, not a refusal (a small or filtered
        dataset may lack a class on purpose), said by `validate` and again by `train`: without a
        train post of a class the model never learns it; without an evaluation post of it, that
        class's F1 counts as 0 in macro-F1 whatever the model predicts."""
        lines = []
        for split, missing in self.absent_classes(splits).items():
            names = ", ".join(map(repr, missing))
            lines.append(f"WARNING: no clean {split} rows of class {names}: "
                         + ("the model will never learn to predict it; add training posts of it" if split == "train"
                            else f"its {split} F1 counts as 0 in macro-F1 whatever the model predicts; move some "
                                 f"posts of it into {split}"))
        return lines

    @property
    def usable(self) -> bool:
        """Training can run at least with bad rows skipped."""
        return self.verdict("skip")[0]

    def verdict(self, on_bad_rows: str = "fail", splits: tuple[str, ...] = SPLITS) -> tuple[bool, str]:
        """(can `train --on-bad-rows <on_bad_rows>` use the `splits` it needs, one line saying so
        and, when it cannot, what to do)."""
        if on_bad_rows not in BAD_ROW_POLICIES:
            raise ValueError(f"on_bad_rows must be one of {', '.join(BAD_ROW_POLICIES)}, got {on_bad_rows!r}")
        if self.fatal:
            return False, "NOT usable: fix the problem marked FATAL above"
        empty = [s for s in splits if not sum(self.counts.get(s, {}).values())]
        if empty:
            return False, (f"NOT usable: no clean {'/'.join(empty)} rows (train needs "
                           f"{'/'.join(splits)} posts); no option fixes that, the data must")
        bad = len(self.bad_rows)
        if bad and on_bad_rows == "fail":
            return False, (f"NOT usable as is: {bad} bad rows; with --on-bad-rows skip they are "
                           f"dropped and {self.total_rows - bad} rows are used")
        warned = len(self.class_warnings(splits))
        also = f", with {warned} warning{'s' * (warned > 1)} above" if warned else ""
        if bad:
            return True, (f"usable with --on-bad-rows skip ({bad} bad rows dropped, "
                          f"{self.total_rows - bad} rows used){also}")
        return True, "usable" + also

    def format(self, on_bad_rows: str = "fail", max_examples: int | None = MAX_EXAMPLES) -> str:
        """The report; `max_examples` rows per problem kind (None: all)."""
        lines = [f"Dataset {self.csv}"]
        lines += [f"FATAL: {message}" for message in self.fatal]
        if not self.fatal:
            lines += self._format_counts() + self.class_warnings() + self._format_problems(max_examples)
        return "\n".join(lines + [f"Verdict: {self.verdict(on_bad_rows)[1]}"])

    def _format_counts(self) -> list[str]:
        clean = self.total_rows - len(self.bad_rows)
        lines = [f"{self.total_rows} rows, {clean} clean; classes: {', '.join(self.classes)}"]
        if self.id_note:
            lines.append(self.id_note)
        for split in SPLITS:
            per_label = self.counts.get(split, {})
            detail = ", ".join(f"{label} {per_label.get(label, 0)}" for label in self.classes)
            lines.append(f"  {split:<5} {sum(per_label.values()):>7} rows  ({detail})")
        if self.without_image:
            lines.append(f"{self.without_image} clean rows have no image file: they get the blank "
                         f"image (slice column has_image = False)")
        if self.png_images:
            lines.append(f"{self.png_images} images found as .png (the template's .jpg is missing; "
                         f"the authors' loader reads these too)")
        return lines

    def _format_problems(self, max_examples: int | None) -> list[str]:
        lines = []
        for kind, heading in PROBLEM_KINDS.items():
            found = self.problems.get(kind, [])
            if found:
                lines.append(f"{heading}: {len(found)} rows")
                lines += [f"  {problem}" for problem in found[:max_examples]]
                if max_examples is not None and len(found) > max_examples:
                    lines.append(f"  ... and {len(found) - max_examples} more (--all lists them)")
        return lines or ["No problems found."]


def validate(spec: CsvDatasetSpec, check_images: bool = True, progress: bool = False,
             workers: int | None = None, image_splits: tuple[str, ...] | None = None,
             cache: bool = True) -> ValidationReport:
    """Check a dataset without loading any model: columns, ids, texts, labels, splits and images,
    each decoded in full as training will (`workers` threads, default one per CPU; `progress`
    shows a bar). Never raises for bad data; everything goes into the report.

    `image_splits`: check only the images of these splits (all rows when None); `cache`: skip
    files that decoded fine before and are unchanged since (same path, size and mtime), so that
    validate → train → evaluate → dashboard decode each image once."""
    report = ValidationReport(csv=spec.csv)
    try:
        raw = read_table(spec.csv)
    except (DatasetError, OSError) as exc:
        report.fatal.append(str(exc))
        return report
    missing = [c for c in spec.required_columns() if c not in raw.columns]
    if missing:
        report.fatal.append(_missing_columns_message(spec, missing, list(raw.columns)))
        return report
    df = _normalise(raw, spec)
    report.classes, report.total_rows = df.attrs["classes"], len(df)
    report.png_images, report.id_note = df.attrs["png_images"], spec.id_note()
    found = _row_problems(df)
    if check_images:
        rows = df if image_splits is None else df[df["split"].isin(image_splits)]
        found += _image_problems(rows, workers, progress, _DecodedImages(spec) if cache else None)
    report.problems = {kind: sorted((p for p in found if p.kind == kind), key=lambda p: p.row)
                       for kind in PROBLEM_KINDS}
    clean = df.drop(index=list(report.bad_rows))
    report.counts = {split: dict(Counter(group["label"]))
                     for split, group in clean.groupby("split", sort=False)}
    if "has_image" in clean:
        report.without_image = int((~clean["has_image"]).sum())
    return report


def _row_problems(df: pd.DataFrame) -> list[Problem]:
    first_of_id = df.index.to_series().groupby(df["post_id"]).transform("first")
    return [Problem(kind, row.Index, row.post_id, detail)
            for row, first in zip(df.itertuples(), first_of_id)
            for kind, detail in _check_row(row, first)]


def _check_row(row: Any, first_of_id: int) -> Iterator[tuple[str, str]]:
    """(kind, detail) for each problem of one row; `first_of_id` is the first row with its id."""
    if not row.post_id:
        yield "missing_id", "the id column is empty"
    elif first_of_id != row.Index:
        yield "duplicate_id", f"same id as line {first_of_id + FIRST_DATA_LINE}"
    if not row.text.strip():
        yield "empty_text", "the text is empty"
    if row.label_index < 0:
        yield "unknown_label", f"label {brief(row.label)} is not a class name or index"
    if row.split not in SPLITS:
        yield "bad_split", f"split {brief(row.split)}"


def _image_problems(df: pd.DataFrame, workers: int | None, progress: bool,
                    decoded: _DecodedImages | None) -> list[Problem]:
    """Missing files, then every distinct image file decoded in full, in parallel threads
    (skipping those `decoded` remembers)."""
    rows = df[df["post_id"] != ""]
    exists = rows["image"].map(os.path.isfile)
    problems = [Problem("missing_image", row.Index, row.post_id, f"no file {row.image}")
                for row in rows[~exists].itertuples()]
    rows = rows[exists]
    paths = list(dict.fromkeys(rows["image"]))  # duplicated ids share a file: decode it once
    todo = [p for p in paths if decoded is None or not decoded.known_good(p)]
    with ThreadPoolExecutor(max_workers=workers or len(os.sched_getaffinity(0))) as pool:
        errors = dict(zip(todo, tqdm(pool.map(_decode_error, todo), total=len(todo),
                                     desc="decoding images", unit="img", disable=not (progress and todo))))
    if decoded is not None:
        decoded.remember([p for p in todo if not errors[p]])
    problems += [Problem("unreadable_image", row.Index, row.post_id,
                         f"{row.image}: {errors[row.image]}")
                 for row in rows.itertuples() if errors.get(row.image)]
    return problems


class _DecodedImages:
    """Image files of one dataset that decoded in full, by path -> [size, mtime_ns], kept as JSON
    in the cache folder (written atomically; unreadable or unwritable means "decode again")."""

    def __init__(self, spec: CsvDatasetSpec):
        key = f"{os.path.abspath(spec.csv)}\0{os.path.abspath(spec.image_root)}"
        self.file = cache_dir("decoded-images") / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
        try:
            self.good = {str(k): list(v) for k, v in json.loads(self.file.read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            self.good = {}

    @staticmethod
    def _stamp(path: str) -> list[int] | None:
        try:
            stat = os.stat(path)
        except OSError:  # vanished meanwhile: decoding will say so
            return None
        return [stat.st_size, stat.st_mtime_ns]

    def known_good(self, path: str) -> bool:
        return path in self.good and self.good[path] == self._stamp(path)

    def remember(self, paths: list[str]) -> None:
        stamps = {path: self._stamp(path) for path in paths}
        if not stamps:
            return
        self.good.update({path: stamp for path, stamp in stamps.items() if stamp})
        temporary = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(json.dumps(self.good))
            os.replace(temporary, self.file)
        except OSError:
            temporary.unlink(missing_ok=True)


def _decode_error(path: str) -> str:
    """'' when the image decodes as training will load it, else the problem."""
    try:
        check_image(path)
    except ImageLoadError as exc:
        return exc.problem
    return ""


def apply_bad_row_policy(df: pd.DataFrame, report: ValidationReport, policy: str,
                         splits: tuple[str, ...] = SPLITS) -> tuple[pd.DataFrame, list[Problem]]:
    """Apply the user's choice for bad rows: with "fail", raise DatasetError listing them; with
    "skip", drop them. Raises too whenever `report.verdict` says the `splits` are unusable.
    `df` must be `load_posts` of the validated spec (same row index).

    Returns the remaining rows and the skipped problems (for the caller to print).
    """
    if report.fatal:
        raise DatasetError("\n".join(report.fatal))
    usable, verdict = report.verdict(policy, splits)
    if not usable:
        raise DatasetError(f"{report.csv}: {verdict}\n{report.format(policy)}")
    for line in report.class_warnings(splits):
        warnings.warn(f"{report.csv}: {line.removeprefix('WARNING: ')}", stacklevel=2)
    skipped = sorted((p for found in report.problems.values() for p in found),
                     key=lambda p: p.row)
    return df.drop(index=list(report.bad_rows)), skipped


# --- CLI -------------------------------------------------------------------------------------

def run_validate(args: argparse.Namespace) -> int:
    """`mmaux data validate` (its options: `mmaux.cli`): exit status 0 when `train` with the same
    --on-bad-rows would accept the dataset, 1 when it would refuse it."""
    try:
        spec = spec_from_args(args)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = validate(spec, check_images=not args.no_images, progress=True, workers=args.workers,
                      cache=not args.no_cache)
    print(report.format(args.on_bad_rows, max_examples=None if args.all else MAX_EXAMPLES))
    return 0 if report.verdict(args.on_bad_rows)[0] else 1


def spec_from_args(args: argparse.Namespace) -> CsvDatasetSpec:
    """Build the spec from CLI options; DatasetError (one line) for missing or wrong arguments."""
    if args.preset:
        if not args.root:
            raise DatasetError("--preset needs --root, the folder the dataset was unpacked in")
        spec = CsvDatasetSpec.from_preset(args.preset, args.root, csv=args.csv)
        if not args.csv and not Path(spec.csv).is_file():
            names = " or ".join(PRESETS[spec.name].csv_names)
            raise DatasetError(f"no CSV for preset {spec.name} in {args.root}: looked for {names}; "
                               f"pass --csv FILE if yours is named differently")
    elif args.csv and args.image_template:
        spec = CsvDatasetSpec(csv=args.csv, image_template=args.image_template,
                              image_root=args.image_root or args.root
                              or str(Path(args.csv).parent))
    else:
        raise DatasetError("give --preset NAME --root DIR, or --csv FILE --image-template T")
    spec = replace(spec, **_overrides(args))
    if not Path(spec.csv).is_file():
        raise DatasetError(f"CSV file not found: {spec.csv}")
    if not Path(spec.image_root).is_dir():
        raise DatasetError(f"image root folder not found: {spec.image_root}")
    return spec


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {f"{c}_column": getattr(args, f"{c}_column")
                 for c in ("id", "text", "label", "split") if getattr(args, f"{c}_column")}
    if args.image_root:
        overrides["image_root"] = args.image_root
    if args.classes:
        overrides["classes"] = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    if args.missing_image:
        overrides["missing_image"] = args.missing_image
    return overrides
