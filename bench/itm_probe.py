"""Is a post's match in its fused vector at all? A linear probe, apart from the ITM head.

For each checkpoint: the fused vector (what the ITM head reads) of every post's own image-text
pair and of one mismatched pair per post (its image with another post's text from the same batch
of 128, drawn by `matching.own_and_mismatched` as for the Match scores page), on the training and
the test posts. A logistic regression (scikit-learn) fitted on the training pairs scores the test
pairs; its own vs shuffled AUROC is the match a linear head *could* read from this model's fused
vectors, whether or not the checkpoint trained one. An ITM head at chance above a probe well above
chance would be an optimisation failure of the head; a probe at chance says the fused vector
does not carry the match (the head has nothing to read).

    .venv/bin/python bench/itm_probe.py [--checkpoint DIR ...]    # default: the four variants of
                                                                  # sentiment · attention, seed 0

Last line: `itm_probe_auroc_<dataset>_<task>_<architecture>_<variant>_seed<N>=…` per checkpoint
(test pairs).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from mmaux.analysis.alignment import match_auroc  # noqa: E402
from mmaux.analysis.matching import fused_pairs, own_and_mismatched  # noqa: E402
from mmaux.checkpoint import load_model  # noqa: E402
from mmaux.data.datasets import load_dataset  # noqa: E402
from mmaux.features import PostInputs  # noqa: E402
from mmaux.paths import DEFAULT_CHECKPOINTS  # noqa: E402

DEFAULT = [DEFAULT_CHECKPOINTS / "synthposts-sentiment" / "attention" / f"{variant}-seed0"
           for variant in ("ce", "itm", "itc", "itc+itm")]
BATCH = 128


def pair_vectors(model, inputs: PostInputs, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fused vectors of every post's own pair, then of its mismatched pair; labels 1 / 0."""
    own, other = [], []
    for rows, image_index, text_index in own_and_mismatched(len(inputs), seed, BATCH):
        fused = fused_pairs(model, model.backbone(inputs.batch(rows)), image_index, text_index).numpy()
        own.append(fused[:len(rows)])
        other.append(fused[len(rows):])
    x = np.concatenate(own + other)
    return x, np.r_[np.ones(len(x) // 2), np.zeros(len(x) // 2)]


def probe_auroc(folder: str | Path) -> tuple[str, float, float]:
    """(name, train AUROC, test AUROC) of a logistic-regression probe on the fused vectors; the
    name is task_architecture_variant_seedN."""
    model, info = load_model(folder)
    model.eval()
    posts = load_dataset(info.dataset)
    x_train, y_train = pair_vectors(model, PostInputs(model, posts.split("train")), seed=0)
    x_test, y_test = pair_vectors(model, PostInputs(model, posts.split("test")), seed=10_000)
    probe = LogisticRegression(max_iter=2000).fit(x_train, y_train)

    def auroc(x, y):
        score = probe.decision_function(x)
        return match_auroc(score[y == 1], score[y == 0])

    name = re.sub(r"[^a-z0-9]+", "_", f"{info.task}_{info.model.architecture}_{info.variant}_seed{info.seed}".lower())
    return name, auroc(x_train, y_train), auroc(x_test, y_test)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", help="checkpoint folder (repeatable)")
    args = parser.parse_args(argv)
    found = {}
    for folder in args.checkpoint or DEFAULT:
        name, train, test = probe_auroc(folder)
        print(f"{folder}: probe AUROC train {train:.3f}, test {test:.3f}", flush=True)
        found[name] = test
    print(" ".join(f"itm_probe_auroc_{name}={value:.3f}" for name, value in found.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
