"""Layouts of the embedding space: known answers for PCA, alignment, sampling, caching and
placing a new post. UMAP runs once on a tiny set (numba compiles it the first time, ~20 s)."""
import numpy as np
import pandas as pd
import pytest

from mmaux.analysis import embeddings
from mmaux.analysis.embeddings import Layout, LayoutParams
from mmaux.checkpoint import OUTPUTS, read_outputs, write_outputs
from mmaux.cli import main


@pytest.fixture
def outputs_folder(tmp_path, monkeypatch):
    """A folder holding only test outputs: 60 posts of 3 labels with clustered embeddings."""
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [30, 20, 10])
    centres = rng.normal(size=(3, 8)) * 3
    text = centres[labels] + rng.normal(size=(60, 8))
    image = centres[labels] + rng.normal(size=(60, 8)) + 2
    fused = centres[labels] * 2 + rng.normal(size=(60, 8))
    frame = pd.DataFrame({"post_id": [f"p{i}" for i in range(60)], "label_index": labels})
    write_outputs(tmp_path / OUTPUTS, frame, {"text_emb": text, "image_emb": image, "fused": fused})
    return tmp_path


def test_pca_of_points_on_a_known_plane():
    rng = np.random.default_rng(0)
    u, v = np.array([1.0, 1, 0, 0]) / np.sqrt(2), np.array([0.0, 0, 1, 0])
    t, s = np.linspace(-3, 3, 50), rng.normal(scale=0.3, size=50)
    s -= s.mean() + (s @ t) / (t @ t) * t  # uncorrelated with t: u and v are then the principal axes
    points = np.outer(t, u) + np.outer(s, v) + 5.0
    coords, (weights, bias) = embeddings.fit_pca(points)
    np.testing.assert_allclose(np.abs(coords[:, 0]), np.abs(t), atol=1e-9)
    np.testing.assert_allclose(np.abs(coords[:, 1]), np.abs(s), atol=1e-9)
    np.testing.assert_allclose(points @ weights + bias, coords, atol=1e-9)


def _layout(coords, linear=None) -> Layout:
    n = len(coords) // 2
    return Layout(np.array([f"p{i}" for i in range(n)]), coords, np.eye(len(coords)), LayoutParams("pca"), linear)


def test_a_rotated_scaled_shifted_copy_aligns_back_exactly():
    rng = np.random.default_rng(1)
    reference = _layout(rng.normal(size=(20, 2)))
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    weights, shift = reference.coords @ rotation * 3.0, np.array([5.0, -2.0])
    moved = _layout(weights + shift, linear=(weights, shift))  # points are the unit vectors: coords = W + b
    aligned = embeddings.align_to(moved, reference)
    np.testing.assert_allclose(aligned.coords, reference.coords, atol=1e-9)
    # the linear map follows, so a placed post lands where the aligned layout has it
    np.testing.assert_allclose(embeddings.place_post(aligned, np.eye(20)[10:11], np.eye(20)[0:1]),
                               aligned.coords[[0, 10]], atol=1e-9)


def test_stratified_sample_keeps_label_proportions():
    labels = np.repeat(["a", "b", "c"], [600, 300, 100])
    rows = embeddings.stratified_sample(labels, 100, seed=3)
    assert len(rows) == 100 and len(set(rows)) == 100 and np.all(np.diff(rows) > 0)
    assert pd.Series(labels[rows]).value_counts().to_dict() == {"a": 60, "b": 30, "c": 10}
    assert rows.max() > 900  # not "the first N"
    np.testing.assert_array_equal(embeddings.stratified_sample(labels[:50], 100), np.arange(50))


def test_layout_is_cached_by_content_and_parameters(outputs_folder, monkeypatch):
    params = LayoutParams("pca", n_posts=45)
    first = embeddings.checkpoint_layout(outputs_folder, params)
    assert embeddings.is_cached(outputs_folder, params)
    monkeypatch.setattr(embeddings, "fit_pca", lambda points: pytest.fail("recomputed despite the cache"))
    again = embeddings.checkpoint_layout(outputs_folder, params)
    np.testing.assert_array_equal(again.coords, first.coords)
    np.testing.assert_array_equal(again.post_ids, first.post_ids)
    assert len(first.post_ids) == 45 and first.coords.shape == (90, 2)
    assert not embeddings.is_cached(outputs_folder, LayoutParams("pca", n_posts=40))


