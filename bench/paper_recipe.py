"""The paper recipe at its real size: BERT-base and ViT-base, batch 16, 128 tokens.

`--recipe paper` (full fine-tuning of the text encoder, frozen vision encoder, the reference
widths) has only ever run on tiny random configurations in the tests. This builds encoders of
BERT-base's and ViT-base's configurations (transformers' BertConfig() and ViTConfig() defaults,
random weights: nothing is downloaded) into the library's own models (`MultimodalClassifier`,
the paper recipe's settings from `mmaux.cli.RECIPES`), and times training steps (forward,
backward, AdamW) of late-fusion attention and of MMBT, CE against CE+ITC+ITM, on the device it
finds (a GPU when there is one, else the CPU).

A step is what `mmaux train --recipe paper` runs: the frozen ViT's outputs come from the feature
cache (computed once per image, timed separately as the cache fill), the 12 text layers run
live; texts are padded to the full 128 tokens (the authors' padding; mmaux trims a batch to its
longest text, so real tweets cost less). CE and CE+ITC+ITM of one architecture alternate step
by step, so that load from other processes hits both alike; medians are reported.

    python bench/paper_recipe.py [--steps 10] [--warmup 2] [--device cuda|cpu]

Prints per architecture the median step of each loss set-up, the aux-cost ratio (CE+ITC+ITM /
CE) and the peak memory (GPU: allocated by torch; CPU: the process's peak resident set), then
the projected epoch time for MVSA-Single (~4,500 training posts) and MSD (~20,000). Last line:
`paper_step_s=<late-fusion attention, CE+ITC+ITM step> paper_aux_ratio=<its CE+ITC+ITM / CE>
paper_peak_mb=<largest peak> mvsa_epoch_min=<its MVSA-Single epoch>`.
"""
from __future__ import annotations

import argparse
import gc
import math
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # aux_cost: the batch the benchmarks share

import torch  # noqa: E402
from aux_cost import make_batch  # noqa: E402  (also puts the repo root on the path)
from transformers import BertConfig, BertModel, ViTConfig, ViTModel  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from mmaux.cli import RECIPES  # noqa: E402
from mmaux.config import ModelConfig  # noqa: E402
from mmaux.losses import LossConfig  # noqa: E402
from mmaux.model import MultimodalClassifier, PostBatch  # noqa: E402

SETUPS = {"CE": LossConfig(), "CE+ITC+ITM": LossConfig(itc=True, itm=True)}
ARCHITECTURES = ("attention", "mmbt")
EPOCH_POSTS = {"MVSA-Single": 4_500, "MSD": 20_000}  # training posts per epoch
WEIGHT_DECAY = 2.5e-4  # the paper's


def write_encoders(folder: Path) -> tuple[str, str]:
    """BERT-base and ViT-base with random weights, saved where `from_pretrained` loads them."""
    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(folder / "bert-base")
    ViTModel(ViTConfig()).save_pretrained(folder / "vit-base")
    return str(folder / "bert-base"), str(folder / "vit-base")


