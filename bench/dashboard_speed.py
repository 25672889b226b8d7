"""How long a dashboard user waits, measured page by page (AppTest, 1 torch thread), against the
budgets of issue 15 (2 CPU cores):

    home page complete, cold process (Streamlit caches empty, disk caches as they are)   ≤ 8 s
    ... the same with no effects or slice scores in the user's cache (a fresh clone: only
        what checkpoints/.analysis ships)                                                  (printed)
    home page again, warm process                                                         ≤ 2 s
    one checkpoint pick on Predictions (the seeds picker changes, the page reruns)        ≤ 1.5 s
    ... the same as on a fresh clone (as above)                                           ≤ 1.5 s
    first map of a shipped checkpoint (Embeddings, cold process, layouts as shipped)       ≤ 3 s
    first map of a new checkpoint (Embeddings, cold process, no cached layout)            ≤ 10 s
    Attributions for one post (cold process, two checkpoints)                             ≤ 5 s
    home page with 500 checkpoints, warm (copies of the shipped set made here)            ≤ 5 s

Every "cold" figure runs in a fresh Python process that has imported the libraries already (the
import time of torch and transformers is not a page's wait). The 500 checkpoints are hard links
(copies where links are refused) of the checkpoints under MMAUX_CHECKPOINTS (default: the shipped
checkpoints/), made in a temporary folder under .cache/ and removed afterwards. The "new
checkpoint" case runs on links of the shipped checkpoints without their stored maps
(`layouts.npz`), with a cache folder that shares every cache but the layouts.

    .venv/bin/python bench/dashboard_speed.py                  # everything (several minutes)
    .venv/bin/python bench/dashboard_speed.py --copies 20 --only home,pick,home_500   # a quick check

The load average is printed before and after, so the figures can be read in context. The last
line is machine-readable:
    home_cold_s=… home_warm_s=… pick_s=… pick_fresh_s=… map_shipped_s=… map_new_s=… attributions_s=… home_500_s=…
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MMAUX_TORCH_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUDGETS = {"home_cold_s": 8, "home_warm_s": 2, "pick_s": 1.5, "pick_fresh_s": 1.5, "map_shipped_s": 3,
           "map_new_s": 10, "attributions_s": 5, "home_500_s": 5}
CASES = ("home", "home_fresh", "pick", "pick_fresh", "map_shipped", "map_new", "attributions", "home_500")
TIMEOUT = 900  # seconds per case (the cold 500-checkpoint home page reads 500 test tables)


# --- one case, in a fresh process ----------------------------------------------------------------

def _app(page: str | None = None, state: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    if page:
        at.switch_page(page)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    return at


def _run(at) -> float:
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the page failed: {at.exception[0].message}")
    return seconds


def _runs():
    from mmaux.analysis import runs as runs_lib

    return runs_lib.usable(runs_lib.discover_runs(os.environ["MMAUX_CHECKPOINTS"].split(os.pathsep)))


def _warm_imports() -> None:
    import streamlit.testing.v1  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import mmaux.ui  # noqa: F401
    from mmaux.analysis import attributions, embeddings, matching  # noqa: F401


def case(name: str) -> dict[str, float]:
    """Time one case in this (fresh) process; returns its figures."""
    _warm_imports()
    if name == "home_fresh":
        return {"home_fresh_s": _run(_app())}
    if name in ("home", "home_500"):
        cold = _run(_app())
        warm = _run(_app())
        return {"home_cold_s": cold, "home_warm_s": warm} if name == "home" else {"home_500_cold_s": cold,
                                                                                    "home_500_s": warm}
    if name in ("pick", "pick_fresh"):
        at = _app("pages/1_Predictions.py")
        _run(at)
        _run(at)  # warm: the default comparison is read and checked
        from mmaux import selection

        chosen = at.session_state["selection"]
        options = sorted(set(int(s) for s in selection.task_runs(_runs(), (chosen.dataset, chosen.task))["seed"]))
        other = next((s for s in options if s not in chosen.seeds), None)
        if other is None:
            raise RuntimeError("needs a second seed to pick")
        next(m for m in at.sidebar.multiselect if m.label == "Seeds").set_value([*chosen.seeds, other])
        return {f"{name}_s": _run(at)}
    runs = _runs()
    if name in ("map_shipped", "map_new"):
        itc = runs[runs["itc"] & ~runs["itm"]].sort_values("seed")
        folder = (itc if len(itc) else runs).iloc[0]["folder"]
        at = _app("pages/3_Embeddings.py", {"selected_checkpoints": [folder], "_embed_method": "UMAP"})
        return {f"{name}_s": _run(at)}
    if name == "attributions":
        from mmaux.analysis import runs as runs_lib

        group = runs_lib.group_runs(runs, tuple(runs[runs_lib.GROUP_COLUMNS].iloc[0]))
        at = _app("pages/4_Attributions.py", {"selected_checkpoints": runs_lib.default_comparison(group)[:2]})
        return {"attributions_s": _run(at)}
    raise ValueError(f"unknown case {name!r}; choose from {CASES}")


# --- the orchestrator ----------------------------------------------------------------------------

def copies_of(root: str, count: int, into: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """`count` checkpoint folders under `into`, hard links of the files of the checkpoints under
    `root` (copies where the file system refuses links), laid out copyNNN/<relative path>; files
    named in `leave_out` are not copied."""
    from mmaux.checkpoint import find_checkpoints

    sources = find_checkpoints(root)
    if not sources:
        raise SystemExit(f"no checkpoints under {root}")
    made = 0
    while made < count:
        for source in sources:
            if made == count:
                break
            target = into / f"copy{made // len(sources):03d}" / source.relative_to(root)
            target.mkdir(parents=True)
            for file in source.iterdir():
                if file.is_file() and file.name not in leave_out:
                    try:
                        os.link(file, target / file.name)
                    except OSError:
                        shutil.copy2(file, target / file.name)
            made += 1
    return into


def shared_cache_without(kinds: tuple[str, ...], into: Path) -> Path:
    """A cache folder whose entries are links to the real cache's, except `kinds` (left empty)."""
    from mmaux.paths import cache_dir

    real = cache_dir()
    into.mkdir(parents=True, exist_ok=True)
    for entry in real.iterdir():
        if entry.name not in kinds:
            (into / entry.name).symlink_to(entry)
    return into


