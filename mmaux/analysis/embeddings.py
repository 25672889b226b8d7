"""2-d maps of a checkpoint's trained spaces: PCA and UMAP layouts of the test posts in the fused
representation (what the classifier reads; every checkpoint trained it) or in the ITC space
(projected image and text embeddings, both modalities in one map; trained only with ITC, see
`mmaux.analysis.spaces`), comparable across checkpoints.

Design choices, and why:
- ITC space: points are the L2-normalised embeddings (ITC trains on cosine similarity), images
  and texts stacked: rows [0, n) are the images, rows [n, 2n) the texts of the same n posts.
- Fused space: one point per post, the fused vector as it is (the classifier is linear in it,
  so its length matters as much as its direction).
- Comparable maps: each checkpoint's layout is fitted on its own and cached; to show several
  side by side, every layout is then aligned to the first by Procrustes (rotation/reflection,
  isotropic scale, translation) over the posts they share. Two checkpoints' spaces have
  unrelated bases (separately trained projections), so one shared fit + transform would place
  one checkpoint's points by the other's geometry; AlignedUMAP fits all panels jointly, so
  each combination of checkpoints would need its own slow fit. Procrustes keeps every panel's
  own shape exactly (distances within a panel are only scaled) and costs milliseconds.
- Placing a new post: a cache entry holds coordinates, never a pickled UMAP reducer (loading
  a pickle runs code). A PCA layout keeps its exact linear map; a UMAP layout places a new
  point at the similarity-weighted mean of its k nearest reference points in the embedding
  space, which is also how umap's own `transform` initialises new points.
- Large sets are sampled stratified by label (never "the first N").
- umap-learn compiles with numba on first use; NUMBA_CACHE_DIR points at our cache folder so
  compiled code is reused by later processes, and the nearest neighbours come from scikit-learn
  (umap's own parallel search is recompiled in every process, ~12 s here).
- Shipped layouts: a sweep writes each checkpoint's default UMAP layouts into the checkpoint
  folder (`layouts.npz`, coordinates only, keyed like the disk cache by the test outputs' hash
  and the parameters), so a fresh clone opens a shipped checkpoint's map without fitting UMAP or
  compiling numba. A key that no longer matches the outputs is simply not found: a retrained or
  edited checkpoint falls back to fitting, never to a stale map.
"""
from __future__ import annotations

import functools
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from mmaux.analysis.alignment import cosine_matrix, knn_overlap, linear_cka, mean_pair_cosine, modality_gap
from mmaux.analysis.diskcache import (cache_path, cached_arrays, checkpoint_key, content_key, read_npz,
                                     write_atomically)
from mmaux.analysis.layout_params import FUSED, METHODS, MODALITIES, SHIPPED_LAYOUTS, SPACES, LayoutParams  # noqa: F401
from mmaux.checkpoint import OUTPUTS, read_outputs
from mmaux.paths import cache_dir

os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir("numba")))

PLACE_NEIGHBOURS = 10  # reference points averaged to place a new post in a UMAP layout
LAYOUT_VERSION = 2  # bumped when the same parameters give other coordinates (2: scikit-learn neighbours)

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Layout:
    post_ids: np.ndarray  # (n,) ids of the posts drawn
    coords: np.ndarray  # (m·n, 2) for the m modalities of the space: images of the n posts, then texts
    points: np.ndarray  # (m·n, d) the vectors the layout was fitted on
    params: LayoutParams
    linear: tuple[np.ndarray, np.ndarray] | None = None  # PCA only: coords = points @ W + b

    def frame(self) -> pd.DataFrame:
        """One row per point: post_id, modality ("image"/"text", or "fused"), x, y."""
        n, modalities = len(self.post_ids), self.params.modalities
        return pd.DataFrame({"post_id": np.tile(self.post_ids, len(modalities)),
                             "modality": np.repeat(modalities, n), "x": self.coords[:, 0], "y": self.coords[:, 1]})


# --- sampling and fitting ------------------------------------------------------------------------

