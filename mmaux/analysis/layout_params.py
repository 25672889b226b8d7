"""What a 2-d map of a checkpoint's trained space is made with (`LayoutParams`) and the names it
uses, apart from the code that fits it (`mmaux.analysis.embeddings`), so that the command line
can offer them without importing scikit-learn or UMAP."""
from __future__ import annotations

from dataclasses import dataclass

METHODS = ("pca", "umap")
SPACES = ("fused", "itc")  # the classifier's input; the ITC projections (trained only with ITC)
MODALITIES = ("image", "text")  # the points of a post in the ITC space
FUSED = ("fused",)  # ... and in the fused space
SHIPPED_LAYOUTS = "layouts.npz"  # a checkpoint's own precomputed layouts (see `mmaux.analysis.embeddings`)


@dataclass(frozen=True)
class LayoutParams:
    method: str = "umap"  # "pca" or "umap"
    n_posts: int = 1000  # posts drawn (stratified by label) when the test set is larger
    n_neighbors: int = 15  # UMAP: size of the local neighbourhood
    min_dist: float = 0.1  # UMAP: how tightly points may pack
    seed: int = 0  # sampling and UMAP seed
    space: str = "itc"  # "fused" (one point per post) or "itc" (its image and its text)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"layout method must be one of {METHODS}, got {self.method!r}")
        if self.space not in SPACES:
            raise ValueError(f"layout space must be one of {SPACES}, got {self.space!r}")

    @property
    def modalities(self) -> tuple[str, ...]:
        return FUSED if self.space == "fused" else MODALITIES
