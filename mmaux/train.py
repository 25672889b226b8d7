"""`train(cfg)`: fine-tune one model and write its checkpoint folder.

Runs under Hugging Face Accelerate, so the same code trains on one CPU, under
`accelerate launch --num_processes 2 --cpu`, or on several GPUs.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mmaux.checkpoint import CONFIG, CheckpointInfo, encoder_hashes, round_weights, save_checkpoint
from mmaux.config import ModelConfig
from mmaux.data.datasets import DatasetSpec, fingerprint, load_dataset
from mmaux.evaluate import evaluate_inputs
from mmaux.features import PostInputs
from mmaux.losses import LossConfig, balanced_class_weights, joint_loss
from mmaux.model import MultimodalClassifier


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig  # architecture, encoders, tuning, losses
    dataset: DatasetSpec  # SynthPosts task or CSV dataset
    out_dir: str  # the checkpoint folder to write (must not exist yet)
    epochs: int = 3  # the paper: 2-7
    batch_size: int = 16  # the paper: 8-16
    lr: float = 1e-5  # encoder parameters (the paper's learning rate)
    head_lr: float | None = None  # fusion and heads; None: same as lr
    weight_decay: float = 2.5e-4  # the paper's AdamW weight decay
    seed: int = 0  # model init, shuffling and ITM negatives
    weights_dtype: str = "float32"  # storage dtype of model.safetensors (float16 halves the size)
    on_bad_rows: str = "fail"  # CSV datasets: "fail" or "skip" rows that fail validation
    feature_cache: bool = True  # cache outputs of frozen encoder parts on disk
    save_weights: bool = True  # False: a predictions-only run (outputs and metrics, no weights or embeddings)

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or (self.head_lr is not None and self.head_lr <= 0):
            raise ValueError("learning rates must be positive")
        if self.on_bad_rows not in ("fail", "skip"):
            raise ValueError(f"on_bad_rows must be 'fail' or 'skip', got {self.on_bad_rows!r}")
        if self.model.loss.itm and self.model.loss.itm_warmup_epochs >= self.epochs:
            raise ValueError(f"itm_warmup_epochs ({self.model.loss.itm_warmup_epochs}) must leave at least one "
                             f"epoch of the joint loss (epochs {self.epochs})")

    def record(self) -> dict:
        """The optimisation settings stored in the checkpoint's config.json."""
        values = asdict(self)
        for key in ("model", "dataset", "out_dir", "save_weights"):  # save_weights: CheckpointInfo.weights
            values.pop(key)
        return values


