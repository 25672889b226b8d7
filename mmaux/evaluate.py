"""Metrics and per-post outputs of a model on a split (scikit-learn does the arithmetic)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from tqdm.auto import tqdm

from mmaux.checkpoint import load_model, read_info
from mmaux.data.datasets import SLICE_COLUMNS, DatasetSpec, load_dataset
from mmaux.features import PostInputs
from mmaux.model import MultimodalClassifier


def classification_metrics(y_true, y_pred, label_names, slices: pd.DataFrame | None = None) -> dict:
    """accuracy, macro/weighted F1, macro precision/recall, per class, and per slice value."""
    labels = list(range(len(label_names)))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    metrics = {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(label_names, precision, recall, f1, support)},
    }
    if slices is not None and len(slices.columns):
        metrics["per_slice"] = {column: _slice_scores(y_true, y_pred, labels, slices[column].to_numpy())
                                for column in slices.columns}
    return metrics


def _slice_scores(y_true, y_pred, labels, values) -> dict:
    scores = {}
    for value in pd.unique(values):
        rows = values == value
        scores[str(value)] = {
            "n": int(rows.sum()),
            "accuracy": float(accuracy_score(y_true[rows], y_pred[rows])),
            "macro_f1": float(f1_score(y_true[rows], y_pred[rows], labels=sorted(set(y_true[rows])),
                                       average="macro", zero_division=0)),
        }
    return dict(sorted(scores.items()))


@torch.no_grad()
def predict(model: MultimodalClassifier, inputs: PostInputs, label_names, batch_size: int = 64,
            progress: bool = False) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per post: prediction, confidence, class probabilities, ITM match and ITC cosine; and the
    (N, D) arrays text_emb, image_emb, fused."""
    model.eval()
    parts = []
    for batch in tqdm(inputs.batches(batch_size), total=-(-len(inputs) // batch_size),
                      desc="predict", disable=not progress):
        out = model(batch)
        parts.append({"probs": out.logits.softmax(-1), "itc_cosine": out.itc_cosine,
                      "itm_match": out.itm_match, "text_emb": out.text_emb, "image_emb": out.image_emb,
                      "fused": out.fused})
    joined = {key: None if parts[0][key] is None else torch.cat([p[key] for p in parts]).numpy()
              for key in parts[0]}
    probs = joined["probs"]
    frame = pd.DataFrame({"post_id": inputs.frame["post_id"].astype(str).to_numpy(),
                          "pred": probs.argmax(1), "confidence": probs.max(1),
                          "itm_match": joined["itm_match"] if joined["itm_match"] is not None else np.nan,
                          "itc_cosine": joined["itc_cosine"]})
    for i, name in enumerate(label_names):
        frame[f"p_{name}"] = probs[:, i]
    arrays = {key: joined[key] for key in ("text_emb", "image_emb", "fused")}
    return frame, arrays


def evaluate_inputs(model, inputs: PostInputs, label_names):
    """Metrics of `model` on prepared posts, with the per-post outputs behind them."""
    frame = inputs.frame
    outputs, arrays = predict(model, inputs, label_names)
    outputs.insert(1, "label_index", frame["label_index"].to_numpy())
    slices = frame[[c for c in SLICE_COLUMNS if c in frame.columns]]
    metrics = classification_metrics(outputs["label_index"], outputs["pred"], label_names, slices)
    return metrics, outputs, arrays


def evaluate_checkpoint(folder, split: str = "test", dataset: DatasetSpec | None = None, progress=False) -> dict:
    """Re-evaluate a checkpoint on its recorded dataset (or `dataset`): the metrics.json entry."""
    info = read_info(folder)
    posts = load_dataset(dataset or info.dataset, splits=(split,), progress=progress,
                         on_bad_rows=info.train.get("on_bad_rows", "fail"))  # as it was trained
    if tuple(posts.label_names) != tuple(info.label_names):
        raise ValueError(f"the dataset's labels {list(posts.label_names)} differ from the checkpoint's "
                         f"{list(info.label_names)}")
    model, _ = load_model(folder)
    return evaluate_inputs(model, PostInputs(model, posts.split(split), progress=progress), info.label_names)[0]
