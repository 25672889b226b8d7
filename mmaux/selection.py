"""Which checkpoints a view compares: a structured choice (task → architectures → loss variants ×
seeds), the rule that only comparable checkpoints are compared, the default comparison, and the
choice written to and read from the URL. Pure functions over the runs table (`analysis.runs`);
the sidebar widgets that draw it live in `mmaux.ui`.

    choice = Selection.of_folders(runs, folders)        # what a list of folders amounts to
    folders = choice.folders(runs)                       # every arch × variant × seed of it
    params = choice.to_params()                          # {"dataset": ..., "task": ..., ...}
    Selection.from_params(params, runs) == choice        # a reload restores it exactly

Comparable means: same dataset, same task, same label names in the same order, and the same
test data (data fingerprint). Post ids are shared across SynthPosts tasks and data versions, so
a common post id is no evidence that two checkpoints can be compared.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from mmaux.analysis import effects
from mmaux.analysis import runs as runs_lib

TASK_COLUMNS = ["dataset", "task"]  # what a comparison never crosses
PARAMS = ("dataset", "task", "arch", "variant", "seed")  # the URL's query parameters for a Selection
LIST_SEPARATOR = ","
PARAM_NAMES = {"dataset": "dataset", "task": "task", "arch": "architecture", "variant": "variants", "seed": "seed"}


@dataclass(frozen=True)
class Selection:
    """A comparison: one dataset and task; architectures, variants and seeds within it (each in
    the runs table's order). Its checkpoints are every combination present."""

    dataset: str
    task: str
    archs: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]

    def folders(self, runs: pd.DataFrame) -> list[str]:
        """The usable folders of this choice, in table order (architecture, variant, seed)."""
        runs = runs_lib.usable(runs)
        keep = ((runs["dataset"] == self.dataset) & (runs["task"] == self.task) & runs["architecture"].isin(self.archs)
                & runs["variant"].isin(self.variants) & runs["seed"].isin(self.seeds))
        return runs.loc[keep, "folder"].tolist()

    @classmethod
    def of_folders(cls, runs: pd.DataFrame, folders: Sequence[str]) -> Selection | None:
        """The smallest choice holding every folder of the first folder's task (folders of
        other tasks are ignored: see `comparable`); None when no folder is a usable run."""
        runs = runs_lib.usable(runs)
        rows = runs.set_index("folder").reindex([f for f in folders if f in set(runs["folder"])])
        if rows.empty:
            return None
        dataset, task = rows.iloc[0][TASK_COLUMNS]
        rows = rows[(rows["dataset"] == dataset) & (rows["task"] == task)]
        return cls(dataset, task, *(_in_order(runs, column, rows[column]) for column in
                                    ("architecture", "variant", "seed")))

    def to_params(self) -> dict[str, str]:
        """Query parameters: dataset, task, and comma-separated arch, variant and seed."""
        return {"dataset": self.dataset, "task": self.task, "arch": LIST_SEPARATOR.join(self.archs),
                "variant": LIST_SEPARATOR.join(self.variants), "seed": LIST_SEPARATOR.join(map(str, self.seeds))}

    @classmethod
    def from_params(cls, params: Mapping[str, str], runs: pd.DataFrame) -> Selection | None:
        """The choice a URL names, restricted to what `runs` holds; None when it names no task
        present (a link to checkpoints that are not here)."""
        if not params.get("dataset") or not params.get("task"):
            return None
        runs = runs_lib.usable(runs)
        task = runs[(runs["dataset"] == params["dataset"]) & (runs["task"] == params["task"])]
        if task.empty:
            return None

        def listed(name: str, column: str, cast=str) -> tuple:
            wanted = [w.strip() for w in str(params.get(name, "")).split(LIST_SEPARATOR) if w.strip()]
            try:
                wanted = {cast(w) for w in wanted}
            except ValueError:
                wanted = set()
            return _in_order(task, column, [v for v in task[column] if v in wanted])

        return cls(params["dataset"], params["task"], listed("arch", "architecture"), listed("variant", "variant"),
                   listed("seed", "seed", int))

    def keeping(self, other: Selection, runs: pd.DataFrame) -> Selection:
        """This choice with `other`'s variants and seeds wherever its task has them: a switch of
        task keeps what the user chose to compare (each part falls back to this choice's own when
        the new task has none of `other`'s)."""
        task = task_runs(runs, (self.dataset, self.task))
        task = task[task["architecture"].isin(self.archs)]
        variants = _in_order(task, "variant", set(task["variant"]) & set(other.variants))
        seeds = _in_order(task, "seed", set(task["seed"]) & set(other.seeds))
        return replace(self, variants=variants or self.variants, seeds=seeds or self.seeds)

    def describe(self) -> str:
        """'SynthPosts · sentiment · attention · CE, CE+ITC · seed 0'."""
        return " · ".join([task_name((self.dataset, self.task)), ", ".join(self.archs), ", ".join(self.variants),
                           "seed " + ", ".join(map(str, self.seeds))])


