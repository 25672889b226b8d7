"""mmaux.encoders: the built-in weights are the trained ones and load offline; fingerprints are
stable; a folder that is not a BERT-family model is refused clearly."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmaux.data.images import ImageTransform
from mmaux.encoders import (BUILTIN_IMAGE, BUILTIN_TEXT, TextEncoder, _hash_files, encoder_fingerprint,
                            load_image_encoder, load_text_encoder, load_tokenizer, masked_mean)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_efficientnet_lite0_recognises_the_chelsea_cat():
    from skimage import data

    photo = Image.fromarray(data.chelsea())
    pixels = ImageTransform()(photo).unsqueeze(0)  # (1, 3, 224, 224), ImageNet normalisation
    encoder = load_image_encoder(BUILTIN_IMAGE).eval()
    with torch.no_grad():
        logits = encoder.classify(pixels)
        features = encoder(pixels)
    assert logits.argmax(-1).item() == 285  # ImageNet "Egyptian cat"
    assert features.tokens.shape == (1, 49, 1280) and features.pooled.shape == (1, 1280)


def test_minilm_pooled_vectors_rank_a_paraphrase_above_an_unrelated_sentence():
    sentences = ["A man is playing a guitar.", "Someone is strumming a guitar.", "The stock market fell sharply today."]
    tokenizer, encoder = load_tokenizer(BUILTIN_TEXT), load_text_encoder(BUILTIN_TEXT).eval()
    enc = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        features = encoder(enc["input_ids"], enc["attention_mask"])
    assert torch.allclose(features.pooled, masked_mean(features.tokens, features.mask))
    anchor, paraphrase, unrelated = F.normalize(features.pooled, dim=-1)
    assert anchor @ paraphrase > anchor @ unrelated + 0.3


def test_masked_mean_ignores_padding():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert masked_mean(tokens, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


@pytest.mark.parametrize("name", [BUILTIN_TEXT, BUILTIN_IMAGE])
def test_builtin_fingerprints_are_stable_sha256(name):
    first = encoder_fingerprint(name)
    _hash_files.cache_clear()  # recompute from the files, not the cache
    assert encoder_fingerprint(name) == first
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_fingerprint_tells_model_folders_apart(tiny_bert, tiny_vit):
    assert encoder_fingerprint(tiny_bert) != encoder_fingerprint(tiny_vit)
    assert encoder_fingerprint(BUILTIN_TEXT) != encoder_fingerprint(BUILTIN_IMAGE)


def test_a_vision_model_folder_is_not_accepted_as_text_encoder(tiny_vit):
    with pytest.raises(ValueError, match="not a BERT-family model"):
        TextEncoder(tiny_vit)
