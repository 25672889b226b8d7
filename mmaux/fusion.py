"""Late-fusion modules: (text features, image features) -> one fused vector (B, H).

The four fusions of the reference implementation (PAPER.md, "Model families"). Each sees the
unimodal outputs only, which is what lets ITM reuse them for mismatched pairs instead of
re-running the encoders.
"""
from __future__ import annotations

import torch
from torch import nn

from mmaux.encoders import ImageFeatures, TextFeatures, masked_mean


class ConcatFusion(nn.Module):
    """[t ; v] -> Linear -> ReLU on the pooled text and image vectors."""

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.mix = nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim + image_dim, hidden_dim), nn.ReLU())

    def forward(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        return self.mix(torch.cat([text.pooled, image.pooled], dim=-1))


class AttentionFusion(nn.Module):
    """Text tokens attend over image tokens (scaled dot product), as in "Ber-ViT-Att".

    q = W_q text tokens, k = v = W_k image tokens (both in the hidden width, since the two
    encoders' widths differ), a = softmax(q kᵀ / √d) v; then
    [t ; mean over text positions of a] -> Linear -> ReLU.
    """

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.query = nn.Linear(text_dim, hidden_dim)  # text tokens as queries
        self.key = nn.Linear(image_dim, hidden_dim)  # image tokens as keys and values
        self.mix = nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim + hidden_dim, hidden_dim), nn.ReLU())

    def forward(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        keys = self.key(image.tokens)  # (B, N, H)
        scores = self.query(text.tokens) @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5  # (B, T, N)
        attended = torch.softmax(scores, dim=-1) @ keys  # (B, T, H)
        return self.mix(torch.cat([text.pooled, masked_mean(attended, text.mask)], dim=-1))


class GMUFusion(nn.Module):
    """Gated multimodal unit (Arevalo et al. 2017).

    h = z ⊙ tanh(W_t t) + (1 - z) ⊙ tanh(W_v v), z = σ(W_z [t ; v]).
    """

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.text = nn.Linear(text_dim, hidden_dim)
        self.image = nn.Linear(image_dim, hidden_dim)
        self.gate = nn.Linear(text_dim + image_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        t, v = self.dropout(text.pooled), self.dropout(image.pooled)
        z = torch.sigmoid(self.gate(torch.cat([t, v], dim=-1)))
        return z * torch.tanh(self.text(t)) + (1 - z) * torch.tanh(self.image(v))


class AspectFusion(nn.Module):
    """A learned softmax weighting of the two pooled vectors.

    u_m = tanh(P_m x_m), α = softmax_m(wᵀ u_m), h = ReLU(Σ_m α_m P_m x_m).
    """

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.text = nn.Linear(text_dim, hidden_dim)
        self.image = nn.Linear(image_dim, hidden_dim)
        self.score = nn.Linear(hidden_dim, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        views = torch.stack([self.text(self.dropout(text.pooled)), self.image(self.dropout(image.pooled))], 1)
        weights = torch.softmax(self.score(torch.tanh(views)), dim=1)  # (B, 2, 1)
        return torch.relu((weights * views).sum(1))


LATE_FUSIONS = {"concat": ConcatFusion, "attention": AttentionFusion, "gmu": GMUFusion, "aspect": AspectFusion}