def _in_order(runs: pd.DataFrame, column: str, values) -> tuple:
    """`values`, without repeats, in the order `column` first shows them in `runs` (variants in
    design order, seeds ascending)."""
    values = set(values)
    if column == "variant":
        return tuple(v for v in runs_lib.VARIANTS if v in values) + tuple(
            sorted(v for v in values if v not in runs_lib.VARIANTS))
    if column == "seed":
        return tuple(sorted(int(v) for v in values))
    return tuple(dict.fromkeys(v for v in runs[column] if v in values))


def complete_params(params: Mapping[str, str], runs: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """A link that names part of a view (`?task=relation`, as the README's examples do), filled
    in: (the link's parameters with every missing part of `PARAMS` added, what was assumed as
    'dataset SynthPosts', 'variants CE, CE+ITC'...). The dataset is the first that has the task
    (or the task the first of the dataset); the rest is the task's default comparison
    (`runs.default_comparison`). Unchanged, with nothing assumed, when the link names no
    dataset or task, or one that `runs` lacks."""
    params = dict(params)
    named = [params.get(n) or None for n in TASK_COLUMNS]  # (dataset, task); None where the link leaves it out
    found = [t for t in tasks(runs) if all(n in (None, v) for n, v in zip(named, t))]
    if named == [None, None] or not found:
        return params, []
    default = Selection.of_folders(runs, runs_lib.default_comparison(task_runs(runs, found[0])))
    filled = {"dataset": found[0][0], "task": found[0][1], **default.to_params()}
    assumed = [name for name in PARAMS if not params.get(name)]
    params.update({name: filled[name] for name in assumed})
    return params, [f"{PARAM_NAMES[n]} {filled[n].replace(LIST_SEPARATOR, ', ')}" for n in assumed]


def task_name(key: tuple[str, str]) -> str:
    """'SynthPosts · sentiment' (the task is left out when it equals the dataset)."""
    dataset, task = key
    return dataset if task == dataset else f"{dataset} · {task}"


def tasks(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, task) of every usable run, in table order."""
    return list(dict.fromkeys(map(tuple, runs_lib.usable(runs)[TASK_COLUMNS].itertuples(index=False))))


@dataclass(frozen=True)
class SeedOptions:
    """The seeds a task's runs were trained with, split by whether they are stored with weights."""

    all: list[int]
    with_weights: list[int]  # seeds whose every run of the task has weights (the pages that run a model)

    @property
    def outputs_only(self) -> list[int]:
        return [s for s in self.all if s not in self.with_weights]

    def note(self, needs_model: bool) -> str:
        """The one line that says which seeds a page offers and that every statistic uses them all."""
        only = _span(self.outputs_only)
        if needs_model:
            return (f"Seeds {only} are stored as predictions only (no weights), so this page, which runs the "
                    f"model, offers seeds {_span(self.with_weights)}; every statistic uses all {len(self.all)}.")
        return (f"Seeds {only} are stored as predictions only (no weights): their outputs are here and in every "
                f"statistic; the pages that run the model offer seeds {_span(self.with_weights)}.")


def _span(seeds: Sequence[int]) -> str:
    """'5–19' for a run of consecutive seeds, else '1, 3, 7'."""
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds)) or "none"


def seed_options(task: pd.DataFrame) -> SeedOptions:
    """`SeedOptions` of one task's usable runs (`task_runs`)."""
    weighted = task.assign(weights=task.get("weights", True)).groupby("seed")["weights"].all().astype(bool)
    return SeedOptions(all=sorted(int(s) for s in weighted.index),
                       with_weights=sorted(int(s) for s in weighted[weighted].index))


