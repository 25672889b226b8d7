"""Perturbations of a post (image + text) that ask "what does the model rely on?".

Each one is a pure function: the same input gives the same output, nothing is modified in place,
and a perturbation that finds nothing to change (no hashtags to strip) returns its input
unchanged, so the dashboard can say "no change" instead of showing a meaningless delta.

Text: strip hashtags, emoji characters or @mentions; negate. Image: blur, centre crop, grayscale,
mask the caption bands a meme draws at the top and bottom. Swapping in another post's text or
image needs a donor post and is done by `perturbations`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import emoji
from PIL import Image, ImageDraw, ImageFilter, ImageOps

HASHTAG = re.compile(r"(?<![\w#])#\w+")
MENTION = re.compile(r"(?<![\w@])@\w+")
NEGATION = re.compile(r"\b(?:not|never|no)\b ?|n't\b", re.IGNORECASE)
AUXILIARY = re.compile(r"\b(?:am|is|are|was|were|do|does|did|can|could|will|would|should|have|has|had)\b",
                       re.IGNORECASE)
# "i'm" -> "i'm not"; checked before AUXILIARY so that the contraction is negated as one word
CONTRACTED = re.compile(r"\b(?:i'm|you're|we're|they're|it's|that's|he's|she's)\b", re.IGNORECASE)


def tidy(text: str) -> str:
    """Collapse the runs of spaces a removal leaves, and trim the ends."""
    return re.sub(r"[ \t]{2,}", " ", text).strip()


# --- text ---------------------------------------------------------------------------------------

def strip_hashtags(text: str) -> str:
    """Remove every #hashtag (the tag word too): '#bestday so happy #pin' -> 'so happy'."""
    return tidy(HASHTAG.sub("", text))


def strip_mentions(text: str) -> str:
    """Remove every @mention: '@amy look' -> 'look'."""
    return tidy(MENTION.sub("", text))


def strip_emoji(text: str) -> str:
    """Remove every emoji character, as the `emoji` package knows them (ZWJ sequences, skin tones
    and flags included): 'so good ✨🔥' -> 'so good'."""
    return tidy(emoji.replace_emoji(text, replace=""))


def negate(text: str) -> str:
    """A crude, predictable negation, enough to test whether a model reads negation at all:
    an existing negation is removed ('not happy' -> 'happy'); else 'not' goes after the first
    contraction or auxiliary verb ('this is great' -> 'this is not great'); else the text is
    prefixed with 'not ' ('so happy' -> 'not so happy')."""
    if NEGATION.search(text):
        return tidy(NEGATION.sub("", text))
    for pattern in (CONTRACTED, AUXILIARY):
        match = pattern.search(text)
        if match:
            return text[:match.end()] + " not" + text[match.end():]
    return "not " + text if text.strip() else text


# --- image --------------------------------------------------------------------------------------

def blur(image: Image.Image, radius: float = 6.0) -> Image.Image:
    """Gaussian blur: shapes and colours survive, fine detail (and drawn text) does not."""
    return image.filter(ImageFilter.GaussianBlur(radius))


def crop(image: Image.Image, keep: float = 0.6) -> Image.Image:
    """The central `keep` share of each side (the model's transform resizes it back up)."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    width, height = image.size
    w, h = max(1, round(width * keep)), max(1, round(height * keep))
    left, top = (width - w) // 2, (height - h) // 2
    return image.crop((left, top, left + w, top + h))


def grayscale(image: Image.Image) -> Image.Image:
    """Luminance only, still 3-channel RGB (colour carries sentiment in many images)."""
    return ImageOps.grayscale(image).convert("RGB")


def mask_caption_bands(image: Image.Image, band: float = 0.2, fill=(128, 128, 128)) -> Image.Image:
    """Paint over the top and bottom `band` share of the height, where meme captions sit, so
    that text drawn on the image cannot be read."""
    if not 0 < band < 0.5:
        raise ValueError(f"band must be in (0, 0.5), got {band}")
    masked = image.convert("RGB")  # a copy, also for RGB input
    width, height = masked.size
    rows = round(height * band)
    if rows == 0:  # an image a few pixels high has no band to paint
        return masked
    draw = ImageDraw.Draw(masked)
    draw.rectangle((0, 0, width - 1, rows - 1), fill=fill)
    draw.rectangle((0, height - rows, width - 1, height - 1), fill=fill)
    return masked


# --- the one-click set --------------------------------------------------------------------------

TEXT_PERTURBATIONS: dict[str, Callable[[str], str]] = {
    "strip hashtags": strip_hashtags, "strip emoji": strip_emoji, "strip mentions": strip_mentions,
    "negate text": negate,
}
IMAGE_PERTURBATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "blur image": blur, "crop image": crop, "grayscale image": grayscale, "mask caption bands": mask_caption_bands,
}
SWAP_TEXT, SWAP_IMAGE = "swap in other text", "swap in other image"
NAMES = (*TEXT_PERTURBATIONS, *IMAGE_PERTURBATIONS, SWAP_TEXT, SWAP_IMAGE)


@dataclass(frozen=True)
class Variant:
    """One perturbed copy of a post."""

    name: str  # a key of NAMES
    image: Image.Image
    text: str
    changed: bool  # False when the perturbation found nothing to change


def perturbations(image: Image.Image, text: str, names=NAMES,
                  donor: tuple[Image.Image, str] | None = None) -> list[Variant]:
    """The post perturbed by each of `names`, in that order. The swaps take the donor post's
    (image, text) and are skipped without a donor."""
    variants = []
    for name in names:
        if name in TEXT_PERTURBATIONS:
            new_text = TEXT_PERTURBATIONS[name](text)
            variants.append(Variant(name, image, new_text, new_text != text))
        elif name in IMAGE_PERTURBATIONS:
            variants.append(Variant(name, IMAGE_PERTURBATIONS[name](image), text, True))
        elif name in (SWAP_TEXT, SWAP_IMAGE):
            if donor is not None:
                swapped = (image, donor[1]) if name == SWAP_TEXT else (donor[0], text)
                variants.append(Variant(name, *swapped, True))
        else:
            raise ValueError(f"unknown perturbation {name!r}; choose from {list(NAMES)}")
    return variants
