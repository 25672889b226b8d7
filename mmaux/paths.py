"""Where mmaux keeps things on disk.

Caches (generated benchmark data, frozen-encoder features, decoded images, UMAP layouts, the
dashboard's results) go to one writable folder outside the install tree (`cache_roots`), so that
a read-only checkout or a read-only `checkpoints/` still works; `mmaux cache` shows and clears it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINTS = REPO_ROOT / "checkpoints"
ROOTS_ENV = "MMAUX_CHECKPOINTS"  # overrides the default checkpoint root (os.pathsep-separated)
SHIPPED_ANALYSIS = ".analysis"  # a checkpoint root's precomputed group results (`mmaux effects --store`)
TAGS_FOLDER = "mmaux-tags"  # beside a CSV dataset's file: the relation tags `mmaux tag` stored for it
DASHBOARD_URL = "http://127.0.0.1:8501/"  # where `make run` serves the dashboard


def default_roots() -> list[str]:
    """`MMAUX_CHECKPOINTS` (one or more folders, os.pathsep-separated) or the shipped checkpoints/:
    what the dashboard, the `claims` command and the bench scripts read by default."""
    env = os.environ.get(ROOTS_ENV, "").strip()
    return [p for p in env.split(os.pathsep) if p] if env else [str(DEFAULT_CHECKPOINTS)]


CACHE_ENV = "MMAUX_CACHE"  # overrides where caches go


def user_cache() -> Path:
    """The platform's user cache folder for mmaux (`platformdirs`: ~/.cache/mmaux on Linux, or
    $XDG_CACHE_HOME/mmaux; ~/Library/Caches/mmaux on macOS; %LOCALAPPDATA%\\mmaux\\Cache on Windows)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mmaux", appauthor=False))


def cache_roots() -> list[Path]:
    """Where caches may go, in order: `MMAUX_CACHE` when set, the user cache folder, and a folder
    under the system temp directory for when neither can be written. Never the install tree: a
    dataset kept elsewhere must not fill the checkout mmaux was installed from."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return ([Path(env)] if env else []) + [user_cache(), Path(tempfile.gettempdir()) / "mmaux-cache"]


def cache_dir(*parts: str) -> Path:
    """Return (and create) a cache sub-folder under the first writable `cache_roots()`."""
    candidates = cache_roots()
    for root in candidates:
        folder = root.joinpath(*parts)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise OSError(f"no writable cache folder among {[str(c) for c in candidates]}; set {CACHE_ENV}")


def cache_usage(root: Path) -> dict[str, tuple[int, int]]:
    """Each top-level folder of a cache root: (files, bytes)."""
    usage = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        files = [f for f in folder.rglob("*") if f.is_file()]
        usage[folder.name] = (len(files), sum(f.stat().st_size for f in files))
    return usage


def run_cache(args) -> int:
    """`mmaux cache`: where the caches are and what they hold; --clear removes one kind or all."""
    import shutil

    root = cache_dir().resolve()
    usage = cache_usage(root)
    if args.clear:
        kinds = list(usage) if args.clear == "all" else [args.clear]
        unknown = [k for k in kinds if k not in usage]
        if unknown:
            raise ValueError(f"{root} holds no {unknown[0]!r} cache; it holds: {', '.join(usage) or 'nothing'}")
        for kind in kinds:
            shutil.rmtree(root / kind)
            print(f"removed {root / kind} ({usage[kind][1] / 1e6:.1f} MB)")
        return 0
    print(f"{root}  ({CACHE_ENV} overrides it; mmaux cache --clear KIND|all empties it)")
    for kind, (files, size) in usage.items():
        print(f"  {kind:16s} {files:7d} files {size / 1e6:10.1f} MB")
    print(f"  {'total':16s} {sum(f for f, _ in usage.values()):7d} files "
          f"{sum(s for _, s in usage.values()) / 1e6:10.1f} MB")
    return 0
