"""Which words and which image regions drive one post's prediction (Captum).

Integrated gradients (Sundararajan et al. 2017), each modality attributed with the other held at
its own features, so the text attributions sum to F(post) − F(post with blank text) and the image
attributions to F(post) − F(post with a blank image), up to the convergence delta:
The path starts at a *reference* input (Captum calls it the baseline; "baseline" on the pages
means CE):
- text: at the word-embedding layer (LayerIntegratedGradients; reference: every real token
  replaced by [PAD], [CLS]/[SEP] and the mask kept), through the frozen text layers;
- image: over the frozen image encoder's output cells (7 × 7 for EfficientNet-Lite0; reference:
  the features of a blank image, zeros after normalisation = the dataset's mean colour). The
  frozen encoder is a fixed function, so the straight path in its feature space starts from the
  features already computed, and every step costs only the trained layers above it: hundreds of
  steps take well under a second, where a pixel path costs one CNN forward and backward per step
  and did not converge in 64 (median relative delta 80 %). When the encoder's pooled vector is
  not the mean of its cells (a ViT's CLS state), it is a second input: its share is `image_global`.
Steps are chosen per post and modality by a ladder (`TEXT_LADDER`, `IMAGE_LADDER`) until
|delta| ≤ 5 % of |F(post) − F(reference)| (or ≤ 0.05 logits when that gap is smaller than one
logit); a map that never gets there is returned flagged, with its delta, for the page to say so.
Occlusion is the gradient-free alternative (pixel windows, tokens).

The model comes from a cache shared by every dashboard session, so nothing here changes it:
no hooks on its modules (LayerIntegratedGradients hooks a throwaway wrapper around the
embedding table), no switch to train mode, no gradients kept. Supports the dual-encoder
models (late fusion and MMBT), whose text and image paths can be separated.
"""
from __future__ import annotations

import html
import math
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
TEXT_LADDER = (32, 64, 128, 256)  # IG steps tried in turn (Gauss-Legendre), each run as batches
IMAGE_LADDER = (16, 32, 64, 128, 256, 512)
REL_TOLERANCE = 0.05  # converged: |delta| ≤ 5 % of |F(post) − F(reference)| ...
ABS_TOLERANCE = 0.05  # ... or ≤ 0.05 logits when that gap is below one logit
MAX_BATCH = 128  # interpolation steps evaluated at once
OCCLUSION_WINDOWS = 4  # image windows of 1/4 of the side, moved by half a window: 7 × 7 positions
DISPLAY_CELLS = 56  # maps are shown and compared on a grid of this many cells a side


def tolerance(gap: float) -> float:
    """The largest |delta| that counts as converged for a logit gap F(post) − F(reference)."""
    return max(REL_TOLERANCE * abs(gap), ABS_TOLERANCE)


@dataclass(frozen=True)
class Convergence:
    """How closely one IG map adds up: Σ attributions = gap − delta (completeness)."""

    steps: int  # interpolation steps of the map returned
    delta: float  # |Σ attributions − gap|, logits
    gap: float  # F(post) − F(reference) for the class explained, logits
    converged: bool  # delta within `tolerance(gap)`

    @property
    def relative(self) -> float:
        """|delta| / |gap| (inf when the gap is zero)."""
        return self.delta / abs(self.gap) if self.gap else math.inf

    def describe(self) -> str:
        state = f"converged in {self.steps} steps" if self.converged else \
            f"did not converge (delta {self.delta:.3f} after {self.steps} steps)"
        return (f"{state}: |delta| {self.delta:.3f} vs tolerance {tolerance(self.gap):.3f}, "
                f"F(post) − F(reference) {self.gap:+.3f} logits")


@dataclass(frozen=True)
class PostAttribution:
    tokens: list[str]  # word pieces of the text, special tokens included
    token_scores: np.ndarray  # (T,) attribution per token (summed over embedding dimensions)
    image_scores: np.ndarray  # (h, w): IG per encoder cell (summed over channels); occlusion per pixel
    target: int  # the class explained
    probability: float  # P(target) for the post
    method: str
    text: Convergence | None = None  # IG only
    image: Convergence | None = None  # IG only
    image_global: float = 0.0  # IG share of a pooled image vector that is not the mean of the cells

    @property
    def text_delta(self) -> float:
        return self.text.delta if self.text else float("nan")

    @property
    def image_delta(self) -> float:
        return self.image.delta if self.image else float("nan")

    @property
    def converged(self) -> bool:
        """Both maps within tolerance (occlusion has no delta: True)."""
        return all(c is None or c.converged for c in (self.text, self.image))


