"""Predictions-only runs (no weights) and `mmaux reproduce`: a run saved without its weights is
trained again from its config.json into exactly the outputs it stored."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CheckpointError, load_model, read_info, read_metrics, read_outputs
from mmaux.cli import main as cli
from mmaux.reproduce import compare_outputs, train_config

TINY = ["--task", "sentiment", "--n-train", "24", "--n-val", "12", "--n-test", "12", "--recipe", "cpu",
        "--epochs", "2", "--batch-size", "8", "--aux", "itc,itm", "--seed", "3"]
pytestmark = pytest.mark.slow


def fresh_process(*args: str) -> subprocess.CompletedProcess:
    """`python -m mmaux ARGS` in a process of its own: a reproduction is a claim about another
    process (another session, another day), and the suite's earlier tests leave torch's process
    state as they like (in one full run the same process trained the two runs 2e-7 apart)."""
    return subprocess.run([sys.executable, "-m", "mmaux", *args], capture_output=True, text=True, env=os.environ.copy())


@pytest.fixture(scope="module")
def outputs_only(private_cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "itc-itm-seed3"
    done = fresh_process("train", *TINY, "--predictions-only", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_a_predictions_only_run_marks_itself_and_keeps_no_weights_or_embeddings(outputs_only):
    assert sorted(p.name for p in outputs_only.iterdir()) == ["config.json", "metrics.json", "test_outputs.parquet",
                                                               "val_outputs.parquet"]
    assert json.loads((outputs_only / "config.json").read_text())["weights"] is False
    info = read_info(outputs_only)
    assert not info.weights and not info.has_model and info.model.loss.itc  # the config stays complete
    frame, arrays = read_outputs(outputs_only)
    assert arrays == {} and {"pred", "itm_match", "itc_cosine", "p_neutral"} <= set(frame.columns)
    assert read_metrics(outputs_only)["torch_threads"] >= 1
    row = runs_lib.describe_run(outputs_only)
    assert row["error"] == "" and row["weights"] is False and row["seed"] == 3


def test_loading_its_model_is_refused_with_the_command_that_rebuilds_it(outputs_only):
    with pytest.raises(CheckpointError, match="saved without its weights; `mmaux reproduce --checkpoint"):
        load_model(outputs_only)


def test_a_run_with_weights_records_them_as_before(tmp_path, private_cache_dir):
    """Runs with weights write no `weights` field: config.json of the shipped seeds 0-4 is unchanged."""
    out = tmp_path / "with-weights"
    assert cli(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert "weights" not in json.loads((out / "config.json").read_text())
    assert read_info(out).has_model and runs_lib.describe_run(out)["weights"] is True


def test_reproduce_trains_the_same_outputs_to_the_last_bit(outputs_only, tmp_path):
    out = tmp_path / "again"
    done = fresh_process("reproduce", "--checkpoint", str(outputs_only), "--out", str(out))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    printed = done.stdout
    assert "test: identical: 12 posts, 0 predictions differ" in printed
    assert "val: identical: 12 posts, 0 predictions differ" in printed
    model, info = load_model(out)  # now with weights: the pages that run the model can use it
    assert info.seed == 3 and info.has_model
    stored, _ = read_outputs(outputs_only)
    again, _ = read_outputs(out)
    pd.testing.assert_frame_equal(stored, again, check_exact=True)


def test_compare_outputs_reports_a_changed_prediction(outputs_only, tmp_path):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    copy = tmp_path / "edited"
    shutil.copytree(outputs_only, copy)
    table = pq.read_table(copy / "test_outputs.parquet").to_pandas()
    table.loc[0, "pred"] = (table.loc[0, "pred"] + 1) % 3
    table.loc[0, "p_neutral"] = np.nextafter(table.loc[0, "p_neutral"], 2, dtype=np.float32)
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), copy / "test_outputs.parquet")
    test, val = compare_outputs(outputs_only, copy)
    assert (test.predictions_differ, test.bitwise_equal, test.identical) == (1, False, False)
    assert 0 < test.max_probability_diff < 1e-6
    assert val.identical
    assert "DIFFERENT" in test.line()


def test_an_imported_run_cannot_be_reproduced(tmp_path):
    folder = tmp_path / "imported"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model": None, "dataset": {"kind": "synthposts", "task": "sentiment"}, "label_names": ["a", "b", "c"],
        "encoders": {}, "seed": 0, "imported": {"model": "m", "loss": {}, "source": "x.csv", "format": "predictions",
                                                 "probabilities": False}}))
    with pytest.raises(CheckpointError, match="mmaux cannot train it again"):
        train_config(folder, tmp_path / "out")


@pytest.mark.parametrize("value", ["no", 0, None])
def test_a_weights_field_that_is_not_true_or_false_is_refused(outputs_only, tmp_path, value):
    import shutil

    copy = tmp_path / "bad"
    shutil.copytree(outputs_only, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "weights": value}))
    with pytest.raises(CheckpointError, match="weights must be true or false"):
        read_info(copy)


def test_a_missing_folder_or_a_root_of_runs_is_named_for_what_it_is(outputs_only, tmp_path):
    with pytest.raises(CheckpointError, match=r"no-such-dir: no such checkpoint folder$"):
        read_info(tmp_path / "no-such-dir")
    root = outputs_only.parent
    with pytest.raises(CheckpointError, match="holds 1 checkpoint folder\\(s\\), not one checkpoint; give one of them: "
                                              f".*{outputs_only.name}"):
        read_info(root)


def test_evaluate_prints_the_stored_metrics_of_a_predictions_only_run(outputs_only, capsys):
    assert cli(["evaluate", "--checkpoint", str(outputs_only), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == read_metrics(outputs_only)["test"]
    assert cli(["evaluate", "--checkpoint", str(outputs_only), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"(stored metrics: {outputs_only} holds predictions only, no weights to run)\nval: accuracy")


def test_commands_that_run_a_model_name_the_predictions_only_run(outputs_only, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (32, 32), "red").save(tmp_path / "post.png")
    assert cli(["predict", "--checkpoint", str(outputs_only), "--image", str(tmp_path / "post.png"), "--text", "hi"]) == 2
    assert "predictions only: saved without its weights; `mmaux reproduce --checkpoint" in capsys.readouterr().err
    assert cli(["embed", "--checkpoint", str(outputs_only)]) == 0
    assert capsys.readouterr().out == f"left out (predictions only: no embeddings to lay out): {outputs_only}\n"
