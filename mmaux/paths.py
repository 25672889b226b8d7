"""Where mmaux keeps things on disk.

Caches (generated benchmark data, frozen-encoder features, UMAP layouts) go to one writable
folder so that a read-only checkout or a read-only `checkpoints/` still works.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINTS = REPO_ROOT / "checkpoints"
ROOTS_ENV = "MMAUX_CHECKPOINTS"  # overrides the default checkpoint root (os.pathsep-separated)


def default_roots() -> list[str]:
    """`MMAUX_CHECKPOINTS` (one or more folders, os.pathsep-separated) or the shipped checkpoints/:
    what the dashboard, the `claims` command and the bench scripts read by default."""
    env = os.environ.get(ROOTS_ENV, "").strip()
    return [p for p in env.split(os.pathsep) if p] if env else [str(DEFAULT_CHECKPOINTS)]


def cache_dir(*parts: str) -> Path:
    """Return (and create) a cache sub-folder.

    `MMAUX_CACHE` wins; otherwise `<repo>/.cache`, and when that is not writable a folder under
    the system temp directory.
    """
    candidates = [Path(os.environ["MMAUX_CACHE"])] if os.environ.get("MMAUX_CACHE") else []
    candidates += [REPO_ROOT / ".cache", Path(tempfile.gettempdir()) / "mmaux-cache"]
    for root in candidates:
        folder = root.joinpath(*parts)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise OSError(f"no writable cache folder among {[str(c) for c in candidates]}; set MMAUX_CACHE")