class _TokenLookup(nn.Module):
    """A fresh wrapper around the shared embedding table: LayerIntegratedGradients hooks this
    module, which lives for one attribution, instead of the shared model's own layer."""

    def __init__(self, table: nn.Embedding):
        super().__init__()
        self.table = table

    def forward(self, input_ids):
        return self.table(input_ids)


class PostForward:
    """Logits of one post as a function of its text (word embeddings / token ids), of its image
    features or of its pixels, the other modality held fixed at its own features (computed once)."""

    def __init__(self, model: MultimodalClassifier, batch: PostBatch):
        if model.cfg.architecture == "vilt":
            raise ValueError("attributions support dual-encoder checkpoints (late fusion, MMBT); "
                             "this one is ViLT, whose text and image run in one transformer")
        self.model, self.mask = model, batch.attention_mask
        self.lookup = _TokenLookup(model.backbone.text.model.embeddings.word_embeddings)
        with torch.no_grad():
            self.text_states = model.backbone.text_prefix(batch)
            image = model.backbone.image(batch.pixel_values)
            blank = model.backbone.image(torch.zeros_like(batch.pixel_values))
        self.image_tokens, self.image_pooled = image.tokens, image.pooled
        self.blank_tokens, self.blank_pooled = blank.tokens, blank.pooled
        # EfficientNet pools by the mean of its cells, and attention fusion reads only the cells:
        # then the cells are the only image input; otherwise the pooled vector is a second one
        self.mean_pooled = bool(torch.allclose(image.pooled, image.tokens.mean(1), atol=1e-5)
                                and torch.allclose(blank.pooled, blank.tokens.mean(1), atol=1e-5))
        self.pooled_input = not self.mean_pooled and self._logits_read_pooled()

    def from_word_embeddings(self, embeds: torch.Tensor) -> torch.Tensor:
        """(B, T, D) word embeddings -> (B, C) logits."""
        backbone = self.model.backbone
        hidden = backbone.text.model.embeddings(inputs_embeds=embeds)
        states = backbone.text.run_layers(hidden, self._mask(len(embeds)), 0, backbone.frozen_text_layers)
        return self._logits(states, self.image_tokens, self.image_pooled)

    def from_token_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.from_word_embeddings(self.lookup(input_ids))

    def from_image_features(self, tokens: torch.Tensor, pooled: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, Dv) encoder cells and (B, Dv) pooled vector -> (B, C) logits. Without `pooled`:
        the cells' mean for a mean-pooling encoder, else the post's own (when the logits ignore it)."""
        if pooled is None:
            pooled = tokens.mean(1) if self.mean_pooled else self.image_pooled
        return self._logits(self.text_states, tokens, pooled)

    def _logits_read_pooled(self) -> bool:
        with torch.enable_grad():
            pooled = self.image_pooled.clone().requires_grad_(True)
            logits = self._logits(self.text_states, self.image_tokens, pooled)
            grad, = torch.autograd.grad(logits.sum(), pooled, allow_unused=True)
        return grad is not None

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
                   ladders: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
                   n_steps: tuple[int, int] | None = None) -> PostAttribution:
    """Token and image attributions of one post for class `target` (default: the predicted one).
    `ladders`: the IG steps tried for the text and for the image until each map converges;
    `n_steps` (text, image) fixes them instead (one rung each)."""
    if n_steps is not None:
        ladders = ((n_steps[0],), (n_steps[1],))
    ladders = ladders or (TEXT_LADDER, IMAGE_LADDER)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    batch = predictor.batch([image], [text])
    forward = PostForward(predictor.model, batch)
    with torch.no_grad():
        probs = forward.from_image_features(forward.image_tokens, forward.image_pooled).softmax(-1)[0]
    target = int(probs.argmax()) if target is None else int(target)
    ids, ids_base = batch.input_ids, text_baseline(batch.input_ids, predictor.tokenizer)
    common = dict(tokens=predictor.tokenizer.convert_ids_to_tokens(ids[0].tolist()), target=target,
                  probability=float(probs[target]), method=method)
    if method == "occlusion":
        text, image = _occlude(forward, ids, ids_base, batch.pixel_values, target)
        # occlusion gives every element of a window the same drop: averaged, not summed
        return PostAttribution(token_scores=text.mean(-1)[0].numpy(), image_scores=image.mean(1)[0].numpy(),
                               **common)
    text, text_check = _text_ig(forward, ids, ids_base, target, ladders[0])
    cells, image_global, image_check = _image_ig(forward, target, ladders[1])
    # IG scores add up (completeness): summed over embedding dimensions and channels
    return PostAttribution(token_scores=text.sum(-1)[0].numpy(), image_scores=_as_grid(cells.sum(-1)[0].numpy()),
                           text=text_check, image=image_check, image_global=image_global, **common)


def _climb(attribute, gap: float, ladder) -> tuple[object, Convergence]:
    """`attribute(steps)` -> (attributions, delta) for each rung of `ladder` until converged."""
    limit = tolerance(gap)
    for steps in ladder:
        attributions, delta = attribute(steps)
        delta = float(delta.abs().max())
        if delta <= limit:
            break
    return attributions, Convergence(steps, delta, gap, delta <= limit)


def _gap(fn, inputs, baselines, target) -> float:
    with torch.no_grad():
        return float(fn(*inputs)[0, target] - fn(*baselines)[0, target])


def _text_ig(forward: PostForward, ids, ids_base, target, ladder):
    ig = LayerIntegratedGradients(forward.from_token_ids, forward.lookup)
    gap = _gap(forward.from_token_ids, (ids,), (ids_base,), target)
    return _climb(lambda steps: ig.attribute(ids, ids_base, target=target, n_steps=steps,
                                             internal_batch_size=min(steps, MAX_BATCH),
                                             return_convergence_delta=True), gap, ladder)


def _image_ig(forward: PostForward, target, ladder):
    """IG over the frozen encoder's cells (and its pooled vector when that is not their mean)."""
    if not forward.pooled_input:
        inputs, baselines = (forward.image_tokens,), (forward.blank_tokens,)
    else:
        inputs = (forward.image_tokens, forward.image_pooled)
        baselines = (forward.blank_tokens, forward.blank_pooled)
    ig = IntegratedGradients(forward.from_image_features)
    gap = _gap(forward.from_image_features, inputs, baselines, target)
    attributions, check = _climb(lambda steps: ig.attribute(inputs, baselines, target=target, n_steps=steps,
                                                            internal_batch_size=min(steps, MAX_BATCH),
                                                            return_convergence_delta=True), gap, ladder)
    image_global = float(attributions[1].sum()) if len(attributions) > 1 else 0.0
    return attributions[0].detach(), image_global, check