def in_subprocess(name: str, env: dict) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--case", name], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        print(f"  {name}: failed ({' | '.join(tail)})", flush=True)
        return {}
    return json.loads(lines[-1][len("RESULT "):])


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--copies", type=int, default=500, help="checkpoints for the home_500 case (default 500)")
    args = parser.parse_args()
    os.environ.setdefault("MMAUX_CHECKPOINTS", str(REPO / "checkpoints"))
    if args.case:
        print("RESULT " + json.dumps(case(args.case)), flush=True)
        return
    from mmaux.analysis.embeddings import SHIPPED_LAYOUTS
    from mmaux.checkpoint import find_checkpoints

    root = os.environ["MMAUX_CHECKPOINTS"]
    print(f"checkpoints: {root}; load average before: {load()}", flush=True)
    figures: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-", dir=REPO / ".cache" if (REPO / ".cache").is_dir()
                                 else None))
    try:
        for name in args.only.split(","):
            env = {}
            if name == "map_new":  # checkpoints without their stored maps, and no cached layout
                env["MMAUX_CACHE"] = str(shared_cache_without(("layouts",), work / "cache"))
                env["MMAUX_CHECKPOINTS"] = str(copies_of(root, len(find_checkpoints(root)), work / "new",
                                                         leave_out=(SHIPPED_LAYOUTS,)))
            if name.endswith("_fresh"):  # as on a fresh clone: no effects or slice scores in the user's cache
                env["MMAUX_CACHE"] = str(shared_cache_without(("effects", "slice-scores"), work / name))
            if name == "home_500":
                start = time.perf_counter()
                env["MMAUX_CHECKPOINTS"] = str(copies_of(root, args.copies, work / "copies"))
                print(f"  made {args.copies} checkpoint copies in {time.perf_counter() - start:.1f} s", flush=True)
            found = in_subprocess(name, env)
            for key, seconds in found.items():
                budget = BUDGETS.get(key)
                note = f"(budget {budget:g} s)" if budget else "(not budgeted)"
                label = f"{key} ({args.copies} checkpoints)" if name == "home_500" else key
                print(f"  {label:40s} {seconds:7.2f} s  {note}", flush=True)
            figures.update(found)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {load()}", flush=True)
    print(" ".join(f"{key}={figures[key]:.2f}" if key in figures else f"{key}=nan" for key in BUDGETS))


if __name__ == "__main__":
    main()
