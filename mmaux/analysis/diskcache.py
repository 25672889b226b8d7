"""A small on-disk cache of numpy arrays for analysis results (layouts, modality reliance,
shuffled-pair match scores), keyed by content hashes so that a retrained checkpoint never
reads a stale entry.

Entries are `.npz` files read with `allow_pickle=False`: a damaged or planted file can at worst
be recomputed, never execute code.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mmaux.data.datasets import file_sha256
from mmaux.paths import cache_dir


def content_key(*parts) -> str:
    """sha256 over the parts (bytes as they are, anything else as JSON), shortened."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:32]


def checkpoint_key(folder: str | Path, *files: str) -> str:
    """Content hash of some files of a checkpoint folder (e.g. its test outputs, its weights)."""
    return content_key(*[file_sha256(Path(folder) / name) for name in files])


def cache_path(kind: str, key: str) -> Path:
    return cache_dir(kind) / f"{key}.npz"


def read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Every array of an `.npz` file (no pickles), or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def load_arrays(kind: str, key: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when missing or unreadable (the damaged file is removed)."""
    path = cache_path(kind, key)
    arrays = read_npz(path)
    if arrays is None:
        path.unlink(missing_ok=True)
    return arrays


def write_atomically(path: Path, write) -> Path:
    """`write(tmp)` into a temporary file beside `path`, then rename it to `path`: a reader in
    another process never sees half a file."""
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}{path.suffix}")
    write(tmp)
    os.replace(tmp, path)
    return path


def save_arrays(kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
    write_atomically(cache_path(kind, key), lambda tmp: np.savez(tmp, **arrays))


def cached_arrays(kind: str, key: str, compute) -> dict[str, np.ndarray]:
    """`load_arrays`, or `compute()` (a dict of arrays) stored for next time."""
    arrays = load_arrays(kind, key)
    if arrays is None:
        arrays = compute()
        save_arrays(kind, key, arrays)
    return arrays


def cached_frame(kind: str, key: str, compute, shipped: Iterable[Path] = ()) -> pd.DataFrame:
    """A DataFrame cached like `cached_arrays`, as Parquet (no pickles; a damaged file is
    recomputed). For results that are slow to compute and read often, such as a group's effects.
    `shipped`: folders that may hold it precomputed as `<folder>/<kind>/<key>.parquet`, read first
    and never written (results that travel with checkpoints, see `group_results`)."""
    path = cache_dir(kind) / f"{key}.parquet"
    for candidate in [*(Path(folder) / kind / path.name for folder in shipped), path]:
        frame = read_frame(candidate)
        if frame is not None:
            return frame
    frame = compute()
    write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return frame


def read_frame(path: Path) -> pd.DataFrame | None:
    """A Parquet file as a DataFrame, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException):
        return None


def source_key(*modules) -> str:
    """Content hash of these modules' source files: a cache of what they compute goes stale
    whenever their code changes, not only when the library's version does."""
    return content_key(*[file_sha256(module.__file__) for module in modules])
