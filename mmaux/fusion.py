"""Late-fusion modules: (text features, image features) -> one fused vector (B, H).

The four fusions of the reference implementation (PAPER.md, "Model families"). Each is split in
two: `encode_text` and `encode_image` hold everything that depends on one modality (the costly
projections), `pair` combines the two sides (cheap); the backbone composes them. ITM scores
mismatched pairs with `pair` alone, on the sides already encoded for the batch's own posts,
instead of re-running the encoders or the projections (`fuse_pairs` in mmaux.model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmaux.encoders import ImageFeatures, TextFeatures, masked_mean


class LateFusion(nn.Module):
    def encode_text(self, text: TextFeatures) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def encode_image(self, image: ImageFeatures, itc_image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`image`: the encoder's features; `itc_image`: the vector ITC projects (the encoder's
        pooled vector, or a learned pooling of its tokens), read only by an aligned fusion."""
        raise NotImplementedError

    def pair(self, text_side: tuple[torch.Tensor, ...], image_side: tuple[torch.Tensor, ...]) -> torch.Tensor:
        raise NotImplementedError

    def itc_embeddings(self, text_side, image_side) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The ITC text and image embeddings when encoding the sides already projected them (so
        the model does not project twice), else None."""
        return None


def _split_linear(layer: nn.Linear, x: torch.Tensor, start: int, stop: int, bias: bool) -> torch.Tensor:
    """The part of `layer([.. ; x ; ..])` that comes from the input columns [start, stop)."""
    return F.linear(x, layer.weight[:, start:stop], layer.bias if bias else None)


class ConcatFusion(LateFusion):
    """[t ; v] -> Linear -> ReLU on the pooled text and image vectors (W [t ; v] = W_t t + W_v v).

    `aligned=True` ("align before fuse", as for AttentionFusion): the pooled vectors are also
    projected by the ITC projections q = W_q t, k = W_k v (no bias, width `attention_dim`), and
    the fused vector gains W_m (q ⊙ k), the per-dimension agreement of the two ITC embeddings
    (it sums to their dot product; as in AttentionFusion, not normalised: with unit vectors the ITM
    head of a CE+ITC+ITM run on SynthPosts sentiment reached own vs shuffled AUROC 0.52, 0.54
    with the unit vectors scaled by √width, 0.64 unnormalised). Without it the fused vector is an
    additive function of text and image plus one ReLU, and an ITM head on it cannot tell a post's
    own text from another's (own vs shuffled AUROC 0.50 in every shipped concat run before it).

    The mix reads the encoder's pooled image even where ITC's key reads a learned pooling
    (`itc_image_pool="attention"`): when the mix shared ITC's pooling, CE pulled that pooling
    toward the cells that carry sentiment, and ITC recall@10 of the shipped sentiment concat runs
    fell to 0.13 (0.29-0.30 with the mix on the encoder's pooled image; one seed).
    """

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float,
                 attention_dim: int | None = None, aligned: bool = False):
        super().__init__()
        self.text_dim = text_dim
        self.mix = nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim + image_dim, hidden_dim), nn.ReLU())
        width = attention_dim or hidden_dim
        self.query = nn.Linear(text_dim, width, bias=False) if aligned else None  # ITC's text_proj
        self.key = nn.Linear(image_dim, width, bias=False) if aligned else None  # ITC's image_proj
        self.match = nn.Linear(width, hidden_dim, bias=False) if aligned else None  # q ⊙ k -> fused

    def encode_text(self, text):
        mixed = _split_linear(self.mix[1], self.mix[0](text.pooled), 0, self.text_dim, bias=True)
        return (mixed,) if self.query is None else (mixed, self.query(text.pooled))

    def encode_image(self, image, itc_image):
        mixed = _split_linear(self.mix[1], self.mix[0](image.pooled), self.text_dim, None, bias=False)
        return (mixed,) if self.key is None else (mixed, self.key(itc_image))

    def itc_embeddings(self, text_side, image_side):
        return None if self.query is None else (text_side[1], image_side[1])

    def pair(self, text_side, image_side):
        fused = text_side[0] + image_side[0]
        if self.match is not None:
            fused = fused + self.match(text_side[1] * image_side[1])
        return self.mix[2](fused)


class AttentionFusion(LateFusion):
    """Text tokens attend over image tokens (scaled dot product), as in "Ber-ViT-Att".

    q = W_q text tokens, k = v = W_k image tokens (in a common width, since the two encoders'
    widths differ), a = softmax(q kᵀ / √d) v; then [t ; mean over text positions of a] -> Linear -> ReLU.

    `aligned=True` ("align before fuse", ALBEF, Li et al. 2021): W_q and W_k are the ITC
    projections themselves (no bias, width `attention_dim` = the ITC width), so the text attends
    over the image in the space ITC aligns, and the fused vector gains m = W_m mean_t(q_t ⊙ a_t),
    how well each text token's query matches what it attended to. Without both, an ITM head on
    the fused vector stayed at chance on SynthPosts sentiment (own vs shuffled AUROC 0.51-0.53;
    0.70-0.71 with them): at initialisation the attention is uniform and the fused vector an
    additive function of text and image, which cannot tell which object a text names is drawn.
    """

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float,
                 attention_dim: int | None = None, aligned: bool = False):
        super().__init__()
        width = attention_dim or hidden_dim
        self.text_dim = text_dim
        self.query = nn.Linear(text_dim, width, bias=not aligned)  # text tokens as queries (aligned: ITC's text_proj)
        self.key = nn.Linear(image_dim, width, bias=not aligned)  # image tokens as keys and values (ITC's image_proj)
        self.match = nn.Linear(width, hidden_dim, bias=False) if aligned else None  # q ⊙ a -> fused
        self.mix = nn.Sequential(nn.Dropout(dropout), nn.Linear(text_dim + width, hidden_dim), nn.ReLU())

    def encode_text(self, text):
        pooled = _split_linear(self.mix[1], self.mix[0](text.pooled), 0, self.text_dim, bias=True)
        return self.query(text.tokens), text.mask, pooled  # (B, T, W), (B, T), (B, H)

    def encode_image(self, image, itc_image):
        return (self.key(image.tokens),)  # (B, N, W)

    def pair(self, text_side, image_side):
        queries, mask, pooled = text_side
        (keys,) = image_side
        scores = queries @ keys.transpose(1, 2) / keys.shape[-1] ** 0.5  # (B, T, N)
        per_token = torch.softmax(scores, dim=-1) @ keys  # (B, T, W)
        attended = masked_mean(per_token, mask)  # (B, W)
        fused = pooled + _split_linear(self.mix[1], self.mix[0](attended), self.text_dim, None, bias=False)
        if self.match is not None:
            fused = fused + self.match(masked_mean(queries * per_token, mask))
        return self.mix[2](fused)


class GMUFusion(LateFusion):
    """Gated multimodal unit (Arevalo et al. 2017).

    h = z ⊙ tanh(W_t t) + (1 - z) ⊙ tanh(W_v v), z = σ(W_z [t ; v]).
    """

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.text_dim = text_dim
        self.text = nn.Linear(text_dim, hidden_dim)
        self.image = nn.Linear(image_dim, hidden_dim)
        self.gate = nn.Linear(text_dim + image_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def encode_text(self, text):
        t = self.dropout(text.pooled)
        return torch.tanh(self.text(t)), _split_linear(self.gate, t, 0, self.text_dim, bias=True)

    def encode_image(self, image, itc_image):
        v = self.dropout(image.pooled)
        return torch.tanh(self.image(v)), _split_linear(self.gate, v, self.text_dim, None, bias=False)

    def pair(self, text_side, image_side):
        z = torch.sigmoid(text_side[1] + image_side[1])
        return z * text_side[0] + (1 - z) * image_side[0]


class AspectFusion(LateFusion):
    """A learned softmax weighting of the two pooled vectors.

    u_m = tanh(P_m x_m), α = softmax_m(wᵀ u_m), h = ReLU(Σ_m α_m P_m x_m).
    """

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.text = nn.Linear(text_dim, hidden_dim)
        self.image = nn.Linear(image_dim, hidden_dim)
        self.score = nn.Linear(hidden_dim, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def _view(self, projection: nn.Linear, x: torch.Tensor):
        view = projection(self.dropout(x))
        return view, self.score(torch.tanh(view))  # (B, H), (B, 1)

    def encode_text(self, text):
        return self._view(self.text, text.pooled)

    def encode_image(self, image, itc_image):
        return self._view(self.image, image.pooled)

    def pair(self, text_side, image_side):
        weights = torch.softmax(torch.cat([text_side[1], image_side[1]], dim=1), dim=1)  # (B, 2)
        return torch.relu(weights[:, :1] * text_side[0] + weights[:, 1:] * image_side[0])


LATE_FUSIONS = {"concat": ConcatFusion, "attention": AttentionFusion, "gmu": GMUFusion, "aspect": AspectFusion}