def stratified_sample(labels, n: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices of `n` posts with the label proportions of the whole set (all rows
    when there are no more than `n`)."""
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if n >= len(labels):
        return rows
    try:
        picked, _ = train_test_split(rows, train_size=n, stratify=labels, random_state=seed)
    except ValueError:  # a class with a single post cannot be stratified: fall back to uniform
        picked = np.random.default_rng(seed).choice(rows, n, replace=False)
    return np.sort(picked)


def embedding_points(text_emb, image_emb) -> np.ndarray:
    """(2n, d): normalised image embeddings stacked over the normalised text embeddings."""
    points = np.concatenate([image_emb, text_emb]).astype(np.float64)
    return points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)


def fit_pca(points: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """2-d PCA coordinates and the linear map (W, b) with coords = points @ W + b."""
    pca = PCA(n_components=2, svd_solver="full").fit(points)
    weights = pca.components_.T
    bias = -pca.mean_ @ weights
    return points @ weights + bias, (weights, bias)


def fit_umap(points: np.ndarray, params: LayoutParams, progress: Progress | None = None) -> np.ndarray:
    """2-d UMAP coordinates (euclidean on normalised vectors = cosine ordering).

    The exact nearest neighbours come from scikit-learn and are handed to umap: its own search
    is numba code compiled afresh in every process (about 10 s of a first map here), and for a
    few thousand points an exact search is what it does anyway."""
    _report(progress, 0.05, "loading umap (numba compiles once, then it is cached)")
    import umap
    from sklearn.neighbors import NearestNeighbors

    _report(progress, 0.15, f"UMAP of {len(points)} points: neighbours and layout")
    k = min(params.n_neighbors, len(points) - 1)
    distances, indices = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(points)  # self first
    # seeded, so a layout is reproducible (umap then runs single-threaded; 1000 posts still fit the budget)
    reducer = umap.UMAP(n_neighbors=k, min_dist=params.min_dist, random_state=params.seed, n_jobs=1,
                        init="pca" if len(points) < 10 else "spectral", precomputed_knn=(indices, distances, None))
    with warnings.catch_warnings():  # new posts are placed by `place_post`, never by umap's transform
        warnings.filterwarnings("ignore", message="precomputed_knn.*transform", category=UserWarning)
        return reducer.fit_transform(points).astype(np.float64)


def _report(progress: Progress | None, fraction: float, message: str):
    if progress is not None:
        progress(fraction, message)


def space_points(arrays: dict, rows, space: str) -> np.ndarray:
    """The points of posts `rows` in a space: stacked normalised ITC embeddings, or fused vectors."""
    if space == "fused":
        return np.asarray(arrays["fused"][rows], dtype=np.float64)
    return embedding_points(arrays["text_emb"][rows], arrays["image_emb"][rows])


def compute_layout(text_emb, image_emb, post_ids, params: LayoutParams,
                   progress: Progress | None = None) -> Layout:
    """A fresh layout of these posts' ITC embeddings (no cache)."""
    return fit_layout(embedding_points(text_emb, image_emb), post_ids, params, progress)


def fit_layout(points: np.ndarray, post_ids, params: LayoutParams, progress: Progress | None = None) -> Layout:
    """A fresh layout of `points` (from `space_points`) of these posts (no cache)."""
    if params.method == "pca":
        coords, linear = fit_pca(points)
    else:
        coords, linear = fit_umap(points, params, progress), None
    _report(progress, 1.0, "layout ready")
    return Layout(np.asarray(post_ids).astype(str), coords, points, params, linear)


def checkpoint_layout(folder: str | Path, params: LayoutParams, progress: Progress | None = None) -> Layout:
    """The layout of a checkpoint's test posts, from the disk cache when this exact content
    (test outputs file) and these parameters were laid out before."""
    frame, arrays = read_outputs(folder)
    rows = stratified_sample(frame["label_index"], params.n_posts, params.seed)
    post_ids = frame["post_id"].astype(str).to_numpy()[rows]
    points = space_points(arrays, rows, params.space)
    key = _layout_key(folder, params)
    shipped = shipped_layouts(folder).get(key) if params.method == "umap" else None  # PCA is instant
    if shipped is not None and len(shipped) == len(points):
        return Layout(post_ids, shipped.astype(np.float64), points, params)

    def compute():
        layout = fit_layout(points, post_ids, params, progress)
        linear = {} if layout.linear is None else {"weights": layout.linear[0], "bias": layout.linear[1]}
        return {"coords": layout.coords, **linear}

    stored = cached_arrays("layouts", key, compute)
    linear = (stored["weights"], stored["bias"]) if "weights" in stored else None
    return Layout(post_ids, stored["coords"], points, params, linear)


def is_cached(folder: str | Path, params: LayoutParams) -> bool:
    """Whether `checkpoint_layout` would be instant (for the page to decide on a progress display)."""
    key = _layout_key(folder, params)
    return key in shipped_layouts(folder) or cache_path("layouts", key).is_file()


def shipped_layouts(folder: str | Path) -> dict[str, np.ndarray]:
    """The layouts stored in the checkpoint folder, by layout key ({} when there are none or the
    file is unreadable: the map is then fitted as for any new checkpoint)."""
    path = Path(folder) / SHIPPED_LAYOUTS
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _read_layouts(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _read_layouts(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    """Read once per file version (a page asks `is_cached`, then `checkpoint_layout`)."""
    return read_npz(Path(path)) or {}


def default_layouts(folder: str | Path) -> list[LayoutParams]:
    """The maps the Embeddings page opens with: UMAP of every space the checkpoint trained."""
    from mmaux.analysis.spaces import checkpoint_spaces

    trained = ("fused", "itc") if checkpoint_spaces(folder).itc else ("fused",)
    return [LayoutParams(method="umap", space=space) for space in trained]


def store_layouts(folder: str | Path, params: list[LayoutParams] | None = None) -> Path:
    """Fit the UMAP layouts `params` (default: `default_layouts`) and write their coordinates
    (float32) into the checkpoint folder, so the dashboard opens them at once wherever the folder
    is copied."""
    folder = Path(folder)
    if any(p.method != "umap" for p in params or ()):
        raise ValueError("only UMAP layouts are stored in a checkpoint (PCA is computed in milliseconds)")
    coords = {_layout_key(folder, p): checkpoint_layout(folder, p).coords.astype(np.float32)
              for p in params or default_layouts(folder)}
    return write_atomically(folder / SHIPPED_LAYOUTS, lambda tmp: np.savez_compressed(tmp, **coords))


def _layout_key(folder, params: LayoutParams) -> str:
    return content_key(checkpoint_key(folder, OUTPUTS), asdict(params), LAYOUT_VERSION)


# --- making layouts comparable and placing new posts ---------------------------------------------

def _point_keys(layout: Layout) -> np.ndarray:
    modalities = layout.params.modalities
    return np.char.add(np.repeat(np.array(modalities), len(layout.post_ids)), np.tile(layout.post_ids, len(modalities)))


def align_to(layout: Layout, reference: Layout) -> Layout:
    """`layout` rotated/reflected, scaled and shifted to best match `reference` over the points
    (post × modality) both contain (Procrustes). Its own shape is unchanged."""
    keys, ref_keys = _point_keys(layout), _point_keys(reference)
    shared, mine, theirs = np.intersect1d(keys, ref_keys, return_indices=True)
    if len(shared) < 3:
        return layout
    source, target = layout.coords[mine], reference.coords[theirs]
    mu_s, mu_t = source.mean(0), target.mean(0)
    rotation, singular_sum = orthogonal_procrustes(source - mu_s, target - mu_t)
    scale = singular_sum / max(np.sum((source - mu_s) ** 2), 1e-12)

    def move(xy):
        return (xy - mu_s) @ rotation * scale + mu_t

    linear = None
    if layout.linear is not None:
        weights, bias = layout.linear
        linear = (weights @ rotation * scale, move(bias))
    return replace(layout, coords=move(layout.coords), linear=linear)


def place_post(layout: Layout, text_emb, image_emb) -> np.ndarray:
    """(2, 2) coordinates of a new post's image and text in `layout`: the exact linear map for
    PCA, otherwise the similarity-weighted mean of the nearest reference points (see module
    docstring for why no UMAP reducer is stored). ITC-space layouts only."""
    if layout.params.space != "itc":
        raise ValueError("a new post's image and text can be placed only into an ITC-space layout")
    points = embedding_points(np.atleast_2d(text_emb), np.atleast_2d(image_emb))
    if layout.linear is not None:
        weights, bias = layout.linear
        return points @ weights + bias
    sim = cosine_matrix(points, layout.points)
    k = min(PLACE_NEIGHBOURS, sim.shape[1])
    nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(sim, nearest, axis=1) / 0.05)  # sharper than a plain mean
    weights /= weights.sum(1, keepdims=True)
    return np.einsum("pk,pkc->pc", weights, layout.coords[nearest])


def placement_frame(layout: Layout, text_emb, image_emb, post_id: str) -> pd.DataFrame:
    """`layout.frame()` with one new post's image and text added (rows post_id, modality, x, y),
    placed by `place_post`: how a dashboard shows where an uploaded post lands."""
    coords = place_post(layout, text_emb, image_emb)  # (2, 2): image, then text
    new = pd.DataFrame({"post_id": post_id, "modality": MODALITIES, "x": coords[:, 0], "y": coords[:, 1]})
    return pd.concat([layout.frame(), new], ignore_index=True)


def available_layout(folder: str | Path, n_posts: int = 1000, space: str = "itc") -> Layout:
    """The checkpoint's UMAP layout when one is cached, else its PCA layout (computed at once):
    what to place a new post into without making anyone wait for UMAP."""
    umap = LayoutParams(method="umap", n_posts=n_posts, space=space)
    pca = LayoutParams(method="pca", n_posts=n_posts, space=space)
    return checkpoint_layout(folder, umap if is_cached(folder, umap) else pca)


# --- numbers beside the maps ---------------------------------------------------------------------

def space_summary(text_emb, image_emb) -> dict[str, float]:
    """Modality gap and the mean cosine of true vs randomly re-paired image-text pairs."""
    true, shuffled = mean_pair_cosine(text_emb, image_emb)
    return {"modality gap": modality_gap(text_emb, image_emb), "true-pair cosine": true,
            "random-pair cosine": shuffled}


NEIGHBOURS = 10  # posts listed beside the map as the selected post's nearest


def nearest_posts(arrays: dict[str, np.ndarray], row: int, space: str, k: int = NEIGHBOURS) -> pd.DataFrame:
    """The `k` test posts nearest to the post at `row` in one trained space, by cosine: in the
    fused space, fused vector against fused vector; in the ITC space, the post's image against
    every post's text (the retrieval ITC trains, so its own text ranks where the space puts it).
    Columns: row (into the test table), cosine, rank (1 = nearest)."""
    if space == "fused":
        query, candidates = arrays["fused"][row:row + 1], arrays["fused"]
    else:
        query, candidates = arrays["image_emb"][row:row + 1], arrays["text_emb"]
    cosine = cosine_matrix(query, candidates)[0]
    if space == "fused":
        cosine[row] = -np.inf  # a post is not its own neighbour in one modality
    order = np.argsort(-cosine, kind="stable")[:k]
    return pd.DataFrame({"row": order, "cosine": cosine[order], "rank": np.arange(1, len(order) + 1)})


def compare_spaces(arrays_a: dict, arrays_b: dict, k: int = 10,
                   space: str = "itc") -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-post k-NN overlap and linear CKA between two checkpoints' representations of the same
    posts in the same order: the fused vectors, or the ITC image and text embeddings (compare ITC
    spaces only between checkpoints that both trained one). With fewer than k + 1 posts (a small
    test split of the user's own data) the neighbourhoods are all the other posts: k = n − 1."""
    columns = {"fused": "fused"} if space == "fused" else {m: f"{m}_emb" for m in MODALITIES}
    n_posts = len(arrays_a[next(iter(columns.values()))])
    if n_posts < 3:
        raise ValueError(f"comparing two checkpoints' neighbourhoods needs at least 3 test posts, got {n_posts}")
    k = min(k, n_posts - 1)
    per_post = pd.DataFrame({f"{m} kNN overlap": knn_overlap(arrays_a[c], arrays_b[c], k) for m, c in columns.items()})
    cka = {f"{m} CKA": linear_cka(arrays_a[c], arrays_b[c]) for m, c in columns.items()}
    return per_post, cka


# --- command line: `python -m mmaux embed` -------------------------------------------------------

def run_embed(args) -> int:
    """`mmaux embed`: fit (or read) the layouts of each checkpoint, and store them when asked."""
    from mmaux.analysis.spaces import checkpoint_spaces

    from mmaux.checkpoint import CONFIG, read_info

    methods = METHODS if args.method == "both" else (args.method,)
    folders = [f for f in args.checkpoint if not (Path(f) / CONFIG).exists() or read_info(f).has_model]
    if len(folders) < len(args.checkpoint):
        left_out = [f for f in args.checkpoint if f not in folders]
        print(f"left out (predictions only: no embeddings to lay out): {', '.join(left_out)}")
    for folder in folders:
        chosen = ("fused", "itc") if args.space == "trained" and checkpoint_spaces(folder).itc else \
            ("fused",) if args.space == "trained" else (args.space,)
        for space, method in ((s, m) for s in chosen for m in methods):
            params = LayoutParams(method, args.n_posts, args.n_neighbors, args.min_dist, args.seed, space)
            start = time.perf_counter()
            layout = checkpoint_layout(folder, params)
            print(f"{folder}: {space} {method} layout of {len(layout.post_ids)} posts "
                  f"({time.perf_counter() - start:.1f} s)")
        if args.store:
            umaps = [LayoutParams("umap", args.n_posts, args.n_neighbors, args.min_dist, args.seed, space)
                     for space in chosen]
            print(f"{folder}: stored in {store_layouts(folder, umaps)}")
    return 0