def _as_grid(cells: np.ndarray) -> np.ndarray:
    """(N,) cell scores as the encoder's square grid (row-major), or one row when N is not square."""
    side = math.isqrt(len(cells))
    return cells.reshape(side, side) if side * side == len(cells) else cells[None, :]


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
    return text.detach(), image.detach()


# --- presenting and comparing --------------------------------------------------------------------

def pooled_map(scores: np.ndarray, cells: int = DISPLAY_CELLS) -> np.ndarray:
    """(H, W) pixel scores summed into a (cells, cells) grid: readable as a heatmap, and the unit
    in which two checkpoints' maps are compared (single pixels are too noisy)."""
    h, w = scores.shape
    return scores[: h - h % cells, : w - w % cells].reshape(cells, h // cells, cells, w // cells).sum((1, 3))


def on_grid(scores: np.ndarray, cells: int = DISPLAY_CELLS) -> np.ndarray:
    """Any map on a (cells, cells) grid: a pixel map summed into cells, a coarser map (encoder
    cells) repeated into them, so that maps of any resolution can be drawn and subtracted."""
    if min(scores.shape) >= cells:
        return pooled_map(scores, cells)
    rows = np.arange(cells) * scores.shape[0] // cells
    columns = np.arange(cells) * scores.shape[1] // cells
    return scores[np.ix_(rows, columns)]


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
