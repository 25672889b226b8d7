"""Runs trained elsewhere, opened by the dashboard as predictions-only run folders.

Researchers who study these losses mostly train on a GPU, with the authors' code or their own.
Per-post test predictions are all the effects need (each variant's Δ vs CE over seeds, per
slice, and the posts it fixes or breaks), so such runs are imported as run folders of the
checkpoint format without weights (`checkpoint.ImportedRun`): config.json, metrics.json computed
from the predictions, test_outputs.parquet and, given validation predictions,
val_outputs.parquet. Pages that run the model leave them out and say why.

    mmaux import authors RESULTS_DIR --root DATA_DIR --out OUT_DIR [--skip-unparsed]
        every `*preds.csv` under RESULTS_DIR named as the authors' code names it
        (`parse_authors_name`), columns data_id,label,prediction (class indices, test split)
    mmaux import predictions FILE.csv --preset P --root D --arch A --variant V --seed S --out OUT_DIR
        any framework: columns post_id, pred (class index or name) and optional p_<class>
        probabilities; --val FILE.csv gives the validation split's in the same format

Everything is checked before anything is written: each file against the dataset's split (ids
in it and not repeated, labels that agree with it, predictions in its label set, probabilities
that are probabilities) and the set of runs against itself and OUT_DIR (one file per run, no
run folder that exists already). Problems are listed with their file and row (numbered as a
spreadsheet shows them: the header is row 1) and the import stops. The runs are written into a
hidden staging folder beside OUT_DIR and moved into place at the end.

A run lands in OUT_DIR/<dataset>/<model>/<variant>-seed<S>, as `mmaux sweep` lays them out; the
runs of one dataset and model form a group of the home page. Without validation predictions an
effect is at best `effects.TEST_ONLY`.
"""
from __future__ import annotations

import re
import shlex
import shutil
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mmaux.analysis import effects
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointInfo, ImportedRun, save_checkpoint
from mmaux.data.csvdata import (FIRST_DATA_LINE, PRESETS, CsvDatasetSpec, DatasetError, brief, load_posts,
                                read_table, spec_from_args)
from mmaux.data.datasets import SLICE_COLUMNS, DatasetSpec, fingerprint, load_dataset
from mmaux.evaluate import classification_metrics
from mmaux.losses import LossConfig
from mmaux.paths import REPO_ROOT, ROOTS_ENV

AUTHORS_TASKS = {0: "tir-text-represented", 1: "tir-image-adds", 2: "tir", 3: "mvsa-single", 4: "mhp",
                 5: "micd", 6: "msd"}  # the authors' --task -> mmaux's preset of that dataset and task
TEXT_MODELS = ("bert", "bernice", "bertweet", "roberta")
IMAGE_MODELS = ("vit", "beit", "deit", "resnet50", "resnet152")
FUSIONS = ("xatt", "concat", "attention", "concat_cnn", "aspect-att", "gmu")
WHOLE_MODELS = ("mmbt", "vilt", "lxmert")  # MMBT and early fusion files name the model alone
_BETA = r"\d+(?:\.\d+)?(?:e-?\d+)?"  # str(float) of a loss weight: 0.1, 0.25, 1e-05
AUTHORS_NAME = re.compile(rf"(?P<model>.+?)_task(?P<task>\d+)_seed(?P<seed>\d+)_(?:itc(?P<itc>{_BETA}))?"
                          rf"(?:itm(?P<itm>{_BETA}))?_(?:N(?P<n>\d+)_)?preds\.csv")
AUTHORS_COLUMNS = ("data_id", "label", "prediction")
PREDICTIONS_COLUMNS = ("post_id", "pred")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # a folder name and a URL token (no , : /)
MAX_LISTED = 10  # problems listed per file
SUM_TOLERANCE = 0.01  # how far a row's probabilities may sum from 1 (files round them)


class ImportProblem(ValueError):
    """Input that cannot be imported; the message lists each problem with its file and row."""


# --- the authors' file names --------------------------------------------------------------------

@dataclass(frozen=True)
class AuthorsName:
    """What an authors' predictions file name says about its run."""

    model: str  # "bert-vit-attention", "mmbt", ...; "-N<count>" appended for a run trained on a sample
    preset: str  # mmaux's preset of its task
    seed: int
    loss: LossConfig


