"""The paper's dataset format: one CSV per dataset plus one image file per post.

A CSV has at least an id, a text, a label and a split column (split in train/val/test); the
image of a post is found by filling `{id}` in a path template relative to the dataset root.
Presets encode the five datasets of the paper (TIR, MVSA-Single, MHP, MSD, MICD); anything else
is described by a `CsvDatasetSpec` built from CLI options.

Users bring these datasets, often scraped, re-saved in Excel or half downloaded, so reading is
forgiving about the container (BOM, `;`/tab/`|` delimiters, `dev`/`validation` split names,
labels given as indices or names) and strict about content: `validate` lists every problem row
by kind, and `apply_bad_row_policy` either fails with that list or skips those rows.

Assumed CSV file names: `<root>/<preset key>.csv` (tir.csv, mvsa-single.csv, mhp.csv, msd.csv,
micd.csv); pass `csv=` / `--csv` when yours is named differently.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import pandas as pd

from mmaux.data.images import ImageLoadError, verify_image

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
    "unreadable_image": "unreadable or unsupported image",
}
MAX_EXAMPLES = 10  # examples shown per problem kind in ValidationReport.format()


class DatasetError(ValueError):
    """A dataset that cannot be used as is; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class DatasetPreset:
    """Where one of the paper's datasets keeps its columns and images."""
    name: str  # the paper's name, e.g. "MVSA-Single"
    task: str  # what is classified
    csv_name: str  # default CSV file name inside the dataset root
    image_template: str  # image path relative to the root, with {id}
    classes: tuple[str, ...] = ()  # class names by label index; () = taken from the data
    id_column: str = "tweet_id"
    text_column: str = "text"
    label_column: str = "label"
    split_column: str = "split"
    label_from_argmax: tuple[str, ...] = ()  # label = argmax over these columns (TIR)


TIR_COLUMNS = ("image_adds_text_repr", "image_adds_text_notrepr",
               "image_notadds_text_repr", "image_notadds_text_notrepr")

PRESETS: dict[str, DatasetPreset] = {
    "tir": DatasetPreset("TIR", "text-image relation", "tir.csv", "text-image/T{id}.jpg",
                         classes=TIR_COLUMNS, label_from_argmax=TIR_COLUMNS),
    "mvsa-single": DatasetPreset("MVSA-Single", "sentiment", "mvsa-single.csv",
                                 "MVSA-Single/data/{id}.jpg",
                                 classes=("neutral", "positive", "negative")),
    # MHP and MICD class names are not published with the data: labels are the indices.
    "mhp": DatasetPreset("MHP", "hate speech", "mhp.csv", "MHP/Data/Images/{id}.jpg",
                         classes=("0", "1", "2", "3")),
    "msd": DatasetPreset("MSD", "sarcasm", "msd.csv", "MSD/dataset_image/{id}.jpg",
                         classes=("not_sarcastic", "sarcastic")),
    "micd": DatasetPreset("MICD", "influencer content", "micd.csv",
                          "MIC/spc_imgs_twitter/{id}_1.jpg", classes=("0", "1"), id_column="id"),
}


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

    @classmethod
    def from_preset(cls, name: str, root: str | Path, csv: str | Path | None = None
                    ) -> CsvDatasetSpec:
        """The spec of a paper dataset unpacked at `root` (CSV at root/<key>.csv unless given)."""
        key = name.lower()
        if key not in PRESETS:
            raise DatasetError(f"unknown dataset preset {name!r}; known: {', '.join(PRESETS)}")
        preset = PRESETS[key]
        return cls(csv=str(csv if csv is not None else Path(root) / preset.csv_name),
                   image_root=str(root), image_template=preset.image_template,
                   id_column=preset.id_column, text_column=preset.text_column,
                   label_column=preset.label_column, split_column=preset.split_column,
                   classes=preset.classes, label_from_argmax=preset.label_from_argmax, name=key)

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
        return str(Path(self.image_root) / self.image_template.format(id=post_id))


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
    return (f"{spec.csv}: missing column(s) {', '.join(missing)}; the file has "
            f"{', '.join(present) or 'no columns'}. Rename the columns or pass the column options")


