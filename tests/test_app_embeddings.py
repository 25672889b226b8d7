"""AppTest of the Embeddings page: PCA maps and the numbers, then a (small) UMAP computed on
first view. umap-learn compiles with numba the first time in a process (~20 s; cached on disk)."""
import math

import pytest

pytestmark = pytest.mark.slow


def test_embeddings_page_draws_maps_and_numbers(open_page):
    at = open_page("pages/3_Embeddings.py", n_checkpoints=2, state={"_embed_method": "PCA"})
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    numbers = at.dataframe[0].value
    assert len(numbers) == 2
    for column in ("modality gap", "true-pair cosine", "image CKA", "mean text kNN overlap"):
        assert math.isfinite(numbers[column].dropna().iloc[0])
    assert not at.dataframe[1].value.empty  # silhouette per label


def test_embeddings_page_computes_a_umap_on_first_view(open_page):
    at = open_page("pages/3_Embeddings.py", n_checkpoints=1, state={"_embed_method": "UMAP", "_embed_posts": 100})
    assert not at.exception, at.exception
    assert any("UMAP of" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 1
