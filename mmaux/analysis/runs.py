"""Checkpoints as runs of an experiment: discover them, join their test (and validation) outputs
with the posts, summarise each loss variant over seeds, and put runs side by side. Whether a
variant helps is `mmaux.analysis.effects`' question, answered from these tables.

Pure library (no Streamlit): the dashboard caches these functions' results, tests call them
directly. Terms used throughout:

- a *run* is one checkpoint folder; the runs table (`discover_runs`) has one row per folder,
  broken ones included, with the reason in `error` (empty for a usable run);
- a *group* is the runs that differ only in loss variant and seed (`GROUP_COLUMNS`);
- a *test table* is one run's test outputs joined with the test posts (`load_test_table`); a
  *split table* the same for the test or validation split (`load_split_table`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mmaux import tagging
from mmaux.analysis import stats
from mmaux.checkpoint import (CONFIG, METRICS, OUTPUTS, VAL_OUTPUTS, WEIGHTS, CheckpointError, CheckpointInfo,
                              check_weights_header, find_checkpoints, member, read_info, read_metrics,
                              read_outputs)
from mmaux.data.datasets import SLICE_COLUMNS, load_dataset

VARIANTS = ("CE", "CE+ITC", "CE+ITM", "CE+ITC+ITM")  # the 2 × 2 design, baseline first
BASELINE = VARIANTS[0]
GROUP_COLUMNS = ["dataset", "task", "architecture"]
METRICS_SHOWN = ("macro_f1", "accuracy", "weighted_f1")  # test metrics copied into the runs table
RUN_COLUMNS = ["folder", "label", *GROUP_COLUMNS, "variant", "itc", "itm", "seed", "weights", "error",
               *METRICS_SHOWN]  # weights: False for a predictions-only run (`CheckpointInfo.has_model`)
LABEL_SLICE = "label"  # slice the test posts by their gold label
COMPARISON_SLICES = ("relation", "evidence", LABEL_SLICE)  # what the home page breaks scores down by
POST_COLUMNS = ["post_id", "text", "image", "label", *SLICE_COLUMNS]  # taken from the posts
# a split table's columns that are one run's outputs, not the posts' (p_<class> columns too)
OUTPUT_COLUMNS = ("label_index", "pred", "pred_label", "correct", "confidence", "itm_match", "itc_cosine")


# --- discovering runs ---------------------------------------------------------------------------

def discover_runs(roots: Iterable[str | Path]) -> pd.DataFrame:
    """One row per checkpoint folder under any of `roots` (missing roots are skipped; a folder
    reachable from two roots is listed once), sorted by group, variant and seed. A folder that
    cannot be used gets its `CheckpointError` message in `error` instead of failing the table."""
    folders = dict.fromkeys(str(f.resolve()) for root in roots for f in find_checkpoints(root))
    rows = [describe_run(folder) for folder in folders]
    table = pd.DataFrame(rows, columns=RUN_COLUMNS)
    order = table["variant"].map({v: i for i, v in enumerate(VARIANTS)})
    return (table.assign(_order=order).sort_values([*GROUP_COLUMNS, "_order", "seed", "folder"])
            .drop(columns="_order").reset_index(drop=True))


def describe_run(folder: str | Path) -> dict:
    """The runs-table row of one folder: config and test metrics, or the reason it is unusable.

    Only JSON and the weights file's header are read here (the weights themselves and the
    encoder hashes are checked when a page loads the model), so listing 48 checkpoints stays
    fast; the outputs file must exist because every page needs it."""
    folder = Path(folder)
    row = dict.fromkeys(RUN_COLUMNS, "")
    row.update(folder=str(folder), label=folder.name, seed=-1, itc=False, itm=False, weights=False,
               **dict.fromkeys(METRICS_SHOWN, np.nan))
    try:
        info = read_info(folder)
        row.update(run_identity(info), weights=info.has_model)
        row.update(_test_metrics(folder))
        member(folder, OUTPUTS)  # missing, or a link that leads outside the folder
        check_weights_header(folder, info)
    except CheckpointError as err:
        row["error"] = str(err)
    return row


def _test_metrics(folder: Path) -> dict:
    """The test scores of metrics.json shown in the runs table (CheckpointError when malformed)."""
    test = read_metrics(folder).get("test", {})
    try:
        return {m: float(test[m]) for m in METRICS_SHOWN if m in test}
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{folder / METRICS}: malformed test scores ({err}); restore the file "
                              "from the training run") from None


def run_identity(info: CheckpointInfo) -> dict:
    """What places a checkpoint in the design: group, variant, ITC/ITM switches, seed, label."""
    synth = info.dataset.synth
    return {"label": info.label, "dataset": "SynthPosts" if synth else info.dataset.name,
            "task": synth.task if synth else info.dataset.name, "architecture": info.architecture,
            "variant": info.variant, "itc": info.loss.itc, "itm": info.loss.itm,
            "seed": info.seed}


def usable(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs without an error."""
    return runs[runs["error"] == ""].reset_index(drop=True)


