"""Checkpoint folders: save, inspect and load them safely.

    <run>/config.json           everything needed to rebuild the model (see CheckpointInfo)
    <run>/model.safetensors     only the parameters that are not untouched pretrained weights
    <run>/metrics.json          validation and test metrics
    <run>/test_outputs.parquet  per test post: probabilities, prediction, ITM match, ITC
                                embeddings and fused vector (what the dashboard shows)

Nothing here unpickles: weights are read with safetensors, everything else is JSON or Parquet.
A checkpoint is refused, with a message saying what differs, when its encoder weight files or
its label set do not match what it was trained with.

Two kinds of run have no model.safetensors (predictions only; `CheckpointInfo.has_model` is false):
- a run imported from another framework (`mmaux.importing`): its config.json has no model but an
  `imported` record (`ImportedRun`), and its outputs hold predictions (and class probabilities
  when the file gave them), no embeddings;
- a run of mmaux's own saved without its weights (`"weights": false` in config.json; the shipped
  seeds kept for the statistics): its config.json is complete, so `mmaux reproduce` trains the
  same weights again, and its outputs hold everything but the embeddings.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from safetensors import SafetensorError, safe_open

import mmaux
from mmaux.config import LossConfig, ModelConfig
from mmaux.data.datasets import DatasetSpec
from mmaux.encoder_files import encoder_fingerprint, encoder_weight_files

if TYPE_CHECKING:  # torch and the model load only where weights are read or written
    import torch

    from mmaux.model import MultimodalClassifier

CONFIG, WEIGHTS, METRICS, OUTPUTS = "config.json", "model.safetensors", "metrics.json", "test_outputs.parquet"
VAL_OUTPUTS = "val_outputs.parquet"  # per validation post (no embeddings): effects are replicated on it
EMBEDDING_COLUMNS = ("text_emb", "image_emb", "fused")
CLASSIFIER = "classifier.1.weight"  # the task head's weight: one row per label
WEIGHT_DTYPES = ("float32", "float16")  # torch dtypes of the stored weights, by name
NO_MODEL = "imported predictions only: no weights, so there is no model to run"
NO_WEIGHTS = "predictions only: saved without its weights"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class ImportedRun:
    """Where a predictions-only run came from. It has test (maybe validation) predictions and the
    metrics computed from them, but no weights: nothing can be re-run, embedded or attributed."""

    model: str  # the model's own name, its architecture in the runs table (e.g. "bert-vit-attention")
    loss: LossConfig  # the auxiliary losses it was trained with, and their weights
    source: str  # the predictions file read
    format: str  # "authors" (the paper's code) or "predictions" (any other framework)
    probabilities: bool  # whether the file gave class probabilities (calibration and confidence)
    val_source: str = ""  # the validation predictions file read, if any

    def to_dict(self) -> dict:
        return {**asdict(self), "weights": False}

    @classmethod
    def from_dict(cls, values: dict) -> "ImportedRun":
        if not isinstance(values, dict):
            raise ValueError(f"imported must be a JSON object, got {type(values).__name__}")
        values = {k: v for k, v in values.items() if k != "weights"}
        return cls(**{**values, "loss": LossConfig(**values.get("loss", {}))})


@dataclass(frozen=True)
class CheckpointInfo:
    """The contents of config.json."""

    model: ModelConfig | None  # None for an imported run: there is no model to rebuild
    dataset: DatasetSpec
    label_names: tuple[str, ...]
    encoders: dict[str, str]  # encoder name -> sha256 of its weight files
    seed: int
    train: dict = field(default_factory=dict)  # optimisation settings, for the record
    data_fingerprint: str = ""
    weights_dtype: str = "float32"
    mmaux_version: str = mmaux.__version__
    imported: ImportedRun | None = None  # set for a predictions-only run from another framework
    weights: bool = True  # False: mmaux's own run saved without model.safetensors (predictions only)

    @property
    def has_model(self) -> bool:
        """Whether the folder holds weights a page or command can run (not predictions only)."""
        return self.imported is None and self.weights

    @property
    def task(self) -> str:
        return self.dataset.name

    @property
    def loss(self) -> LossConfig:
        return self.imported.loss if self.imported else self.model.loss

    @property
    def architecture(self) -> str:
        """mmaux's architecture, or an imported run's own model name (its group in the runs table)."""
        return self.imported.model if self.imported else self.model.architecture

    @property
    def variant(self) -> str:
        return self.loss.variant

    @property
    def label(self) -> str:
        """What tells this checkpoint apart from its neighbours, for pickers and legends: its loss
        variant by the name every page uses (CE, CE+ITC, CE+ITM, CE+ITC+ITM). Display only: no
        cache or group key reads it."""
        task = self.dataset.synth.task if self.dataset.synth else self.task  # short: pickers cut long labels
        return f"{task} · {self.architecture} · {self.variant} · seed {self.seed}"

    def to_dict(self) -> dict:
        values = {"mmaux_version": self.mmaux_version, "model": self.model.to_dict() if self.model else None,
                  "dataset": self.dataset.to_dict(), "label_names": list(self.label_names),
                  "encoders": self.encoders, "seed": self.seed, "train": self.train,
                  "data_fingerprint": self.data_fingerprint, "weights_dtype": self.weights_dtype}
        if not self.weights:
            values["weights"] = False
        return {**values, "imported": self.imported.to_dict()} if self.imported else values

    @classmethod
    def from_dict(cls, values: dict) -> "CheckpointInfo":
        imported = ImportedRun.from_dict(values["imported"]) if "imported" in values else None
        model = None if imported else ModelConfig.from_dict(values["model"])
        labels = tuple(values["label_names"])
        if model and len(labels) != model.num_labels:
            raise ValueError(f"label_names has {len(labels)} names but the model has {model.num_labels} classes")
        if values.get("weights_dtype", "float32") not in WEIGHT_DTYPES:
            raise ValueError(f"weights_dtype must be one of {list(WEIGHT_DTYPES)}")
        return cls(model=model, dataset=DatasetSpec.from_dict(values["dataset"]), label_names=labels,
                   encoders=dict(values["encoders"]), seed=int(values["seed"]), train=dict(values.get("train", {})),
                   data_fingerprint=values.get("data_fingerprint", ""),
                   weights_dtype=values.get("weights_dtype", "float32"),
                   mmaux_version=values.get("mmaux_version", "?"), imported=imported,
                   weights=_flag(values, "weights"))


def _flag(values: dict, name: str) -> bool:
    """A true/false field of config.json (absent: true); anything else is refused, not guessed."""
    value = values.get(name, True)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def encoder_names(cfg: ModelConfig) -> list[str]:
    """The pretrained encoders a model is built from."""
    return [cfg.vilt_model] if cfg.architecture == "vilt" else [cfg.text_encoder, cfg.image_encoder]


def encoder_hashes(cfg: ModelConfig) -> dict[str, str]:
    return {name: encoder_fingerprint(name) for name in encoder_names(cfg)}


# --- reading -------------------------------------------------------------------------------------

def member(folder: Path, name: str) -> Path:
    """A file of the checkpoint; refuses links that lead outside the folder."""
    path = folder / name
    if not path.is_file():
        if not folder.is_dir():
            raise CheckpointError(f"{folder.resolve()}: no such checkpoint folder")
        try:  # a root of runs given where one run was asked for: say which runs it holds
            runs = [run for run in find_checkpoints(folder, max_depth=3, max_entries=2_000)
                    if run.resolve() != folder.resolve()] if name == CONFIG else []
        except SearchTooLarge:
            runs = []
        if runs:
            shown = ", ".join(str(r) for r in runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
            raise CheckpointError(f"{folder.resolve()}: holds {len(runs)} checkpoint folder(s), not one checkpoint; "
                                  f"give one of them: {shown}")
        raise CheckpointError(f"{path}: missing. A checkpoint folder needs {CONFIG}, {METRICS} and {OUTPUTS} "
                              f"(and {WEIGHTS}, unless it holds predictions only); re-run training or copy the "
                              "whole folder")
    if not path.resolve().is_relative_to(folder.resolve()):
        raise CheckpointError(f"{path}: is a link to {path.resolve()}, outside the checkpoint folder; "
                              "copy the real file into the folder")
    return path


def read_info(folder: str | Path) -> CheckpointInfo:
    """Parse and validate config.json (no weights are read)."""
    path = member(Path(folder), CONFIG)
    try:
        return CheckpointInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); restore the file from the training run") from None
    except RecursionError:
        raise CheckpointError(f"{path}: not a checkpoint config (JSON nested too deeply)") from None
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid checkpoint config: {err}") from None


def read_metrics(folder: str | Path) -> dict:
    path = member(Path(folder), METRICS)
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); restore the file from the training run") from None
    except (ValueError, RecursionError) as err:  # not UTF-8, or nested too deeply
        raise CheckpointError(f"{path}: not a metrics file ({type(err).__name__}); restore it from the "
                              "training run") from None
    if not isinstance(metrics, dict):
        raise CheckpointError(f"{path}: not a metrics file (a JSON {type(metrics).__name__}, not an object)")
    return metrics


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = member(Path(folder), WEIGHTS)
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}). mmaux never unpickles "
                              "weights: re-save them with safetensors") from None


def check_weights_header(folder: str | Path, info: CheckpointInfo) -> None:
    """Cheap checks for listing checkpoints (no tensor is read, no encoder hashed): the weights
    file is a safetensors file inside the folder, its classifier has one output per label, and
    every encoder the config names can be found here. A predictions-only run has neither."""
    if not info.has_model:
        return
    folder = Path(folder)
    path = member(folder, WEIGHTS)
    try:
        with safe_open(path, framework="numpy") as handle:  # names and shapes only: no tensor, no torch
            names = set(handle.keys())
            shape = handle.get_slice(CLASSIFIER).get_shape() if CLASSIFIER in names else None
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}). mmaux never unpickles "
                              "weights: re-save them with safetensors") from None
    if shape is not None and shape[0] != len(info.label_names):
        raise CheckpointError(f"{path}: the classifier has {shape[0]} outputs but {CONFIG} names "
                              f"{len(info.label_names)} labels {list(info.label_names)}")
    for name in encoder_names(info.model):
        try:
            encoder_weight_files(name)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{folder / CONFIG}: encoder {name!r} cannot be found here ({err})") from None


def check_encoders(info: CheckpointInfo, folder: Path):
    """Refuse a checkpoint whose pretrained encoder files differ from the ones it was trained on."""
    used = set(encoder_names(info.model))
    if set(info.encoders) != used:
        raise CheckpointError(f"{folder / CONFIG}: records weight hashes for encoders {sorted(info.encoders)} but "
                              f"the model uses {sorted(used)}; restore the file from the training run")
    for name, recorded in info.encoders.items():
        try:
            current = encoder_fingerprint(name)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{folder / CONFIG}: encoder {name!r} cannot be found here ({err})") from None
        if current != recorded:
            raise CheckpointError(
                f"{folder / CONFIG}: encoder {name!r} weights differ from the ones this checkpoint was trained "
                f"with (sha256 {current[:12]}… here, {recorded[:12]}… recorded); install the recorded version")


def load_model(folder: str | Path) -> tuple[MultimodalClassifier, CheckpointInfo]:
    """Rebuild the model from config.json, the pretrained encoders and model.safetensors, in eval mode."""
    folder = Path(folder)
    info = read_info(folder)
    if info.imported:
        raise CheckpointError(f"{folder}: {NO_MODEL} (from {info.imported.source})")
    if not info.weights:
        raise CheckpointError(f"{folder}: {NO_WEIGHTS}; `mmaux reproduce --checkpoint {folder} --out DIR` trains "
                              "the same weights again from its config.json")
    check_encoders(info, folder)
    weights = read_weights(folder)
    from mmaux.model import MultimodalClassifier
    try:
        model = MultimodalClassifier(info.model)
    except Exception as err:  # noqa: BLE001 - any failure of the encoders it names (e.g. a refused pickle)
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{folder / CONFIG}: the model cannot be built from the encoders it names "
                              f"({type(err).__name__}: {first})") from None
    classifier = weights.get(CLASSIFIER)
    if classifier is not None and classifier.shape[0] != len(info.label_names):
        raise CheckpointError(f"{folder / WEIGHTS}: the classifier has {classifier.shape[0]} outputs but "
                              f"{CONFIG} names {len(info.label_names)} labels {list(info.label_names)}")
    _load_state(model, weights, folder)
    return model.eval(), info


def _load_state(model: MultimodalClassifier, weights: dict[str, torch.Tensor], folder: Path):
    own = model.state_dict()
    unexpected = sorted(set(weights) - set(own))
    missing = sorted(set(own) - set(weights) - model.untouched_keys())
    if unexpected or missing:
        raise CheckpointError(f"{folder / WEIGHTS}: does not match {CONFIG}: "
                              f"unexpected {unexpected[:5]}, missing {missing[:5]}")
    for name, tensor in weights.items():
        if tensor.shape != own[name].shape:
            raise CheckpointError(f"{folder / WEIGHTS}: {name} has shape {tuple(tensor.shape)}, "
                                  f"the config builds {tuple(own[name].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()}, strict=False)


# --- writing -------------------------------------------------------------------------------------

def round_weights(model: MultimodalClassifier, dtype: str):
    """Round the saved parameters to the storage dtype in place, so that the metrics and outputs
    written beside them are those of exactly the weights a reload gives."""
    import torch

    with torch.no_grad():
        for name, tensor in model.trained_state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(getattr(torch, dtype)).to(tensor.dtype))


def save_checkpoint(folder: str | Path, model: MultimodalClassifier | None, info: CheckpointInfo, metrics: dict,
                    outputs: pd.DataFrame, arrays: dict[str, np.ndarray], val_outputs: pd.DataFrame | None = None):
    """Write the four files (and the validation outputs, when given); a predictions-only run
    (`info.has_model` false) has no weights file and no embeddings. Refuses to overwrite an
    existing checkpoint."""
    folder = Path(folder)
    if (model is None) != (info.imported is not None):
        raise ValueError("a checkpoint has either a model or an imported record, exactly one of them")
    if not info.has_model:
        model, arrays = None, {}
    if (folder / CONFIG).exists():
        raise CheckpointError(f"{folder}: already holds a checkpoint; choose another output folder or delete it")
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        import torch
        from safetensors.torch import save_file

        dtype = getattr(torch, info.weights_dtype)
        save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in model.trained_state_dict().items()},
                  folder / WEIGHTS, metadata={"format": "pt", "mmaux_version": mmaux.__version__})
    (folder / METRICS).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    write_outputs(folder / OUTPUTS, outputs, arrays)
    if val_outputs is not None:
        write_outputs(folder / VAL_OUTPUTS, val_outputs, {})
    (folder / CONFIG).write_text(json.dumps(info.to_dict(), indent=2), encoding="utf-8")  # last: marks complete


def write_outputs(path: Path, frame: pd.DataFrame, arrays: dict[str, np.ndarray]):
    """Per-post columns plus (N, D) arrays stored as fixed-size float16 lists."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name, values in arrays.items():
        values = np.ascontiguousarray(values, dtype=np.float16)
        flat = pa.array(values.reshape(-1), type=pa.float16())
        table = table.append_column(name, pa.FixedSizeListArray.from_arrays(flat, values.shape[1]))
    # no dictionary for the embeddings: float16 values rarely repeat (the files shrink by a sixth)
    pq.write_table(table, path, compression="zstd", use_dictionary=list(frame.columns))


