"""Match scores of image × text pairs: the fused-pairs shortcut must give exactly what a full
forward pass of the re-paired posts gives, and the diagonal what the model says of its own pairs."""
import numpy as np
import pytest
import torch

from mmaux.analysis import matching
from mmaux.analysis.alignment import cosine_matrix
from mmaux.model import MultimodalClassifier

N = 5


@pytest.fixture(params=["attention", "concat", "mmbt"])
def model_and_batch(request, tiny_late_config, tiny_bert, make_batch):
    torch.manual_seed(0)
    cfg = tiny_late_config(request.param, text_trainable_layers=1)  # a frozen bottom layer, as shipped
    batch, _ = make_batch(tiny_bert, 32, n=N, max_length=12)
    return MultimodalClassifier(cfg).eval(), batch


def test_diagonal_is_each_posts_own_itm_match(model_and_batch):
    model, batch = model_and_batch
    scores = matching.match_matrix(model, batch)
    with torch.no_grad():
        own = model(batch).itm_match.numpy()
    assert scores.kind == "itm" and scores.values.shape == (N, N)
    np.testing.assert_allclose(np.diag(scores.values), own, atol=1e-6)
    assert np.ptp(scores.values) > 0  # pairs are told apart, not one constant


def test_fused_pairs_equal_a_forward_pass_of_the_re_paired_posts(model_and_batch):
    model, batch = model_and_batch
    images, texts = torch.tensor([0, 3, 4, 1]), torch.tensor([2, 3, 0, 4])
    scores = matching.pair_scores(model, batch, images, texts)
    with torch.no_grad():
        reencoded = model(batch.pair(images, texts)).itm_match.numpy()
    np.testing.assert_allclose(scores.values, reencoded, atol=1e-6)


def test_without_itm_head_scores_are_itc_cosines(tiny_late_config, tiny_bert, make_batch):
    model = MultimodalClassifier(tiny_late_config(itm=False)).eval()
    batch, _ = make_batch(tiny_bert, 32, n=N)
    scores = matching.match_matrix(model, batch)
    with torch.no_grad():
        out = model(batch)
    assert scores.kind == "itc" and "trained ITC space" in scores.label
    np.testing.assert_allclose(np.diag(scores.values), out.itc_cosine.numpy(), atol=1e-6)


def test_a_ce_only_checkpoint_has_no_match_score(tiny_late_config, tiny_bert, make_batch):
    model = MultimodalClassifier(tiny_late_config(itc=False, itm=False)).eval()
    batch, _ = make_batch(tiny_bert, 32, n=N)
    assert matching.score_kind(model) is None
    with pytest.raises(ValueError, match="no match score"):
        matching.match_matrix(model, batch)


@pytest.mark.parametrize("architecture", ["attention", "mmbt"])
def test_cross_pair_similarity_runs_every_pair_as_one_post(architecture, tiny_late_config, tiny_bert, make_batch):
    """Late fusion: the cosine matrix of the posts' own embeddings. Early fusion: each text is
    embedded after seeing the image it is paired with, so only the diagonal is the own-pair cosine."""
    torch.manual_seed(0)
    model = MultimodalClassifier(tiny_late_config(architecture, text_trainable_layers=1)).eval()
    batch, _ = make_batch(tiny_bert, 32, n=N, max_length=12)
    sim = matching.cross_pair_similarity(model, batch)
    with torch.no_grad():
        out = model(batch)
    np.testing.assert_allclose(np.diag(sim), out.itc_cosine.numpy(), atol=1e-5)
    own = cosine_matrix(out.image_emb.numpy(), out.text_emb.numpy())
    if architecture == "attention":
        np.testing.assert_allclose(sim, own, atol=1e-5)
    else:
        assert not np.allclose(sim, own, atol=1e-3)


def test_similar_texts_rank_by_cosine_and_skip_the_post_itself():
    text_emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.5, 0.5]], dtype=float)
    most, least = matching.similar_texts(text_emb, 0, 2)
    assert list(most) == [1, 4] and list(least) == [3, 2]


def test_itc_true_and_shuffled_from_stored_embeddings():
    emb = np.eye(4)
    true, shuffled = matching.itc_true_and_shuffled(emb, emb, seed=1)
    np.testing.assert_allclose(true.values, 1.0)
    np.testing.assert_allclose(shuffled.values, 0.0)  # never the post's own text


def test_true_and_shuffled_batches_agree_with_own_pairs(model_and_batch):
    model, batch = model_and_batch

    class Inputs:  # PostInputs' interface over a ready batch
        def __len__(self):
            return N

        def batch(self, rows):
            return batch.pair(torch.as_tensor(list(rows)), torch.as_tensor(list(rows)))

    true, shuffled = matching.true_and_shuffled(model, Inputs(), batch_size=3)
    with torch.no_grad():
        np.testing.assert_allclose(true.values, model(batch).itm_match.numpy(), atol=1e-6)
    assert shuffled.values.shape == (N,) and not np.allclose(shuffled.values, true.values)