def checkpoint_stamp(folder: str | Path) -> tuple:
    """(name, mtime, size) of the checkpoint's files, and the stored tags its tables join
    (`tagging.tags_key`): a cache key that changes when any file is rewritten or its data is
    tagged, so a cached table is never stale after re-training into the same folder."""
    stamp = []
    for name in (CONFIG, METRICS, WEIGHTS, OUTPUTS, VAL_OUTPUTS):
        try:
            st = (Path(folder) / name).stat()
            stamp.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((name, 0, -1))
    return tuple(stamp) + tagging.tags_key(folder)


def roots_stamp(roots: Iterable[str | Path]) -> tuple:
    """A cache key for `discover_runs(roots)`: every checkpoint folder found with its stamp."""
    return tuple((str(f), checkpoint_stamp(f)) for root in roots for f in find_checkpoints(root))


def groups(runs: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """(group key, its runs) for every dataset · task · architecture, in table order."""
    return [(key, part.reset_index(drop=True))
            for key, part in runs.groupby(GROUP_COLUMNS, sort=False)]


def group_runs(runs: pd.DataFrame, key: tuple) -> pd.DataFrame:
    """The rows of `runs` in the group `key` (dataset, task, architecture), in table order."""
    return runs[(runs[GROUP_COLUMNS] == list(key)).all(axis=1)]


def group_name(key: tuple) -> str:
    """'SynthPosts · sentiment · attention' (the task is left out when it equals the dataset)."""
    dataset, task, arch = key
    return " · ".join([dataset] + ([task] if task != dataset else []) + [arch])


def default_comparison(runs: pd.DataFrame, size: int = 4) -> list[str]:
    """Folders to compare when the user has chosen none: the variants CE, +ITC, +ITM, +ITC+ITM of
    one architecture and seed (the first group, lowest seed, that has the most variants)."""
    runs = usable(runs)
    if runs.empty:
        return []
    counts = runs.groupby([*GROUP_COLUMNS, "seed"], sort=False)["variant"].nunique()
    best = counts[counts == counts.max()].index[0]
    chosen = runs[(runs[[*GROUP_COLUMNS, "seed"]] == pd.Series(best, index=[*GROUP_COLUMNS, "seed"])).all(axis=1)]
    return chosen.drop_duplicates("variant")["folder"].head(size).tolist()


# --- seed summaries -----------------------------------------------------------------------------

def seed_summary(runs: pd.DataFrame, metrics: Iterable[str] = METRICS_SHOWN) -> pd.DataFrame:
    """Per group and variant: number of seeds and each metric as mean and std over seeds (in
    points, i.e. × 100), plus the 'mean ± std' text the tables show."""
    rows = []
    for (key, variant), part in _variant_parts(usable(runs)):
        row = dict(zip(GROUP_COLUMNS, key), variant=variant, seeds=len(part))
        for metric in metrics:
            mean, std = stats.summarise_over_seeds(100 * part[metric].dropna())
            row.update({metric: stats.format_mean_std(mean, std), f"{metric}_mean": mean, f"{metric}_std": std})
        rows.append(row)
    return pd.DataFrame(rows)


def _variant_parts(runs: pd.DataFrame):
    """((group key, variant), runs) in table order."""
    for (*key, variant), part in runs.groupby([*GROUP_COLUMNS, "variant"], sort=False):
        yield (tuple(key), variant), part


# --- test tables --------------------------------------------------------------------------------

SPLIT_OUTPUTS = {"test": OUTPUTS, "val": VAL_OUTPUTS}  # split -> its outputs file in a checkpoint


def load_test_table(folder: str | Path) -> pd.DataFrame:
    """A run's test outputs joined with its test posts (`join_posts`). SynthPosts regenerates its
    test split the first time (seconds), then reads it from the on-disk cache."""
    return load_split_table(folder, "test")


def load_split_table(folder: str | Path, split: str = "test") -> pd.DataFrame | None:
    """A run's outputs on `split` ("test" or "val") joined with that split's posts (`join_posts`)
    and with the relation tags stored for its data (`tagging.join_tags`: `image_adds (predicted)`...
    and `tagged_by`, only where `mmaux tag` tagged these posts). None when the checkpoint holds no
    outputs for a validation split (checkpoints written before validation outputs were saved); a
    missing or broken test file raises `CheckpointError`."""
    if split not in SPLIT_OUTPUTS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_OUTPUTS)}")
    if split != "test" and not (Path(folder) / SPLIT_OUTPUTS[split]).exists():
        return None
    info = read_info(folder)
    outputs, _ = read_outputs(folder, SPLIT_OUTPUTS[split])
    posts = load_dataset(info.dataset, splits=(split,),
                         on_bad_rows=info.train.get("on_bad_rows", "fail")).split(split)  # as it was trained
    return tagging.join_tags(join_posts(outputs, posts, info.label_names), info)