def paper_config(architecture: str, loss: LossConfig, text: str, image: str) -> ModelConfig:
    """The model `mmaux train --recipe paper --arch <architecture>` builds on these encoders."""
    recipe = RECIPES["paper"]
    known = {f.name for f in fields(ModelConfig)}
    settings = {key: value for key, value in recipe.items() if key in known}
    return ModelConfig(num_labels=3, architecture=architecture, text_encoder=text, image_encoder=image, loss=loss,
                       text_trainable_layers=recipe["text_layers"], **settings)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mb(device: torch.device) -> float:
    """Peak memory so far: torch's allocations on a GPU, the process's resident set on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cached_batch(model: MultimodalClassifier, batch_size: int, max_length: int, device: torch.device
                 ) -> tuple[PostBatch, torch.Tensor, float]:
    """A training batch as the feature cache serves it (the frozen ViT's tokens and pooled
    vector instead of pixels), its labels, and the seconds the ViT takes to encode it (the
    faster of two runs: the first one pays for start-up)."""
    batch, labels = make_batch(batch_size, max_length, model.image_spec.size, model.cfg.num_labels)
    batch = batch.to(device)
    seconds = []
    with torch.no_grad():
        for _ in range(2):
            synchronize(device)
            start = time.perf_counter()
            features = model.backbone.image_features(batch)
            synchronize(device)
            seconds.append(time.perf_counter() - start)
    cached = PostBatch(attention_mask=batch.attention_mask, input_ids=batch.input_ids,
                       image_tokens=features.tokens, image_pooled=features.pooled)
    return cached, labels.to(device), min(seconds)


def timed_step(model, optimizer, batch, labels, generator, device) -> float:
    """Wall-clock seconds of one training step, the device synchronised on both ends."""
    synchronize(device)
    start = time.perf_counter()
    out = model(batch, labels, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    synchronize(device)
    return time.perf_counter() - start


def measure(architecture: str, text: str, image: str, args, device: torch.device) -> dict:
    """Median step per loss set-up (alternating), peak memory and the ViT's encoding time."""
    recipe = RECIPES["paper"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = {}
    for name, loss in SETUPS.items():
        torch.manual_seed(0)
        model = MultimodalClassifier(paper_config(architecture, loss, text, image)).to(device).train()
        optimizer = torch.optim.AdamW(model.param_groups(recipe["lr"], recipe["head_lr"] or recipe["lr"],
                                                         WEIGHT_DECAY))
        runs[name] = (model, optimizer, torch.Generator().manual_seed(0))
    batch, labels, encode_s = cached_batch(runs["CE"][0], recipe["batch_size"], recipe["max_text_length"], device)
    times = {name: [] for name in runs}
    for step in range(args.warmup + args.steps):
        for name, (model, optimizer, generator) in runs.items():
            seconds = timed_step(model, optimizer, batch, labels, generator, device)
            if step >= args.warmup:
                times[name].append(seconds)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    result = {"medians": medians, "ratio": medians["CE+ITC+ITM"] / medians["CE"], "peak_mb": peak_mb(device),
              "encode_s": encode_s}
    print(f"{architecture}: median step " + ", ".join(f"{n} {s:.3f} s" for n, s in medians.items())
          + f"; CE+ITC+ITM / CE {result['ratio']:.3f}; peak memory {result['peak_mb']:.0f} MB "
          f"({'GPU, allocated' if device.type == 'cuda' else 'CPU, process resident set'}); "
          f"steps {', '.join(f'{n}: ' + ' '.join(f'{t:.3f}' for t in ts) for n, ts in times.items())}")
    del runs
    gc.collect()
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per loss set-up")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()  # saving and loading the encoders is not what is measured
    device = torch.device(args.device)
    recipe = RECIPES["paper"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"paper recipe: BERT-base + ViT-base (random weights), text fully tuned, vision frozen (cached features); "
          f"batch {recipe['batch_size']}, {recipe['max_text_length']} tokens; {name}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="paper-recipe-") as folder:
        text, image = write_encoders(Path(folder))
        results = {arch: measure(arch, text, image, args, device) for arch in ARCHITECTURES}
    late = results["attention"]
    step = late["medians"]["CE+ITC+ITM"]
    batch = recipe["batch_size"]
    for dataset, posts in EPOCH_POSTS.items():
        steps = math.ceil(posts / batch)
        fill = posts * late["encode_s"] / batch / 60
        print(f"{dataset} (~{posts:,} training posts, {steps} steps of {batch}): late-fusion attention CE+ITC+ITM "
              f"{steps * step / 60:.1f} min per epoch (CE {steps * late['medians']['CE'] / 60:.1f} min; MMBT "
              f"CE+ITC+ITM {steps * results['mmbt']['medians']['CE+ITC+ITM'] / 60:.1f} min), plus {fill:.1f} min "
              "once to fill the ViT feature cache")
    mvsa = math.ceil(EPOCH_POSTS["MVSA-Single"] / batch) * step / 60
    print(f"paper_step_s={step:.3f} paper_aux_ratio={late['ratio']:.3f} "
          f"paper_peak_mb={max(r['peak_mb'] for r in results.values()):.0f} mvsa_epoch_min={mvsa:.1f}")


if __name__ == "__main__":
    main()
