"""Do the shipped checkpoints' stored outputs still come out of their weights?

For every checkpoint under the roots (default: the shipped checkpoints/), this loads the model
in this process, runs it over the test and validation posts (frozen features from the feature
cache, which always holds eval-mode features) and compares with what training stored in
`test_outputs.parquet` / `val_outputs.parquet`: the share of posts with the same predicted
class, the largest difference of a class probability, and the largest difference of the ITC
embeddings relative to their largest value (stored as float16: up to 2^-10 is storage rounding).
Run it after any change to the model code that is meant to leave trained models' outputs as they
are (e.g. a faster formula for the same quantity); the dashboard's stored pages and its live
pages read these two sources.

    .venv/bin/python bench/stored_live.py [--root checkpoints] [--split test --split val]

Last line: `stored_live_pred_agree_min=… stored_live_prob_maxdiff=… stored_live_emb_rel_maxdiff=… checkpoints=…`
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from mmaux.analysis import runs as runs_lib  # noqa: E402
from mmaux.checkpoint import load_model, read_outputs  # noqa: E402
from mmaux.data.datasets import load_dataset  # noqa: E402
from mmaux.evaluate import predict  # noqa: E402
from mmaux.features import PostInputs  # noqa: E402
from mmaux.paths import DEFAULT_CHECKPOINTS  # noqa: E402

STORED = {"test": "test_outputs.parquet", "val": "val_outputs.parquet"}


def _relative_diff(live: np.ndarray, stored: np.ndarray) -> float:
    """Largest |live - stored| over the largest |stored|: float16 storage alone gives up to
    2^-11 ≈ 4.9e-4 (a float32 value may also land on the other side of a float16 step when the
    arithmetic runs in another order, e.g. on another number of threads: up to 2^-10)."""
    return float(np.abs(live - stored.astype(np.float32)).max() / max(np.abs(stored).max(), 1e-12))


def compare(folder: str, model, info, posts, split: str) -> dict:
    """Live vs stored outputs of one loaded checkpoint on one split of its `posts`."""
    live, live_arrays = predict(model, PostInputs(model, posts.split(split)), info.label_names)
    stored, stored_arrays = read_outputs(folder, STORED[split])
    probs = [f"p_{name}" for name in info.label_names]
    diffs = (_relative_diff(live_arrays[k], stored_arrays[k]) for k in ("text_emb", "image_emb") if k in stored_arrays)
    emb = max(diffs, default=0.0)  # validation outputs store no embeddings
    return {"agree": float((live["pred"].to_numpy() == stored["pred"].to_numpy()).mean()),
            "prob": float(np.abs(live[probs].to_numpy() - stored[probs].to_numpy()).max()), "emb": emb}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", action="append", help=f"checkpoint root (default {DEFAULT_CHECKPOINTS})")
    parser.add_argument("--split", action="append", choices=sorted(STORED), help="default: test and val")
    args = parser.parse_args(argv)
    runs = runs_lib.usable(runs_lib.discover_runs(args.root or [DEFAULT_CHECKPOINTS]))
    outputs_only = int((~runs["weights"].astype(bool)).sum())
    if outputs_only:  # no weights to run: `bench/reproduce_runs.py` checks those by training them again
        print(f"{outputs_only} predictions-only runs left out (no weights; see bench/reproduce_runs.py)")
    runs = runs[runs["weights"].astype(bool)]
    splits, datasets, rows = args.split or ["test", "val"], {}, []
    for folder in runs["folder"]:
        model, info = load_model(folder)
        key = json.dumps(info.dataset, sort_keys=True, default=str)
        if key not in datasets:
            datasets[key] = load_dataset(info.dataset)
        for split in splits:
            row = compare(folder, model, info, datasets[key], split)
            rows.append(row)
            print(f"{Path(folder).relative_to(Path(folder).parents[2])} {split}: same class {row['agree']:.4f}, "
                  f"max |Δp| {row['prob']:.2e}, max |Δemb| / max |emb| {row['emb']:.1e}", flush=True)
    print(f"stored_live_pred_agree_min={min(r['agree'] for r in rows):.4f} "
          f"stored_live_prob_maxdiff={max(r['prob'] for r in rows):.2e} "
          f"stored_live_emb_rel_maxdiff={max(r['emb'] for r in rows):.1e} checkpoints={len(runs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