def join_posts(outputs: pd.DataFrame, posts: pd.DataFrame, label_names: Iterable[str]) -> pd.DataFrame:
    """Outputs (post_id, label_index, pred, confidence, itm_match, itc_cosine, p_<class>...)
    with each post's text, image path, gold label name and slice columns, then the posts' other
    columns (a CSV's metadata, SynthPosts' latent columns: what a user's own slice can filter on),
    plus `pred_label` and `correct`. Posts missing from `posts` keep their outputs with an empty
    text and image, so a changed dataset shows up as blanks rather than as dropped rows."""
    names = np.asarray(list(label_names), dtype=object)
    metadata = [c for c in posts.columns if c not in (*POST_COLUMNS, *OUTPUT_COLUMNS, "split")
                and c not in outputs.columns and not str(c).startswith("p_")]  # p_<class> names the probabilities
    columns = [c for c in POST_COLUMNS if c in posts.columns] + metadata
    table = outputs.assign(post_id=outputs["post_id"].astype(str)).merge(
        posts[columns].assign(post_id=posts["post_id"].astype(str)), on="post_id", how="left",
        validate="one_to_one")
    table["text"] = table["text"].fillna("") if "text" in table else ""
    table["image"] = table["image"].fillna("") if "image" in table else ""
    table["label"] = names[table["label_index"].to_numpy()]
    table["pred_label"] = names[table["pred"].to_numpy()]
    table["correct"] = table["pred"] == table["label_index"]
    return table


def class_names(table: pd.DataFrame) -> list[str]:
    """The label names of a test table, in class-index order (from its p_<class> columns)."""
    return [c[2:] for c in table.columns if c.startswith("p_")]


def slice_columns(table: pd.DataFrame) -> list[str]:
    """The columns a test table can be sliced by: the ground-truth slices it has, the predicted
    relation tags it has, and the label."""
    return [c for c in (*SLICE_COLUMNS, *tagging.PREDICTED_COLUMNS) if c in table.columns] + [LABEL_SLICE]