def read_outputs(folder: str | Path, name: str = OUTPUTS,
                 columns: Sequence[str] | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The test outputs (or `name`, e.g. VAL_OUTPUTS): a frame of per-post columns and the
    embedding arrays (float32). `columns` reads only those (Parquet is columnar: a caller that
    needs two columns of every run in a group skips the embeddings, most of a file's bytes)."""
    path = member(Path(folder), name)
    try:
        table = pq.read_table(path, columns=None if columns is None else list(columns))
    except (pa.ArrowException, OSError) as err:
        raise CheckpointError(f"{path}: unreadable Parquet file ({err})") from None
    arrays = {}
    for name in EMBEDDING_COLUMNS:
        if name in table.column_names:
            column = table.column(name).combine_chunks()
            arrays[name] = column.flatten().to_numpy().astype(np.float32).reshape(len(column), -1)
            table = table.drop_columns(name)
    return table.to_pandas(), arrays


MAX_SEARCH_ENTRIES = 20_000  # directory entries one checkpoint search may look at before it stops


class SearchTooLarge(CheckpointError):
    """A checkpoint root holding more entries than a search may look at (e.g. `/` typed in)."""


def find_checkpoints(root: str | Path, max_depth: int = 4, max_entries: int = MAX_SEARCH_ENTRIES) -> list[Path]:
    """Folders under `root`, at most `max_depth` levels down, that hold a config.json,
    model.safetensors or test_outputs.parquet (a checkpoint, good or broken: one that lost its
    config.json is listed too, to say so).

    The walk never descends past `max_depth` (nor into links to folders or hidden folders such
    as .git and .venv), and raises
    `SearchTooLarge` once it has looked at `max_entries` entries, so a root such as `/` costs
    milliseconds and says why it was not searched instead of globbing the whole disk."""
    root = Path(root)
    if not root.is_dir():
        return []
    markers, found, seen = {CONFIG, WEIGHTS, OUTPUTS}, set(), 0
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen > max_entries:
                        raise SearchTooLarge(f"{root}: more than {max_entries} files and folders within {max_depth} "
                                             "levels, so it is not searched for checkpoints; give the folder that "
                                             "holds your checkpoint folders instead")
                    if entry.name in markers:
                        found.add(folder)
                    elif depth < max_depth and not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                        stack.append((Path(entry.path), depth + 1))
        except OSError:  # unreadable folder: nothing to list from it
            continue
    return sorted(found)