def _normalise(raw: pd.DataFrame, spec: CsvDatasetSpec) -> pd.DataFrame:
    """Dataset-specific column names -> the fixed names the rest of mmaux uses."""
    ids = raw[spec.id_column].str.strip()
    labels, classes = _resolve_labels(raw, spec)
    core = pd.DataFrame({
        "post_id": ids,
        "text": raw[spec.text_column],
        "image": [spec.image_path(i) for i in ids],
        "label": [classes[i] if i >= 0 else str(r) for i, r in zip(labels, _raw_labels(raw, spec))],
        "label_index": np.asarray(labels, dtype=np.int64),
        "split": raw[spec.split_column].str.strip().str.lower().replace(SPLIT_ALIASES),
    }, index=raw.index)
    used = set(spec.required_columns()) | set(core.columns)
    extras = raw[[c for c in raw.columns if c not in used]].apply(_restore_type)
    df = pd.concat([core, extras], axis=1)
    df.attrs["classes"] = list(classes)
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
    """One bad row: `row` is the DataFrame index (0 = first data row after the header)."""
    kind: str  # a key of PROBLEM_KINDS
    row: int
    post_id: str
    detail: str

    def __str__(self) -> str:
        return f"row {self.row} (id {self.post_id or '<empty>'}): {self.detail}"


@dataclass
class ValidationReport:
    """What `validate` found. `fatal` problems (unreadable CSV, missing columns) stop everything;
    row problems can be skipped (`bad_rows`)."""
    csv: str
    classes: list[str] = field(default_factory=list)
    total_rows: int = 0
    fatal: list[str] = field(default_factory=list)
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # kind -> problems
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> clean rows

    @property
    def bad_rows(self) -> set[int]:
        return {p.row for found in self.problems.values() for p in found}

    @property
    def usable(self) -> bool:
        """Training can run (skipping bad rows): nothing fatal and some clean training rows."""
        return not self.fatal and sum(self.counts.get("train", {}).values()) > 0

    def format(self) -> str:
        lines = [f"Dataset {self.csv}"]
        lines += [f"FATAL: {message}" for message in self.fatal]
        if not self.fatal:
            lines += self._format_counts() + self._format_problems()
        verdict = "usable" if self.usable else "NOT usable"
        if self.usable and self.bad_rows:
            verdict += f" (after skipping {len(self.bad_rows)} bad rows)"
        return "\n".join(lines + [f"Verdict: {verdict}"])

    def _format_counts(self) -> list[str]:
        clean = self.total_rows - len(self.bad_rows)
        lines = [f"{self.total_rows} rows, {clean} clean; classes: {', '.join(self.classes)}"]
        for split in SPLITS:
            per_label = self.counts.get(split, {})
            detail = ", ".join(f"{label} {per_label.get(label, 0)}" for label in self.classes)
            lines.append(f"  {split:<5} {sum(per_label.values()):>7} rows  ({detail})")
        return lines

    def _format_problems(self) -> list[str]:
        lines = []
        for kind, heading in PROBLEM_KINDS.items():
            found = self.problems.get(kind, [])
            if found:
                lines.append(f"{heading}: {len(found)} rows")
                lines += [f"  {problem}" for problem in found[:MAX_EXAMPLES]]
                if len(found) > MAX_EXAMPLES:
                    lines.append(f"  ... and {len(found) - MAX_EXAMPLES} more")
        return lines or ["No problems found."]


def validate(spec: CsvDatasetSpec, check_images: bool = True) -> ValidationReport:
    """Check a dataset without loading any model: columns, ids, texts, labels, splits and (header
    only, to stay fast) images. Never raises for bad data; everything goes into the report."""
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
    found = _row_problems(df, check_images)
    report.problems = {kind: [p for p in found if p.kind == kind] for kind in PROBLEM_KINDS}
    clean = df.drop(index=list(report.bad_rows))
    report.counts = {split: dict(Counter(group["label"]))
                     for split, group in clean.groupby("split", sort=False)}
    return report


def _row_problems(df: pd.DataFrame, check_images: bool) -> list[Problem]:
    first_of_id = df.index.to_series().groupby(df["post_id"]).transform("first")
    return [Problem(kind, row.Index, row.post_id, detail)
            for row, first in zip(df.itertuples(), first_of_id)
            for kind, detail in _check_row(row, first, check_images)]


