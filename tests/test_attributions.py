"""Attributions: the integrated-gradients completeness property (attributions add up to the
logit change from baseline to post, within the reported delta), the step ladder that stops at the
tolerance, agreement measures, and that the shared model is left exactly as it was (no hooks,
eval mode)."""
import functools
import types

import numpy as np
import pytest
import torch
from PIL import Image

from mmaux.analysis import attributions
from mmaux.data.images import ImageTransform
from mmaux.encoders import load_tokenizer
from mmaux.model import MultimodalClassifier
from mmaux.predict import Predictor

TEXT = "love this cat photo !"


def _image(size=32, seed=0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _predictor(model):
    """Predictor's interface over `model` without a checkpoint folder: its tokenizer, transform,
    and Predictor's own batch and model_texts."""
    spec = model.image_spec
    predictor = types.SimpleNamespace(model=model, tokenizer=load_tokenizer(model.cfg.text_encoder),
                                      transform=ImageTransform(spec.size, spec.mean, spec.std))
    predictor.batch = functools.partial(Predictor.batch, predictor)
    predictor.model_texts = functools.partial(Predictor.model_texts, predictor)
    return predictor


@pytest.fixture(scope="module")
def tiny_predictor(tiny_late_config):
    """A Predictor of a tiny late-fusion model (Predictor's interface without a checkpoint folder)."""
    torch.manual_seed(0)
    model = MultimodalClassifier(tiny_late_config(text_trainable_layers=1)).eval()
    return _predictor(model)


def _logit_change(predictor, batch, target, text_base=None, pixel_base=None) -> float:
    """F(post) − F(post with the text or the image at its baseline), by plain forward passes."""
    forward = attributions.PostForward(predictor.model, batch)
    with torch.no_grad():
        if text_base is not None:
            full, base = forward.from_token_ids(batch.input_ids), forward.from_token_ids(text_base)
        else:
            full, base = forward.from_pixels(batch.pixel_values), forward.from_pixels(pixel_base)
    return float(full[0, target] - base[0, target])


def _check_completeness(predictor, image, text):
    result = attributions.attribute_post(predictor, image, text)
    batch = predictor.batch([image], [text])
    text_change = _logit_change(predictor, batch, result.target,
                                text_base=attributions.text_baseline(batch.input_ids, predictor.tokenizer))
    image_change = _logit_change(predictor, batch, result.target, pixel_base=torch.zeros_like(batch.pixel_values))
    assert result.text.gap == pytest.approx(text_change, abs=1e-4)
    assert result.image.gap == pytest.approx(image_change, abs=1e-4)
    assert abs(result.token_scores.sum() - text_change) <= result.text_delta + 1e-4
    assert abs(result.image_scores.sum() + result.image_global - image_change) <= result.image_delta + 1e-4
    return result, text_change, image_change


def test_ig_completeness_on_a_tiny_model(tiny_predictor):
    result, _, _ = _check_completeness(tiny_predictor, _image(), TEXT)
    # the tiny ViT's 32 px image has 4 × 4 patches; its CLS vector is a second image input
    assert len(result.tokens) == len(result.token_scores) and result.image_scores.shape == (4, 4)


@pytest.fixture(scope="module")
def sharp_predictor(tiny_late_config):
    """A tiny model whose classifier is scaled up, so that text and image move the logits by
    several units and the 5 % relative tolerance (not the 0.05-logit floor) is what binds."""
    torch.manual_seed(0)
    model = MultimodalClassifier(tiny_late_config(text_trainable_layers=1)).eval()
    with torch.no_grad():
        model.classifier[1].weight.mul_(200.0)
    return _predictor(model)


def test_ig_reaches_the_tolerance_on_a_small_model(sharp_predictor):
    result, text_change, image_change = _check_completeness(sharp_predictor, _image(seed=5), TEXT)
    for check, change in ((result.text, text_change), (result.image, image_change)):
        assert abs(change) > 1.0  # the relative rule binds
        assert check.converged and check.delta <= 0.05 * abs(change)
        assert check.steps in attributions.TEXT_LADDER + attributions.IMAGE_LADDER
    assert result.converged and "converged in" in result.image.describe()


def test_the_ladder_stops_at_the_first_rung_within_tolerance():
    deltas = {8: 0.5, 16: 0.2, 32: 0.04, 64: 0.001}
    tried = []

    def attribute(steps):
        tried.append(steps)
        return f"map@{steps}", torch.tensor([deltas[steps]], dtype=torch.float64)

    found, check = attributions._climb(attribute, gap=1.0, ladder=(8, 16, 32, 64))
    assert tried == [8, 16, 32] and found == "map@32"
    assert check == attributions.Convergence(32, 0.04, 1.0, True) and check.relative == pytest.approx(0.04)
    # a gap below one logit: the 0.05-logit floor applies
    _, floor = attributions._climb(attribute, gap=0.1, ladder=(8, 16, 32))
    assert floor.converged and floor.steps == 32


def test_a_map_that_never_converges_is_flagged_with_its_delta():
    _, check = attributions._climb(lambda steps: (None, torch.tensor([0.3])), gap=2.0, ladder=(4, 8))
    assert not check.converged and check.steps == 8 and check.delta == pytest.approx(0.3)
    assert check.describe().startswith("did not converge (delta 0.300 after 8 steps)")


def test_maps_of_any_resolution_go_onto_one_grid():
    cells = np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(attributions.on_grid(cells, 4), np.kron(cells, np.ones((2, 2))))
    np.testing.assert_array_equal(attributions.on_grid(np.ones((8, 8)), 4), np.full((4, 4), 4.0))


@pytest.mark.slow
def test_ig_completeness_on_a_real_checkpoint(app_runs):
    """On a trained MiniLM + EfficientNet checkpoint: both maps converge within the ladder."""
    from mmaux.analysis.runs import load_test_table
    from mmaux.data.images import load_image

    folder = app_runs[1]["folder"].iloc[0]
    predictor = Predictor(folder)
    post = load_test_table(folder).iloc[0]
    result, text_change, image_change = _check_completeness(predictor, load_image(post["image"]), post["text"])
    assert result.image_scores.shape == (7, 7) and result.image_global == 0.0  # EfficientNet pools by the mean
    assert result.text.delta <= attributions.tolerance(text_change)
    assert result.image.delta <= attributions.tolerance(image_change)


def test_the_shared_model_is_left_untouched(tiny_predictor):
    model = tiny_predictor.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for method in attributions.METHODS:
        attributions.attribute_post(tiny_predictor, _image(), TEXT, target=1, method=method, n_steps=(4, 4))
    assert not model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_occlusion_marks_the_occluded_window(tiny_predictor):
    result = attributions.attribute_post(tiny_predictor, _image(seed=3), TEXT, method="occlusion")
    assert np.isnan(result.text_delta) and result.image_scores.shape == (32, 32) and result.converged
    assert np.isfinite(result.token_scores).all() and np.abs(result.token_scores).sum() > 0


def test_agreement_of_maps():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 8))
    same = attributions.compare_maps(a, 2 * a, top_share=0.25)
    assert same["top-k overlap"] == 1.0 and same["rank correlation"] == pytest.approx(1.0)
    order = np.argsort(np.abs(a).ravel())
    flipped = np.empty(64)
    flipped[order] = np.arange(64)[::-1]  # largest |a| becomes the smallest
    other = attributions.compare_maps(a, flipped.reshape(8, 8), top_share=0.25)
    assert other["top-k overlap"] == 0.0 and other["rank correlation"] == pytest.approx(-1.0)


def test_pooled_map_and_token_html():
    pooled = attributions.pooled_map(np.ones((224, 224)), cells=56)
    assert pooled.shape == (56, 56) and np.all(pooled == 16)
    html = attributions.token_html(["[CLS]", "<b>", "##ad", "[SEP]"], np.array([0.0, 1.0, -0.5, 0.0]))
    assert "[CLS]" not in html and "&lt;b&gt;" in html and "rgba(220,40,40,0.50)" in html
