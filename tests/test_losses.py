"""mmaux.losses: ITC against its formula computed by hand, ITM pair sampling, class weights,
the joint loss and the loss config."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmaux.losses import (LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, LossConfig, balanced_class_weights, itc_logits, itc_loss,
                          itm_loss, joint_loss,
                          sample_itm_pairs)


def _itc(text, image, log_scale: float) -> float:
    return itc_loss(torch.tensor(text, dtype=torch.float64), torch.tensor(image, dtype=torch.float64),
                    torch.tensor(log_scale, dtype=torch.float64)).item()


def _numpy_itc(text, image, scale: float) -> float:
    """CLIP's symmetric InfoNCE written out: mean over rows and columns of -log softmax[i, i]."""
    t = np.asarray(text, dtype=float)
    v = np.asarray(image, dtype=float)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    s = scale * t @ v.T
    n = len(s)
    rows = [math.log(sum(math.exp(x) for x in s[i])) - s[i, i] for i in range(n)]
    cols = [math.log(sum(math.exp(x) for x in s[:, i])) - s[i, i] for i in range(n)]
    return (sum(rows) / n + sum(cols) / n) / 2


# --- ITC --------------------------------------------------------------------------------------

def test_itc_orthonormal_pairs_closed_form():
    # t̂ = v̂ = I, scale 1: every row and column is softmax([1, 0]) -> loss log(1 + e^-1)
    eye = [[1.0, 0.0], [0.0, 1.0]]
    assert _itc(eye, eye, 0.0) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-12)
    assert _itc(eye, eye, 0.0) == pytest.approx(0.3132616875182228, abs=1e-12)


def test_itc_equals_hand_formula_on_asymmetric_batch():
    # rows and columns differ here, so both directions of the CE must be in the mean
    text = [[1.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]
    image = [[2.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]
    for log_scale in (0.0, math.log(2.0), math.log(1 / 0.07)):
        expected = _numpy_itc(text, image, math.exp(log_scale))
        assert _itc(text, image, log_scale) == pytest.approx(expected, abs=1e-10)
    # the embeddings are L2-normalised: rescaling rows changes nothing
    scaled = [[5 * x for x in row] for row in text]
    assert _itc(scaled, image, 0.0) == pytest.approx(_itc(text, image, 0.0), abs=1e-12)


def test_itc_is_symmetric_in_text_and_image():
    g = torch.Generator().manual_seed(0)
    text, image = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    scale = torch.tensor(1.3)
    assert itc_loss(text, image, scale).item() == pytest.approx(itc_loss(image, text, scale).item(), abs=1e-6)


def test_itc_prefers_aligned_pairs():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(8, 16, generator=g)
    noisy = emb + 0.1 * torch.randn(8, 16, generator=g)
    scale = torch.tensor(math.log(1 / 0.07))
    aligned = itc_loss(emb, noisy, scale)
    shuffled = itc_loss(emb, noisy[torch.roll(torch.arange(8), 1)], scale)
    assert aligned < 0.1 < 2.0 < shuffled


def test_itc_decreases_as_the_diagonal_dominates():
    # text = I, image row j ∝ c·e_j + 1: cos is (c+1)/n on the diagonal and 1/n off it,
    # n = √((c+1)² + B-1), so ITC = log(1 + (B-1)·exp(-s·c/n)), decreasing in c.
    b, s = 5, 10.0
    text = np.eye(b)
    losses = []
    for c in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0):
        image = c * np.eye(b) + 1.0
        n = math.sqrt((c + 1) ** 2 + b - 1)
        loss = _itc(text, image, math.log(s))
        assert loss == pytest.approx(math.log(1 + (b - 1) * math.exp(-s * c / n)), abs=1e-10)
        losses.append(loss)
    assert losses[0] == pytest.approx(math.log(b), abs=1e-10)  # no dominance: chance level
    assert all(a > b for a, b in zip(losses, losses[1:]))


def test_itc_clamps_the_logit_scale_at_ln_100():
    assert LOGIT_SCALE_MAX == pytest.approx(math.log(100.0))
    text = [[1.0, 0.2], [0.3, 1.0], [1.0, 1.0]]
    image = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.5]]
    at_max = _itc(text, image, math.log(100.0))
    assert at_max == pytest.approx(_numpy_itc(text, image, 100.0), abs=1e-10)
    assert _itc(text, image, math.log(100.0) + 3.0) == pytest.approx(at_max, abs=1e-12)
    assert _itc(text, image, math.log(50.0)) != pytest.approx(at_max, abs=1e-6)


