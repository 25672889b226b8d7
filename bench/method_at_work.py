"""Is the method at work in the checkpoints? Figures on the test split, each beside its reference.

For every group of checkpoints (dataset, task, architecture) under MMAUX_CHECKPOINTS (default
checkpoints/), mean over seeds:

* ITC checkpoints, late fusion: image->text recall@10 among all test posts from the stored ITC
  embeddings, beside chance (10 / N) and the ceiling the data allows: an oracle that tells texts
  apart only by the object they name (SynthPosts records it) ranks the texts naming the image's
  subject first, ties at random. Early fusion (MMBT, ViLT) is reported apart; where its ITC reads
  the joint layer's states (without align_before_fuse) each text state has already seen its own
  image, and its "retrieval" is marked as not retrieval.
* ITM checkpoints: AUROC of the ITM head's P(match) on each test image with its own text against
  the same image with another post's text (a seeded derangement, `alignment.shuffled_pairs`), beside its ceiling: the best
  AUROC of any score that knows whether the text names a drawn object and both sentiments
  (the likelihood ratio of true vs shuffled pairs, estimated on the training split).
* the best variant's macro-F1 per group (relation: chance 25);
* how often same-seed CE and CE+ITC checkpoints disagree on a test prediction;
* the share of runs whose best validation epoch was the last one.

The last line is machine-readable:
    itc_r10=… itc_r10_ceiling=… itm_auroc=… itm_auroc_ceiling=… relation_best_f1=… ce_itc_disagree_min=… rebuild_min=…
`rebuild_min` is the clock time of the last `make checkpoints`, which `bench/rebuild_record.py`
writes to <root>/rebuild.json (`nan` when there is none).

    python bench/method_at_work.py [--root checkpoints]
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmaux.analysis import alignment
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import load_model, read_info, read_metrics, read_outputs
from mmaux.config import EARLY_FUSIONS
from mmaux.data.datasets import load_dataset
from mmaux.features import PostInputs
from mmaux.paths import DEFAULT_CHECKPOINTS

K = 10


def recall_at_k(image_emb: np.ndarray, text_emb: np.ndarray, k: int = K) -> float:
    """Share of images whose own text (same row) is among the k texts most cosine-similar to it."""
    return alignment.recall_at_k(alignment.cosine_matrix(image_emb, text_emb), ks=(k,))[f"i2t@{k}"]


def naming_ceiling(subject: np.ndarray, mentioned: np.ndarray, k: int = K) -> float:
    """Expected recall@k of an oracle that ranks first the texts naming the image's subject.

    An image whose own text names its subject, among m texts naming it, is found with
    probability min(1, k/m); otherwise its text is one of the N - m others, found with
    probability max(0, k - m) / (N - m)."""
    n = len(subject)
    counts = pd.Series(mentioned).value_counts()
    m = counts.reindex(subject).fillna(0).to_numpy()
    named = subject == mentioned
    hit = np.where(named, np.minimum(1.0, k / np.maximum(m, 1)), np.maximum(0.0, k - m) / np.maximum(n - m, 1))
    return float(hit.mean())


def _pair_facts(posts: pd.DataFrame, text_rows: np.ndarray) -> pd.Series:
    """What an oracle may know of a pair (image i, text of post text_rows[i])."""
    drawn = posts["emoji"].str.split("|")
    named = [m in d for m, d in zip(posts["mentioned"].to_numpy()[text_rows], drawn)]
    return (pd.Series(named).astype(str) + "/" + posts["text_sentiment"].to_numpy()[text_rows]
            + "/" + posts["image_sentiment"].to_numpy())


def itm_ceiling(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """AUROC of the likelihood ratio P(facts | true pair) / P(facts | shuffled pair), both
    estimated on the training split, scored on the test split's true and shuffled pairs."""
    true_p = _pair_facts(train, np.arange(len(train))).value_counts(normalize=True)
    shuffled_p = _pair_facts(train, alignment.shuffled_pairs(len(train), 1)).value_counts(normalize=True)
    def score(facts):
        return np.log(true_p.reindex(facts).fillna(1e-6).to_numpy() / shuffled_p.reindex(facts).fillna(1e-6).to_numpy())
    own = score(_pair_facts(test, np.arange(len(test))))
    return alignment.match_auroc(own, score(_pair_facts(test, alignment.shuffled_pairs(len(test)))))


@torch.no_grad()
def itm_auroc(folder: str, posts: pd.DataFrame) -> float:
    """Own-pair vs shuffled-pair AUROC of the checkpoint's ITM head on `posts` (fused again
    from the unimodal outputs through `fuse_pairs`, the path training used)."""
    model, _ = load_model(folder)
    model.eval()
    inputs = PostInputs(model, posts)
    order = alignment.shuffled_pairs(len(posts))
    own, other = [], []
    for start in range(0, len(posts), 128):
        rows = np.arange(start, min(start + 128, len(posts)))
        batch = inputs.batch(np.r_[rows, order[rows]])  # own posts, then their text donors
        enc = model.backbone(batch)
        n = len(rows)
        own.append(model.itm_head(enc.fused[:n]).softmax(-1)[:, 1])
        swapped = model.backbone.fuse_pairs(enc.state, torch.arange(n), torch.arange(n, 2 * n))
        other.append(model.itm_head(swapped).softmax(-1)[:, 1])
    return alignment.match_auroc(torch.cat(own).numpy(), torch.cat(other).numpy())