def test_pca_placement_of_a_test_post_is_exact(outputs_folder):
    from mmaux.checkpoint import read_outputs

    layout = embeddings.checkpoint_layout(outputs_folder, LayoutParams("pca"))
    _, arrays = read_outputs(outputs_folder)
    placed = embeddings.place_post(layout, arrays["text_emb"][7], arrays["image_emb"][7])
    np.testing.assert_allclose(placed, layout.coords[[7, 60 + 7]], atol=1e-6)


def test_placement_frame_adds_the_new_post_where_place_post_puts_it(outputs_folder):
    from mmaux.checkpoint import read_outputs

    layout = embeddings.available_layout(outputs_folder)  # no UMAP cached here: the PCA map
    _, arrays = read_outputs(outputs_folder)
    frame = embeddings.placement_frame(layout, arrays["text_emb"][3], arrays["image_emb"][3], "mine")
    assert layout.params.method == "pca" and len(frame) == 2 * len(layout.post_ids) + 2
    mine = frame[frame["post_id"] == "mine"].set_index("modality")[["x", "y"]]
    np.testing.assert_allclose(mine.loc[["image", "text"]].to_numpy(),
                               embeddings.place_post(layout, arrays["text_emb"][3], arrays["image_emb"][3]))


def test_knn_placement_lands_next_to_a_duplicate_point():
    rng = np.random.default_rng(2)
    points = embeddings.embedding_points(rng.normal(size=(30, 16)), rng.normal(size=(30, 16)))
    layout = Layout(np.array([f"p{i}" for i in range(30)]), rng.uniform(-10, 10, size=(60, 2)), points,
                    LayoutParams("umap"))
    placed = embeddings.place_post(layout, points[35], points[4])
    np.testing.assert_allclose(placed, layout.coords[[4, 35]], atol=0.05)


@pytest.mark.slow
def test_umap_layout_and_the_embed_command(outputs_folder, capsys):
    assert main(["embed", "--checkpoint", str(outputs_folder), "--method", "umap", "--n-neighbors", "5",
                 "--space", "itc"]) == 0
    assert "itc umap layout of 60 posts" in capsys.readouterr().out
    params = LayoutParams("umap", n_neighbors=5)
    assert embeddings.is_cached(outputs_folder, params)
    layout = embeddings.checkpoint_layout(outputs_folder, params)
    assert layout.coords.shape == (120, 2) and np.isfinite(layout.coords).all()


@pytest.mark.slow
def test_stored_layouts_travel_with_the_checkpoint_and_never_go_stale(outputs_folder, monkeypatch, tmp_path, capsys):
    assert main(["embed", "--checkpoint", str(outputs_folder), "--method", "umap", "--n-neighbors", "5",
                 "--space", "itc", "--store"]) == 0
    assert f"stored in {outputs_folder / embeddings.SHIPPED_LAYOUTS}" in capsys.readouterr().out
    params = LayoutParams("umap", n_neighbors=5)
    fitted = embeddings.checkpoint_layout(outputs_folder, params)
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "fresh-clone-cache"))  # as on a fresh clone
    assert embeddings.is_cached(outputs_folder, params)
    monkeypatch.setattr(embeddings, "fit_umap", lambda *a, **k: pytest.fail("fitted despite the stored layout"))
    shipped = embeddings.checkpoint_layout(outputs_folder, params)
    np.testing.assert_allclose(shipped.coords, fitted.coords, rtol=1e-6)
    np.testing.assert_array_equal(shipped.post_ids, fitted.post_ids)
    # retrained: other test outputs, so the stored key no longer matches and the map is fitted anew
    frame, arrays = read_outputs(outputs_folder)
    write_outputs(outputs_folder / OUTPUTS, frame, {**arrays, "text_emb": arrays["text_emb"] + 1})
    assert not embeddings.is_cached(outputs_folder, params)
    with pytest.raises(pytest.fail.Exception, match="fitted despite"):
        embeddings.checkpoint_layout(outputs_folder, params)
    with pytest.raises(ValueError, match="only UMAP"):
        embeddings.store_layouts(outputs_folder, [LayoutParams("pca")])


