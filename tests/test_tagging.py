"""`mmaux tag`: a tiny relation checkpoint (trained on the authors' TIR file in miniature) tags the
MSD fixture, whose posts record no relation. The tags are stored beside the dataset keyed by its
fingerprint and the checkpoint, are not overwritten by tagging again, come from a relation
checkpoint only, join the MSD runs' split tables as predicted slice columns, and the claims (whose
cached copy follows the tags) use them and say which checkpoint predicted them, in `mmaux claims`
and on the home page.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from authors_layout import write_single, write_tir

from apptest_support import page
from mmaux import tagging, views
from mmaux.analysis import claims, group_results, testable
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import read_info, read_outputs
from mmaux.cli import main as cli
from mmaux.data.csvdata import CsvDatasetSpec
from mmaux.data.datasets import DatasetSpec, fingerprint, load_dataset

TINY = ["--recipe", "cpu", "--epochs", "1", "--batch-size", "4", "--seeds", "0"]


@pytest.fixture(scope="module")
def world(private_cache_dir, tmp_path_factory, tiny_bert, tiny_vit):
    """Data (TIR and MSD in the authors' layout), a CE relation checkpoint trained on TIR, and CE
    CE+ITC and CE+ITM runs on MSD; what the MSD runs showed before tagging; then `mmaux tag` of MSD."""
    data, root, tagger_root = (tmp_path_factory.mktemp(name) for name in ("data", "runs", "tagger"))
    write_tir(data)
    write_single(data, "msd", 5000)
    encoders = ["--text-encoder", tiny_bert, "--image-encoder", tiny_vit]
    assert cli(["sweep", "--preset", "tir", "--root", str(data), "--variants", "ce", *TINY, *encoders,
                "--out", str(tagger_root)]) == 0
    assert cli(["sweep", "--preset", "msd", "--root", str(data), "--variants", "ce,itc,itm", *TINY, *encoders,
                "--out", str(root)]) == 0
    runs = runs_lib.usable(runs_lib.discover_runs([root]))
    group = runs_lib.groups(runs)[0][1]
    ce = str(root / "msd" / "attention" / "ce-seed0")
    before = {"table": runs_lib.load_split_table(ce, "test"), "stamp": runs_lib.checkpoint_stamp(ce),
              "claims": group_results.group_claims(group), "files": _files(data)}
    tagger = str(tagger_root / "tir" / "attention" / "ce-seed0")
    assert cli(["tag", "--relation-checkpoint", tagger, "--preset", "msd", "--root", str(data)]) == 0
    return {"data": data, "root": root, "tagger": tagger, "ce": ce, "group": group, "before": before}


def _files(folder: Path) -> dict[str, str]:
    """path -> sha256 of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _msd(data: Path) -> DatasetSpec:
    return DatasetSpec(csv=CsvDatasetSpec.from_preset("msd", data))


def _tag_file(world) -> Path:
    """Where the MSD tags must be: beside the CSV, named by the data's and the checkpoint's keys."""
    key = fingerprint(load_dataset(_msd(world["data"])).frame)
    return world["data"] / "mmaux-tags" / f"{key[:16]}-{tagging.checkpoint_identity(world['tagger'])[:16]}.parquet"


def test_the_tags_are_stored_beside_the_dataset_keyed_by_its_fingerprint_and_the_checkpoint(world, capsys):
    path = _tag_file(world)
    after = _files(world["data"])
    assert {k: v for k, v in after.items() if not k.startswith("mmaux-tags/")} == world["before"]["files"]
    assert [k for k in after if k.startswith("mmaux-tags/")] == [f"mmaux-tags/{path.name}"]
    tags = tagging.read_tags(path)
    posts = load_dataset(_msd(world["data"])).frame
    assert list(tags["post_id"]) == list(posts["post_id"]) and list(tags["split"]) == list(posts["split"])
    probs = tags[[f"p_{c}" for c in tagging.RELATION_LABELS]].to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(tags["p_image_adds"], probs[:, 0] + probs[:, 1])  # image_adds_text_(not)repr
    assert np.allclose(tags["p_text_represented"], probs[:, 0] + probs[:, 2])  # image_(not)adds_text_repr
    assert (tags["image_adds"] == (tags["p_image_adds"] > 0.5)).all()
    assert (tags["text_represented"] == (tags["p_text_represented"] > 0.5)).all()
    assert list(tags["relation"]) == [tagging.RELATION_LABELS[i] for i in probs.argmax(1)]
    meta = tagging.tags_meta(path)
    assert meta["fingerprints"][0] == fingerprint(posts) and meta["checkpoint"] == str(Path(world["tagger"]).resolve())
    assert meta["checkpoint_label"] == read_info(world["tagger"]).label


def test_the_tagger_predicts_as_evaluation_did(world, tmp_path):
    """Tagging TIR's own test posts gives the relation probabilities stored in its test outputs."""
    tir = load_dataset(DatasetSpec(csv=CsvDatasetSpec.from_preset("tir", world["data"]))).split("test")
    tags = tagging.predict_tags(world["tagger"], tir)
    stored, _ = read_outputs(world["tagger"])
    columns = [f"p_{c}" for c in tagging.RELATION_LABELS]
    assert list(tags["post_id"]) == list(stored["post_id"])
    assert np.allclose(tags[columns].to_numpy(), stored[columns].to_numpy(), atol=1e-6)


def test_tagging_again_is_refused_and_the_file_kept(world, capsys):
    path = _tag_file(world)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    capsys.readouterr()
    assert cli(["tag", "--relation-checkpoint", world["tagger"], "--preset", "msd", "--root", str(world["data"])]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (f"error: {path}: these posts were tagged by this checkpoint "
                                                        "before; the file is kept (delete it to tag again)")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_a_checkpoint_of_another_task_is_refused(world, capsys):
    files = _files(world["data"])
    capsys.readouterr()
    assert cli(["tag", "--relation-checkpoint", world["ce"], "--preset", "msd", "--root", str(world["data"])]) == 2
    assert capsys.readouterr().err == (  # refused before the data is read: no progress bar either
        f"error: {world['ce']}: not a relation checkpoint (its labels are not_sarcastic, sarcastic); tagging needs "
        "one trained on the 4 relation classes image_adds_text_repr, image_adds_text_notrepr, "
        "image_notadds_text_repr, image_notadds_text_notrepr (TIR, or SynthPosts relation)\n")
    assert _files(world["data"]) == files


def test_split_tables_gain_the_predicted_columns(world):
    untagged = world["before"]["table"]
    assert not set(tagging.PREDICTED_COLUMNS) & set(untagged.columns)
    assert runs_lib.slice_columns(untagged) == ["label"]
    tags = tagging.read_tags(_tag_file(world)).set_index("post_id")
    label = read_info(world["tagger"]).label
    for split in ("test", "val"):
        table = runs_lib.load_split_table(world["ce"], split)
        assert runs_lib.slice_columns(table) == [*tagging.PREDICTED_COLUMNS, "label"]
        assert runs_lib.class_names(table) == ["not_sarcastic", "sarcastic"]  # the tags' p_ columns stay out
        expected = tags.loc[table["post_id"]]
        for column in tagging.TAG_COLUMNS:
            assert list(table[tagging.predicted(column)]) == list(expected[column])
        assert (table[tagging.TAGGED_BY] == label).all()
        assert table.drop(columns=[*tagging.PREDICTED_COLUMNS, tagging.TAGGED_BY]).equals(
            untagged if split == "test" else runs_lib.join_posts(*_val(world["ce"])))
    assert runs_lib.checkpoint_stamp(world["ce"]) != world["before"]["stamp"]  # the dashboard's caches see the tags


def _val(folder: str):
    info = read_info(folder)
    return read_outputs(folder, runs_lib.VAL_OUTPUTS)[0], load_dataset(info.dataset).split("val"), info.label_names


def test_the_claims_use_the_predicted_slices_and_say_so(world, capsys):
    assert world["before"]["claims"].empty  # MSD records no relation: nothing to test before tagging
    frame = group_results.group_claims(world["group"])  # cached on disk: its key follows the tags
    label = read_info(world["tagger"]).label
    assert len(frame) and set(frame["slicing"]) <= set(tagging.PREDICTED_COLUMNS)
    assert (frame["slice_source"] == f"predicted by {label}").all()
    assert frame.equals(claims.claims_table(world["group"], checks=testable.untestable))
    test = runs_lib.load_split_table(world["ce"], "test")
    for row in frame.itertuples():
        op = next(op for c in claims.CLAIMS for op in c.operationalisations if row.slicing in op.columns)
        a, b = op.masks(test)
        assert (row.n_a, row.n_b) == (a.sum(), b.sum())
    assert (views.claims_view(frame)["slices"] == f"predicted by {label}").all()
    capsys.readouterr()
    assert cli(["claims", str(world["root"])]) == 0
    out = capsys.readouterr().out
    lines, words = out.split("\n\nEach claim pooled")[0].splitlines(), out.split("\n\nIn words")[1]
    assert lines == [claims.line(row) for row in frame.itertuples()]
    assert all(line.endswith(f" | slices predicted by {label}") for line in lines)
    assert words.splitlines()[1:] == [f"- {s}" for s in claims.sentences(frame, pool=claims.pooled(frame))]


def test_the_home_page_says_which_checkpoint_predicted_the_slices(world, monkeypatch):
    at = page("app.py", str(world["root"]), monkeypatch).run()
    assert not at.exception
    shown = next(df.value for df in at.dataframe if "slice A − slice B" in df.value.columns)
    label = read_info(world["tagger"]).label
    assert len(shown) and (shown["slices"] == f"predicted by {label}").all()
    assert shown["slice A − slice B"].str.startswith(tagging.PREDICTED_COLUMNS).all()


def test_recorded_columns_win_over_predicted_ones():
    posts = pd.DataFrame({"image_adds": [True, False], tagging.predicted("image_adds"): [False, True],
                          tagging.TAGGED_BY: "x"})
    op = claims.ITC_CLAIM.operationalisations[0]
    assert op.column(posts) == "image_adds" and op.source(posts) == claims.RECORDED
    a, _ = op.masks(posts)
    assert list(a) == [True, False]
    only = posts.drop(columns="image_adds")
    assert op.column(only) == tagging.predicted("image_adds") and op.source(only) == "predicted by x"
    assert list(op.masks(only)[0]) == [False, True]


def test_a_damaged_tag_file_is_named(tmp_path):
    path = tmp_path / f"{'0' * 16}-{'1' * 16}.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(tagging.TagsError, match=f"^{path}: not a readable Parquet file .*; delete it and run"):
        tagging.tags_meta(path)
    pd.DataFrame({"post_id": ["1"]}).to_parquet(path)
    with pytest.raises(tagging.TagsError, match=f"^{path}: not a tag file"):
        tagging.tags_meta(path)
    with pytest.raises(tagging.TagsError, match=r"missing column\(s\) \['split', 'relation'"):
        tagging.read_tags(path)
    os.remove(path)
