"""Uploads a stranger might send: every bad file gets one clear message naming it and the fix (from
`probes.upload_image`, the `predict` command and the Your Post page), every odd-but-valid image
and every odd text gets a prediction from a real (tiny) checkpoint, and fuzzed bytes and strings
never raise anything but `ImageLoadError`."""
from __future__ import annotations

import math
import string

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import robust_support as rs
from mmaux import perturb, probes
from mmaux.cli import main as cli
from mmaux.data.images import MAX_BYTES, MAX_PIXELS, ImageLoadError, load_image
from mmaux.encoders import load_tokenizer
from mmaux.predict import MAX_TEXT_CHARS, Predictor, clean_text

pytestmark = pytest.mark.slow  # trains the session's tiny checkpoint on first use (a few seconds)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_bert, tiny_vit):
    with rs.private_cache(tmp_path_factory):
        yield rs.tiny_checkpoint(tmp_path_factory, tiny_bert, tiny_vit)


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor(checkpoint)


def assert_sane(predictions, label_names):
    for prediction in predictions:
        probs = np.array(list(prediction.probabilities.values()))
        assert np.isfinite(probs).all() and abs(probs.sum() - 1) < 1e-5
        assert prediction.label in label_names
        assert math.isfinite(prediction.itc_cosine) and 0 <= prediction.itm_match <= 1


# --- invalid uploads: a message naming the upload, the problem and the fix ----------------------

