"""Train a checkpoint again from its config.json and check that it gives the same outputs.

A predictions-only run (`CheckpointInfo.weights` false: the shipped seeds kept for the
statistics) stores no weights, so its predictions are evidence only if anyone can make them
again. Training is deterministic on the CPU for a given torch build and thread count (the
seeded initialisation, batch order and ITM negatives are all in config.json), so the same
config trains the same weights: `reproduce` retrains into a new folder, with weights, and
`compare_outputs` checks every stored prediction and probability against the new run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmaux.checkpoint import OUTPUTS, VAL_OUTPUTS, CheckpointError, check_encoders, read_info, read_metrics, read_outputs

DEFAULT_THREADS = 1  # what runs that predate the recorded thread count were trained with (make checkpoints)


@dataclass(frozen=True)
class Comparison:
    """How a retrained run's outputs compare with the stored ones, on one split."""

    split: str
    posts: int
    predictions_differ: int  # posts whose predicted class differs
    max_probability_diff: float  # largest |p_new - p_stored| over every post and class
    bitwise_equal: bool  # every probability identical to the last bit

    @property
    def identical(self) -> bool:
        return self.predictions_differ == 0 and self.bitwise_equal

    def line(self) -> str:
        verdict = "identical" if self.identical else "DIFFERENT"
        return (f"{self.split}: {verdict}: {self.posts} posts, {self.predictions_differ} predictions differ, "
                f"largest probability difference {self.max_probability_diff:.3g}"
                + ("" if self.bitwise_equal else " (not bitwise equal)"))


def recorded_threads(folder: str | Path) -> int:
    """The torch thread count the run was trained with (runs written before it was recorded:
    `DEFAULT_THREADS`, what the shipped rebuild uses)."""
    return int(read_metrics(folder).get("torch_threads", DEFAULT_THREADS))


def train_config(folder: str | Path, out_dir: str | Path, save_weights: bool = True):
    """The `TrainConfig` that trained the checkpoint in `folder`, writing to `out_dir`."""
    from mmaux.train import TrainConfig

    folder = Path(folder)
    info = read_info(folder)
    if not info.model:
        raise CheckpointError(f"{folder}: imported from {info.imported.source}; mmaux cannot train it again")
    check_encoders(info, folder)
    try:
        return TrainConfig(model=info.model, dataset=info.dataset, out_dir=str(out_dir),
                           save_weights=save_weights, **info.train)
    except TypeError as err:
        raise CheckpointError(f"{folder / 'config.json'}: its train record cannot be read ({err})") from None


def reproduce(folder: str | Path, out_dir: str | Path, save_weights: bool = True,
              progress: bool = False) -> list[Comparison]:
    """Train `folder`'s run again into `out_dir` with its recorded settings and thread count,
    then compare the outputs on every split both have."""
    import torch

    from mmaux.train import train

    cfg = train_config(folder, out_dir, save_weights)
    threads = torch.get_num_threads()
    torch.set_num_threads(recorded_threads(folder))
    try:
        train(cfg, progress=progress)
    finally:
        torch.set_num_threads(threads)
    return compare_outputs(folder, out_dir)


def compare_outputs(stored: str | Path, new: str | Path) -> list[Comparison]:
    """Test (and validation, where both have it) outputs of two runs of the same posts, compared."""
    found = []
    for split, name in (("test", OUTPUTS), ("val", VAL_OUTPUTS)):
        if not ((Path(stored) / name).exists() and (Path(new) / name).exists()):
            continue
        a, b = read_outputs(stored, name)[0], read_outputs(new, name)[0]
        if list(a["post_id"]) != list(b["post_id"]):
            raise ValueError(f"{stored} and {new} hold other {split} posts; they are not the same run")
        columns = [c for c in a.columns if c.startswith("p_")]
        pa, pb = a[columns].to_numpy(), b[columns].to_numpy()
        found.append(Comparison(split, len(a), int((a["pred"].to_numpy() != b["pred"].to_numpy()).sum()),
                                float(np.abs(pa - pb).max()) if pa.size else 0.0,
                                pa.dtype == pb.dtype and pa.tobytes() == pb.tobytes()))
    return found
