"""Attributions: the integrated-gradients completeness property (attributions add up to the
logit change from baseline to post, within the reported delta), agreement measures, and that the
shared model is left exactly as it was (no hooks, eval mode)."""
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


@pytest.fixture(scope="module")
def tiny_predictor(tiny_late_config):
    """A Predictor of a tiny late-fusion model (Predictor's interface without a checkpoint folder)."""
    torch.manual_seed(0)
    model = MultimodalClassifier(tiny_late_config(text_trainable_layers=1)).eval()
    spec = model.image_spec
    predictor = types.SimpleNamespace(model=model, tokenizer=load_tokenizer(model.cfg.text_encoder),
                                      transform=ImageTransform(spec.size, spec.mean, spec.std))
    predictor.batch = functools.partial(Predictor.batch, predictor)
    return predictor


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
    assert abs(result.token_scores.sum() - text_change) <= result.text_delta + 1e-4
    assert abs(result.image_scores.sum() - image_change) <= result.image_delta + 1e-4
    return result, text_change, image_change


def test_ig_completeness_on_a_tiny_model(tiny_predictor):
    result, _, _ = _check_completeness(tiny_predictor, _image(), TEXT)
    assert len(result.tokens) == len(result.token_scores) and result.image_scores.shape == (32, 32)


@pytest.mark.slow
def test_ig_completeness_on_a_real_checkpoint(app_runs):
    """On a trained MiniLM + EfficientNet checkpoint. The text (32 steps) also converges closely;
    the image gets 16 steps for speed, so its delta (reported on the page) is only checked to
    bound the completeness gap."""
    from mmaux.analysis.runs import load_test_table
    from mmaux.data.images import load_image

    folder = app_runs[1]["folder"].iloc[0]
    predictor = Predictor(folder)
    post = load_test_table(folder).iloc[0]
    result, text_change, _ = _check_completeness(predictor, load_image(post["image"]), post["text"])
    assert result.text_delta <= 0.1 * abs(text_change) + 0.02


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
    assert np.isnan(result.text_delta) and result.image_scores.shape == (32, 32)
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
