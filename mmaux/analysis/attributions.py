"""Which words and which image regions drive one post's prediction (Captum).

Integrated gradients (Sundararajan et al. 2017) on the text at the word-embedding layer
(LayerIntegratedGradients; baseline: every real token replaced by [PAD], [CLS]/[SEP] and the mask
kept) and on the pixels (IntegratedGradients; baseline: a blank image, zeros after
normalisation = the dataset's mean colour); occlusion as a gradient-free alternative. Each
modality is attributed with the other held fixed, so the text attributions sum to
F(post) − F(post with blank text), up to the reported convergence delta, and likewise for the image.

The model comes from a cache shared by every dashboard session, so nothing here changes it:
no hooks on its modules (LayerIntegratedGradients hooks a throwaway wrapper around the
embedding table), no switch to train mode, no gradients kept. Supports the dual-encoder
models (late fusion and MMBT), whose text and image paths can be separated.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients, Occlusion
from PIL import Image
from torch import nn

from mmaux.analysis.alignment import rank_correlation, topk_overlap
from mmaux.model import MultimodalClassifier, PostBatch
from mmaux.predict import Predictor

METHODS = ("integrated gradients", "occlusion")
# Interpolation steps (Gauss-Legendre). Text is cheap (MiniLM on a few dozen tokens); every image
# step is a forward + backward pass of the CNN at 224 px, the bulk of the cost, so the image gets
# fewer steps, all in one batch, to stay within ~5 s on 2 CPU cores. The page reports each delta.
TEXT_IG_STEPS = 32
IMAGE_IG_STEPS = 16
OCCLUSION_WINDOWS = 4  # image windows of 1/4 of the side, moved by half a window: 7 × 7 positions


@dataclass(frozen=True)
class PostAttribution:
    tokens: list[str]  # word pieces of the text, special tokens included
    token_scores: np.ndarray  # (T,) attribution per token (summed over embedding dimensions)
    image_scores: np.ndarray  # (H, W) attribution per pixel (summed over colour channels)
    target: int  # the class explained
    probability: float  # P(target) for the post
    text_delta: float  # IG convergence delta of the text attribution; NaN for occlusion
    image_delta: float  # the same for the image
    method: str


class _TokenLookup(nn.Module):
    """A fresh wrapper around the shared embedding table: LayerIntegratedGradients hooks this
    module, which lives for one attribution, instead of the shared model's own layer."""

    def __init__(self, table: nn.Embedding):
        super().__init__()
        self.table = table

    def forward(self, input_ids):
        return self.table(input_ids)


class PostForward:
    """Logits of one post as a function of its text (word embeddings / token ids) or of its
    pixels, the other modality held fixed at its own features (computed once)."""

    def __init__(self, model: MultimodalClassifier, batch: PostBatch):
        if model.cfg.architecture == "vilt":
            raise ValueError("attributions support dual-encoder checkpoints (late fusion, MMBT); "
                             "this one is ViLT, whose text and image run in one transformer")
        self.model, self.mask = model, batch.attention_mask
        self.lookup = _TokenLookup(model.backbone.text.model.embeddings.word_embeddings)
        with torch.no_grad():
            self.text_states = model.backbone.text_prefix(batch)
            image = model.backbone.image(batch.pixel_values)
        self.image_tokens, self.image_pooled = image.tokens, image.pooled

    def from_word_embeddings(self, embeds: torch.Tensor) -> torch.Tensor:
        """(B, T, D) word embeddings -> (B, C) logits."""
        backbone = self.model.backbone
        hidden = backbone.text.model.embeddings(inputs_embeds=embeds)
        states = backbone.text.run_layers(hidden, self._mask(len(embeds)), 0, backbone.frozen_text_layers)
        return self._logits(states, self.image_tokens, self.image_pooled)

    def from_token_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.from_word_embeddings(self.lookup(input_ids))

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, C) logits."""
        image = self.model.backbone.image(pixels)
        return self._logits(self.text_states, image.tokens, image.pooled)

    def _mask(self, n: int) -> torch.Tensor:
        return self.mask.expand(n, -1)

    def _logits(self, text_states, image_tokens, image_pooled) -> torch.Tensor:
        n = max(len(text_states), len(image_tokens))
        batch = PostBatch(attention_mask=self._mask(n), text_states=text_states.expand(n, -1, -1),
                          image_tokens=image_tokens.expand(n, -1, -1), image_pooled=image_pooled.expand(n, -1))
        return self.model(batch).logits


def text_baseline(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """The token ids with every non-special token replaced by [PAD]: "no words", same length."""
    special = torch.tensor(tokenizer.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True),
                           dtype=torch.bool)
    return torch.where(special, input_ids, torch.full_like(input_ids, tokenizer.pad_token_id))


def attribute_post(predictor: Predictor, image: Image.Image, text: str, target: int | None = None,
                   method: str = "integrated gradients",
                   n_steps: tuple[int, int] = (TEXT_IG_STEPS, IMAGE_IG_STEPS)) -> PostAttribution:
    """Token and pixel attributions of one post for class `target` (default: the predicted one)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    batch = predictor.batch([image], [text])
    forward = PostForward(predictor.model, batch)
    with torch.no_grad():
        probs = forward.from_pixels(batch.pixel_values).softmax(-1)[0]
    target = int(probs.argmax()) if target is None else int(target)
    ids, ids_base = batch.input_ids, text_baseline(batch.input_ids, predictor.tokenizer)
    if method == "occlusion":
        (text, text_delta), (image_map, image_delta) = _occlude(forward, ids, ids_base, batch.pixel_values, target)
    else:
        (text, text_delta), (image_map, image_delta) = _integrated_gradients(
            forward, ids, ids_base, batch.pixel_values, target, n_steps)
    # IG scores add up (completeness), so they are summed over embedding dimensions and colour
    # channels; occlusion gives every element of a window the same drop, so it is averaged
    pool = torch.mean if method == "occlusion" else torch.sum
    return PostAttribution(
        tokens=predictor.tokenizer.convert_ids_to_tokens(ids[0].tolist()),
        token_scores=pool(text.detach(), -1)[0].numpy(), image_scores=pool(image_map.detach(), 1)[0].numpy(),
        target=target, probability=float(probs[target]), text_delta=_delta(text_delta),
        image_delta=_delta(image_delta), method=method)


