"""The one image loader shared by training, the dashboard and uploads, and the tensor transform.

Images come from scraped datasets and from strangers' uploads, so every load is defensive:
sizes are checked from the header before any pixel is decoded (decompression bombs), the
whole image is decoded inside one `try` so truncated files fail here and not in a DataLoader
worker, and every failure is an `ImageLoadError` that names the file, the problem and the fix.
Odd-but-valid images (1x1, CMYK, 16-bit, palette, alpha, EXIF-rotated, animated) all come out
as plain RGB.

Where a dataset's image should be: `find_image` (a missing `{id}.jpg` stored as `{id}.png`, as
the authors' loader accepts). A post without an image (MICD has some) gets `BLANK_IMAGE`, a black
224 x 224 picture, where the dataset's policy says so: mmaux's own choice (the authors' code stops
at a missing image in the main data and uses an empty image only for a separate text-only file).
"""
from __future__ import annotations

import io
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

MAX_PIXELS = 40_000_000  # 40 megapixels: above any real social media photo, far below a bomb
MAX_BYTES = 20 * 1024 * 1024  # 20 MiB per file or upload
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_ASPECT = 4  # longer side / shorter side above which the transform trims the far ends first
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BLANK_IMAGE = Path(__file__).with_name("blank.png")  # black 224 x 224 RGB, shipped with mmaux

ImageSource = str | Path | bytes | BinaryIO


class ImageLoadError(ValueError):
    """An image that cannot be used; `str()` reads "<what>: <problem>. <what to do>"."""

    def __init__(self, what: str, problem: str, hint: str):
        super().__init__(f"{what}: {problem}. {hint}")
        self.what = what  # the file path, or "upload <name>"
        self.problem = problem
        self.hint = hint


def find_image(path: str) -> str:
    """The file of an image path from a dataset's template: `path` itself, or, when no such file
    exists and it ends in .jpg, the same path ending in .png if that file exists (the authors'
    loader retries a failed `{id}.jpg` as png, and their datasets hold such files). Otherwise
    `path`, which validation then reports missing. Every CSV dataset's image column comes from
    here, so validate, train, evaluate, predict and the dashboard read the same file."""
    if os.path.isfile(path) or not path.endswith(".jpg"):
        return path
    png = path[:-len(".jpg")] + ".png"
    return png if os.path.isfile(png) else path


def load_image(source: ImageSource, name: str | None = None, max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_BYTES) -> Image.Image:
    """Decode `source` (a path, raw bytes or a binary stream) into an RGB image.

    `name` labels bytes/streams in error messages (e.g. the uploaded file name). The first frame
    of an animated image is used; EXIF orientation is applied; alpha is composited on white.
    """
    what = _describe(source, name)
    data = _read_bytes(source, what, max_bytes)
    if not data:
        raise ImageLoadError(what, "the file is empty (0 bytes)",
                             "Re-download or re-export the image")
    with _pillow_errors(what, lambda: data[:512], "truncated or corrupt image data"):
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
            _check_pixels(img, what, max_pixels)
            img.load()  # full decode here, so truncated data fails inside this block
            upright = ImageOps.exif_transpose(img)
    return to_rgb(upright)


@contextmanager
def _pillow_errors(what: str, head, corrupt: str):
    """Turn Pillow's failures into ImageLoadError; `head()` gives the file's first bytes, to
    say what a non-image actually is."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (its warning only raises when warnings are errors)
        raise ImageLoadError(what, f"too many pixels ({exc})", _BOMB_HINT) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(what, _not_an_image(head()), _FORMAT_HINT) from exc
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(what, f"{corrupt} ({exc})", "Re-download or re-export the image") from exc


def check_image(path: str | Path, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> None:
    """Decode the file fully, exactly as training will (`load_image`), and drop the pixels: what
    dataset validation runs on every image, so a file that passes here cannot stop `train`.
    Raises `ImageLoadError`. Thread-safe; Pillow decodes without holding the GIL."""
    load_image(path, max_pixels=max_pixels, max_bytes=max_bytes).close()


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: alpha composited on white, 16/32-bit and float scaled to 8 bits."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _to_8bit_gray(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """Pillow's own I->L conversion clips at 255 (a 16-bit image turns white); scale instead."""
    values = np.asarray(img, dtype=np.float64)
    if img.mode != "F":
        values = values / 257.0  # 0..65535 -> 0..255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _describe(source: ImageSource, name: str | None) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"upload {name or getattr(source, 'name', None) or '<unnamed>'}"