def test_the_fused_space_has_one_point_per_post_and_its_own_comparisons(outputs_folder):
    params = LayoutParams("pca", n_posts=45, space="fused")
    layout = embeddings.checkpoint_layout(outputs_folder, params)
    frame = layout.frame()
    assert len(frame) == 45 and set(frame["modality"]) == {"fused"} and layout.points.shape == (45, 8)
    assert not embeddings.is_cached(outputs_folder, LayoutParams("pca", n_posts=45))  # the ITC space is apart
    itc = embeddings.checkpoint_layout(outputs_folder, LayoutParams("pca", n_posts=45))
    assert embeddings.align_to(layout, layout).coords.shape == (45, 2)
    with pytest.raises(ValueError, match="ITC-space layout"):
        embeddings.place_post(layout, np.ones(8), np.ones(8))
    assert len(itc.frame()) == 90
    from mmaux.checkpoint import read_outputs

    arrays = read_outputs(outputs_folder)[1]
    per_post, cka = embeddings.compare_spaces(arrays, arrays, k=5, space="fused")
    assert list(per_post.columns) == ["fused kNN overlap"] and cka == {"fused CKA": pytest.approx(1.0)}
    few = {"fused": arrays["fused"][:5]}  # fewer test posts than k + 1: every other post is a neighbour
    per_post, _ = embeddings.compare_spaces(few, {"fused": -few["fused"]}, space="fused")
    np.testing.assert_array_equal(per_post["fused kNN overlap"], np.ones(5))
    with pytest.raises(ValueError, match="at least 3 test posts"):
        embeddings.compare_spaces({"fused": few["fused"][:2]}, {"fused": few["fused"][:2]}, space="fused")
    with pytest.raises(ValueError, match="space"):
        LayoutParams("pca", space="aligned")


def test_the_highlighted_post_is_drawn_large_with_its_modality_symbols(outputs_folder):
    from mmaux import figures

    layout = embeddings.checkpoint_layout(outputs_folder, LayoutParams("pca"))
    frame = layout.frame().assign(label="a")
    fig = figures.embedding_maps({"one": frame, "two": frame}, "label", lines=False, highlight="p7")
    marked = [t for t in fig.data if t.mode == "markers+lines"]
    assert len(marked) == 2  # one per panel, drawn after (on top of) the other points
    assert list(marked[0].marker.symbol) == ["circle", "x"] and list(marked[0].customdata) == ["image", "text"]
    others = {t.marker.size for t in fig.data if t.mode == "markers"}
    assert marked[0].marker.size == figures.HIGHLIGHT_SIZE >= 3 * max(others)


def test_a_box_selection_is_marked_in_every_panel(outputs_folder):
    from mmaux import figures

    frame = embeddings.checkpoint_layout(outputs_folder, LayoutParams("pca")).frame().assign(label="a")
    picked = list(frame["post_id"].unique()[:3])
    fig = figures.embedding_maps({"one": frame, "two": frame}, "label", lines=False, highlight=None, picked=picked)
    points = [t for t in fig.data if t.mode == "markers"]
    assert {t.xaxis for t in points} == {"x", "x2"}  # both panels
    for trace in points:
        assert {trace.customdata[i] for i in trace.selectedpoints} == set(picked) & set(trace.customdata)
        assert trace.unselected.marker.opacity < 1
    plain = figures.embedding_maps({"one": frame}, "label", lines=False, highlight=None)
    assert all(t.selectedpoints is None for t in plain.data)


def test_nearest_posts_by_cosine_in_each_space():
    """Fused: the other posts by cosine of their fused vectors (never the post itself); ITC: every
    post's text against this post's image, its own text included."""
    fused = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    arrays = {"fused": fused, "image_emb": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, -1.0]]),
              "text_emb": np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.2], [-1.0, 0.0]])}
    near = embeddings.nearest_posts(arrays, 0, "fused", k=2)
    assert list(near["row"]) == [1, 2] and list(near["rank"]) == [1, 2]
    assert near["cosine"].iloc[0] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    near = embeddings.nearest_posts(arrays, 0, "itc", k=3)
    assert list(near["row"]) == [1, 2, 0]  # texts nearest image 0: text 1 (same direction), text 2, then its own
    assert near["cosine"].iloc[0] == pytest.approx(1.0)
