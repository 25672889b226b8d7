"""The README's table of the shipped checkpoints, generated from their metrics and test outputs.

Per task × architecture × loss variant: test macro-F1 mean ± std over seeds, the difference from
the CE baseline with two p-values (paired t-test across seeds; paired bootstrap over test posts
with seeds pooled), then the 2 × 2 analysis (main effects of ITC and ITM, their interaction).

    python bench/checkpoint_table.py [--root checkpoints]
"""
from __future__ import annotations

import argparse

import pandas as pd

from mmaux.analysis import runs as runs_lib
from mmaux.analysis.stats import ALL
from mmaux.paths import DEFAULT_CHECKPOINTS


def _fmt(value, digits=1):
    return "" if pd.isna(value) else f"{value:+.{digits}f}" if digits == 1 else f"{value:.{digits}f}"


def group_rows(group: pd.DataFrame, summary: pd.DataFrame, tests: pd.DataFrame):
    """Markdown rows of one group, and its 2 × 2 effects."""
    tables = {f: runs_lib.load_test_table(f) for f in group["folder"]}
    comparison = runs_lib.compare_group(group, tables, n_boot=1000, slices=("evidence",))
    overall = comparison.slice_differences.get("evidence", pd.DataFrame())
    overall = overall[overall["slice"] == ALL].set_index("variant") if len(overall) else overall
    rows = []
    for row in summary.itertuples():
        test = tests[tests["variant"] == row.variant]
        diff = p_seed = p_boot = ""
        if len(test):
            diff, p_seed = _fmt(test["diff"].iloc[0]), _fmt(test["p"].iloc[0], 3)
            p_boot = _fmt(overall.loc[row.variant, "p"], 3) if row.variant in overall.index else ""
        rows.append(f"| {row.task} | {row.architecture} | {row.variant} | {row.seeds} | {row.macro_f1} | "
                    f"{row.accuracy} | {diff} | {p_seed} | {p_boot} |")
    return rows, comparison.effects


def _of_group(table: pd.DataFrame, key: tuple) -> pd.DataFrame:
    return table[(table[runs_lib.GROUP_COLUMNS] == pd.Series(key, index=runs_lib.GROUP_COLUMNS)).all(axis=1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_CHECKPOINTS))
    args = parser.parse_args()
    runs = runs_lib.discover_runs([args.root])
    broken = runs[runs["error"].notna() & (runs["error"] != "")] if "error" in runs else runs.iloc[:0]
    usable = runs_lib.usable(runs)
    summary, tests = runs_lib.seed_summary(usable), runs_lib.seed_tests(usable)
    lines = ["| task | architecture | variant | seeds | macro-F1 | accuracy | Δ macro-F1 vs CE | p (seeds, t-test) "
             "| p (posts, bootstrap) |", "|---|---|---|---|---|---|---|---|---|"]
    effects = ["| task | architecture | effect | estimate (F1 points) | 95% CI | p |", "|---|---|---|---|---|---|"]
    for key, group in runs_lib.groups(usable):
        rows, design = group_rows(group, _of_group(summary, key), _of_group(tests, key))
        lines += rows
        for e in design.itertuples():
            effects.append(f"| {key[1]} | {key[2]} | {e.effect} | {e.estimate:+.2f} | "
                           f"[{e.ci_low:+.2f}, {e.ci_high:+.2f}] | {e.p:.3f} |")
    print(f"{len(usable)} usable checkpoints under {args.root}" + (f", {len(broken)} broken" if len(broken) else ""))
    print("\n".join(lines))
    print()
    print("\n".join(effects))


if __name__ == "__main__":
    main()