def _check_row(row: Any, first_of_id: int, check_images: bool) -> Iterator[tuple[str, str]]:
    """(kind, detail) for each problem of one row; `first_of_id` is the first row with its id."""
    if not row.post_id:
        yield "missing_id", "the id column is empty"
    elif first_of_id != row.Index:
        yield "duplicate_id", f"same id as row {first_of_id}"
    if not row.text.strip():
        yield "empty_text", "the text is empty"
    if row.label_index < 0:
        yield "unknown_label", f"label {row.label!r} is not a class name or index"
    if row.split not in SPLITS:
        yield "bad_split", f"split {row.split!r}"
    if check_images and row.post_id:
        yield from _image_problems(row.image)


def _image_problems(path: str) -> Iterator[tuple[str, str]]:
    if not Path(path).is_file():
        yield "missing_image", f"no file {path}"
        return
    try:
        verify_image(path)
    except ImageLoadError as exc:
        yield "unreadable_image", f"{path}: {exc.problem}"


def apply_bad_row_policy(df: pd.DataFrame, report: ValidationReport,
                         policy: Literal["fail", "skip"]) -> tuple[pd.DataFrame, list[Problem]]:
    """Apply the user's choice for bad rows: with "fail", raise DatasetError listing them; with
    "skip", drop them. `df` must be `load_posts` of the validated spec (same row index).

    Returns the remaining rows and the skipped problems (for the caller to print).
    """
    if report.fatal:
        raise DatasetError("\n".join(report.fatal))
    skipped = sorted((p for found in report.problems.values() for p in found),
                     key=lambda p: p.row)
    if skipped and policy == "fail":
        raise DatasetError(f"{len(report.bad_rows)} bad rows (use the 'skip' policy to drop "
                           f"them):\n{report.format()}")
    return df.drop(index=list(report.bad_rows)), skipped


# --- CLI -------------------------------------------------------------------------------------

def add_validate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `validate`: check a dataset and print the report (exit 0 usable, 1 not, 2 bad
    arguments)."""
    parser = subparsers.add_parser(
        "validate", help="check a CSV dataset (columns, labels, splits, images) and report",
        description="Check a dataset without loading a model. Give --preset and --root for one "
                    "of the paper's datasets, or --csv and --image-template for your own.")
    add_csv_options(parser)
    parser.add_argument("--no-images", action="store_true", help="skip the image checks")
    parser.add_argument("--bad-rows", choices=("fail", "skip"), default="fail",
                        help="'fail' (default): any bad row gives exit code 1; "
                             "'skip': bad rows are fine as long as the rest is usable")
    parser.set_defaults(func=run_validate)
    return parser


def add_csv_options(parser: argparse.ArgumentParser) -> None:
    """The options that name a CSV dataset (shared by validate, train and evaluate)."""
    group = parser.add_argument_group("CSV dataset (the paper's format)")
    group.add_argument("--preset", choices=sorted(PRESETS), help="one of the paper's datasets")
    group.add_argument("--root", help="dataset root folder (with --preset)")
    group.add_argument("--csv", help="the CSV file (default for a preset: <root>/<preset>.csv)")
    group.add_argument("--image-template", help="image path relative to the image root, "
                                                "with {id}, e.g. 'images/{id}.jpg'")
    group.add_argument("--image-root", help="folder the template is relative to "
                                            "(default: --root, else the CSV's folder)")
    for column in ("id", "text", "label", "split"):
        group.add_argument(f"--{column}-column", help=f"name of the {column} column")
    group.add_argument("--classes", help="comma-separated class names, by label index")


def run_validate(args: argparse.Namespace) -> int:
    """Handler of `validate`."""
    try:
        spec = spec_from_args(args)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = validate(spec, check_images=not args.no_images)
    print(report.format())
    if not report.usable or (report.bad_rows and args.bad_rows == "fail"):
        return 1
    return 0


def spec_from_args(args: argparse.Namespace) -> CsvDatasetSpec:
    """Build the spec from CLI options; DatasetError (one line) for missing or wrong arguments."""
    if args.preset:
        if not args.root:
            raise DatasetError("--preset needs --root, the folder the dataset was unpacked in")
        spec = CsvDatasetSpec.from_preset(args.preset, args.root, csv=args.csv)
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
    return overrides