def task_runs(runs: pd.DataFrame, key: tuple[str, str]) -> pd.DataFrame:
    runs = runs_lib.usable(runs)
    return runs[(runs["dataset"] == key[0]) & (runs["task"] == key[1])].reset_index(drop=True)


# --- comparable checkpoints ---------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """What must be equal for two checkpoints to be compared."""

    dataset: str
    task: str
    labels: tuple[str, ...]
    data: str  # data fingerprint ('' when the checkpoint does not record one)


def comparable(folders: Sequence[str], identities: Mapping[str, Identity], names: Mapping[str, str] | None = None
               ) -> tuple[list[str], str]:
    """(the folders comparable with the first, '' or one line saying why the others are not
    compared). `names` gives the folders' display names for that line."""
    if not folders:
        return [], ""
    names = names or {}
    first = identities[folders[0]]
    kept, refused = [folders[0]], []
    for folder in folders[1:]:
        why = difference(first, identities[folder])
        (refused.append((folder, why)) if why else kept.append(folder))
    if not refused:
        return kept, ""
    folder, why = refused[0]
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    return kept, (f"Not compared: {names.get(folder, folder)}{more} {why} than {names.get(folders[0], folders[0])}, "
                  "so its predictions cannot be scored against the same gold labels.")


def difference(first: Identity, other: Identity) -> str:
    """'' when comparable, else what differs, phrased to follow 'X ... than Y'."""
    if (first.dataset, first.task) != (other.dataset, other.task):
        return f"is {task_name((other.dataset, other.task))}, another task"
    if first.labels != other.labels:
        return f"has other labels ({', '.join(other.labels)})"
    if first.data and other.data and first.data != other.data:
        return f"was trained and tested on other data (fingerprint {other.data[:8]} vs {first.data[:8]})"
    return ""


# --- the default comparison ---------------------------------------------------------------------

def default_group(runs: pd.DataFrame, frames: Mapping[tuple, pd.DataFrame | None]) -> tuple[tuple | None, str]:
    """(group key, why) of the comparison to open with: the group of the strongest vs-CE effect
    over every group (`strongest_effect`). `frames`: group key -> `effects.effects_table` rows."""
    rows = [frame for frame in frames.values() if frame is not None and len(frame)]
    if not rows:
        keys = [key for key, _ in runs_lib.groups(runs_lib.usable(runs))]
        return (keys[0] if keys else None), ""
    best = strongest_effect(pd.concat(rows, ignore_index=True))
    if best is None:
        return tuple(rows[0][runs_lib.GROUP_COLUMNS].iloc[0]), ""
    if best["verdict"] == effects.SUPPORTED:
        why = f"the largest supported effect: {best['effect']} on {_where(best)}, Δ {best['delta']:+.1f} points"
    else:
        why = (f"no effect is supported; the clearest estimate is {best['effect']} on all posts, "
               f"Δ {best['delta']:+.1f} points (CI {best['ci_low']:+.1f} to {best['ci_high']:+.1f}, {best['verdict']})")
    return tuple(best[runs_lib.GROUP_COLUMNS]), why


def strongest_effect(frame: pd.DataFrame) -> pd.Series | None:
    """The vs-CE effect to show first: the largest supported one (any slice); without one, the
    estimate on all posts furthest from 0 relative to its CI half-width (not the noisiest);
    None when there is no vs-CE effect (no auxiliary variant beside CE)."""
    every = frame[frame["kind"] == effects.VS_CE]
    supported = every[every["verdict"] == effects.SUPPORTED]
    if len(supported):
        return supported.loc[supported["delta"].abs().idxmax()]
    overall = every[every["slicing"] == effects.OVERALL]
    if overall.empty:
        return None
    half_width = ((overall["ci_high"] - overall["ci_low"]) / 2).clip(lower=1e-9)
    return overall.loc[(overall["delta"].abs() / half_width).idxmax()]


def _where(row) -> str:
    return "all posts" if row["slicing"] == effects.OVERALL else f"{row['slicing']} = {row['slice']}"


def default_selection(runs: pd.DataFrame, key: tuple | None) -> Selection | None:
    """Every variant of the group `key` (dataset, task, architecture) at its lowest seed that has
    the most variants (`runs.default_comparison` within the group)."""
    if key is None:
        return None
    runs = runs_lib.usable(runs)
    return Selection.of_folders(runs, runs_lib.default_comparison(runs_lib.group_runs(runs, key)))
