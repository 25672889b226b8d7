"""How well does a model tell an image's own text from other posts' texts?

Scores of arbitrary image × text pairs, only from what training touched: the ITM head's P(match)
where the checkpoint has one, otherwise the cosine in its ITC space when it was trained with ITC
(labelled as such, never passed off as a match probability); a CE-only checkpoint has no score.
Each post of a batch is encoded once; the pairs are then fused from the unimodal outputs with
`backbone.fuse_pairs` (late fusion: only the fusion layer runs again; MMBT: the joint text
layers; ViLT: the whole model, as early fusion has nothing to reuse).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics.pairwise import paired_cosine_distances

from mmaux.analysis.alignment import cosine_matrix, shuffled_pairs
from mmaux.analysis.diskcache import cached_arrays, checkpoint_key, content_key
from mmaux.analysis.spaces import trained_spaces
from mmaux.checkpoint import OUTPUTS, WEIGHTS
from mmaux.features import PostInputs
from mmaux.model import MultimodalClassifier, PostBatch

SCORE_LABELS = {"itm": "ITM match probability", "itc": "cosine in the trained ITC space (no ITM head)"}
PAIR_CHUNK = 256  # pairs fused at once: bounds memory for attention fusion over token grids
# early fusion: posts of the sample whose every image × text pair is run jointly (n² passes; MMBT
# on 2 cores ≈ 4 ms a pair: 100 posts ≈ 40 s, all 1000 test posts ≈ an hour)
CROSS_PAIR_POSTS = 100


@dataclass(frozen=True)
class PairScores:
    values: np.ndarray  # one score per pair (or an images × texts matrix)
    kind: str  # "itm": P(match) from the ITM head; "itc": cosine of the ITC embeddings

    @property
    def label(self) -> str:
        return SCORE_LABELS[self.kind]


def score_kind(model: MultimodalClassifier) -> str | None:
    """"itm" with an ITM head, "itc" for a checkpoint trained with ITC, None for neither."""
    return "itm" if model.itm_head is not None else trained_spaces(model.cfg).score_kind


@torch.no_grad()
def pair_scores(model: MultimodalClassifier, batch: PostBatch, image_index, text_index) -> PairScores:
    """Score of image `image_index[k]` with text `text_index[k]` (rows of `batch`), encoding
    each post once. A checkpoint with neither an ITM head nor ITC training has no score to give."""
    if score_kind(model) is None:
        raise ValueError("this checkpoint was trained with neither ITM nor ITC: it has no match score "
                         "(its ITC projections are untrained)")
    image_index = torch.as_tensor(image_index, dtype=torch.long)
    text_index = torch.as_tensor(text_index, dtype=torch.long)
    enc = model.backbone(batch)
    if model.itm_head is None:
        text = F.normalize(model.project_text(enc.text_pooled), dim=-1)
        image = F.normalize(model.project_image(enc.image_pooled), dim=-1)
        return PairScores((image[image_index] * text[text_index]).sum(-1).numpy(), "itc")
    return PairScores(model.itm_head(fused_pairs(model, enc, image_index, text_index)).softmax(-1)[:, 1].numpy(),
                      "itm")


@torch.no_grad()
def fused_pairs(model: MultimodalClassifier, enc, image_index, text_index) -> torch.Tensor:
    """The fused vectors (what the ITM head reads) of image `image_index[k]` with text
    `text_index[k]`, from the batch's backbone output `enc`, `PAIR_CHUNK` pairs at a time."""
    image_index = torch.as_tensor(image_index, dtype=torch.long)
    text_index = torch.as_tensor(text_index, dtype=torch.long)
    return torch.cat([model.backbone.fuse_pairs(enc.state, image_index[s:s + PAIR_CHUNK], text_index[s:s + PAIR_CHUNK])
                      for s in range(0, len(image_index), PAIR_CHUNK)])


def match_matrix(model: MultimodalClassifier, batch: PostBatch) -> PairScores:
    """(n, n) scores of every image (rows) with every text (columns); true pairs on the diagonal."""
    n = len(batch)
    rows, cols = np.divmod(np.arange(n * n), n)
    scores = pair_scores(model, batch, rows, cols)
    return PairScores(scores.values.reshape(n, n), scores.kind)