@dataclass
class EpochLog:
    epoch: int
    train_loss: float  # mean of the joint loss over the epoch's steps
    val_macro_f1: float
    train_losses: dict[str, float] | None = None  # mean of each part (ce, itc, itm), unweighted
    weights: tuple[float, float, float] | None = None  # (CE, ITC, ITM) weights of the epoch's last step


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Train, select the epoch with the best validation macro-F1, evaluate, save. Returns the folder."""
    out_dir = Path(cfg.out_dir)
    if (out_dir / CONFIG).exists():
        raise FileExistsError(f"{out_dir} already holds a checkpoint; choose another --out or delete it")
    accelerator = Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    set_seed(cfg.seed)
    started = time.perf_counter()

    # 1. data: all three splits; class weights from the training split
    posts = load_dataset(cfg.dataset, progress=progress and accelerator.is_main_process,
                         on_bad_rows=cfg.on_bad_rows)
    if len(posts.label_names) != cfg.model.num_labels:
        raise ValueError(f"the model has {cfg.model.num_labels} classes, the dataset {len(posts.label_names)}")
    train_posts, val_posts, test_posts = (posts.split(s) for s in ("train", "val", "test"))
    for name, frame in (("train", train_posts), ("val", val_posts), ("test", test_posts)):
        if frame.empty:
            raise ValueError(f"dataset {posts.name} has no {name} posts")

    # 2. model, with frozen encoder parts' outputs computed once (main process first: it fills the cache)
    model = MultimodalClassifier(cfg.model)
    model.class_weights.copy_(balanced_class_weights(train_posts["label_index"].to_numpy(), cfg.model.num_labels))
    with accelerator.main_process_first():
        inputs, val_inputs, test_inputs = split_inputs(model, posts, cfg.feature_cache,
                                                       progress and accelerator.is_main_process)
    labels = torch.tensor(train_posts["label_index"].to_numpy())

    # 3. optimiser and data loader, prepared by Accelerate
    optimizer = torch.optim.AdamW(model.param_groups(cfg.lr, cfg.head_lr or cfg.lr, cfg.weight_decay))
    loader = DataLoader(range(len(inputs)), batch_size=cfg.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(cfg.seed),
                        collate_fn=lambda index: (inputs.batch(index), labels[index]))
    reach = _check_reach(model, inputs, labels, cfg)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    itm_generator = torch.Generator().manual_seed(cfg.seed * 1000 + accelerator.process_index)

    # 4. epochs: train, then score the validation split and keep the best weights
    history, best = [], (-1.0, 0, None)
    for epoch in range(1, cfg.epochs + 1):
        loss, parts, weights = _train_epoch(model, optimizer, loader, accelerator, itm_generator, epoch, progress,
                                            cfg.model.loss)
        core = accelerator.unwrap_model(model)
        val_f1 = evaluate_inputs(core, val_inputs, posts.label_names)[0]["macro_f1"]
        history.append(EpochLog(epoch, loss, val_f1, parts, weights))
        if val_f1 > best[0]:
            best = (val_f1, epoch, {k: v.clone() for k, v in core.trained_state_dict().items()})

    # 5. the best epoch's weights, rounded to their storage dtype, evaluated and saved
    core = accelerator.unwrap_model(model)
    core.load_state_dict(best[2], strict=False)
    round_weights(core, cfg.weights_dtype)
    val_metrics, val_outputs, _ = evaluate_inputs(core, val_inputs, posts.label_names)
    test_metrics, outputs, arrays = evaluate_inputs(core, test_inputs, posts.label_names)
    if accelerator.is_main_process:
        info = CheckpointInfo(model=cfg.model, dataset=cfg.dataset, label_names=posts.label_names,
                              encoders=encoder_hashes(cfg.model), seed=cfg.seed, train=cfg.record(),
                              data_fingerprint=fingerprint(posts.frame), weights_dtype=cfg.weights_dtype,
                              weights=cfg.save_weights)
        metrics = {"val": val_metrics, "test": test_metrics, "best_epoch": best[1],
                   "history": [asdict(h) for h in history], "aux_reaches_classifier": reach,
                   "train_seconds": round(time.perf_counter() - started, 1),
                   "torch_threads": torch.get_num_threads()}  # results depend on it: `mmaux reproduce` reuses it
        save_checkpoint(out_dir, core, info, metrics, outputs, arrays, val_outputs)
        print(f"{info.label}: best epoch {best[1]}, val macro-F1 {val_metrics['macro_f1']:.3f}, "
              f"test macro-F1 {test_metrics['macro_f1']:.3f} ({metrics['train_seconds']:.0f} s) -> {out_dir}")
    accelerator.wait_for_everyone()
    return out_dir


def split_inputs(model: MultimodalClassifier, posts, use_cache: bool = True,
                 progress: bool = False) -> tuple[PostInputs, PostInputs, PostInputs]:
    """Train, val and test inputs of `posts` for `model` (filling the feature caches once);
    `sweep --prepare-only` calls it alone, before sweeps run side by side."""
    return tuple(PostInputs(model, posts.split(split), use_cache, progress) for split in ("train", "val", "test"))


def _check_reach(model: MultimodalClassifier, inputs: PostInputs, labels, cfg: TrainConfig) -> dict[str, bool]:
    """Probe on the first training posts whether each enabled auxiliary loss can change the
    classifier; warn loudly when one cannot (the checkpoint records the answer)."""
    index = torch.arange(min(len(inputs), max(cfg.batch_size, 2)))
    reach = model.auxiliary_reach(inputs.batch(index), labels[index], torch.Generator().manual_seed(cfg.seed))
    for name, reaches in reach.items():
        if not reaches:
            warnings.warn(f"{name.upper()} cannot reach the classifier in this configuration (its gradient "
                          f"touches no trained parameter that changes the task logits): '+{name.upper()}' "
                          f"will train the same classifier as CE. Tune the text encoder (e.g. "
                          f"--text-tuning adapter) to compare them. Recorded in metrics.json.", stacklevel=2)
    return reach


def _train_epoch(model, optimizer, loader, accelerator, generator, epoch: int, progress: bool,
                 loss_cfg: LossConfig) -> tuple[float, dict[str, float], tuple[float, float, float]]:
    """One epoch; returns the mean joint loss, the mean of each part, and the last step's
    (CE, ITC, ITM) weights. With an ITM warm-up or ramp (`LossConfig.weights`), each step's
    loss is recombined from its parts with the weights at that step."""
    model.train()
    losses, parts = [], {}
    weights = loss_cfg.weights()
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not (progress and accelerator.is_main_process), leave=False)
    for step, (batch, labels) in enumerate(bar):
        out = model(batch, labels=labels, generator=generator)
        loss = out.loss
        if loss_cfg.itm_scheduled:
            weights = loss_cfg.weights(epoch - 1 + step / len(loader))
            loss = joint_loss(loss_cfg, out.losses["ce"], out.losses.get("itc"), out.losses.get("itm"), weights)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        for name, part in out.losses.items():
            parts.setdefault(name, []).append(part.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return float(np.mean(losses)), {name: float(np.mean(v)) for name, v in parts.items()}, weights
