"""How unlike a checkpoint's data an uploaded post is: an out-of-distribution score per modality.

The post's frozen text and image features (`analysis.spaces.frozen_features`: the pretrained
encoders' pooled vectors, before anything trainable) are compared with the test posts' by cosine
distance. A post's *distance* is its mean distance to its K nearest test posts; its *percentile*
is the share of test posts whose own distance (to their K nearest other test posts) is smaller.
Past `WARN_PERCENTILE` the post lies further from the data than almost every test post does from
its neighbours, and the checkpoint's answer is an extrapolation. The test split stands in for the
training data: both are drawn from one distribution, and its features are cached already.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.neighbors import NearestNeighbors

K = 5  # neighbours a distance is averaged over
WARN_PERCENTILE = 99.0  # above this, the post is flagged as unlike the data
MIN_POSTS = 20  # fewer reference posts give no percentile worth reading
MODALITIES = ("text", "image")


def _unit(features) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features / np.clip(np.linalg.norm(features, axis=1, keepdims=True), 1e-12, None)


@dataclass(frozen=True)
class Reference:
    """The reference posts' features of one modality, indexed for nearest-neighbour search."""

    index: NearestNeighbors  # fitted on the L2-normalised features, cosine metric
    own: np.ndarray  # (N,) each reference post's mean distance to its K nearest other posts
    k: int

    @classmethod
    def fit(cls, features, k: int = K) -> Reference:
        x = _unit(features)
        k = max(1, min(k, len(x) - 1))
        index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x)
        distances, _ = index.kneighbors(x)
        return cls(index, distances[:, 1:].mean(axis=1), k)  # column 0: the post itself

    def distance(self, features) -> np.ndarray:
        """(M,) mean cosine distance of each query row to its K nearest reference posts."""
        distances, _ = self.index.kneighbors(_unit(features), n_neighbors=self.k)
        return distances.mean(axis=1)

    def percentile(self, features) -> np.ndarray:
        """(M,) percentage of reference posts that lie closer to their neighbours than the query."""
        return 100.0 * (self.own[None, :] < self.distance(features)[:, None]).mean(axis=1)


@dataclass(frozen=True)
class References:
    """Text and image references of one checkpoint's frozen encoders (shared by every checkpoint
    with the same frozen parts)."""

    text: Reference
    image: Reference

    @classmethod
    def fit(cls, text_features, image_features, k: int = K) -> References:
        return cls(Reference.fit(text_features, k), Reference.fit(image_features, k))


class _OnePost:
    """The one-batch stand-in for `features.PostInputs` that `frozen_features` iterates over."""

    def __init__(self, batch):
        self._batch = batch

    def batches(self, batch_size: int):
        yield self._batch


def post_features(predictor, images: list[Image.Image], texts: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(text, image) frozen features of uploaded posts, computed exactly as the test posts' are;
    None for a model without separate frozen encoders (ViLT)."""
    import torch

    from mmaux.analysis.spaces import frozen_features

    with torch.no_grad():
        return frozen_features(predictor.model, _OnePost(predictor.batch(images, texts)))


def scores(references: References, text_features, image_features) -> pd.DataFrame:
    """Per query post: text and image distance and percentile, and whether either is past
    `WARN_PERCENTILE`. Columns: text_distance, text_percentile, image_distance,
    image_percentile, unlike_the_data."""
    frame = pd.DataFrame({
        "text_distance": references.text.distance(text_features),
        "text_percentile": references.text.percentile(text_features),
        "image_distance": references.image.distance(image_features),
        "image_percentile": references.image.percentile(image_features)})
    frame["unlike_the_data"] = (frame[["text_percentile", "image_percentile"]] > WARN_PERCENTILE).any(axis=1)
    return frame


def describe(row) -> str:
    """'text 42nd, image 99.8th percentile: unlike the data' (the row of `scores`)."""
    verdict = ": unlike the data" if row["unlike_the_data"] else ""
    return (f"text {_ordinal(row['text_percentile'])}, image {_ordinal(row['image_percentile'])} "
            f"percentile{verdict}")


def _ordinal(value: float) -> str:
    if value >= 99.95:
        return "> 99.9th"
    text = f"{value:.1f}" if value >= 99 else f"{value:.0f}"
    if text.endswith((".0",)) or "." in text:
        return text + "th"
    tail = int(text) % 100
    suffix = "th" if 10 <= tail <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(tail % 10, "th")
    return text + suffix


def training_data(info) -> str:
    """What a checkpoint was trained on, in words (a `CheckpointInfo`)."""
    synth, csv = info.dataset.synth, info.dataset.csv
    if synth is not None:
        return (f"SynthPosts {synth.task} (data version {synth.version}): {synth.n_train:,} synthetic training posts, "
                "OpenMoji emoji on plain backgrounds with template tweet texts")
    return f"{csv.name} from `{csv.csv}` (images under `{csv.image_root}`)"
