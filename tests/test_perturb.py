"""Perturbations: exact outputs on hand-made texts and images."""
import numpy as np
import pytest
from PIL import Image

from mmaux import perturb


@pytest.mark.parametrize("text, expected", [
    ("#bestday so happy #pin", "so happy"),
    ("so happy", "so happy"),
    ("C# is fun #code", "C# is fun"),
    ("mail me at a@b.com #x", "mail me at a@b.com"),
])
def test_strip_hashtags(text, expected):
    assert perturb.strip_hashtags(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("@amy look at this @bob_2", "look at this"),
    ("a@b.com stays", "a@b.com stays"),
])
def test_strip_mentions(text, expected):
    assert perturb.strip_mentions(text) == expected


def test_strip_emoji_handles_sequences_skin_tones_and_flags():
    assert perturb.strip_emoji("so good ✨🔥") == "so good"
    assert perturb.strip_emoji("family 👨‍👩‍👧 wave 👋🏽 flag 🇫🇷 end") == "family wave flag end"
    assert perturb.strip_emoji("no emoji here :)") == "no emoji here :)"


@pytest.mark.parametrize("text, expected", [
    ("this is great", "this is not great"),
    ("I'm so happy", "I'm not so happy"),
    ("so happy #bestday", "not so happy #bestday"),
    ("not happy at all", "happy at all"),
    ("I don't like it", "I do like it"),
    ("", ""),
])
def test_negate(text, expected):
    assert perturb.negate(text) == expected


def _quadrants() -> Image.Image:
    """8 × 10 image: red left half, blue right half."""
    pixels = np.zeros((10, 8, 3), np.uint8)
    pixels[:, :4] = (255, 0, 0)
    pixels[:, 4:] = (0, 0, 255)
    return Image.fromarray(pixels)


def test_grayscale_is_rgb_with_equal_channels():
    out = np.asarray(perturb.grayscale(_quadrants()))
    assert out.shape == (10, 8, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[0, 0, 0] == 76 and out[0, 7, 0] == 29  # ITU-R 601 luma of pure red and pure blue


def test_crop_keeps_the_centre():
    image = Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10)).convert("RGB")
    out = perturb.crop(image, keep=0.6)
    assert out.size == (6, 6)
    assert np.asarray(out)[0, 0, 0] == 22  # row 2, column 2 of the original
    with pytest.raises(ValueError):
        perturb.crop(image, keep=0)


def test_mask_caption_bands_paints_top_and_bottom_only():
    image = Image.new("RGB", (4, 10), (255, 255, 255))
    out = np.asarray(perturb.mask_caption_bands(image, band=0.2, fill=(0, 0, 0)))
    assert (out[:2] == 0).all() and (out[8:] == 0).all() and (out[2:8] == 255).all()
    assert np.asarray(image).min() == 255  # the input is untouched


def test_blur_mixes_the_two_halves_and_keeps_size():
    out = np.asarray(perturb.blur(_quadrants(), radius=2))
    assert out.shape == (10, 8, 3)
    assert 0 < out[5, 3, 2] < 255 and 0 < out[5, 4, 0] < 255


def test_perturbations_mark_no_change_and_need_a_donor_for_swaps():
    image = _quadrants()
    variants = {v.name: v for v in perturb.perturbations(image, "plain text")}
    assert set(variants) == set(perturb.NAMES) - {perturb.SWAP_TEXT, perturb.SWAP_IMAGE}
    assert not variants["strip hashtags"].changed and variants["negate text"].text == "not plain text"
    donor = (Image.new("RGB", (3, 3)), "donor text")
    swaps = perturb.perturbations(image, "mine", [perturb.SWAP_TEXT, perturb.SWAP_IMAGE], donor=donor)
    assert (swaps[0].text, swaps[0].image) == ("donor text", image)
    assert (swaps[1].text, swaps[1].image) == ("mine", donor[0])
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb.perturbations(image, "x", ["rotate"])