def parse_authors_name(name: str) -> AuthorsName:
    """`{txt}-{img}-{fusion}_task{N}_seed{S}_{loss}_{n}preds.csv` (or `{model}_task...` for MMBT
    and early fusion), `{loss}` empty for CE, else `itc{β}` and/or `itm{β}`, `{n}` empty or
    `N{count}_`. ValueError saying what does not fit."""
    match = AUTHORS_NAME.fullmatch(name)
    if not match:
        raise ValueError("not {txt}-{img}-{fusion}_task{N}_seed{S}_{loss}_{n}preds.csv")
    model, task = match["model"], int(match["task"])
    if task not in AUTHORS_TASKS:
        raise ValueError(f"task {task} is not one of the authors' tasks 0-6")
    if model not in WHOLE_MODELS:
        text, _, rest = model.partition("-")
        image, _, fusion = rest.partition("-")
        if text not in TEXT_MODELS or image not in IMAGE_MODELS or fusion not in FUSIONS:
            raise ValueError(f"model {model!r} is neither {{txt}}-{{img}}-{{fusion}} (txt: {', '.join(TEXT_MODELS)}; "
                             f"img: {', '.join(IMAGE_MODELS)}; fusion: {', '.join(FUSIONS)}) nor one of "
                             f"{', '.join(WHOLE_MODELS)}")
    loss = LossConfig(itc=match["itc"] is not None, itm=match["itm"] is not None,
                      beta_itc=float(match["itc"] or 0.1), beta_itm=float(match["itm"] or 0.1))
    return AuthorsName(model + (f"-N{match['n']}" if match["n"] else ""), AUTHORS_TASKS[task], int(match["seed"]),
                       loss)


def loss_of_variant(variant: str, beta_itc: float = 0.1, beta_itm: float = 0.1) -> LossConfig:
    """'CE+ITC' or 'itc' (the sweep's token), 'CE', 'ce+itc+itm', ... as a LossConfig."""
    names = {part for part in variant.lower().replace(",", "+").split("+") if part} - {"ce", "none"}
    return LossConfig.from_aux(",".join(sorted(names)) or "none", beta_itc=beta_itc, beta_itm=beta_itm)


def variant_token(loss: LossConfig) -> str:
    """'ce', 'itc', 'itm' or 'itc+itm': the variant's part of a run folder's name, as in a sweep."""
    return "+".join(name for name, on in (("itc", loss.itc), ("itm", loss.itm)) if on) or "ce"


# --- one split of a dataset ---------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    """The posts of one split that a predictions file is checked against."""

    spec: CsvDatasetSpec
    name: str  # "test" or "val"
    posts: pd.DataFrame  # the split as the dashboard reads it (`load_dataset`)
    every_split: dict[str, str]  # post id -> split, for every row of the CSV (to say where a stray id is)
    labels: tuple[str, ...]

    @classmethod
    def load(cls, spec: CsvDatasetSpec, name: str) -> Split:
        if not Path(spec.csv).is_file():
            names = " or ".join(PRESETS[spec.name].csv_names) if spec.name in PRESETS else Path(spec.csv).name
            raise ImportProblem(f"{Path(spec.csv).parent}: no {names} for {spec.name}")
        posts = load_dataset(DatasetSpec(csv=spec), splits=(name,))
        every = load_posts(spec)
        return cls(spec, name, posts.split(name), dict(zip(every["post_id"], every["split"])), posts.label_names)

    def where(self, post_id: str) -> str:
        """Why `post_id` is not one of this split's posts."""
        other = self.every_split.get(post_id)
        if other is None:
            return f"not in {self.spec.csv}"
        return f"not a {self.name} post of {self.spec.name} (it is in {other})"

    def class_index(self, value: str, names: bool) -> int | None:
        """A class given as its index (or, with `names`, its name); None when it is neither."""
        value = value.strip()
        if names and value in self.labels:
            return self.labels.index(value)
        if re.fullmatch(r"\d+", value) and int(value) < len(self.labels):
            return int(value)
        return None

    def classes_text(self) -> str:
        return f"0-{len(self.labels) - 1}: {', '.join(self.labels)}"


# --- one predictions file -----------------------------------------------------------------------

