"""Model inputs for a set of posts, with the frozen parts of the encoders computed once.

EfficientNet-Lite0 encodes about 10-15 images/s on 2 CPU cores and the frozen bottom layers of
the text encoder cost as much as the rest of a training step, so their outputs are cached on
disk (safetensors, keyed by content hashes of the encoder weights and of the posts) and shared
by every run of a sweep and by evaluation. Everything that trains runs live.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import astuple

import pandas as pd
import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from mmaux.data.datasets import file_sha256
from mmaux.data.images import load_image
from mmaux.data.normalize import tokenizer_texts
from mmaux.encoders import encoder_fingerprint, load_tokenizer
from mmaux.model import MultimodalClassifier, PostBatch
from mmaux.paths import cache_dir

ENCODE_BATCH = 32
# Bump whenever the code that computes cached features changes (it is part of every cache key,
# so a cache written by other code is never read). 2: frozen encoders always in eval mode.
FEATURE_VERSION = 2


class PostInputs:
    """Everything the model needs for `frame`'s posts, batched on demand by row indices."""

    def __init__(self, model: MultimodalClassifier, frame: pd.DataFrame, use_cache: bool = True,
                 progress: bool = False):
        self.frame = frame.reset_index(drop=True)
        self.model = model
        cfg = model.cfg
        tokenizer = load_tokenizer(cfg.vilt_model if cfg.architecture == "vilt" else cfg.text_encoder)
        texts = tokenizer_texts(self.frame["text"], cfg.normalize_tweets)
        max_length = min(cfg.max_text_length, _longest(tokenizer, texts, cfg.max_text_length))
        tokens = tokenizer(texts, padding="max_length", truncation=True,
                           max_length=max_length, return_tensors="pt")
        self.input_ids, self.attention_mask = tokens["input_ids"], tokens["attention_mask"]
        self.transform = model.image_spec.transform()
        self.text_states = self.image_tokens = self.image_pooled = None
        if use_cache and cfg.architecture != "vilt":
            if model.backbone.frozen_text_layers > 0:
                self.text_states = cached_text_states(model, self.input_ids, self.attention_mask, progress)
            if cfg.vision_tuning == "frozen":
                self.image_tokens, self.image_pooled = cached_image_features(model, self.frame["image"], progress)

    def __len__(self) -> int:
        return len(self.frame)

    def batch(self, index) -> PostBatch:
        """Posts `index`, padded only to the longest text among them (padding is masked, so
        trimming it changes no output and saves the live text layers' time)."""
        index = torch.as_tensor(index, dtype=torch.long)
        length = int(self.attention_mask[index].sum(1).max())
        pixels = None
        if self.image_tokens is None:
            pixels = self.transform.to_batch([load_image(self.frame["image"][int(i)]) for i in index])
        return PostBatch(
            attention_mask=self.attention_mask[index, :length],
            input_ids=self.input_ids[index, :length] if self.text_states is None else None,
            text_states=_take(self.text_states, index, length),
            pixel_values=pixels,
            image_tokens=_take(self.image_tokens, index),
            image_pooled=_take(self.image_pooled, index),
        )

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield self.batch(range(start, min(start + batch_size, len(self))))


def _take(tensor, index, length=None):
    if tensor is None:
        return None
    return (tensor[index] if length is None else tensor[index, :length]).float()


def _longest(tokenizer, texts, cap: int) -> int:
    """Length of the longest tokenised text (capped): pads no further than needed."""
    lengths = tokenizer(list(texts), truncation=True, max_length=cap)["input_ids"]
    return max((len(ids) for ids in lengths), default=1)


# --- the two caches ----------------------------------------------------------------------------

def cached_text_states(model: MultimodalClassifier, input_ids, attention_mask, progress=False):
    """Output (N, T, D) of the frozen bottom text layers, computed once per content."""
    text = model.backbone.text
    n_frozen = model.backbone.frozen_text_layers
    key = _key("text", FEATURE_VERSION, encoder_fingerprint(model.cfg.text_encoder), n_frozen,
               input_ids.numpy().tobytes(), attention_mask.numpy().tobytes())

    def compute():
        text.eval()  # frozen means eval mode: no dropout (see MultimodalClassifier.frozen_modules)
        states = []
        for start in tqdm(range(0, len(input_ids), ENCODE_BATCH), desc="text features", disable=not progress):
            ids, mask = input_ids[start:start + ENCODE_BATCH], attention_mask[start:start + ENCODE_BATCH]
            states.append(text.run_layers(text.embed(ids), mask, 0, n_frozen))
        return {"states": torch.cat(states).half()}

    return _cached(key, compute)["states"]


def cached_image_features(model: MultimodalClassifier, paths, progress=False):
    """Frozen image encoder tokens (N, n, D) and pooled vectors (N, D), computed once."""
    image = model.backbone.image
    transform = model.image_spec.transform()
    paths = list(paths)
    key = _key("image", FEATURE_VERSION, encoder_fingerprint(model.cfg.image_encoder), *astuple(model.image_spec),
               *[file_sha256(p) for p in paths])

    def compute():
        image.eval()  # frozen means eval mode: batch-norm running statistics, no drop-connect
        tokens, pooled = [], []
        for start in tqdm(range(0, len(paths), ENCODE_BATCH), desc="image features", disable=not progress):
            batch = transform.to_batch([load_image(p) for p in paths[start:start + ENCODE_BATCH]])
            features = image(batch)
            tokens.append(features.tokens)
            pooled.append(features.pooled)
        return {"tokens": torch.cat(tokens).half(), "pooled": torch.cat(pooled).half()}

    features = _cached(key, compute)
    return features["tokens"], features["pooled"]


def _key(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else json.dumps(part, default=str).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:32]


def _cached(key: str, compute) -> dict[str, torch.Tensor]:
    """Read `key` from the feature cache, or compute and store it atomically. A damaged or
    truncated cache file is recomputed, never fatal. Processes that want the same entry at once
    (two sweeps sharing a cache) take turns on a lock file, so it is computed once."""
    path = cache_dir("features") / f"{key}.safetensors"
    if path.is_file():  # the common case: no lock needed to read a complete file
        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError):
            pass
    with FileLock(cache_dir("locks") / f"{key}.lock"):  # apart: the features folder holds only entries
        if path.is_file():  # written by whoever held the lock before
            try:
                return load_file(path)
            except (SafetensorError, OSError, ValueError):
                path.unlink(missing_ok=True)
        with torch.no_grad():
            tensors = compute()
        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")  # per process and thread
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    return tensors

