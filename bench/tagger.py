"""How well do `mmaux tag`'s predicted slices stand in for the true ones? Measured on SynthPosts,
which records image_adds, text_represented and the relation of every post.

1. Tagger accuracy: each relation checkpoint (default: the shipped attention runs of seed 0, CE
   and CE+ITC) tags the test and validation posts (`tagging.predict_tags`, as `mmaux tag` does);
   on the test posts, the accuracy and balanced accuracy of predicted image_adds and
   text_represented against the true columns, and of the 4-class relation (which must equal the
   checkpoint's own test accuracy: the posts are the relation task's test split).
2. Verdict agreement: every claim contrast of the shipped sentiment and sarcasm groups (the same
   posts as the relation task's), once with the true columns (`claims.claims_table` on the split
   tables as they load) and once with the true image_adds, text_represented and relation dropped
   and the tags attached (`tagging.attach`, as `runs.load_split_table` joins stored tags). A row
   (group × claim × operationalisation × effect) agrees when both give the same verdict and, when
   supported, the same direction. The evidence operationalisation has no tag and is left out.

Nothing is written beside the data or the checkpoints: the tags stay in memory (only the frozen
encoder features go to the feature cache).

    .venv/bin/python bench/tagger.py [--checkpoint DIR ...] [--root CHECKPOINTS]

Last line: `tagger_<variant>_<tag>_accuracy=…` per checkpoint and tag, and
`tagger_<variant>_verdicts_agree=k/n`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
from sklearn.metrics import accuracy_score, balanced_accuracy_score  # noqa: E402

from mmaux import tagging  # noqa: E402
from mmaux.analysis import claims, effects  # noqa: E402
from mmaux.analysis import runs as runs_lib  # noqa: E402
from mmaux.checkpoint import read_info, read_metrics  # noqa: E402
from mmaux.data.datasets import load_dataset  # noqa: E402
from mmaux.paths import DEFAULT_CHECKPOINTS  # noqa: E402

DEFAULT = [DEFAULT_CHECKPOINTS / "synthposts-relation" / "attention" / f"{variant}-seed0" for variant in ("ce", "itc")]
TRUE_COLUMNS = ("image_adds", "text_represented", "text_is_represented", "relation")  # what a user's data lacks
TASKS = ("sentiment", "sarcasm")  # the groups whose claims are compared


def accuracy(tags: pd.DataFrame, posts: pd.DataFrame) -> dict[str, tuple[float, float, float, float]]:
    """tag -> (accuracy, balanced accuracy, predicted share, true share) on `posts`; relation's
    shares are of image_notadds_text_notrepr (the ITM claim's slice A)."""
    truth = posts.set_index("post_id").loc[tags["post_id"]]
    found = {}
    for column in tagging.TAG_COLUMNS:
        true, pred = truth[column].astype(str).to_numpy(), tags[column].astype(str).to_numpy()
        positive = "True" if column != "relation" else "image_notadds_text_notrepr"
        found[column] = (accuracy_score(true, pred), balanced_accuracy_score(true, pred), (pred == positive).mean(),
                         (true == positive).mean())
    return found


def tagged_loader(tags: pd.DataFrame, tagged_by: str):
    """`runs.load_split_table` as on a dataset without the true columns, tagged by `tags`."""
    def load(folder: str, split: str) -> pd.DataFrame | None:
        table = runs_lib.load_split_table(folder, split)
        if table is None:
            return None
        return tagging.attach(table.drop(columns=[c for c in TRUE_COLUMNS if c in table]), tags, tagged_by)
    return load


def agreement(runs: pd.DataFrame, load) -> pd.DataFrame:
    """The claims with true slices beside the claims with tagged ones, one row per tag-able contrast."""
    key = ["family", "claim", "effect", "base"]
    true = claims.claims_table(runs)
    tagged = claims.claims_table(runs, load)
    true = true[true["slicing"].isin(tagging.TAG_COLUMNS)].assign(base=lambda f: f["slicing"])
    tagged = tagged[tagged["slicing"].map(tagging.is_predicted)].assign(
        base=lambda f: f["slicing"].str.removesuffix(tagging.PREDICTED_SUFFIX))
    both = true.merge(tagged, on=key, how="outer", suffixes=("_true", "_tagged"), indicator=True)
    same = (both["verdict_true"] == both["verdict_tagged"]) & (
        (both["verdict_true"] != effects.SUPPORTED) | (both["direction_true"] == both["direction_tagged"]))
    return both.assign(agree=same & (both["_merge"] == "both"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", help="relation checkpoint folder (repeatable)")
    parser.add_argument("--root", default=str(DEFAULT_CHECKPOINTS), help="checkpoints with the sentiment and "
                                                                         "sarcasm groups (default: the shipped ones)")
    args = parser.parse_args(argv)
    runs = runs_lib.usable(runs_lib.discover_runs([args.root]))
    runs = runs[(runs["dataset"] == "SynthPosts") & runs["task"].isin(TASKS)]
    figures = {}
    for folder in args.checkpoint or DEFAULT:
        info = tagging.relation_checkpoint(folder)
        posts = load_dataset(info.dataset, splits=("val", "test")).frame
        for run in runs["folder"]:  # the groups' posts are the tagger's: same generation, another task
            assert dataclasses.replace(read_info(run).dataset.synth, task="relation") == info.dataset.synth, run
        tags = tagging.predict_tags(folder, posts)
        name = re.sub(r"[^a-z0-9]+", "_", info.variant.lower())
        print(f"\n{folder} ({info.label}), test posts (n={int((posts['split'] == 'test').sum())}):")
        for column, (acc, balanced, share, true_share) in accuracy(tags[tags["split"] == "test"], posts).items():
            print(f"  {column:17s} accuracy {acc:.3f}  balanced {balanced:.3f}  "
                  f"predicted share {share:.3f} (true {true_share:.3f})")
            figures[f"tagger_{name}_{column}_accuracy"] = f"{acc:.3f}"
        print(f"  relation test accuracy stored in its metrics.json: {read_metrics(folder)['test']['accuracy']:.3f}")
        both = agreement(runs, tagged_loader(tags, info.label))
        for row in both.itertuples():
            print(f"  {row.family} | {row.claim} | {row.effect} | {row.base}: true {row.delta_true:+.1f} "
                  f"[{row.ci_low_true:+.1f}, {row.ci_high_true:+.1f}] {row.verdict_true} · {row.direction_true}"
                  f"  tagged {row.delta_tagged:+.1f} [{row.ci_low_tagged:+.1f}, {row.ci_high_tagged:+.1f}] "
                  f"{row.verdict_tagged} · {row.direction_tagged}  {'agree' if row.agree else 'DISAGREE'}")
        print(f"  verdicts agree on {int(both['agree'].sum())} of {len(both)} contrasts "
              f"({int((both['verdict_true'] == effects.SUPPORTED).sum())} supported with true slices, "
              f"{int((both['verdict_tagged'] == effects.SUPPORTED).sum())} with tagged ones)")
        figures[f"tagger_{name}_verdicts_agree"] = f"{int(both['agree'].sum())}/{len(both)}"
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