def similar_texts(text_emb: np.ndarray, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the `n` texts most and the `n` least cosine-similar to post `row`'s own text
    (itself excluded): the hardest and the easiest mismatches to offer the ITM head."""
    sim = cosine_matrix(text_emb[row:row + 1], text_emb)[0]
    order = [i for i in np.argsort(-sim, kind="stable") if i != row]
    return np.array(order[:n], dtype=int), np.array(order[::-1][:n], dtype=int)


def rank_texts_for_image(model: MultimodalClassifier, inputs: PostInputs, row: int,
                         text_rows) -> PairScores:
    """Scores of post `row`'s image with its own text followed by each of `text_rows`' texts."""
    rows = np.r_[row, np.asarray(text_rows, dtype=int)]
    return pair_scores(model, inputs.batch(rows), np.zeros(len(rows), dtype=int), np.arange(len(rows)))


def own_and_mismatched(n_posts: int, seed: int = 0, batch_size: int = 128):
    """For each batch of `batch_size` posts: (rows, image_index, text_index), where the pairs are
    every post's own pair, then one mismatched pair per post (its image with the text of another
    post of the batch, as ITM training draws them); indices are within the batch."""
    for k, start in enumerate(range(0, n_posts, batch_size)):
        rows = np.arange(start, min(start + batch_size, n_posts))
        own = np.arange(len(rows))
        other = shuffled_pairs(len(rows), seed + k) if len(rows) > 1 else own
        yield rows, np.r_[own, own], np.r_[own, other]


def true_and_shuffled(model: MultimodalClassifier, inputs: PostInputs, seed: int = 0,
                      batch_size: int = 128) -> tuple[PairScores, PairScores]:
    """Scores of every post's own pair and of one mismatched pair per post (`own_and_mismatched`)."""
    true, shuffled = [], []
    for rows, image_index, text_index in own_and_mismatched(len(inputs), seed, batch_size):
        scores = pair_scores(model, inputs.batch(rows), image_index, text_index)
        true.append(scores.values[:len(rows)])
        shuffled.append(scores.values[len(rows):])
    kind = score_kind(model)
    return PairScores(np.concatenate(true), kind), PairScores(np.concatenate(shuffled), kind)


@torch.no_grad()
def cross_pair_similarity(model: MultimodalClassifier, batch: PostBatch,
                          progress: Callable[[float], None] | None = None) -> np.ndarray:
    """(n, n) cosine in the ITC space of image j (rows) with text i (columns), every pair run
    through the model as one post. For early fusion (MMBT, ViLT) this is retrieval proper: text i's
    state has seen image j, not its own image. For late fusion it equals the cosine matrix of the
    posts' own embeddings. Costs n² joint passes: for a sample of posts."""
    n = len(batch)
    rows, cols = (torch.as_tensor(a) for a in np.divmod(np.arange(n * n), n))
    parts = []
    for start in range(0, n * n, PAIR_CHUNK):
        out = model(batch.pair(rows[start:start + PAIR_CHUNK], cols[start:start + PAIR_CHUNK]))
        parts.append(F.cosine_similarity(out.image_emb, out.text_emb, dim=-1))
        if progress:
            progress(min(start + PAIR_CHUNK, n * n) / (n * n))
    return torch.cat(parts).reshape(n, n).numpy()


def cached_cross_pair_similarity(folder: str | Path, model: MultimodalClassifier, inputs: PostInputs, rows,
                                 progress: Callable[[float], None] | None = None) -> np.ndarray:
    """`cross_pair_similarity` of posts `rows`, stored on disk per checkpoint content and posts."""
    rows = np.asarray(rows, dtype=int)
    key = content_key(checkpoint_key(folder, WEIGHTS, OUTPUTS), inputs.frame["post_id"].astype(str)[rows].tolist())
    return cached_arrays("cross-pairs", key, lambda: {
        "sim": cross_pair_similarity(model, inputs.batch(rows), progress)})["sim"]


def itc_true_and_shuffled(text_emb: np.ndarray, image_emb: np.ndarray, seed: int = 0) -> tuple[PairScores, PairScores]:
    """ITC cosine of every post's own pair and of its image with a random other post's text,
    from stored embeddings: no model needed."""
    other = shuffled_pairs(len(text_emb), seed)
    return (PairScores(1 - paired_cosine_distances(image_emb, text_emb), "itc"),
            PairScores(1 - paired_cosine_distances(image_emb, text_emb[other]), "itc"))


def cached_true_and_shuffled(folder: str | Path, post_ids, load: Callable[[], tuple[MultimodalClassifier, PostInputs]],
                             seed: int = 0) -> tuple[PairScores, PairScores]:
    """`true_and_shuffled` of the checkpoint's test posts `post_ids`, stored on disk per checkpoint
    content (weights and test outputs). `load()` gives (model, inputs) and runs only on a cache
    miss, so a second look at a checkpoint costs no model load."""
    key = content_key(checkpoint_key(folder, WEIGHTS, OUTPUTS), seed, [str(p) for p in post_ids], "with kind")

    def compute():
        true, shuffled = true_and_shuffled(*load(), seed)
        return {"true": true.values, "shuffled": shuffled.values, "kind": np.array(true.kind)}

    arrays = cached_arrays("match-scores", key, compute)
    kind = str(arrays["kind"])
    return PairScores(arrays["true"], kind), PairScores(arrays["shuffled"], kind)