def align(tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Posts common to every table (in the first table's order) and each table's predictions
    on them: (posts frame of the first table, {key: pred array}). Checkpoints of one dataset
    share their test posts, so normally nothing is dropped."""
    first = next(iter(tables.values()))
    common = set(first["post_id"])
    for table in tables.values():
        common &= set(table["post_id"])
    posts = first[first["post_id"].isin(common)].reset_index(drop=True)
    preds = {key: table.set_index("post_id").loc[posts["post_id"], "pred"].to_numpy()
             for key, table in tables.items()}
    return posts, preds


# --- side by side: one test table per checkpoint ------------------------------------------------

FIXED, BROKEN, DISAGREE, CONSISTENT = ("fixed by the variant", "broken by the variant", "disagreements",
                                       "fixed in most seeds")
FLIP_FILTERS = ("all posts", FIXED, BROKEN, DISAGREE, CONSISTENT)


def distinguishing_names(labels: Iterable[str]) -> list[str]:
    """Checkpoint labels cut down to the parts that differ between them:
    ['sentiment · attention · CE · seed 0', 'sentiment · attention · CE+ITC · seed 0'] ->
    ['CE', 'CE+ITC']. Labels that do not differ are kept whole."""
    parts = [label.split(" · ") for label in labels]
    if len({len(p) for p in parts}) != 1 or len(parts) < 2:
        return [" · ".join(p) for p in parts]
    differ = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    return [" · ".join(p[i] for i in differ) if differ else " · ".join(p) for p in parts]


def flip_mask(y_true, preds: Mapping[str, np.ndarray], baseline: str, variant: str, kind: str) -> np.ndarray:
    """Posts selected by a flip filter: FIXED (baseline wrong, variant right), BROKEN (the
    reverse), DISAGREE (the checkpoints do not all predict the same), else every post.
    CONSISTENT needs several seeds: see `consistent_fixes`."""
    y = np.asarray(y_true)
    base_ok, variant_ok = preds[baseline] == y, preds[variant] == y
    if kind == FIXED:
        return ~base_ok & variant_ok
    if kind == BROKEN:
        return base_ok & ~variant_ok
    if kind == DISAGREE:
        stacked = np.stack(list(preds.values()))
        return (stacked != stacked[0]).any(axis=0)
    return np.ones(len(y), dtype=bool)


def seed_siblings(runs: pd.DataFrame, folder: str) -> pd.DataFrame:
    """The usable runs of the same group and variant as `folder` (its other seeds), by seed."""
    runs = usable(runs)
    me = runs[runs["folder"] == folder]
    if me.empty:
        return me
    same = (runs[[*GROUP_COLUMNS, "variant"]] == me[[*GROUP_COLUMNS, "variant"]].iloc[0]).all(axis=1)
    return runs[same].sort_values("seed")


def seed_pairs(runs: pd.DataFrame, baseline: str, variant: str) -> list[tuple[str, str]]:
    """(baseline folder, variant folder) for each seed both variants were trained with."""
    base = seed_siblings(runs, baseline).set_index("seed")["folder"]
    other = seed_siblings(runs, variant).set_index("seed")["folder"]
    return [(base[s], other[s]) for s in sorted(set(base.index) & set(other.index))]


def consistent_fixes(posts: pd.DataFrame, pairs: Iterable[tuple[str, str]], tables: Mapping[str, pd.DataFrame],
                     min_share: float = 0.5) -> np.ndarray:
    """Which of `posts` the variant fixed in more than `min_share` of the seed pairs
    (`stats.consistently_fixed`): fixes that do not hang on one training run."""
    pairs = list(pairs)
    by_id = {folder: table.set_index("post_id")["pred"] for folder, table in tables.items()}
    ids = posts["post_id"]
    base = np.stack([by_id[b].reindex(ids).fillna(-1).to_numpy() for b, _ in pairs])
    variant = np.stack([by_id[v].reindex(ids).fillna(-1).to_numpy() for _, v in pairs])
    return stats.consistently_fixed(posts["label_index"].to_numpy(), base, variant, min_share)


def prediction_columns(posts: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                       names: Mapping[str, str]) -> pd.DataFrame:
    """One text column per checkpoint (titled `names[folder]`) reading '✓ positive 0.91' (right
    or wrong, predicted label, confidence), for `posts` in their order; '✓ positive' for a run
    imported without probabilities (its confidence is NaN)."""
    columns = {}
    for folder, table in tables.items():
        rows = table.set_index("post_id").loc[posts["post_id"]]
        mark = np.where(rows["correct"].to_numpy(), "✓", "✗")
        columns[names[folder]] = [f"{m} {p}" + ("" if np.isnan(c) else f" {c:.2f}")
                                  for m, p, c in zip(mark, rows["pred_label"], rows["confidence"])]
    return pd.DataFrame(columns, index=posts.index)
