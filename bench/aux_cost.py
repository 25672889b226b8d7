"""What the auxiliary losses cost per training step.

Times full training steps (forward + backward + AdamW step) of the late-fusion `attention`
model on the built-in encoders (minilm + efficientnet-lite0) with the paper's tuning (vision
frozen, text fully fine-tuned) for three loss set-ups:

    ce         CE only
    ours       CE + ITC + ITM, ITM fusing the swapped pairs from the features already computed
    reference  CE + ITC + ITM with `itm_reencode=True`: a second full encoder pass on the
               swapped batch, as the reference implementation does

The image encoder runs inside every step (no cached features), as in the reference. The three
set-ups see the same batch and run interleaved (round-robin) so that load from other processes
hits them alike; the median over rounds is reported.

Then the same for the CPU recipe that builds the shipped checkpoints (`--recipe cpu`: cached
frozen encoder outputs, a trained token adapter, widths 64, batch 64): CE against CE+ITC+ITM for
late-fusion attention and concat and for MMBT (whose joint layer runs live over text and image
tokens, so its ITM pass re-runs that layer on the swapped pairs).

    python bench/aux_cost.py [--batch-size 16] [--rounds 5] [--warmup 2]

Last line: `aux_cost_ratio=<ours / ce> reference_ratio=<reference / ce>
cpu_recipe_ratio=<late-fusion attention, CE+ITC+ITM / CE> cpu_recipe_concat_ratio=<concat, same>
cpu_recipe_mmbt_ratio=<MMBT, same>`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from mmaux.cli import RECIPES  # noqa: E402
from mmaux.config import ModelConfig  # noqa: E402
from mmaux.encoders import load_tokenizer  # noqa: E402
from mmaux.losses import LossConfig  # noqa: E402
from mmaux.model import MultimodalClassifier, PostBatch  # noqa: E402

SETUPS = {
    "ce": LossConfig(),
    "ours": LossConfig(itc=True, itm=True),
    "reference": LossConfig(itc=True, itm=True, itm_reencode=True),
}
WORDS = ("new phone who dis love this view cannot believe the game last night best coffee in town "
         "so tired of rain my dog again sunset at the beach").split()


def make_batch(batch_size: int, max_length: int, image_size: int, num_labels: int) -> tuple[PostBatch, torch.Tensor]:
    """A fixed batch: varied texts padded to `max_length`, seeded random pixels, cyclic labels."""
    g = torch.Generator().manual_seed(0)
    texts = [" ".join(WORDS[j] for j in torch.randint(len(WORDS), (8 + i % 25,), generator=g).tolist())
             for i in range(batch_size)]
    enc = load_tokenizer("minilm")(texts, padding="max_length", truncation=True, max_length=max_length,
                                   return_tensors="pt")
    pixels = torch.randn(batch_size, 3, image_size, image_size, generator=g)
    batch = PostBatch(attention_mask=enc["attention_mask"], input_ids=enc["input_ids"], pixel_values=pixels)
    return batch, torch.arange(batch_size) % num_labels


def build(loss: LossConfig, max_length: int):
    torch.manual_seed(0)
    cfg = ModelConfig(num_labels=3, architecture="attention", text_encoder="minilm", image_encoder="efficientnet-lite0",
                      text_tuning="full", vision_tuning="frozen", max_text_length=max_length, loss=loss)
    model = MultimodalClassifier(cfg).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=2.5e-4)
    return model, optimizer


def cpu_recipe_batch(batch_size: int, max_length: int) -> tuple[PostBatch, torch.Tensor]:
    """Cached-feature inputs as `--recipe cpu` training sees them (random values, real shapes)."""
    g = torch.Generator().manual_seed(0)
    mask = (torch.arange(max_length)[None] < torch.randint(8, max_length + 1, (batch_size, 1), generator=g)).long()
    batch = PostBatch(attention_mask=mask, text_states=torch.randn(batch_size, max_length, 384, generator=g),
                      image_tokens=torch.randn(batch_size, 49, 1280, generator=g),
                      image_pooled=torch.randn(batch_size, 1280, generator=g))
    return batch, torch.arange(batch_size) % 3


def build_cpu_recipe(architecture: str, loss: LossConfig):
    """The model `--recipe cpu` trains (its widths, adapter, pooling and align-before-fuse)."""
    torch.manual_seed(0)
    recipe = RECIPES["cpu"]
    cfg = ModelConfig(num_labels=3, architecture=architecture, loss=loss,
                      **{key: recipe[key] for key in ("text_tuning", "adapter_dim", "max_text_length", "hidden_dim",
                                                      "proj_dim", "itc_image_pool", "align_before_fuse")})
    model = MultimodalClassifier(cfg).train()
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)


def cpu_recipe_ratio(architecture: str, rounds: int, warmup: int, batch_size: int = 64) -> float:
    """Median CE+ITC+ITM step / median CE step of the CPU recipe, interleaved."""
    runs = {name: build_cpu_recipe(architecture, SETUPS[name]) for name in ("ce", "ours")}
    batch, labels = cpu_recipe_batch(batch_size, 40)
    generators = {name: torch.Generator().manual_seed(0) for name in runs}
    times = {name: [] for name in runs}
    for r in range(warmup + rounds * 4):  # steps are short: more rounds
        for name, (model, optimizer) in runs.items():
            seconds, _ = timed_step(model, optimizer, batch, labels, generators[name])
            if r >= warmup:
                times[name].append(seconds)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"cpu recipe, {architecture}, batch {batch_size}: median step CE {medians['ce'] * 1000:.1f} ms, "
          f"CE+ITC+ITM {medians['ours'] * 1000:.1f} ms, ratio {medians['ours'] / medians['ce']:.3f}")
    return medians["ours"] / medians["ce"]


def timed_step(model, optimizer, batch, labels, generator) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all threads of this process) of one training step."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = model(batch, labels, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs every set-up once)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--max-text-length", type=int, default=40)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    runs = {name: build(loss, args.max_text_length) for name, loss in SETUPS.items()}
    image_size = runs["ce"][0].image_spec.size
    batch, labels = make_batch(args.batch_size, args.max_text_length, image_size, 3)
    generators = {name: torch.Generator().manual_seed(0) for name in SETUPS}
    print(f"attention fusion, minilm + efficientnet-lite0, vision frozen, text full; batch {args.batch_size}, "
          f"{args.max_text_length} tokens, {image_size}px; torch {torch.__version__}, {torch.get_num_threads()} threads")

    wall, cpu = {name: [] for name in SETUPS}, {name: [] for name in SETUPS}
    for r in range(args.warmup + args.rounds):
        for name, (model, optimizer) in runs.items():  # round-robin: load hits all set-ups alike
            seconds, cpu_seconds = timed_step(model, optimizer, batch, labels, generators[name])
            if r >= args.warmup:
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)

    print(f"\nwall-clock seconds per step\n{'set-up':<10} "
          + " ".join(f"r{i + 1:<6}" for i in range(args.rounds)) + "  median   min")
    medians = {name: statistics.median(ts) for name, ts in wall.items()}
    for name, ts in wall.items():
        print(f"{name:<10} " + " ".join(f"{t:<7.3f}" for t in ts) + f"  {medians[name]:<7.3f}  {min(ts):.3f}")
    cpu_medians = {name: statistics.median(ts) for name, ts in cpu.items()}
    print("CPU seconds per step (median; less sensitive to other processes): "
          + ", ".join(f"{name} {m:.3f}" for name, m in cpu_medians.items()))
    print(f"CPU-time ratios: ours / ce = {cpu_medians['ours'] / cpu_medians['ce']:.3f}, "
          f"reference / ce = {cpu_medians['reference'] / cpu_medians['ce']:.3f}")
    ours, ref = medians["ours"] / medians["ce"], medians["reference"] / medians["ce"]
    print(f"median step: ce {medians['ce']:.3f}s, ours {medians['ours']:.3f}s, reference {medians['reference']:.3f}s")
    print(f"wall-clock ratios: ours / ce = {ours:.3f}, reference / ce = {ref:.3f}\n")
    late, concat, mmbt = (cpu_recipe_ratio(arch, args.rounds, args.warmup) for arch in ("attention", "concat", "mmbt"))
    print(f"aux_cost_ratio={ours:.3f} reference_ratio={ref:.3f} cpu_recipe_ratio={late:.3f} "
          f"cpu_recipe_concat_ratio={concat:.3f} cpu_recipe_mmbt_ratio={mmbt:.3f}")


if __name__ == "__main__":
    main()