def group_figures(group: pd.DataFrame) -> dict:
    """All figures of one group of checkpoints (one row per checkpoint in `group`)."""
    first = read_info(group["folder"].iloc[0])
    posts = load_dataset(first.dataset, splits=("train", "test"))
    train, test = posts.split("train"), posts.split("test")
    synth = first.dataset.synth is not None
    out = {"group": runs_lib.group_name(tuple(group.iloc[0][["dataset", "task", "architecture"]])),
           "early_fusion": first.model.architecture in EARLY_FUSIONS,
           "itc_after_fusion": first.model.itc_after_fusion, "n_test": len(test)}
    rows = []
    for row in group.itertuples():
        info, metrics = read_info(row.folder), read_metrics(row.folder)
        outputs, arrays = read_outputs(row.folder)
        loss = info.model.loss
        rows.append({"variant": loss.variant, "seed": info.seed, "folder": row.folder,
                     "macro_f1": metrics["test"]["macro_f1"], "pred": outputs["pred"].to_numpy(),
                     "best_last": metrics["best_epoch"] == len(metrics["history"]),
                     "r10": recall_at_k(arrays["image_emb"], arrays["text_emb"]) if loss.itc else np.nan,
                     "auroc": itm_auroc(row.folder, test) if loss.itm else np.nan})
    runs = pd.DataFrame(rows)
    out["r10"] = runs["r10"].mean()
    out["r10_chance"] = K / len(test)
    out["r10_ceiling"] = naming_ceiling(test["subject"].to_numpy(), test["mentioned"].to_numpy()) if synth else np.nan
    out["auroc"] = runs["auroc"].mean()
    out["auroc_by_variant"] = runs.dropna(subset="auroc").groupby("variant")["auroc"].mean().to_dict()
    out["auroc_ceiling"] = itm_ceiling(train, test) if synth else np.nan
    f1 = runs.groupby("variant")["macro_f1"].mean()
    out["best_variant"], out["best_f1"] = f1.idxmax(), 100 * f1.max()
    out["f1"] = {v: 100 * f for v, f in f1.items()}
    pairs = runs.pivot_table(index="seed", columns="variant", values="pred", aggfunc="first")
    if {"CE", "CE+ITC"} <= set(pairs.columns):
        out["ce_itc_disagree"] = float(np.mean([np.mean(a != b) for a, b in zip(pairs["CE"], pairs["CE+ITC"])]))
    out["best_last_share"] = runs["best_last"].mean()
    out["runs"] = len(runs)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("MMAUX_CHECKPOINTS", str(DEFAULT_CHECKPOINTS)))
    args = parser.parse_args(argv)
    runs = runs_lib.usable(runs_lib.discover_runs([args.root]))
    outputs_only = int((~runs["weights"].astype(bool)).sum())
    if outputs_only:  # recall@k and the ITM AUROC need embeddings and weights
        print(f"({outputs_only} predictions-only runs left out: no weights or embeddings; the runs with weights "
              "are measured)\n")
    runs = runs[runs["weights"].astype(bool)]
    figures = [group_figures(group) for _, group in runs_lib.groups(runs)]
    print("| group | runs | ITC r@10 (chance, ceiling) | ITM AUROC (ceiling; by variant) | F1 by variant | CE vs CE+ITC disagree | best epoch last |")
    print("|---|---|---|---|---|---|---|")
    for f in figures:
        r10 = "" if math.isnan(f["r10"]) else (f"{f['r10']:.3f} ({f['r10_chance']:.3f}, {f['r10_ceiling']:.3f})"
                                              + (" — joint layer: not retrieval" if f["itc_after_fusion"] else ""))
        by_variant = ", ".join(f"{v} {x:.2f}" for v, x in sorted(f["auroc_by_variant"].items()))
        auroc = "" if math.isnan(f["auroc"]) else f"{f['auroc']:.3f} ({f['auroc_ceiling']:.3f}; {by_variant})"
        f1 = ", ".join(f"{v} {x:.1f}" for v, x in f["f1"].items())
        disagree = f"{100 * f['ce_itc_disagree']:.1f} %" if "ce_itc_disagree" in f else ""
        print(f"| {f['group']} | {f['runs']} | {r10} | {auroc} | {f1} | {disagree} | {100 * f['best_last_share']:.0f} % |")
    late = [f for f in figures if not f["early_fusion"]]
    total = sum(f["runs"] for f in figures)
    share = sum(f["best_last_share"] * f["runs"] for f in figures) / max(total, 1)
    print(f"\nbest epoch = last epoch in {100 * share:.0f} % of {total} runs")
    relation = [f["best_f1"] for f in figures if "relation" in f["group"]]
    rebuild = Path(args.root) / "rebuild.json"
    minutes = json.loads(rebuild.read_text())["minutes"] if rebuild.is_file() else "nan"
    print(" ".join([
        f"itc_r10={np.nanmean([f['r10'] for f in late]):.3f}",
        f"itc_r10_ceiling={np.nanmean([f['r10_ceiling'] for f in late]):.3f}",
        f"itm_auroc={np.nanmean([f['auroc'] for f in figures]):.3f}",
        f"itm_auroc_ceiling={np.nanmean([f['auroc_ceiling'] for f in figures]):.3f}",
        f"relation_best_f1={max(relation) if relation else float('nan'):.1f}",
        f"ce_itc_disagree_min={min((f['ce_itc_disagree'] for f in late if 'ce_itc_disagree' in f), default=float('nan')):.3f}",
        f"rebuild_min={minutes}"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
