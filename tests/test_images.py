"""mmaux.data.images: every bad kind of file gives its own clear error; every odd-but-valid
image loads as RGB of the expected size; the transform is exact on simple inputs."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from robust_support import bomb_png  # a huge 1-bit PNG written by hand, no pixel buffer

from mmaux.data.images import (BLANK_IMAGE, IMAGENET_MEAN, IMAGENET_STD, MAX_PIXELS, ImageLoadError,
                               ImageTransform, check_image, load_image)


# --- helpers ---------------------------------------------------------------------------------

def save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def noise(size=(64, 48)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


# --- bad files: each its own error -----------------------------------------------------------

def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.jpg: the file is empty \(0 bytes\)"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    full = save(noise(), tmp_path / "full.jpg", quality=95).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg: truncated or corrupt image data"):
        load_image(path)


def test_text_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("tweet_id,text\n1,hello\n")
    with pytest.raises(ImageLoadError, match=r"notes\.png: not an image: the file contains text"):
        load_image(path)


def test_svg_renamed_jpg(tmp_path):
    path = tmp_path / "logo.jpg"
    path.write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(ImageLoadError, match=r"logo\.jpg: not a supported image: it is SVG"):
        load_image(path)


def test_html_renamed_jpg(tmp_path):
    path = tmp_path / "page.jpg"
    path.write_text("<!DOCTYPE html><html><body>Log in</body></html>")
    with pytest.raises(ImageLoadError, match=r"page\.jpg: not an image: it is an HTML page"):
        load_image(path)


def test_unsupported_format_tiff(tmp_path):
    path = save(noise(), tmp_path / "scan.tif")
    with pytest.raises(ImageLoadError, match="it is TIFF. Convert it to one of PNG, JPEG"):
        load_image(path)


def test_decompression_bomb_30000_squared(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(30000, 30000))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ImageLoadError, match=r"bomb\.png: too many pixels.*Downscale"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="too many pixels"):
        check_image(path)


def test_own_pixel_limit_below_pillows(tmp_path):
    """50 MP passes Pillow's default guard (89 MP) but not ours, and is refused before decoding."""
    assert 10000 * 5000 > MAX_PIXELS
    data = bomb_png(10000, 5000)
    with pytest.raises(ImageLoadError, match=r"10000x5000 = 50\.0 megapixels .* limit of 40"):
        load_image(data, name="big.png")


def test_explicit_max_pixels_and_max_bytes(tmp_path):
    path = save(noise((20, 20)), tmp_path / "small.png")
    with pytest.raises(ImageLoadError, match="20x20 = 0.0 megapixels"):
        load_image(path, max_pixels=100)
    with pytest.raises(ImageLoadError, match=r"small\.png: .* MiB is more than the limit"):
        load_image(path, max_bytes=10)


def test_upload_errors_name_the_upload():
    with pytest.raises(ImageLoadError, match=r"^upload cat\.png: the file is empty"):
        load_image(b"", name="cat.png")
    stream = io.BytesIO(b"x" * 100)
    with pytest.raises(ImageLoadError, match=r"^upload <unnamed>: .* MiB is more than"):
        load_image(stream, max_bytes=50)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match=r"nope\.jpg: cannot read the file"):
        load_image(tmp_path / "nope.jpg")


# --- odd but valid: all RGB ------------------------------------------------------------------

def test_one_pixel_image_is_accepted(tmp_path):
    img = load_image(save(Image.new("RGB", (1, 1), (10, 20, 30)), tmp_path / "dot.png"))
    assert (img.mode, img.size, img.getpixel((0, 0))) == ("RGB", (1, 1), (10, 20, 30))


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 6), color) for color in ((255, 0, 0), (0, 0, 255))]
    path = save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert Image.open(path).n_frames == 2
    img = load_image(path)
    assert (img.mode, img.size, img.getpixel((3, 3))) == ("RGB", (8, 6), (255, 0, 0))