def _read_bytes(source: ImageSource, what: str, max_bytes: int) -> bytes:
    """Read at most max_bytes + 1 bytes, so an oversized upload is refused without reading it all."""
    if isinstance(source, (str, Path)):
        size = _file_size(source, what)
        if size > max_bytes:
            raise ImageLoadError(what, _too_big(size, max_bytes), _SIZE_HINT)
        try:
            return Path(source).read_bytes()
        except OSError as exc:  # a folder, no permission, a vanished file
            raise ImageLoadError(what, f"cannot read the file ({exc.strerror or exc})",
                                 "Check the path and the image folder") from exc
    data = source if isinstance(source, bytes) else source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageLoadError(what, _too_big(len(data), max_bytes), _SIZE_HINT)
    return data


def _file_size(path: str | Path, what: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError as exc:
        raise ImageLoadError(what, f"cannot read the file ({exc.strerror})",
                             "Check the path and the image folder") from exc


def _check_pixels(img: Image.Image, what: str, max_pixels: int) -> None:
    width, height = img.size
    if width * height > max_pixels:
        raise ImageLoadError(
            what, f"{width}x{height} = {width * height / 1e6:.1f} megapixels is more than the "
                  f"limit of {max_pixels / 1e6:g} megapixels", _BOMB_HINT)


def _too_big(size: int, max_bytes: int) -> str:
    return f"{size / 2**20:.1f} MiB is more than the limit of {max_bytes / 2**20:g} MiB"


def _not_an_image(head: bytes) -> str:
    """Say what the file looks like, since "cannot identify image" helps nobody."""
    start = head[:512].lstrip().lower()
    if start.startswith((b"<svg", b"<?xml")) or b"<svg" in start:
        return "not a supported image: it is SVG markup (a vector drawing)"
    if start.startswith((b"<!doctype html", b"<html")):
        return "not an image: it is an HTML page (often a login or error page saved by a scraper)"
    for magic, kind in _OTHER_FORMATS:
        if head.startswith(magic) or head[4:12].startswith(magic):
            return f"not a supported image: it is {kind}"
    try:
        head.decode("utf-8")
        return "not an image: the file contains text"
    except UnicodeDecodeError:
        return "not a supported image: unrecognised binary format"


_OTHER_FORMATS = ((b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"%PDF", "a PDF"),
                  (b"ftypheic", "HEIC"), (b"ftypmif1", "HEIF"), (b"ftypavif", "AVIF"))
_FORMAT_HINT = f"Convert it to one of {', '.join(ALLOWED_FORMATS)}"
_BOMB_HINT = "Downscale the image (or raise max_pixels if it is genuine)"
_SIZE_HINT = "Use a smaller or more compressed image (or raise max_bytes)"


@dataclass(frozen=True)
class ImageTransform:
    """Resize the shorter side to `size` (bicubic), centre-crop to size x size, normalise.

    Pillow + numpy only (torchvision is not a dependency); matches the usual ViT/CLIP eval
    transform. Returns a float32 tensor (3, size, size).
    """
    size: int = 224  # output side in pixels
    mean: tuple[float, float, float] = IMAGENET_MEAN  # per-channel mean, on the 0..1 scale
    std: tuple[float, float, float] = IMAGENET_STD  # per-channel std, on the 0..1 scale

    def __call__(self, img: Image.Image) -> torch.Tensor:
        pixels = np.asarray(self._resize_and_crop(to_rgb(img)), dtype=np.float32) / 255.0
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        pixels = (pixels - mean) / std  # HWC
        import torch  # here, not at the top: reading and checking images needs no torch

        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))  # HWC -> CHW

    def to_batch(self, images: Iterable[Image.Image]) -> torch.Tensor:
        """Transform and stack: (B, 3, size, size)."""
        import torch

        return torch.stack([self(img) for img in images])

    def _resize_and_crop(self, img: Image.Image) -> Image.Image:
        img = _trim_long_side(img)
        width, height = img.size
        scale = self.size / min(width, height)
        new_size = (max(self.size, round(width * scale)), max(self.size, round(height * scale)))
        img = img.resize(new_size, Image.Resampling.BICUBIC)
        left = (new_size[0] - self.size) // 2
        top = (new_size[1] - self.size) // 2
        return img.crop((left, top, left + self.size, top + self.size))


def _trim_long_side(img: Image.Image) -> Image.Image:
    """The centre crop keeps only the middle of a long image; cut the far ends off before the
    resize, so a 1 x 40000 banner is not scaled up to 224 x 9 million pixels (gigabytes) on the
    way. Images up to MAX_ASPECT : 1 (every real photo) are returned unchanged."""
    width, height = img.size
    limit = MAX_ASPECT * min(width, height)
    if width > limit:
        left = (width - limit) // 2
        return img.crop((left, 0, left + limit, height))
    if height > limit:
        top = (height - limit) // 2
        return img.crop((0, top, width, top + limit))
    return img
