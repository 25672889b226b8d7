"""A group's effects, claim contrasts and slice scores travel with the shipped checkpoints
(checkpoints/.analysis):
they are current (keyed by the runs' content and the estimator's code), equal a fresh estimate,
and are found wherever the checkpoints are copied to."""
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mmaux.analysis import claims, effects, group_results
from mmaux.analysis import runs as runs_lib

REGENERATE = "regenerate them: `make analysis` (python -m mmaux effects checkpoints --store)"


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def shipped(app_runs):
    root, runs = app_runs
    return Path(root), dict(runs_lib.groups(runs))


def expected_files(groups: dict, effects_folder: Path) -> set[str]:
    """What `store` writes for `groups`, relative to its folder (slicings read from the effects)."""
    files = set()
    for group in groups.values():
        name = f"{group_results.effects_key(group)}.parquet"
        files.add(f"{group_results.EFFECTS}/{name}")
        files.add(f"{group_results.CLAIMS}/{group_results.claims_key(group)}.parquet")
        frame = pd.read_parquet(effects_folder / name) if (effects_folder / name).is_file() else None
        files |= {f"{group_results.SLICES}/{group_results.group_key(group, s)}.parquet"
                  for s in ([] if frame is None else group_results.slicings_of(frame))}
    return files


def test_every_group_ships_its_current_effects_and_slice_scores_and_nothing_stale(shipped):
    root, groups = shipped
    folder = root / group_results.SHIPPED
    present = {str(p.relative_to(folder)) for p in folder.glob("*/*")}
    expected = expected_files(groups, folder / group_results.EFFECTS)
    assert present == expected, f"missing {sorted(expected - present)}, stale {sorted(present - expected)}; {REGENERATE}"


def test_the_shipped_effects_and_slice_scores_equal_a_fresh_estimate(shipped):
    """Every statistic estimated afresh from the runs' outputs. Which rows are untestable is taken
    from the stored frame here (deciding it runs the ITM models: tests/test_testable.py checks
    `testable.untestable` against them)."""
    root, groups = shipped
    group = min(groups.values(), key=len)
    stored = group_results.group_effects(group)  # from checkpoints/.analysis: the cache is empty
    pd.testing.assert_frame_equal(stored, effects.effects_table(group, runs_lib.load_split_table))
    stored_claims = group_results.group_claims(group)
    untestable = stored_claims[stored_claims["verdict"] == effects.UNTESTABLE]
    reasons = dict(zip(untestable["effect"], untestable["reason"]))
    pd.testing.assert_frame_equal(stored_claims, claims.claims_table(group, runs_lib.load_split_table,
                                                                     checks=lambda _: reasons))
    slicing = group_results.slicings_of(stored)[0]
    tables = {f: runs_lib.load_test_table(f) for f in group["folder"]}
    split = effects.SplitPredictions.from_tables(group, tables, runs_lib.class_names(next(iter(tables.values()))))
    pd.testing.assert_frame_equal(group_results.group_slice_scores(group, [slicing])[slicing],
                                  effects.slice_scores(split, slicing))


def test_a_copy_of_the_checkpoints_reads_the_results_it_carries(shipped, tmp_path, monkeypatch):
    """Keys follow content, not paths: a copied root finds its results and estimates nothing."""
    root, groups = shipped
    key, group = next(iter(groups.items()))
    shutil.copytree(root, tmp_path / "copy")
    moved = dict(runs_lib.groups(runs_lib.usable(runs_lib.discover_runs([tmp_path / "copy"]))))[key]
    assert group_results.claims_key(moved) == group_results.claims_key(group)

    def no_estimate(*args, **kwargs):
        raise AssertionError("the copy carries its results: nothing is estimated")

    monkeypatch.setattr(effects, "effects_table", no_estimate)
    monkeypatch.setattr(effects, "slice_scores", no_estimate)
    monkeypatch.setattr(claims, "claims_table", no_estimate)
    assert len(group_results.group_claims(moved))
    frame = group_results.group_effects(moved)
    assert set(frame["architecture"]) == {key[-1]}
    slicings = group_results.slicings_of(frame)
    assert slicings and set(group_results.group_slice_scores(moved, slicings)) == set(slicings)


def test_store_writes_every_result_and_replaces_what_was_there(shipped, tmp_path):
    root, groups = shipped
    key, group = next(iter(groups.items()))
    stale = tmp_path / group_results.SHIPPED / group_results.EFFECTS / "old.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    stored = group_results.store(group, tmp_path)
    present = {str(p.relative_to(stored)) for p in stored.glob("*/*")}
    assert present == expected_files({key: group}, stored / group_results.EFFECTS)
    assert len(present) > 1 and not stale.exists()


