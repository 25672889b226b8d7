"""The training objective: class-weighted cross-entropy plus the two auxiliary losses of
Sánchez Villegas et al. (EACL Findings 2024), ITC and ITM.

    L = (1 - β_itc - β_itm) · CE + β_itc · ITC + β_itm · ITM

where only the βs of the enabled auxiliary losses are counted (PAPER.md).
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from mmaux.config import ITM_NEGATIVE_MODES, ITM_SCHEDULE_FIELDS, LossConfig  # noqa: F401 (re-exported)

LOGIT_SCALE_INIT = float(np.log(1 / 0.07))  # CLIP's temperature 0.07, as in the reference
LOGIT_SCALE_MAX = float(np.log(100.0))  # CLIP's clamp, keeps the softmax from saturating


def itc_loss(text_emb: torch.Tensor, image_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) over a batch of matched pairs.

    With t̂, v̂ the L2-normalised rows of `text_emb` and `image_emb` (B, D) and
    s = exp(min(logit_scale, ln 100)), the logits are S = s · t̂ v̂ᵀ and

        ITC = ½ [CE(S, diag) + CE(Sᵀ, diag)]

    i.e. each text must pick its own image among the batch's images and vice versa.
    `logit_scale` is the *log* of the scale (a learned scalar owned by the model).
    """
    logits = itc_logits(text_emb, image_emb, logit_scale)
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def itc_logits(a_emb: torch.Tensor, b_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """s · â b̂ᵀ (A, B): cosine similarities divided by the temperature 1/s, s = exp(min(logit_scale, ln 100))."""
    scale = logit_scale.clamp(max=LOGIT_SCALE_MAX).exp()
    return scale * F.normalize(a_emb, dim=-1) @ F.normalize(b_emb, dim=-1).t()


def sample_itm_pairs(
    batch_size: int,
    p_mismatch: float = 0.5,
    similarity: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose which text each image is paired with for ITM.

    Each post independently gets, with probability `p_mismatch`, the text of another post of
    the batch (never its own). Without `similarity` the other post is uniform over the rest
    (the paper's "random" negatives); with an image × text `similarity` (B, B) it is drawn
    from softmax(similarity) over the other posts ("hard" negatives, as in ALBEF/BLIP, where
    `similarity` is the ITC logits: cosine divided by the learned temperature, see `itc_logits`;
    raw cosines in [-1, 1] would make the softmax nearly uniform).
    A batch of one has no other post, so its pair is always a match.

    Returns `text_index` (B,) — the post whose text goes with image i — and `labels` (B,),
    1 for a matched pair and 0 for a mismatched one.
    """
    own = torch.arange(batch_size)
    if batch_size < 2:
        return own, torch.ones(batch_size, dtype=torch.long)
    swap = torch.rand(batch_size, generator=generator) < p_mismatch
    if similarity is None:
        offset = torch.randint(1, batch_size, (batch_size,), generator=generator)
        other = (own + offset) % batch_size
    else:
        weights = torch.softmax(similarity.detach().float().cpu(), dim=1)
        weights.fill_diagonal_(0.0)
        weights = weights + 1e-12 * (1 - torch.eye(batch_size))  # all-zero rows stay samplable
        other = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    text_index = torch.where(swap, other, own)
    return text_index, (text_index == own).long()


def itm_loss(itm_logits: torch.Tensor, itm_labels: torch.Tensor) -> torch.Tensor:
    """ITM = CE(head(fused(image_i, text_σ(i))), [σ(i) = i]): binary match / mismatch."""
    return F.cross_entropy(itm_logits, itm_labels)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """scikit-learn's "balanced" weights n / (K · count_k) from the training labels.

    A class absent from the training split gets weight 1 (it never contributes to the loss).
    """
    labels = np.asarray(labels)
    present = np.unique(labels)
    weights = np.ones(num_classes, dtype=np.float32)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.tensor(weights)


def joint_loss(
    cfg: LossConfig, ce: torch.Tensor, itc: torch.Tensor | None, itm: torch.Tensor | None,
    weights: tuple[float, float, float] | None = None,
) -> torch.Tensor:
    """(1 - β_itc - β_itm)·CE + β_itc·ITC + β_itm·ITM over the enabled losses, or with
    `weights` (CE, ITC, ITM) from `cfg.weights(progress)` (ITM's warm-up or ramp)."""
    w_ce, w_itc, w_itm = weights or (cfg.ce_weight, cfg.beta_itc, cfg.beta_itm)
    total = w_ce * ce
    if cfg.itc:
        total = total + w_itc * itc
    if cfg.itm:
        total = total + w_itm * itm
    return total