def _delta(delta) -> float:
    return float(abs(delta.item())) if torch.is_tensor(delta) else float("nan")


def _integrated_gradients(forward: PostForward, ids, ids_base, pixels, target, n_steps):
    """(attributions, convergence delta) for the word embeddings and for the pixels; n_steps is
    (text steps, image steps), each run as one batch."""
    text_steps, image_steps = n_steps
    text = LayerIntegratedGradients(forward.from_token_ids, forward.lookup).attribute(
        ids, ids_base, target=target, n_steps=text_steps, internal_batch_size=text_steps,
        return_convergence_delta=True)
    image = IntegratedGradients(forward.from_pixels).attribute(
        pixels, torch.zeros_like(pixels), target=target, n_steps=image_steps, internal_batch_size=image_steps,
        return_convergence_delta=True)
    return text, image


def _occlude(forward: PostForward, ids, ids_base, pixels, target):
    """Occlusion: the logit drop when each token (its word embedding replaced by [PAD]'s) or each
    image window (set to the blank image) is hidden."""
    with torch.no_grad():
        embeds, embeds_base = forward.lookup(ids), forward.lookup(ids_base)
    text = Occlusion(forward.from_word_embeddings).attribute(
        embeds, sliding_window_shapes=(1, embeds.shape[-1]), baselines=embeds_base, target=target,
        perturbations_per_eval=16)
    patch = pixels.shape[-1] // OCCLUSION_WINDOWS
    image = Occlusion(forward.from_pixels).attribute(
        pixels, sliding_window_shapes=(3, patch, patch), strides=(3, patch // 2, patch // 2), baselines=0.0,
        target=target, perturbations_per_eval=8)
    return (text, None), (image, None)


# --- presenting and comparing --------------------------------------------------------------------

def pooled_map(scores: np.ndarray, cells: int = 56) -> np.ndarray:
    """(H, W) pixel scores summed into a (cells, cells) grid: readable as a heatmap, and the unit
    in which two checkpoints' maps are compared (single pixels are too noisy)."""
    h, w = scores.shape
    return scores[: h - h % cells, : w - w % cells].reshape(cells, h // cells, cells, w // cells).sum((1, 3))


def normalised(scores: np.ndarray) -> np.ndarray:
    """Scores divided by their largest magnitude (two models' logits have different scales)."""
    peak = np.abs(scores).max()
    return scores / peak if peak > 0 else scores


def compare_maps(a: np.ndarray, b: np.ndarray, top_share: float = 0.1) -> dict[str, float]:
    """How alike two attribution maps are: overlap of their top `top_share` positions by
    |attribution| and the Spearman correlation of the magnitudes."""
    k = max(1, int(round(top_share * a.size)))
    return {"top-k overlap": topk_overlap(a, b, k), "rank correlation": rank_correlation(a, b), "k": k}


def token_html(tokens: list[str], scores: np.ndarray) -> str:
    """Tokens as HTML spans coloured by attribution (green supports the class, red opposes it),
    special tokens left out, word pieces joined to their word."""
    peak = max(float(np.abs(scores).max()), 1e-12)
    spans = []
    for token, score in zip(tokens, scores):
        if token in ("[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"):
            continue
        alpha = min(abs(float(score)) / peak, 1.0)
        colour = f"rgba(0,160,60,{alpha:.2f})" if score >= 0 else f"rgba(220,40,40,{alpha:.2f})"
        word = token[2:] if token.startswith("##") else f" {token}"
        spans.append(f'<span title="{score:+.3f}" style="background:{colour};border-radius:3px;'
                     f'padding:0 1px">{html.escape(word)}</span>')
    return "".join(spans).strip()