def test_cmyk_jpeg(tmp_path):
    path = save(Image.new("CMYK", (10, 7), (0, 0, 0, 0)), tmp_path / "cmyk.jpg", quality=100)
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (10, 7))
    assert all(v >= 250 for v in img.getpixel((5, 3)))  # no ink = white


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (3, 1))
    assert [img.getpixel((x, 0)) for x in range(3)] == [(0,) * 3, (128,) * 3, (255,) * 3]


def test_rgba_alpha_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    img = load_image(save(rgba, tmp_path / "alpha.png"))
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (255, 0, 0)
    assert img.getpixel((3, 3)) == (255, 255, 255)


def test_la_and_grayscale(tmp_path):
    la = load_image(save(Image.new("LA", (3, 2), (0, 0)), tmp_path / "la.png"))
    gray = load_image(save(Image.new("L", (3, 2), 77), tmp_path / "gray.bmp"))
    assert la.getpixel((0, 0)) == (255, 255, 255)
    assert (gray.mode, gray.getpixel((1, 1))) == ("RGB", (77, 77, 77))


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (5, 5), 1)
    pal.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    assert load_image(save(pal, tmp_path / "pal.png")).getpixel((2, 2)) == (0, 200, 0)
    see_through = save(pal, tmp_path / "pal_t.png", transparency=1)
    assert load_image(see_through).getpixel((2, 2)) == (255, 255, 255)


def test_exif_rotated_jpeg_has_rotated_dimensions(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = save(Image.new("RGB", (40, 20), (0, 128, 0)), tmp_path / "phone.jpg", exif=exif)
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (20, 40))


def test_webp_bytes_and_stream_sources(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), (1, 2, 3)).save(buf, format="WEBP", lossless=True)
    assert load_image(buf.getvalue(), name="a.webp").size == (6, 4)
    buf.seek(0)
    assert load_image(buf).getpixel((0, 0)) == (1, 2, 3)


def test_check_image_decodes_in_full(tmp_path):
    """Validation's check fails exactly where loading fails: a JPEG cut to a quarter of its bytes
    has a good header and still fails here (a header-only check would pass it)."""
    full = save(noise((200, 160)), tmp_path / "ok.jpg", quality=95)
    check_image(full)
    cut = tmp_path / "quarter.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 4])
    with Image.open(cut) as img:
        assert img.size == (200, 160)  # the header alone looks fine
    with pytest.raises(ImageLoadError, match=r"quarter\.jpg: truncated or corrupt image data"):
        check_image(cut)
    (tmp_path / "t.png").write_text("hello")
    with pytest.raises(ImageLoadError, match="contains text"):
        check_image(tmp_path / "t.png")


def test_blank_image_is_black_224_rgb():
    img = load_image(BLANK_IMAGE)
    assert img.size == (224, 224) and img.getextrema() == ((0, 0), (0, 0), (0, 0))


# --- transform -------------------------------------------------------------------------------

def test_transform_constant_image_exact_values():
    color = (128, 64, 255)
    out = ImageTransform()(Image.new("RGB", (300, 200), color))
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    expected = [(c / 255 - m) / s for c, m, s in zip(color, IMAGENET_MEAN, IMAGENET_STD)]
    for channel, value in enumerate(expected):
        assert torch.allclose(out[channel], torch.full((224, 224), value), atol=1e-6)


def test_transform_crops_the_centre():
    """448x224 keeps its size (shorter side already 224); the crop takes columns 112..335."""
    pixels = np.zeros((224, 448, 3), dtype=np.uint8)
    pixels[:, 112:336] = 255
    out = ImageTransform(size=224, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))(
        Image.fromarray(pixels))
    assert torch.equal(out, torch.ones(3, 224, 224))


def test_transform_tiny_and_non_rgb_inputs_and_batch():
    transform = ImageTransform(size=32)
    batch = transform.to_batch([Image.new("RGB", (1, 1)), Image.new("L", (50, 10)),
                                Image.new("RGBA", (10, 50))])
    assert batch.shape == (3, 3, 32, 32)