def test_the_effects_command_counts_what_the_home_page_shows(shipped, capsys):
    from mmaux.cli import main

    root, groups = shipped
    assert main(["effects", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(groups)
    for line, (key, group) in zip(lines, groups.items()):
        frame, contrasts = group_results.group_effects(group), group_results.group_claims(group)
        assert line == (f"{runs_lib.group_name(key)}: {len(group)} runs, {len(frame)} effects, "
                        f"{(frame['verdict'] == 'supported').sum()} supported; {len(contrasts)} claim contrasts, "
                        f"{(contrasts['verdict'] == 'supported').sum()} supported")


def test_the_claims_command_prints_one_line_per_contrast(shipped, capsys, monkeypatch):
    from mmaux.cli import main

    root, groups = shipped
    monkeypatch.setenv("MMAUX_CHECKPOINTS", str(root))
    assert main(["claims"]) == 0
    lines, rest = capsys.readouterr().out.split("\n\nEach claim pooled")
    pooled_lines, words = rest.split("\n\nIn words")
    lines = lines.splitlines()
    frames = [group_results.group_claims(group) for group in groups.values()]
    expected = [claims.line(row) for frame in frames for row in frame.itertuples()]
    assert lines == expected and len(lines) == 8 * len(groups)  # 2 claims × 2 operationalisations × 2 effects
    assert all(any(f"| {verdict}" in line for verdict in effects.VERDICTS) for line in lines)
    every = pd.concat(frames, ignore_index=True)
    pool = claims.pooled(every)
    assert pooled_lines.splitlines()[1:] == [f"{r.claim} | {r.effect} | {claims.pooled_text(r)} | "
                                             f"{claims.verdict_text(r)}" for r in pool.itertuples()]
    assert all(f"({100 * row.ci_level:.1f} % CI, FCR-adjusted)" in line
               for line, row in zip(lines, (r for f in frames for r in f.itertuples())))
    sentences = words.splitlines()[1:]
    assert len(sentences) == 2 and sentences[0].startswith("- ITC helps where the image adds meaning: ")
    assert sentences == [f"- {sentence}" for sentence in claims.sentences(every, pool=pool)]


def test_the_power_command_plans_seeds_from_the_measured_spread(shipped, capsys):
    from mmaux.cli import main

    root, groups = shipped
    assert main(["power", str(root), "--effect", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    group = next(iter(groups.values()))
    row = group_results.group_effects(group).set_index(["effect", "slicing"]).loc[("CE+ITC", effects.OVERALL)]
    first = next(line for line in lines if " | CE+ITC: " in line)
    assert first.startswith(f"{runs_lib.group_name(tuple(group[runs_lib.GROUP_COLUMNS].iloc[0]))} | CE+ITC: "
                            f"{row['seeds']} seeds, per-seed Δ sd {row['se'] * row['seeds'] ** 0.5:.2f} points")
    assert "3 points needs" in first
    assert main(["power", str(root), "--effect", "0"]) == 2


def test_the_effects_command_names_a_root_without_checkpoints(tmp_path, capsys):
    from mmaux.cli import main

    assert main(["effects", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: no usable checkpoints under {tmp_path}"


def test_the_effects_command_says_when_it_cannot_write_the_results(shipped, tmp_path, capsys):
    from mmaux.cli import main

    root, groups = shipped
    copy = tmp_path / "copy"
    shutil.copytree(next(iter(groups.values()))["folder"].iloc[0], copy / "run")
    (copy / f"{group_results.SHIPPED}.new").write_text("a file where the staging folder would go")
    assert main(["effects", str(copy), "--store"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {copy / group_results.SHIPPED}: ") and "writable copy" in err


def test_a_margin_of_its_own_is_estimated_apart_and_never_stored(shipped, capsys):
    from mmaux.cli import main

    root, groups = shipped
    assert main(["effects", str(root), "--store", "--margin", "1"]) == 2
    assert "default --margin" in capsys.readouterr().err
    group = next(iter(groups.values()))
    narrow, default = group_results.group_effects(group, margin=1.0), group_results.group_effects(group)
    assert (narrow["margin"] == 1.0).all() and (default["margin"] == effects.MARGIN).all()
    assert group_results.effects_key(group, 1.0) != group_results.effects_key(group)
    assert (narrow["verdict"] == effects.EQUIVALENT).sum() <= (default["verdict"] == effects.EQUIVALENT).sum()
    pd.testing.assert_series_equal(narrow["delta"], default["delta"])