def _problem_list(path: Path, problems: Sequence[str]) -> str:
    shown = [f"  {p}" for p in problems[:MAX_LISTED]]
    more = [f"  ... and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
    return "\n".join([f"{path}: {len(problems)} problem(s):", *shown, *more])


def _read(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """The file as strings (`csvdata.read_table`), with its required columns."""
    try:
        frame = read_table(path)
    except DatasetError as err:
        raise ImportProblem(str(err)) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ImportProblem(f"{path}: missing column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}")
    return frame


def _probabilities(path: Path, frame: pd.DataFrame, split: Split) -> tuple[np.ndarray | None, dict[int, str]]:
    """The p_<class> columns as an (n, classes) array (None without them) and the problem of each
    row that has one."""
    given = [c for c in frame.columns if c.startswith("p_")]
    expected = [f"p_{name}" for name in split.labels]
    if not given:
        return None, {}
    if set(given) != set(expected):
        raise ImportProblem(f"{path}: probability columns {', '.join(given)}; give all of {', '.join(expected)} "
                            "(one per class of the dataset) or none")
    values = frame[expected].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    problems = {}
    for i, row in enumerate(values):
        if not (np.isfinite(row).all() and (row >= 0).all() and (row <= 1).all()):
            problems[i] = f"probabilities {', '.join(frame.loc[i, expected])} are not all numbers in [0, 1]"
        elif abs(row.sum() - 1) > SUM_TOLERANCE:
            problems[i] = f"probabilities sum to {row.sum():.3f}, not 1"
    return values, problems


def check_predictions(path: Path, ids: pd.Series, preds: pd.Series, split: Split, class_names: bool,
                      labels: pd.Series | None = None, probs: np.ndarray | None = None,
                      row_problems: dict[int, str] | None = None) -> pd.DataFrame:
    """The outputs frame of one file's rows (post_id, label_index, pred, confidence, itm_match,
    itc_cosine, p_<class>; in the split's post order), or ImportProblem listing every row that is
    not in the split, repeats an id, has a label other than the dataset's or a prediction outside
    its label set (`class_names`: predictions may be names too)."""
    if ids.empty:
        raise ImportProblem(f"{path}: no predictions, only a header")
    truth = split.posts.set_index("post_id")["label_index"]
    problems, seen, index, pred = [], {}, [], []
    for i, (post_id, value) in enumerate(zip(ids.str.strip(), preds)):
        row, said = FIRST_DATA_LINE + i, []
        if post_id in seen:
            said.append(f"duplicate of line {seen[post_id]}")
        seen.setdefault(post_id, row)
        if post_id not in truth.index:
            said.append(split.where(post_id))
        elif labels is not None:
            label = split.class_index(labels.iloc[i], names=False)
            if label != truth[post_id]:
                said.append(f"label {brief(labels.iloc[i])}, but {Path(split.spec.csv).name} says {truth[post_id]} "
                            f"({split.labels[truth[post_id]]})")
        predicted = split.class_index(value, class_names)
        if predicted is None:
            said.append(f"prediction {brief(value)} is not a class of {split.spec.name} ({split.classes_text()})")
        if row_problems and i in row_problems:
            said.append(row_problems[i])
        if said:
            problems.append(f"line {row} (id {brief(post_id)}): {'; '.join(said)}")
        index.append(post_id)
        pred.append(predicted)
    if problems:
        raise ImportProblem(_problem_list(path, problems))
    order = split.posts["post_id"][split.posts["post_id"].isin(seen)]
    position = pd.Series(range(len(index)), index=index)[order].to_numpy()
    pred = np.asarray(pred, dtype=np.int64)[position]
    outputs = pd.DataFrame({"post_id": order.to_numpy(), "label_index": truth[order].to_numpy(dtype=np.int64),
                            "pred": pred})
    given = None if probs is None else probs[position].astype(np.float32)
    outputs["confidence"] = np.nan if given is None else given[np.arange(len(pred)), pred]
    outputs["itm_match"] = outputs["itc_cosine"] = np.float32(np.nan)  # no model: no match scores
    for k, name in enumerate(split.labels):
        outputs[f"p_{name}"] = np.float32(np.nan) if given is None else given[:, k]
    return outputs


def read_authors_file(path: Path, split: Split) -> pd.DataFrame:
    """An authors' `*preds.csv` (data_id,label,prediction; class indices) as checked outputs."""
    frame = _read(path, AUTHORS_COLUMNS)
    return check_predictions(path, frame["data_id"], frame["prediction"], split, class_names=False,
                             labels=frame["label"])


def read_predictions_file(path: Path, split: Split) -> tuple[pd.DataFrame, bool]:
    """A post_id,pred[,p_<class>...] file as checked outputs, and whether it gave probabilities."""
    frame = _read(path, PREDICTIONS_COLUMNS)
    probs, row_problems = _probabilities(path, frame, split)
    outputs = check_predictions(path, frame["post_id"], frame["pred"], split, class_names=True, probs=probs,
                                row_problems=row_problems)
    return outputs, probs is not None


# --- runs: prepare, then write all or nothing -----------------------------------------------------

@dataclass(frozen=True)
class PreparedRun:
    """One run folder to write, checked and computed, with its path relative to OUT_DIR."""

    folder: Path
    info: CheckpointInfo
    metrics: dict
    outputs: pd.DataFrame
    val_outputs: pd.DataFrame | None

    @property
    def covered(self) -> str:
        """'' when the predictions cover the whole test split, else 'covers n of m test posts'."""
        n, total = len(self.outputs), self.metrics["test_posts"]
        return "" if n == total else f"covers {n} of {total} test posts"


def _scores(outputs: pd.DataFrame, split: Split) -> dict:
    slices = split.posts.set_index("post_id").loc[outputs["post_id"]]
    slices = slices[[c for c in split.posts.columns if c in SLICE_COLUMNS]]
    return classification_metrics(outputs["label_index"], outputs["pred"], split.labels, slices)


def prepare_run(model: str, loss: LossConfig, seed: int, test: Split, outputs: pd.DataFrame, source: Path,
                fmt: str, probabilities: bool, val: tuple[Split, pd.DataFrame, Path] | None = None) -> PreparedRun:
    """A run's config, metrics and outputs from its checked predictions."""
    imported = ImportedRun(model=model, loss=loss, source=str(source.resolve()), format=fmt,
                           probabilities=probabilities, val_source=str(val[2].resolve()) if val else "")
    info = CheckpointInfo(model=None, dataset=DatasetSpec(csv=test.spec), label_names=test.labels, encoders={},
                          seed=seed, data_fingerprint=fingerprint(test.posts), imported=imported)
    metrics = {"test": _scores(outputs, test), "test_posts": len(test.posts), "imported_from": imported.source}
    if val:
        metrics["val"] = _scores(val[1], val[0])
    folder = Path(test.spec.name) / model / f"{variant_token(loss)}-seed{seed}"
    return PreparedRun(folder, info, metrics, outputs, val[1] if val else None)


def write_runs(runs: Sequence[PreparedRun], out: Path) -> list[Path]:
    """Write every run under `out`, or none: they are staged in a hidden folder beside `out` and
    moved into place at the end. A run folder that exists already stops the import."""
    targets = [out / run.folder for run in runs]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise ImportProblem(f"{out}: already holds {len(existing)} of these runs: {', '.join(existing[:MAX_LISTED])}"
                            f"{' ...' if len(existing) > MAX_LISTED else ''}; nothing was written. Import into a new "
                            "folder, or move those runs away first")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-import-", dir=out.parent))
    except OSError as err:
        raise ImportProblem(f"{out}: cannot be written ({err.strerror or err}); nothing was written") from None
    try:
        for run in runs:
            save_checkpoint(staging / "runs" / run.folder, None, run.info, run.metrics, run.outputs, {}, run.val_outputs)
        if not out.exists():
            (staging / "runs").rename(out)  # one step: OUT_DIR appears whole
        else:
            for run, target in zip(runs, targets):
                target.parent.mkdir(parents=True, exist_ok=True)
                (staging / "runs" / run.folder).rename(target)
    except OSError as err:
        raise ImportProblem(f"{out}: cannot be written ({err.strerror or err})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return targets


def _one_file_per_run(runs: Sequence[tuple[PreparedRun, Path]]) -> list[str]:
    """Problems for files that would be the same run (same dataset, model, variant and seed)."""
    by_folder = defaultdict(list)
    for run, path in runs:
        by_folder[run.folder].append(path)
    return [f"{folder}: {len(paths)} files are this one run (same dataset, model, variant and seed; their β may "
            f"differ): {', '.join(map(str, paths))}; import them into separate folders"
            for folder, paths in by_folder.items() if len(paths) > 1]


# --- the two importers --------------------------------------------------------------------------

@dataclass(frozen=True)
class Imported:
    """What an import wrote, and which files it skipped (name does not parse) and why."""

    folders: list[Path]
    runs: list[PreparedRun]
    skipped: list[str]


def _import_spec(spec: CsvDatasetSpec, missing_image: str | None = None) -> CsvDatasetSpec:
    """The dataset as an imported run records it: absolute paths (the dashboard may start in
    another folder), and a post whose image file is missing gets the blank placeholder (its
    predictions need no image) unless the user asked otherwise."""
    return replace(spec, csv=str(Path(spec.csv).resolve()), image_root=str(Path(spec.image_root).resolve()),
                   missing_image=missing_image or "blank")


def import_authors(results: Path, root: Path, out: Path, skip_unparsed: bool = False) -> Imported:
    """Every `*preds.csv` under `results` as a run under `out`; ImportProblem listing every bad
    file and row (names that do not parse too, unless `skip_unparsed`), with nothing written."""
    files = sorted(Path(results).rglob("*preds.csv"))
    if not files:
        raise ImportProblem(f"{results}: no *preds.csv file in it or below; give the authors' results folder "
                            "(e.g. results/ with mm_late/, mm_early/, mmbt/)")
    problems, skipped, prepared = [], [], []
    splits: dict[str, Split | None] = {}  # preset -> its test split; None when it cannot be read (said once)
    for path in files:
        try:
            name = parse_authors_name(path.name)
        except ValueError as err:
            (skipped if skip_unparsed else problems).append(f"{path}: file name does not parse: {err}")
            continue
        if name.preset not in splits:
            try:
                splits[name.preset] = Split.load(_import_spec(CsvDatasetSpec.from_preset(name.preset, root)), "test")
            except (ImportProblem, DatasetError) as err:
                splits[name.preset] = None
                problems.append(f"{path}: the dataset of its task ({name.preset}) cannot be read: {err}")
        if splits[name.preset] is None:
            continue
        try:
            outputs = read_authors_file(path, splits[name.preset])
        except ImportProblem as err:
            problems.append(str(err))
            continue
        prepared.append((prepare_run(name.model, name.loss, name.seed, splits[name.preset], outputs, path,
                                     "authors", probabilities=False), path))
    problems += _one_file_per_run(prepared)
    if problems:
        raise ImportProblem("\n".join(problems) + f"\nnothing was written to {out}")
    runs = [run for run, _ in prepared]
    return Imported(write_runs(runs, out), runs, skipped)


def import_predictions(path: Path, spec: CsvDatasetSpec, model: str, loss: LossConfig, seed: int, out: Path,
                       val_path: Path | None = None) -> Imported:
    """One post_id,pred[,p_<class>...] file (and `val_path`, the same for the validation split)
    as a run under `out`; ImportProblem listing every bad row, with nothing written."""
    if not MODEL_NAME.fullmatch(model):
        raise ImportProblem(f"--arch {model!r}: use letters, digits and . _ + - only (it names a folder and "
                            "appears in links)")
    test = Split.load(spec, "test")
    outputs, probabilities = read_predictions_file(Path(path), test)
    val = None
    if val_path is not None:
        val_split = Split.load(spec, "val")
        val = (val_split, read_predictions_file(Path(val_path), val_split)[0], Path(val_path))
    run = prepare_run(model, loss, seed, test, outputs, Path(path), "predictions", probabilities, val)
    return Imported(write_runs([run], out), [run], [])


# --- command line: `mmaux import authors|predictions` ---------------------------------------------

def run_authors(args) -> int:
    """`mmaux import authors`."""
    done = import_authors(Path(args.results), Path(args.root), Path(args.out), args.skip_unparsed)
    for line in done.skipped:
        print(f"skipped: {line}")
    _report(done, Path(args.out))
    return 0


def run_predictions(args) -> int:
    """`mmaux import predictions`."""
    spec = _import_spec(spec_from_args(args), args.missing_image)
    loss = loss_of_variant(args.variant, args.beta_itc, args.beta_itm)
    _report(import_predictions(Path(args.file), spec, args.arch, loss, args.seed, Path(args.out),
                               Path(args.val) if args.val else None), Path(args.out))
    return 0


def dashboard_command(root: Path) -> str:
    """A command that opens the dashboard on `root` from any folder: absolute paths, this Python."""
    app = REPO_ROOT / "app.py"
    if not app.is_file():  # installed without the repository: the command line reads them too
        return f"mmaux claims {shlex.quote(str(root.resolve()))}"
    return (f"{ROOTS_ENV}={shlex.quote(str(root.resolve()))} {shlex.quote(sys.executable)} -m streamlit run "
            f"{shlex.quote(str(app))}")


def _report(done: Imported, out: Path) -> None:
    """What was imported, per group, and what the dashboard can do with it."""
    print(f"imported {len(done.runs)} run(s) into {out} (predictions only, no weights):")
    groups = defaultdict(list)
    for run in done.runs:
        groups[(run.info.dataset.name, run.info.architecture)].append(run)
    for (dataset, model), runs in groups.items():
        counts = {v: sum(r.info.variant == v for r in runs) for v in runs_lib.VARIANTS}
        seeds = sorted({r.info.seed for r in runs})
        print(f"  {dataset} · {model}: " + ", ".join(f"{v} x{n}" for v, n in counts.items() if n)
              + f" (seeds {', '.join(map(str, seeds))})")
    for run in done.runs:
        if run.covered:
            print(f"  note: {run.folder} {run.covered}")
    if any(run.val_outputs is None for run in done.runs):
        print(f"without validation predictions an effect is at best '{effects.TEST_ONLY}'")
    print(f"open them: {dashboard_command(out)}")