BAD_UPLOADS = {  # name -> (file name, bytes, what the message must say)
    "zero bytes": ("empty.png", b"", "the file is empty"),
    "truncated jpeg": ("half.jpg", rs.truncated_jpeg(), "truncated or corrupt image data"),
    "text renamed png": ("notes.png", b"shopping list: milk, eggs\n", "the file contains text"),
    "svg renamed jpg": ("logo.jpg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    "html renamed jpg": ("cat.jpg", b"<!DOCTYPE html><html><body>Please log in</body></html>", "HTML page"),
    "bomb 30000 x 30000": ("bomb.png", rs.bomb_png(), "too many pixels"),
    "over the size limit": ("huge.png", rs.oversized_png(MAX_BYTES), f"limit of {MAX_BYTES / 2**20:g} MiB"),
    "not an image name": ("photo.exe", rs.encode(rs.photo(), "PNG"), "not an image file name"),
}


def test_bomb_is_small_on_disk_and_over_the_pixel_limit():
    data = BAD_UPLOADS["bomb 30000 x 30000"][1]
    assert len(data) < 1_000_000 and 30000 * 30000 > MAX_PIXELS


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_upload_is_one_clear_message(case):
    name, data, says = BAD_UPLOADS[case]
    with pytest.raises(ImageLoadError) as caught:
        probes.upload_image(name, data)
    message = str(caught.value)
    assert message.startswith(f"upload {name}: ") and says in message
    assert "\n" not in message and caught.value.hint  # one line, with what to do


# --- odd but valid images: RGB out, and a sane prediction --------------------------------------

ODD_IMAGES = {  # name -> (file name, bytes, expected RGB size)
    "1 x 1": ("dot.png", rs.encode(Image.new("RGB", (1, 1), (9, 200, 30)), "PNG"), (1, 1)),
    "animated gif": ("anim.gif", rs.animated_gif(), (20, 20)),
    "cmyk jpeg": ("print.jpg", rs.cmyk_jpeg(), (40, 30)),
    "16-bit png": ("deep.png", rs.png16(), (32, 16)),
    "alpha png": ("alpha.png", rs.rgba_png(), (20, 20)),
    "exif rotated": ("phone.jpg", rs.exif_rotated_jpeg(), (20, 40)),
    "palette with transparency": ("pal.gif", rs.palette_transparent_gif(), (16, 16)),
    "extreme aspect 1 x 30000": ("banner.png", rs.encode(Image.new("L", (1, 30000), 77), "PNG"), (1, 30000)),
    "webp": ("pic.webp", rs.encode(rs.photo(), "WEBP"), (64, 48)),
}


def test_odd_images_load_as_rgb_and_get_predictions(predictor):
    images = []
    for name, data, size in ODD_IMAGES.values():
        image = probes.upload_image(name, data)
        assert (image.mode, image.size) == ("RGB", size), name
        images.append(image)
    first = np.asarray(images[1])  # animated GIF: the first frame is red
    assert first[..., 0].min() > 200 and first[..., 1:].max() < 60
    predictions = predictor.predict(images, ["an odd picture"] * len(images))
    assert len(predictions) == len(images)
    assert_sane(predictions, predictor.label_names)


def test_transform_of_a_long_banner_does_not_blow_it_up(monkeypatch):
    """Resize-then-centre-crop would scale a 1 x 40000 banner (40 thousand pixels, well within
    the limits) to 224 x 9 million pixels: gigabytes. Only the kept centre is resized."""
    from mmaux.data.images import ImageTransform

    resize = Image.Image.resize

    def guarded(self, size, *args, **kwargs):
        assert size[0] * size[1] <= 16 * 224 * 224, f"resize to {size}"
        return resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", guarded)
    for size in ((1, 40_000), (40_000, 3), (224, 2000)):
        tensor = ImageTransform(224)(Image.new("RGB", size, (200, 100, 50)))
        assert tuple(tensor.shape) == (3, 224, 224)
        assert torch.allclose(tensor, tensor[:, :1, :1].expand_as(tensor), atol=1e-5)  # still the one colour


def test_perturbations_of_a_one_pixel_image_get_predictions(predictor):
    """The Your Post page's one-click perturbations (crop, blur, caption bands) on a 1 x 1 image."""
    image = probes.upload_image("dot.png", ODD_IMAGES["1 x 1"][1])
    variants = perturb.perturbations(image, "#tag @amy so good 🎉", donor=(rs.photo(), "other"))
    assert len(variants) == len(perturb.NAMES)
    assert_sane(predictor.predict([v.image for v in variants], [v.text for v in variants]), predictor.label_names)


# --- odd texts ----------------------------------------------------------------------------------

ODD_TEXTS = {
    "empty": "",
    "whitespace only": " \n\t ",
    "100 000 characters": "so good " * 12_500,
    "control characters": "bad\x00day\x07\x1b[31m\r\n\x7f\x85\u2028ever",
    "right to left": "\u202eيوم رائع جدا\u202c שלום עולם \u200f!",
    "combining-mark flood": "a" + "\u0301\u0308\u0327" * 20_000,
    "emoji only": "😡🔥👍🏽👨‍👩‍👧🇩🇪" * 10,
    "zero-width and BOM": "\ufeff\u200b\u200c\u200dhi\u2060",
    "lone surrogate": "bad \ud800 text",
    "private use and unassigned": "\ue000\U0010fffd\U000e0001",
}


def test_clean_text_caps_length_and_drops_control_characters():
    assert len(clean_text(ODD_TEXTS["100 000 characters"])) == MAX_TEXT_CHARS
    cleaned = clean_text(ODD_TEXTS["control characters"])
    assert all(ch.isprintable() or ch in "\n\t " for ch in cleaned)
    assert clean_text(ODD_TEXTS["lone surrogate"]).encode("utf-8")  # nothing unencodable is left


def test_odd_texts_get_predictions(predictor):
    image = rs.photo()
    texts = list(ODD_TEXTS.values())
    batched = predictor.predict([image] * len(texts), texts)
    assert_sane(batched, predictor.label_names)
    alone = predictor.predict([image], [ODD_TEXTS["100 000 characters"]])[0]  # padded alone, same answer
    assert alone.label == batched[2].label
    assert alone.probabilities == pytest.approx(batched[2].probabilities, abs=1e-5)


def test_odd_texts_tokenise_with_the_builtin_encoder():
    """The shipped checkpoints' MiniLM tokenizer: at most 128 tokens whatever the text."""
    tokenizer = load_tokenizer("minilm")
    tokens = tokenizer([clean_text(t) for t in ODD_TEXTS.values()], padding=True, truncation=True,
                       max_length=128)
    assert all(2 <= len(ids) <= 128 for ids in tokens["input_ids"])


# --- fuzzing ------------------------------------------------------------------------------------

SEEDS = [rs.encode(rs.photo((24, 24)), fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP")]
SEEDS += [rs.animated_gif(), rs.cmyk_jpeg(), rs.png16(), rs.rgba_png(), rs.exif_rotated_jpeg()]


@st.composite
def damaged_images(draw):
    """A real image file of some format with a few bytes changed, inserted or cut off: gets past
    the format sniffing, so the decoders themselves meet bad data."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "insert", "cut"]))
        if action == "set":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[position:]
        if not data:
            break
    return bytes(data)


def _rgb_or_image_load_error(data: bytes):
    try:
        image = load_image(data, name="fuzz.png")
    except ImageLoadError as err:
        assert str(err).startswith("upload fuzz.png: ")
        return
    assert image.mode == "RGB" and image.size[0] * image.size[1] <= MAX_PIXELS


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048) | st.builds(lambda head, tail: head + tail,
                                            st.sampled_from([s[:16] for s in SEEDS]), st.binary(max_size=512)))
def test_fuzz_random_bytes_are_an_image_or_an_image_load_error(data):
    _rgb_or_image_load_error(data)


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_images())
def test_fuzz_damaged_images_are_an_image_or_an_image_load_error(data):
    _rgb_or_image_load_error(data)


ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates included


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(ANY_CHARACTER, max_size=300) | st.text(string.printable, max_size=50),
                min_size=1, max_size=4))
def test_fuzz_any_unicode_text_gets_a_prediction(predictor, texts):
    images = [rs.photo((8, 8))] * len(texts)
    assert_sane(predictor.predict(images, texts), predictor.label_names)


@settings(max_examples=60, deadline=None, database=None)
@given(st.text(ANY_CHARACTER, max_size=500))
def test_fuzz_builtin_tokenizer_and_clean_text_never_raise(text):
    cleaned = clean_text(text)
    assert len(cleaned) <= MAX_TEXT_CHARS
    cleaned.encode("utf-8")  # no lone surrogate is left to break encoding
    assert len(_minilm()(cleaned, truncation=True, max_length=128)["input_ids"]) <= 128


_TOKENIZERS = {}


def _minilm():
    if "minilm" not in _TOKENIZERS:
        _TOKENIZERS["minilm"] = load_tokenizer("minilm")
    return _TOKENIZERS["minilm"]


# --- the predict command ------------------------------------------------------------------------

CLI_BAD_FILES = {  # file name -> bytes (None: a folder of that name); the one-line error names it
    "empty.png": b"",
    "half.jpg": rs.truncated_jpeg(),
    "drawing.jpg": b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
    "bomb.png": rs.bomb_png(),
    "huge.png": rs.oversized_png(MAX_BYTES),
    "folder.png": None,
}


@pytest.mark.parametrize("name", CLI_BAD_FILES)
def test_predict_command_bad_image_exits_2_with_one_line(checkpoint, tmp_path, capsys, name):
    path = tmp_path / name
    if CLI_BAD_FILES[name] is None:
        path.mkdir()
    else:
        path.write_bytes(CLI_BAD_FILES[name])
    assert cli(["predict", "--checkpoint", str(checkpoint), "--image", str(path), "--text", "hi"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert captured.out == ""


def test_predict_command_missing_image_exits_2(checkpoint, tmp_path, capsys):
    assert cli(["predict", "--checkpoint", str(checkpoint), "--image", str(tmp_path / "gone.png"),
                "--text", "hi"]) == 2
    assert "gone.png: cannot read the file" in capsys.readouterr().err


@pytest.mark.parametrize("text", [ODD_TEXTS[k] for k in ("empty", "100 000 characters", "control characters",
                                                         "right to left", "emoji only")],
                         ids=["empty", "100k", "control", "rtl", "emoji"])
def test_predict_command_odd_texts(checkpoint, tmp_path, capsys, text):
    import json

    path = tmp_path / "phone.jpg"
    path.write_bytes(rs.exif_rotated_jpeg())
    assert cli(["predict", "--checkpoint", str(checkpoint), "--image", str(path), "--text", text, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-5


# --- the Your Post page -------------------------------------------------------------------------

def test_your_post_page_shows_an_error_for_each_bad_upload(checkpoint, monkeypatch, tmp_path):
    """Image bytes handed over in session state (the path an upload takes): st.error naming the
    upload, never an exception; then an odd-but-valid upload and a 100 000 character text
    are predicted."""
    from apptest_support import page, texts

    monkeypatch.setenv("MMAUX_PROBES", str(tmp_path / "probes"))
    at = page("pages/5_Your_Post.py", str(checkpoint.parents[2]), monkeypatch,
              selected_checkpoints=[str(checkpoint)], your_post_text="hello")
    for case in ("zero bytes", "truncated jpeg", "svg renamed jpg", "bomb 30000 x 30000", "over the size limit"):
        name, data, says = BAD_UPLOADS[case]
        at.session_state["your_post_image"] = (name, data)
        at.run()
        assert not at.exception, case
        errors = texts(at.error)
        assert f"upload {name}: " in errors and says in errors, case
        assert not [df for df in at.dataframe if "itc_cosine" in df.value.columns], case
    at.session_state["your_post_image"] = ("print.jpg", rs.cmyk_jpeg())
    at.run()
    assert not at.exception and not at.error
    table = next(df.value for df in at.dataframe if "itc_cosine" in df.value.columns)
    assert len(table) == 1 and np.isfinite(table["itc_cosine"].astype(float)).all()


@pytest.mark.parametrize("text", ["100 000 characters", "control characters", "right to left"])
def test_your_post_page_with_an_odd_text(checkpoint, monkeypatch, tmp_path, text):
    """A text kept in session state from elsewhere (longer than the text box's 2000 characters,
    with control characters, right to left): a prediction, never an exception. (Lone surrogates
    cannot arrive here: the browser and UTF-8 files never produce them.)"""
    from apptest_support import page

    monkeypatch.setenv("MMAUX_PROBES", str(tmp_path / "probes"))
    at = page("pages/5_Your_Post.py", str(checkpoint.parents[2]), monkeypatch,
              selected_checkpoints=[str(checkpoint)], your_post_image=("phone.jpg", rs.exif_rotated_jpeg()),
              your_post_text=ODD_TEXTS[text]).run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "itc_cosine" in df.value.columns)
    assert len(table) == 1 and np.isfinite(table["itc_cosine"].astype(float)).all()