# --- ITM pair sampling ------------------------------------------------------------------------

def test_itm_about_half_the_pairs_are_mismatched():
    g = torch.Generator().manual_seed(0)
    labels = torch.cat([sample_itm_pairs(16, generator=g)[1] for _ in range(2000)])
    assert 0.48 <= (labels == 0).float().mean().item() <= 0.52


def test_itm_mismatched_text_never_comes_from_its_own_post():
    g = torch.Generator().manual_seed(1)
    own = torch.arange(7)
    for _ in range(300):
        text_index, labels = sample_itm_pairs(7, generator=g)
        assert torch.equal(labels, (text_index == own).long())
        assert ((text_index >= 0) & (text_index < 7)).all()
    # p_mismatch = 1: every post gets another post's text
    for _ in range(300):
        text_index, labels = sample_itm_pairs(7, p_mismatch=1.0, generator=g)
        assert (labels == 0).all() and (text_index != own).all()


def test_itm_random_negatives_are_uniform_over_the_other_posts():
    g = torch.Generator().manual_seed(2)
    b, draws = 5, 4000
    picks = torch.stack([sample_itm_pairs(b, p_mismatch=1.0, generator=g)[0] for _ in range(draws)])  # (draws, B)
    for i in range(b):
        counts = torch.bincount(picks[:, i], minlength=b).float() / draws
        assert counts[i] == 0
        others = counts[torch.arange(b) != i]
        assert torch.allclose(others, torch.full_like(others, 1 / (b - 1)), atol=0.03)


@pytest.mark.parametrize("mode", ["random", "hard"])
def test_itm_batch_of_one_is_always_a_match(mode):
    similarity = torch.ones(1, 1) if mode == "hard" else None
    for seed in range(20):
        text_index, labels = sample_itm_pairs(1, p_mismatch=1.0, similarity=similarity,
                                              generator=torch.Generator().manual_seed(seed))
        assert text_index.tolist() == [0] and labels.tolist() == [1]


@pytest.mark.parametrize("mode", ["random", "hard"])
def test_itm_seeded_generator_is_repeatable(mode):
    similarity = torch.randn(12, 12, generator=torch.Generator().manual_seed(9)) if mode == "hard" else None

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return [sample_itm_pairs(12, similarity=similarity, generator=g) for _ in range(5)]

    first, again, other = draw(3), draw(3), draw(4)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, other))


def test_itm_hard_negatives_follow_the_similarity():
    # post i's own text is the most similar (must be masked out); among the others,
    # text (i+1) mod B stands out: softmax gives it e³ / (e³ + B-2) ≈ 0.77, uniform would be 1/7
    b, draws = 8, 500
    similarity = 10.0 * torch.eye(b) + 3.0 * torch.roll(torch.eye(b), 1, dims=1)
    g = torch.Generator().manual_seed(5)
    picks = torch.stack([sample_itm_pairs(b, p_mismatch=1.0, similarity=similarity, generator=g)[0]
                         for _ in range(draws)])
    own, nearest = torch.arange(b), (torch.arange(b) + 1) % b
    assert (picks != own).all()
    share = (picks == nearest).float().mean().item()
    expected = math.exp(3) / (math.exp(3) + b - 2)
    assert share == pytest.approx(expected, abs=0.03)
    assert share > 4 / (b - 1)


def test_itm_loss_is_cross_entropy_on_match_labels():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    labels = torch.tensor([1, 0])
    # -log softmax: log(1 + e^-2) for both rows
    assert itm_loss(logits, labels).item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)


# --- class weights ----------------------------------------------------------------------------

def test_balanced_class_weights_match_sklearn_formula():
    # n / (K · count_k) over the K = 3 present classes, n = 6; class 3 is absent -> 1
    labels = np.array([0, 0, 0, 1, 2, 2])
    weights = balanced_class_weights(labels, num_classes=4)
    assert weights.dtype == torch.float32
    assert weights.tolist() == pytest.approx([6 / 9, 6 / 3, 6 / 6, 1.0])


def test_balanced_class_weights_on_balanced_labels_are_one():
    assert balanced_class_weights(np.array([1, 0, 1, 0]), 2).tolist() == [1.0, 1.0]


# --- joint loss and its config ----------------------------------------------------------------

