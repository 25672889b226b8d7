"""Dashboard speed on this machine, warm process, against the budgets (2 CPU cores):

    custom post through 8 checkpoints (Predictor.predict, one image + text each)   ≤ 1 s
    integrated gradients, one post, one checkpoint (text + image), converged       ≤ 5 s
      (median over ≥ 20 post × checkpoint cases, with the distribution of relative deltas
      |Σ attributions − (F(post) − F(baseline))| / |F(post) − F(baseline)| and the converged share)
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
    ig_rel_delta_median=… ig_text_rel_delta_median=… ig_converged_share=…
(ig_rel_delta_median: the image maps', comparable with the 114 % that pixel IG at 16 steps read;
ig_converged_share: cases whose text and image maps both reached the tolerance.)
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


def integrated_gradients(folders, posts, min_cases: int = 20) -> tuple[float, float, float, float]:
    """IG with the step ladder over ≥ `min_cases` post × checkpoint cases: (median seconds per
    case, median image and text relative deltas, share of cases with both maps converged)."""
    import numpy as np

    n_posts = -(-min_cases // len(folders))  # ceil
    chosen = posts.iloc[np.linspace(0, len(posts) - 1, n_posts).astype(int)]
    seconds, image_rel, text_rel, converged, steps = [], [], [], [], []
    for folder in folders:
        predictor = Predictor(folder)
        warm = posts.iloc[-1]
        attributions.attribute_post(predictor, load_image(warm["image"]), warm["text"])  # warm-up
        for _, post in chosen.iterrows():
            took, result = timed(attributions.attribute_post, predictor, load_image(post["image"]), post["text"])
            seconds.append(took)
            image_rel.append(result.image.relative)
            text_rel.append(result.text.relative)
            converged.append(result.converged)
            steps.append((result.text.steps, result.image.steps))
    quantiles = lambda v: " / ".join(f"{q:.1%}" for q in np.quantile(v, [0.1, 0.5, 0.9, 1.0]))  # noqa: E731
    print(f"  IG over {len(seconds)} post × checkpoint cases ({n_posts} posts × {len(folders)} checkpoints); "
          f"relative delta p10 / median / p90 / max: image {quantiles(image_rel)}, text {quantiles(text_rel)}; "
          f"converged {np.mean(converged):.0%}; steps (text, image) used: {sorted(set(steps))}", flush=True)
    median_s = float(np.median(seconds))
    report("integrated gradients, one post, one checkpoint (median)", median_s, 5,
           f"slowest {max(seconds):.2f} s; tolerance 5 % of the gap or 0.05 logits")
    return median_s, float(np.median(image_rel)), float(np.median(text_rel)), float(np.mean(converged))


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
    parser.add_argument("--ig-only", action="store_true",
                        help="only the integrated-gradients figures (a quick check that they run)")
    parser.add_argument("--ig-cases", type=int, default=20,
                        help="post × checkpoint cases for IG (≥ 20 for the record)")
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
    ig_s, ig_rel, ig_text_rel, ig_converged = integrated_gradients(comparison, posts, args.ig_cases)
    if args.ig_only:
        print(f"ig_s={ig_s:.2f} ig_rel_delta_median={ig_rel:.4f} ig_text_rel_delta_median={ig_text_rel:.4f} "
              f"ig_converged_share={ig_converged:.2f}")
        return 0
    custom_s = custom_post(list(runs["folder"][:8]), load_image(first["image"]), first["text"])
    umap_s = new_umap(folder)
    batch_reliance(folder, posts)
    for f in comparison:  # what `python -m mmaux embed` does ahead of the page (which opens on the fused space)
        embeddings.checkpoint_layout(f, embeddings.LayoutParams("umap", space="fused"))
    embeddings_s = report(f"Embeddings page, {len(comparison)} checkpoints, cached UMAP layouts",
                          page("pages/3_Embeddings.py", comparison), 2)
    predictions_s = report(f"Predictions page, {len(posts)} posts × {len(comparison)} checkpoints",
                           page("pages/1_Predictions.py", comparison), 2)
    home_s = report("home page", page("app.py", comparison), 3)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"custom_post_s={custom_s:.2f} ig_s={ig_s:.2f} embeddings_cached_s={embeddings_s:.2f} "
          f"umap_new_s={umap_s:.2f} predictions_page_s={predictions_s:.2f} home_s={home_s:.2f} "
          f"ig_rel_delta_median={ig_rel:.4f} ig_text_rel_delta_median={ig_text_rel:.4f} "
          f"ig_converged_share={ig_converged:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
