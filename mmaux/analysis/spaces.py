"""Which of a checkpoint's representations were trained, and the references that tell whether an
alignment number means anything.

A checkpoint is shown only in spaces its training touched, decided from its config alone:
- the fused representation (input of the classifier) is always trained by CE;
- the ITC space (`text_proj`, `image_proj`) only when ITC was on: without it the projections keep
  their random initialisation, and their geometry describes nothing the model learned;
- the ITM score only with an ITM head (`itm_head` exists only when ITM was on).
Early fusion (MMBT, ViLT) pools its ITC inputs out of joint layers, so each text state has
already seen its own image: a recall@k or a modality gap over those states is not retrieval.

References beside every alignment number: the chance level, and the same number for a seeded
random projection of the same frozen features (the pretrained encoders' pooled text and image
vectors, before anything trainable): what an alignment measure reads when nothing was aligned.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmaux.analysis.alignment import (cosine_matrix, match_auroc, modality_gap, recall_at_k,
                                      shuffled_pairs)
from mmaux.checkpoint import read_info
from mmaux.config import ModelConfig
from mmaux.encoders import masked_mean

RECALL_KS = (1, 5, 10)
RANDOM_SEED = 0  # the random projection's seed (text uses it, image uses it + 1)

NO_ITC = "not trained with ITC: its ITC projections are untrained random weights, so it has no aligned space"
NO_ITM = "no ITM head (trained without ITM)"
NO_SCORE = "no match score: neither an ITM head nor a trained ITC space (a CE run)"
EARLY_FUSION_NOTE = ("early fusion: each text state has already seen its own image in the joint layers, so "
                     "recall@k and the modality gap over own-pair states are not retrieval between independent "
                     "texts and images")


@dataclass(frozen=True)
class TrainedSpaces:
    """What a checkpoint's training touched."""

    architecture: str
    itc: bool  # ITC projections trained (ITC on with a positive weight)
    itm: bool  # ITM head trained
    itc_after_fusion: bool = False  # ITC reads joint states: each text has seen its own image

    @property
    def score_kind(self) -> str | None:
        """The trained own-pair score: "itm" (P(match)), "itc" (cosine in the trained space) or None."""
        return "itm" if self.itm else "itc" if self.itc else None


def trained_spaces(cfg: ModelConfig) -> TrainedSpaces:
    loss = cfg.loss
    return TrainedSpaces(cfg.architecture, itc=bool(loss.itc and loss.beta_itc > 0),
                         itm=bool(loss.itm and loss.beta_itm > 0), itc_after_fusion=cfg.itc_after_fusion)


def checkpoint_spaces(folder: str | Path) -> TrainedSpaces:
    """`trained_spaces` from the checkpoint's config.json (no weights read)."""
    return trained_spaces(read_info(folder).model)


# --- the random-projection reference -------------------------------------------------------------

@torch.no_grad()
def frozen_features(model, inputs, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray] | None:
    """(text (N, Dt), image (N, Di)) of every post of `inputs` (a `PostInputs`): the masked mean
    of the frozen text layers' states and the frozen image encoder's pooled vector, from the
    feature cache when it holds them. None for ViLT, which has no separate frozen encoders."""
    if model.cfg.architecture == "vilt":
        return None
    backbone, texts, images = model.backbone, [], []
    for batch in inputs.batches(batch_size):
        texts.append(masked_mean(backbone.text_prefix(batch).float(), batch.attention_mask))
        images.append(backbone.image_features(batch).pooled.float())
    return torch.cat(texts).numpy(), torch.cat(images).numpy()


def random_projection(features, dim: int, seed: int) -> np.ndarray:
    """`features` (N, D) times a seeded Gaussian (D, dim) matrix: an untrained linear projection."""
    features = np.asarray(features, dtype=np.float64)
    weights = np.random.default_rng(seed).normal(scale=features.shape[1] ** -0.5, size=(features.shape[1], dim))
    return features @ weights


def random_baseline(text_features, image_features, dim: int, seed: int = RANDOM_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Text and image projected by two independent random matrices into `dim` dimensions."""
    return random_projection(text_features, dim, seed), random_projection(image_features, dim, seed + 1)


def alignment_numbers(text_emb, image_emb, ks=RECALL_KS, seed: int = 0) -> dict[str, float]:
    """recall@k both ways, the modality gap, and the AUROC of own-pair vs shuffled-pair cosine."""
    sim = cosine_matrix(image_emb, text_emb)
    shuffled = sim[np.arange(len(sim)), shuffled_pairs(len(sim), seed)]
    return {**recall_at_k(sim, ks), "modality gap": modality_gap(text_emb, image_emb),
            "true vs shuffled AUROC": match_auroc(np.diag(sim), shuffled)}


def chance_numbers(n: int, ks=RECALL_KS) -> dict[str, float]:
    """What each alignment number reads by chance: k / n for recall@k, 0.5 for an AUROC; the
    modality gap has no chance level (NaN: its reference is the random projection)."""
    return {**{f"{way}@{k}": min(k / n, 1.0) for way in ("i2t", "t2i") for k in ks}, "modality gap": float("nan"),
            "true vs shuffled AUROC": 0.5}


def reference_table(values: dict[str, float], random: dict[str, float] | None, n: int,
                    base: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per number: the checkpoint's value, the random projection's, and chance. `base`
    maps a displayed name to the number it is (e.g. "ITM true vs shuffled AUROC" -> "true vs
    shuffled AUROC"), for looking up its references."""
    chance, random, base = chance_numbers(n), random or {}, base or {}
    rows = [{"number": name, "value": value, "random projection": random.get(base.get(name, name), float("nan")),
             "chance": chance.get(base.get(name, name), float("nan"))} for name, value in values.items()]
    return pd.DataFrame(rows, columns=["number", "value", "random projection", "chance"])


def itc_references(text_emb, image_emb, frozen: tuple[np.ndarray, np.ndarray] | None, itc_after_fusion: bool,
                   extra: dict[str, tuple[str, float]] | None = None) -> pd.DataFrame:
    """`reference_table` of a trained ITC space's numbers (named "ITC …", flagged for early
    fusion), against the random projection of the `frozen` features to the same dimension.
    `extra`: more rows, displayed name -> (the number it is, value), e.g. an ITM AUROC."""
    random = None if frozen is None else alignment_numbers(*random_baseline(*frozen, dim=np.shape(text_emb)[1]))
    suffix = " (text has seen its image)" if itc_after_fusion else ""
    values, base = {}, {}
    for name, (number, value) in (extra or {}).items():
        values[name], base[name] = value, number
    for name, value in alignment_numbers(text_emb, image_emb).items():
        values[f"ITC {name}{suffix}"], base[f"ITC {name}{suffix}"] = value, name
    return reference_table(values, random, len(text_emb), base)
