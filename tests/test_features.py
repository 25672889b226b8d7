"""The feature cache holds exactly what the frozen encoders compute in eval mode, under a key
that changes with everything that determines the features."""
from __future__ import annotations

import pytest
import torch

from mmaux import features
from mmaux.config import ModelConfig
from mmaux.data.images import load_image
from mmaux.data.synthposts import SynthSpec, generate
from mmaux.model import MultimodalClassifier

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def posts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("posts")
    frame = generate(SynthSpec("sentiment", seed=5, n_train=0, n_val=0, n_test=6), folder)
    frame["image"] = [str(folder / p) for p in frame["image"]]
    return frame


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def model():
    """A freshly built model, in training mode, as `train` has it when it fills the cache."""
    return MultimodalClassifier(ModelConfig(num_labels=3, text_tuning="adapter", max_text_length=40))


def test_cached_image_features_equal_a_fresh_eval_mode_pass(posts, cache, model):
    assert model.training
    tokens, pooled = features.cached_image_features(model, posts["image"])
    reference = MultimodalClassifier(model.cfg).backbone.image.eval()  # nothing shared with `model`
    pixels = model.image_spec.transform().to_batch([load_image(p) for p in posts["image"]])
    with torch.no_grad():
        fresh = reference(pixels)
    torch.testing.assert_close(pooled.float(), fresh.pooled, atol=2e-3, rtol=1e-3)  # stored as float16
    torch.testing.assert_close(tokens.float(), fresh.tokens, atol=2e-3, rtol=1e-3)
    again_tokens, _ = features.cached_image_features(model, posts["image"])  # read back from disk
    assert torch.equal(again_tokens, tokens)


def test_cached_text_states_equal_a_fresh_eval_mode_pass(posts, cache, model):
    inputs = features.PostInputs(model, posts)
    text = MultimodalClassifier(model.cfg).backbone.text.eval()
    with torch.no_grad():
        fresh = text.run_layers(text.embed(inputs.input_ids), inputs.attention_mask, 0)
    mask = inputs.attention_mask.bool()
    torch.testing.assert_close(inputs.text_states.float()[mask], fresh[mask], atol=4e-3, rtol=1e-3)


def test_the_cache_key_covers_the_feature_code_version(posts, cache, model, monkeypatch):
    features.cached_image_features(model, posts["image"][:2])
    written = set((cache / "features").iterdir())
    monkeypatch.setattr(features, "FEATURE_VERSION", features.FEATURE_VERSION + 1)
    features.cached_image_features(model, posts["image"][:2])
    assert len(set((cache / "features").iterdir()) - written) == 1  # a new entry: the old one is never read
