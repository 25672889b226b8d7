"""Dashboard speed on this machine, warm process, against the budgets (2 CPU cores):

    custom post through 8 checkpoints (Predictor.predict, one image + text each)   ≤ 1 s
    integrated gradients, one post, one checkpoint (text + image)                  ≤ 5 s
    Embeddings page with cached layouts (AppTest, second run)                       ≤ 2 s
    a new UMAP of 1000 posts × 2 modalities (numba already compiled)                ≤ 30 s
    modality reliance over 1000 test posts, one checkpoint (uncached)               ≤ 60 s
    Predictions page, 1000 test posts × 4 checkpoints (AppTest, second run)         ≤ 2 s
    home page (AppTest of app.py, second run)                                       ≤ 3 s

Checkpoints: MMAUX_CHECKPOINTS, else the shipped checkpoints/. `--threads N` sets torch's
intra-op threads: on 2 cores shared with another busy process (a training sweep), the default 2
threads wait on each other at every layer and a one-image forward pass slows ~30×; 1 thread
avoids that. The load average is printed so figures can be read in context.
The last line is machine-readable:
    custom_post_s=… ig_s=… embeddings_cached_s=… umap_new_s=… predictions_page_s=… home_s=…
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from mmaux.analysis import attributions, embeddings, reliance  # noqa: E402
from mmaux.analysis import runs as runs_lib  # noqa: E402
from mmaux.data.images import load_image  # noqa: E402
from mmaux.features import PostInputs  # noqa: E402
from mmaux.paths import DEFAULT_CHECKPOINTS  # noqa: E402
from mmaux.predict import Predictor  # noqa: E402

ROOT = os.environ.get("MMAUX_CHECKPOINTS") or str(DEFAULT_CHECKPOINTS)
os.environ["MMAUX_CHECKPOINTS"] = ROOT


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def report(name: str, seconds: float, budget: float, note: str = "") -> float:
    print(f"{name:58s} {seconds:7.2f} s  (budget {budget:g} s{', ' + note if note else ''})", flush=True)
    return seconds


def custom_post(folders, image, text) -> float:
    predictors = [Predictor(f) for f in folders]
    for p in predictors:  # warm-up: first calls allocate and pick kernels
        p.predict([image], [text])
    seconds, _ = timed(lambda: [p.predict([image], [text]) for p in predictors])
    return report(f"custom post through {len(folders)} checkpoints", seconds, 1)


def integrated_gradients(folder, posts) -> float:
    predictor = Predictor(folder)
    first, second = posts.iloc[0], posts.iloc[1]
    attributions.attribute_post(predictor, load_image(first["image"]), first["text"])  # warm-up
    seconds, result = timed(attributions.attribute_post, predictor, load_image(second["image"]), second["text"])
    return report("integrated gradients, one post, one checkpoint", seconds, 5,
                  f"{attributions.TEXT_IG_STEPS}/{attributions.IMAGE_IG_STEPS} text/image steps, delta text {result.text_delta:.4f} image {result.image_delta:.4f}")


def new_umap(folder) -> float:
    from mmaux.checkpoint import read_outputs

    _, arrays = read_outputs(folder)
    tiny = embeddings.LayoutParams("umap", n_neighbors=5)
    compile_s, _ = timed(embeddings.compute_layout, arrays["text_emb"][:40], arrays["image_emb"][:40], range(40), tiny)
    report("  (umap import + numba on first use, 40 posts)", compile_s, float("inf"), "cached on disk after")
    n = min(1000, len(arrays["text_emb"]))
    seconds, _ = timed(embeddings.compute_layout, arrays["text_emb"][:n], arrays["image_emb"][:n], range(n),
                       embeddings.LayoutParams("umap"))
    return report(f"new UMAP of {n} posts × 2 modalities", seconds, 30)


def batch_reliance(folder, posts) -> float:
    predictor = Predictor(folder)
    inputs = PostInputs(predictor.model, posts)
    seconds, table = timed(reliance.reliance_table, predictor.model, inputs)
    return report(f"modality reliance over {len(table)} test posts (uncached)", seconds, 60)


def page(path: str, selected, state=None) -> float:
    """Seconds of a warm run of a page: a first AppTest run fills the caches, a second is timed."""
    from streamlit.testing.v1 import AppTest

    def run():
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)  # the entry point: page links resolve
        if path != "app.py":
            at.switch_page(path)
        at.session_state["selected_checkpoints"] = list(selected)
        for key, value in (state or {}).items():
            at.session_state[key] = value
        return at.run()

    failed = run().exception
    if failed:  # reported, and the figure left out, so the other figures still print
        print(f"{path} raised: {failed[0].message}")
        return float("nan")
    seconds, _ = timed(run)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = runs_lib.usable(runs_lib.discover_runs([ROOT]))
    if runs.empty:
        print(f"no usable checkpoints under {ROOT}; run `make checkpoints` first")
        return 1
    comparison = runs_lib.default_comparison(runs)
    folder = comparison[-1]
    posts = runs_lib.load_test_table(folder)
    print(f"{len(runs)} checkpoints under {ROOT}; comparison: {len(comparison)}; {len(posts)} test posts; "
          f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads; load average {os.getloadavg()[0]:.1f} (other processes slow every figure)",
          flush=True)
    first = posts.iloc[0]
    custom_s = custom_post(list(runs["folder"][:8]), load_image(first["image"]), first["text"])
    ig_s = integrated_gradients(folder, posts)
    umap_s = new_umap(folder)
    batch_reliance(folder, posts)
    for f in comparison:  # what `python -m mmaux embed` does ahead of the page
        embeddings.checkpoint_layout(f, embeddings.LayoutParams("umap"))
    embeddings_s = report(f"Embeddings page, {len(comparison)} checkpoints, cached UMAP layouts",
                          page("pages/3_Embeddings.py", comparison), 2)
    predictions_s = report(f"Predictions page, {len(posts)} posts × {len(comparison)} checkpoints",
                           page("pages/1_Predictions.py", comparison), 2)
    home_s = report("home page", page("app.py", comparison), 3)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"custom_post_s={custom_s:.2f} ig_s={ig_s:.2f} embeddings_cached_s={embeddings_s:.2f} "
          f"umap_new_s={umap_s:.2f} predictions_page_s={predictions_s:.2f} home_s={home_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
