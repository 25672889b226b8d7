"""Shared by the tests/test_robust_*.py files: one tiny real checkpoint per test session, a private
cache folder, and hand-made bad and odd image files.

The checkpoint is trained once with the CLI on 32 SynthPosts posts with the tiny offline BERT
and ViT of conftest.py (a few seconds), into the session's temporary folder; every module that
needs it gets the same folder. The shipped checkpoints/ are never read or written.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

TINY_TRAIN = ["--task", "sentiment", "--n-train", "16", "--n-val", "8", "--n-test", "8", "--recipe", "cpu",
              "--epochs", "1", "--batch-size", "8", "--aux", "itc,itm", "--seed", "0"]


def shared_dir(tmp_path_factory) -> Path:
    """A folder shared by every robust test module of this session."""
    folder = tmp_path_factory.getbasetemp() / "robust-shared"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def private_cache(tmp_path_factory):
    """MMAUX_CACHE pointed at the session's private cache while the block runs (restored after), so
    no test reads or fills the user's .cache; SynthPosts is generated once per session."""
    old = os.environ.get("MMAUX_CACHE")
    cache = shared_dir(tmp_path_factory) / "cache"
    os.environ["MMAUX_CACHE"] = str(cache)
    try:
        yield cache
    finally:
        if old is None:
            os.environ.pop("MMAUX_CACHE", None)
        else:
            os.environ["MMAUX_CACHE"] = old


def tiny_checkpoint(tmp_path_factory, text_encoder: str, image_encoder: str) -> Path:
    """The session's tiny trained checkpoint (trained on first use), laid out like a sweep's:
    <root>/synthposts-sentiment/attention/itc+itm-seed0. Call inside `private_cache`."""
    from mmaux.cli import main

    folder = shared_dir(tmp_path_factory) / "root" / "synthposts-sentiment" / "attention" / "itc+itm-seed0"
    if not (folder / "config.json").exists():
        assert main(["train", *TINY_TRAIN, "--text-encoder", text_encoder, "--image-encoder", image_encoder,
                     "--out", str(folder)]) == 0
    return folder


# --- image bytes -----------------------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def photo(size=(64, 48), seed=0) -> Image.Image:
    """A small photo-like RGB image (smooth gradient plus noise: not constant, so JPEG has data)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[:h, :w]
    pixels = np.stack([x * 255 // max(w, 1), y * 255 // max(h, 1), np.full_like(x, 90)], axis=-1)
    pixels = np.clip(pixels + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid all-black 1-bit PNG written by hand: 900 megapixels in about 100 KB, built without
    ever holding the pixels (rows are compressed a thousand at a time)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    block = row * 1000
    idat = b"".join(compressor.compress(block) for _ in range(height // 1000))
    idat += compressor.compress(row * (height % 1000)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def truncated_jpeg() -> bytes:
    data = encode(photo((96, 96)), "JPEG", quality=90)
    return data[: len(data) // 2]


def oversized_png(limit: int) -> bytes:
    """A real PNG padded past `limit` bytes with a private ancillary chunk (Pillow skips it)."""
    data = encode(photo((8, 8)), "PNG")
    return data[:-12] + _png_chunk(b"prVt", bytes(limit + 1)) + data[-12:]


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


def cmyk_jpeg() -> bytes:
    return encode(photo((40, 30)).convert("CMYK"), "JPEG")


def png16() -> bytes:
    ramp = (np.arange(32 * 16, dtype=np.uint16).reshape(16, 32) * 120).astype(np.uint16)
    return encode(Image.fromarray(ramp), "PNG")  # a 16-bit grayscale PNG


def rgba_png() -> bytes:
    pixels = np.zeros((20, 20, 4), dtype=np.uint8)
    pixels[..., 0] = 200
    pixels[..., 3] = np.linspace(0, 255, 20, dtype=np.uint8)[None, :]
    return encode(Image.fromarray(pixels, mode="RGBA"), "PNG")


def exif_rotated_jpeg(size=(40, 20), orientation: int = 6) -> bytes:
    """A 40 x 20 JPEG whose EXIF says 'rotate 90°': it must load as 20 x 40."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(photo(size), "JPEG", exif=exif.tobytes())


def palette_transparent_gif() -> bytes:
    img = photo((16, 16)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return encode(img, "GIF", transparency=0)
