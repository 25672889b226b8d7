"""How much does a prediction rely on each modality?

For a post and its predicted class c, the drop in P(c) when
- the image is blanked (zeros after normalisation, i.e. the dataset's mean colour),
- the text is emptied (the tokenizer's encoding of ""),
- the image is swapped with another post's (from the same batch, never its own).
A large drop for one modality and none for the other says which one the decision rests on.

Each post's frozen encoder outputs are computed once (or come from the feature cache, see
mmaux.features); the blank image and the empty text are encoded once per model, and every
perturbation re-pairs unimodal outputs already computed (`backbone.fuse_pairs`), so for late
fusion a perturbation costs one fusion layer.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from mmaux.analysis.alignment import shuffled_pairs
from mmaux.analysis.diskcache import cache_path, cached_arrays, checkpoint_key, content_key
from mmaux.checkpoint import OUTPUTS, WEIGHTS
from mmaux.encoders import load_tokenizer
from mmaux.features import PostInputs
from mmaux.model import MultimodalClassifier, PostBatch
from mmaux.predict import Predictor

PERTURBATIONS = ("blank image", "empty text", "swapped image")


def encoded(model: MultimodalClassifier, batch: PostBatch) -> PostBatch:
    """`batch` with text given as frozen-prefix states and images as encoder features, so that
    its variants below never re-run the encoders."""
    backbone = model.backbone
    with torch.no_grad():
        image = backbone.image_features(batch)
        return PostBatch(attention_mask=batch.attention_mask, text_states=backbone.text_prefix(batch),
                         image_tokens=image.tokens, image_pooled=image.pooled)


class Perturber:
    """The blank image and the empty text of one model, encoded once, and the drops they cause."""

    def __init__(self, model: MultimodalClassifier):
        if model.cfg.architecture == "vilt":
            raise ValueError("modality reliance supports dual-encoder checkpoints (late fusion, MMBT), not ViLT")
        self.model = model
        size = model.image_spec.size
        empty = load_tokenizer(model.cfg.text_encoder)([""], return_tensors="pt")
        # one "post" made of the blank image and the empty text, encoded
        self.blank = encoded(model, PostBatch(attention_mask=empty["attention_mask"], input_ids=empty["input_ids"],
                                              pixel_values=torch.zeros(1, 3, size, size)))

    def _with_blank(self, batch: PostBatch) -> PostBatch:
        """The encoded batch with the blank post appended as its last row (its text padded to the
        batch's length; padding is masked, so it changes nothing)."""
        pad = batch.attention_mask.shape[1] - self.blank.attention_mask.shape[1]
        blank_mask = F.pad(self.blank.attention_mask, (0, pad))
        blank_states = F.pad(self.blank.text_states, (0, 0, 0, pad))
        return PostBatch(attention_mask=torch.cat([batch.attention_mask, blank_mask]),
                         text_states=torch.cat([batch.text_states, blank_states]),
                         image_tokens=torch.cat([batch.image_tokens, self.blank.image_tokens]),
                         image_pooled=torch.cat([batch.image_pooled, self.blank.image_pooled]))

    @torch.no_grad()
    def drops(self, batch: PostBatch, swap_index) -> pd.DataFrame:
        """Per post of an encoded batch: predicted class, its probability, and its drop under
        each perturbation (positive = the prediction needed what was removed). The posts are run
        through the backbone once; each perturbation re-pairs their unimodal outputs with
        `fuse_pairs` (late fusion: only the fusion layer runs again)."""
        n = len(batch)
        enc = self.model.backbone(self._with_blank(batch))
        own, blank = torch.arange(n), torch.full((n,), n)
        fuse = functools.partial(self.model.backbone.fuse_pairs, enc.state)
        fused = {"original": enc.fused[:n], "blank image": fuse(blank, own), "empty text": fuse(own, blank),
                 "swapped image": fuse(torch.as_tensor(swap_index, dtype=torch.long), own)}
        probs = {name: self.model.classifier(vector).softmax(-1) for name, vector in fused.items()}
        pred = probs["original"].argmax(-1, keepdim=True)
        p_pred = probs["original"].gather(1, pred)[:, 0]
        columns = {name: (p_pred - probs[name].gather(1, pred)[:, 0]).numpy() for name in PERTURBATIONS}
        return pd.DataFrame({"pred": pred[:, 0].numpy(), "p_pred": p_pred.numpy(), **columns})


def post_reliance(predictor: Predictor, image: Image.Image, text: str, other_image: Image.Image,
                  perturber: Perturber | None = None) -> pd.Series:
    """The drops for one post; `other_image` is the image swapped in."""
    perturber = perturber or Perturber(predictor.model)
    batch = encoded(predictor.model, predictor.batch([image, other_image], [text, text]))
    return perturber.drops(batch, np.array([1, 0])).iloc[0]


def reliance_table(model: MultimodalClassifier, inputs: PostInputs, seed: int = 0, batch_size: int = 128,
                      progress: Callable[[float], None] | None = None) -> pd.DataFrame:
    """`Perturber.drops` for every post of `inputs` (swap partners drawn within each batch)."""
    perturber = Perturber(model)
    parts = []
    for k, start in enumerate(range(0, len(inputs), batch_size)):
        rows = range(start, min(start + batch_size, len(inputs)))
        swap = shuffled_pairs(len(rows), seed + k) if len(rows) > 1 else np.zeros(1, dtype=int)
        parts.append(perturber.drops(encoded(model, inputs.batch(rows)), swap))
        if progress:
            progress(rows.stop / len(inputs))
    table = pd.concat(parts, ignore_index=True)
    table.insert(0, "post_id", inputs.frame["post_id"].astype(str).to_numpy())
    return table


def cached_reliance_table(folder: str | Path, model: MultimodalClassifier, inputs: PostInputs,
                             seed: int = 0, progress: Callable[[float], None] | None = None) -> pd.DataFrame:
    """`reliance_table`, stored on disk per checkpoint content and posts."""
    post_ids = inputs.frame["post_id"].astype(str).to_numpy()
    key = _reliance_key(folder, post_ids, seed)

    def compute():
        table = reliance_table(model, inputs, seed, progress=progress)
        return {column: table[column].to_numpy() for column in ("pred", "p_pred", *PERTURBATIONS)}

    arrays = cached_arrays("reliance", key, compute)
    return pd.DataFrame({"post_id": post_ids, **arrays})


def is_cached(folder: str | Path, post_ids, seed: int = 0) -> bool:
    """Whether `cached_reliance_table` would read from disk (the page then shows it unasked)."""
    return cache_path("reliance", _reliance_key(folder, np.asarray(post_ids).astype(str), seed)).is_file()


def _reliance_key(folder, post_ids: np.ndarray, seed: int) -> str:
    return content_key(checkpoint_key(folder, WEIGHTS, OUTPUTS), seed, post_ids.tolist())


def per_slice(reliance: pd.DataFrame, posts: pd.DataFrame, slice_columns) -> pd.DataFrame:
    """Mean drops per value of each slice column (rows joined on post_id), plus "all posts"."""
    joined = reliance.merge(posts[["post_id", *slice_columns]].astype({"post_id": str}), on="post_id")
    rows = [_means(joined, "all posts", "all")]
    for column in slice_columns:
        rows += [_means(group, column, value) for value, group in joined.groupby(column, sort=True)]
    return pd.DataFrame(rows)


def _means(frame: pd.DataFrame, column: str, value) -> dict:
    return {"slice": column, "value": str(value), "n": len(frame),
            **{name: float(frame[name].mean()) for name in PERTURBATIONS}}