@pytest.mark.parametrize("itc, itm, expected", [
    (False, False, 1.0),  # CE only
    (True, False, 0.9 * 1.0 + 0.1 * 2.0),
    (False, True, 0.9 * 1.0 + 0.1 * 3.0),
    (True, True, 0.8 * 1.0 + 0.1 * 2.0 + 0.1 * 3.0),
])
def test_joint_loss_is_the_weighted_sum_of_enabled_losses(itc, itm, expected):
    cfg = LossConfig(itc=itc, itm=itm)
    total = joint_loss(cfg, torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0))
    assert total.item() == pytest.approx(expected, abs=1e-6)


def test_joint_loss_with_custom_betas_and_missing_disabled_terms():
    cfg = LossConfig(itc=True, itm=True, beta_itc=0.2, beta_itm=0.3)
    assert cfg.ce_weight == pytest.approx(0.5)
    total = joint_loss(cfg, torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0))
    assert total.item() == pytest.approx(0.5 * 1 + 0.2 * 2 + 0.3 * 3, abs=1e-6)
    only_itc = LossConfig(itc=True, beta_itc=0.25, beta_itm=0.5)  # β of a disabled loss is not counted
    assert joint_loss(only_itc, torch.tensor(1.0), torch.tensor(2.0), None).item() == pytest.approx(0.75 + 0.5)


@pytest.mark.parametrize("aux, itc, itm, variant", [
    ("none", False, False, "CE"),
    ("", False, False, "CE"),
    ("itc", True, False, "CE+ITC"),
    ("itm", False, True, "CE+ITM"),
    ("itc,itm", True, True, "CE+ITC+ITM"),
    (" ITM , itc ", True, True, "CE+ITC+ITM"),
])
def test_loss_config_from_aux(aux, itc, itm, variant):
    cfg = LossConfig.from_aux(aux)
    assert (cfg.itc, cfg.itm, cfg.variant) == (itc, itm, variant)


def test_loss_config_from_aux_passes_options_and_rejects_unknown_names():
    cfg = LossConfig.from_aux("itc,itm", beta_itc=0.2, itm_negatives="hard")
    assert (cfg.beta_itc, cfg.itm_negatives) == (0.2, "hard")
    with pytest.raises(ValueError, match="mlm"):
        LossConfig.from_aux("itc,mlm")


@pytest.mark.parametrize("kwargs, field", [
    (dict(itm_negatives="bogus"), "itm_negatives"),
    (dict(beta_itc=1.0), "beta_itc"),
    (dict(beta_itc=-0.1), "beta_itc"),
    (dict(beta_itm=1.5), "beta_itm"),
    (dict(itc=True, itm=True, beta_itc=0.6, beta_itm=0.5), r"beta_itc \+ beta_itm"),
])
def test_loss_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LossConfig(**kwargs)


def test_loss_config_betas_of_disabled_losses_may_sum_past_one():
    assert LossConfig(itc=True, beta_itc=0.6, beta_itm=0.5).ce_weight == pytest.approx(0.4)


def _perplexity(weights: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each row: the effective number of candidates a sampler picks from."""
    p = weights / weights.sum(1, keepdim=True)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-30))).sum(1))


def test_hard_negatives_by_itc_logits_are_hard_and_raw_cosines_are_not():
    """Hard ITM negatives come from softmax(ITC logits) = softmax(cos / temperature): with the
    initial temperature 0.07 the sampler concentrates on a few similar texts (measured from the
    draws); softmax over raw cosines would be almost uniform over the 31 other posts."""
    b = 32
    g = torch.Generator().manual_seed(0)
    image = torch.randn(b, 16, generator=g)
    text = image + 0.5 * torch.randn(b, 16, generator=g)
    off_diagonal = 1 - torch.eye(b)
    logits = itc_logits(image, text, torch.tensor(LOGIT_SCALE_INIT))
    cosine = F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
    assert torch.allclose(logits, cosine / 0.07, atol=1e-4)
    raw = _perplexity(torch.softmax(cosine, 1) * off_diagonal).mean()
    assert raw > 28
    draws = torch.stack([sample_itm_pairs(b, 1.0, logits, g)[0] for _ in range(3000)])  # (draws, B)
    counts = torch.stack([torch.bincount(draws[:, i], minlength=b) for i in range(b)]).float()
    measured = _perplexity(counts + 1e-9).mean()
    expected = _perplexity(torch.softmax(logits, 1) * off_diagonal).mean()
    assert measured < 8 and measured == pytest.approx(expected.item(), rel=0.15)
