"""Messy datasets and damaged caches: `data validate` and `train` report bad rows (train stops
with the list or skips them, as asked), a damaged feature cache or SynthPosts cache is rebuilt,
and a read-only checkpoint folder is used without a byte written into it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import robust_support as rs
from mmaux import paths
from mmaux.analysis.runs import discover_runs, load_test_table, usable
from mmaux.checkpoint import load_model, read_info, read_metrics, read_outputs
from mmaux.cli import main as cli
from mmaux.data import synthposts
from mmaux.data.datasets import load_dataset
from mmaux.evaluate import evaluate_checkpoint
from mmaux.features import PostInputs
from mmaux.predict import Predictor

pytestmark = pytest.mark.slow  # trains tiny checkpoints (a few seconds each)

CLASSES = "neutral,positive,negative"


@pytest.fixture(scope="module")
def checkpoint(private_cache_dir, tmp_path_factory, tiny_bert, tiny_vit):
    return rs.tiny_checkpoint(tmp_path_factory, tiny_bert, tiny_vit)


# --- a messy CSV dataset --------------------------------------------------------------------------

GOOD_ROWS = [  # id, text, label, split: two of each class in train, one per class in val and test
    *[(f"t{i}", f"post number {i} so {w}", w, "train") for i, w in
      enumerate(["neutral", "positive", "negative"] * 2)],
    *[(f"v{i}", f"val post {i}", w, "val") for i, w in enumerate(["neutral", "positive", "negative"])],
    *[(f"s{i}", f"test post {i}", w, "test") for i, w in enumerate(["neutral", "positive", "negative"])],
]
BAD_ROWS = [  # id, text, label, split, the problem kind validate reports
    ("t0", "same id as the first row", "neutral", "train", "duplicate id"),
    ("gone", "its image was never downloaded", "positive", "train", "missing image file"),
    ("angry1", "a label outside the class list", "angry", "test", "unknown label"),
    ("cut", "a half-downloaded image", "negative", "train", "unreadable, truncated or corrupt image"),
    ("page", "a login page saved as .png", "negative", "val", "unreadable, truncated or corrupt image"),
]


def messy_dataset(folder: Path, delimiter: str = ",", bom: bool = False) -> Path:
    """posts.csv + images/<id>.png: the good rows and each kind of bad row."""
    images = folder / "images"
    images.mkdir(parents=True)
    for i, (post_id, *_rest) in enumerate(GOOD_ROWS):
        rs.photo((32, 32), seed=i).save(images / f"{post_id}.png")
    (images / "cut.png").write_bytes(rs.encode(rs.photo((32, 32)), "PNG")[:40])
    (images / "page.png").write_bytes(b"<!DOCTYPE html><html>Sign in</html>")
    rows = [row for row in GOOD_ROWS] + [row[:4] for row in BAD_ROWS]
    frame = pd.DataFrame(rows, columns=["tweet_id", "text", "label", "split"])
    text = frame.to_csv(index=False, sep=delimiter)
    (folder / "posts.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return folder / "posts.csv"


def _dataset_args(csv: Path) -> list[str]:
    return ["--csv", str(csv), "--image-template", "images/{id}.png", "--classes", CLASSES]


@pytest.mark.parametrize("delimiter,bom", [(",", False), (";", True), ("\t", False), ("|", True)],
                         ids=["comma", "semicolon+BOM", "tab", "pipe+BOM"])
def test_validate_reports_every_bad_row_whatever_the_container(private_cache_dir, tmp_path, capsys, delimiter, bom):
    csv = messy_dataset(tmp_path, delimiter, bom)
    assert cli(["data", "validate", *_dataset_args(csv)]) == 1  # bad rows, default policy fail
    report = capsys.readouterr().out
    assert f"{len(GOOD_ROWS) + len(BAD_ROWS)} rows, {len(GOOD_ROWS)} clean" in report  # first of an id is kept
    for post_id, _, _, _, kind in BAD_ROWS:
        assert kind in report and f"(id '{post_id}')" in report, kind
    assert "no file" in report and "gone.png" in report
    assert "label 'angry' is not a class name or index" in report
    assert f"Verdict: NOT usable as is: {len(BAD_ROWS)} bad rows; with --on-bad-rows skip" in report
    assert cli(["data", "validate", *_dataset_args(csv), "--on-bad-rows", "skip"]) == 0


def test_non_utf8_csv_is_reported_by_validate_and_train(private_cache_dir, tmp_path, capsys):
    csv = messy_dataset(tmp_path)
    csv.write_bytes(csv.read_bytes().replace(b"post number 1", "café numéro 1".encode("latin-1")))
    assert cli(["data", "validate", *_dataset_args(csv)]) == 1
    out = capsys.readouterr().out
    assert f"{csv}: not UTF-8 text (line 3" in out and "Re-save the file as UTF-8" in out
    assert cli(["train", *_dataset_args(csv), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{csv}: not UTF-8 text" in err and not (tmp_path / "run").exists()


def _train_csv(csv: Path, out: Path, policy: str, tiny_bert: str, tiny_vit: str) -> int:
    return cli(["train", *_dataset_args(csv), "--on-bad-rows", policy, "--recipe", "cpu", "--epochs", "1",
                "--batch-size", "4", "--text-encoder", tiny_bert, "--image-encoder", tiny_vit, "--out", str(out)])


def test_train_stops_with_the_list_or_skips_the_bad_rows(private_cache_dir, tmp_path, capsys, tiny_bert, tiny_vit):
    csv = messy_dataset(tmp_path / "data", ";", bom=True)
    out = tmp_path / "run"
    assert _train_csv(csv, out, "fail", tiny_bert, tiny_vit) == 2
    err = capsys.readouterr().err
    assert (f"error: {csv}: NOT usable as is: {len(BAD_ROWS)} bad rows; "
            "with --on-bad-rows skip they are dropped") in err  # after the decoding progress bar
    for post_id, *_ in BAD_ROWS:
        assert f"(id '{post_id}')" in err
    assert not out.exists()

    assert _train_csv(csv, out, "skip", tiny_bert, tiny_vit) == 0
    metrics = read_metrics(out)
    assert metrics["test"]["n"] == 3 and metrics["val"]["n"] == 3  # angry1 and page left out
    outputs, _ = read_outputs(out)
    assert sorted(outputs["post_id"]) == ["s0", "s1", "s2"]
    assert read_info(out).train["on_bad_rows"] == "skip"
    # re-evaluating and the dashboard's test table use the same policy, so both still work
    assert evaluate_checkpoint(out, "test")["n"] == 3
    table = load_test_table(out)
    assert sorted(table["post_id"]) == ["s0", "s1", "s2"] and (table["text"] != "").all()
    assert usable(discover_runs([tmp_path])).shape[0] == 1


# --- the feature cache ----------------------------------------------------------------------------

def _inputs(model, frame):
    inputs = PostInputs(model, frame)
    return inputs.text_states.clone(), inputs.image_tokens.clone(), inputs.image_pooled.clone()


@pytest.mark.parametrize("damage", ["delete", "truncate to half", "truncate to 5 bytes", "zero bytes", "garbage"])
def test_damaged_feature_cache_is_recomputed(checkpoint, tmp_path, monkeypatch, damage):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))
    model, info = load_model(checkpoint)
    frame = load_dataset(info.dataset, splits=("test",)).split("test")
    first = _inputs(model, frame)
    files = sorted((tmp_path / "cache" / "features").glob("*.safetensors"))
    assert len(files) == 2  # frozen text layers and frozen image features
    for path in files:
        if damage == "delete":
            path.unlink()
        elif damage == "garbage":
            path.write_bytes(os.urandom(300))
        else:
            size = {"truncate to half": path.stat().st_size // 2, "truncate to 5 bytes": 5, "zero bytes": 0}[damage]
            path.write_bytes(path.read_bytes()[:size])
    again = _inputs(model, frame)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sorted((tmp_path / "cache" / "features").glob("*.safetensors")) == files  # rewritten whole
    assert not list((tmp_path / "cache" / "features").glob("*.tmp*"))


def test_cache_dir_falls_back_when_the_preferred_folders_cannot_be_made(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MMAUX_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(paths, "user_cache", lambda: blocker / "user")
    monkeypatch.setattr(paths.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert paths.cache_dir("features") == tmp_path / "tmp" / "mmaux-cache" / "features"


def test_caches_go_to_the_users_cache_folder_not_the_install_tree(tmp_path, monkeypatch, capsys):
    from mmaux.cli import main

    monkeypatch.delenv("MMAUX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = paths.cache_dir("features")
    assert folder == tmp_path / "xdg" / "mmaux" / "features" and not folder.is_relative_to(paths.REPO_ROOT)
    (folder / "a.safetensors").write_bytes(b"x" * 2_000_000)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'xdg' / 'mmaux'}  (MMAUX_CACHE overrides it")
    assert "features" in out and "2.0 MB" in out
    assert main(["cache", "--clear", "layouts"]) == 2  # not there: said, nothing removed
    assert "holds no 'layouts' cache; it holds: features" in capsys.readouterr().err
    assert main(["cache", "--clear", "all"]) == 0
    assert not folder.exists() and (tmp_path / "xdg" / "mmaux").is_dir()


# --- a read-only checkpoint root ----------------------------------------------------------------

def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
            for p in sorted(root.rglob("*"))}


def test_read_only_checkpoint_root_is_used_without_writing_into_it(checkpoint, tmp_path, monkeypatch, capsys):
    root = tmp_path / "readonly"
    folder = root / "synthposts-sentiment" / "attention" / "ro-seed0"
    shutil.copytree(checkpoint, folder)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "writable-cache"))
    before = _snapshot(root)
    try:
        assert usable(discover_runs([root]))["folder"].tolist() == [str(folder.resolve())]
        predictor = Predictor(folder)
        prediction = predictor.predict([rs.photo()], ["hello"])[0]
        assert abs(sum(prediction.probabilities.values()) - 1) < 1e-5
        assert cli(["evaluate", "--checkpoint", str(folder), "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == read_metrics(folder)["test"]
        assert len(load_test_table(folder)) == 8
        assert (tmp_path / "writable-cache" / "features").is_dir()  # the caches went here
        assert _snapshot(root) == before
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


# --- the SynthPosts cache -------------------------------------------------------------------------

def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["delete the folder", "delete an image", "corrupt the manifest",
                                    "delete the whole cache"])
def test_damaged_synthposts_cache_is_regenerated(checkpoint, tmp_path, monkeypatch, damage):
    """The dashboard's test table of a checkpoint regenerates its posts, byte for byte."""
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))
    first = load_test_table(checkpoint)
    spec = read_info(checkpoint).dataset.synth
    folder = tmp_path / "cache" / "synthposts" / synthposts.cache_key(spec, ("test",))
    files = _digest(folder)
    if damage == "delete the folder":
        shutil.rmtree(folder)
    elif damage == "delete an image":
        next((folder / "images").iterdir()).unlink()
    elif damage == "corrupt the manifest":
        (folder / "manifest.json").write_text("{")
    else:
        shutil.rmtree(tmp_path / "cache")
    again = load_test_table(checkpoint)
    pd.testing.assert_frame_equal(first, again)
    assert _digest(folder) == files
    assert np.isfinite(again["confidence"]).all()
