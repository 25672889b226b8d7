"""Train -> checkpoint -> reload, on a tiny SynthPosts task with the real built-in encoders."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmaux.checkpoint import CheckpointError, load_model, read_info, read_metrics, read_outputs
from mmaux.cli import main as cli

TINY = ["--task", "sentiment", "--n-train", "24", "--n-val", "12", "--n-test", "12", "--recipe", "cpu",
        "--epochs", "2", "--batch-size", "8"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private cache so the tests neither read nor fill the user's."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("MMAUX_CACHE")
    os.environ["MMAUX_CACHE"] = str(cache)
    yield {**os.environ, "MMAUX_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    if old is None:
        os.environ.pop("MMAUX_CACHE")
    else:
        os.environ["MMAUX_CACHE"] = old


@pytest.fixture(scope="module")
def trained(env, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "itc-itm"
    assert cli(["train", *TINY, "--aux", "itc,itm", "--out", str(out)]) == 0
    return out


def test_checkpoint_has_its_files_and_no_pickle(trained):
    names = sorted(p.name for p in trained.iterdir())
    assert names == ["config.json", "metrics.json", "model.safetensors", "test_outputs.parquet",
                     "val_outputs.parquet"]
    info = read_info(trained)
    assert info.label_names == ("neutral", "positive", "negative")
    assert info.model.loss.itc and info.model.loss.itm and info.weights_dtype == "float16"
    assert set(info.encoders) == {"minilm", "efficientnet-lite0"}
    metrics = read_metrics(trained)
    assert {"val", "test", "best_epoch", "history"} <= set(metrics)
    assert metrics["aux_reaches_classifier"] == {"itc": True, "itm": True}  # the cpu recipe's adapter
    assert 0.0 <= metrics["test"]["macro_f1"] <= 1.0
    assert set(metrics["test"]["per_slice"]) >= {"evidence", "relation"}


def test_saved_weights_exclude_untouched_encoder_weights(trained):
    from safetensors.torch import load_file

    keys = set(load_file(trained / "model.safetensors"))
    assert not any(k.startswith(("backbone.image.", "backbone.text.")) for k in keys)  # cpu recipe: both frozen
    assert {"classifier.1.weight", "logit_scale", "itm_head.weight", "backbone.fusion.query.weight",
            "backbone.fusion.key.weight", "backbone.fusion.match.weight", "backbone.text_adapter.down.weight",
            "backbone.itc_image_pool.score.weight"} <= keys  # cpu recipe: ITC projections = query and key
    assert not keys & {"text_proj.weight", "image_proj.weight"}


@pytest.mark.parametrize("split", ["test", "val"])
def test_reload_in_fresh_process_with_empty_cache_reproduces_metrics(trained, env, tmp_path, split):
    """`evaluate --json` in a new interpreter, with an empty feature cache (as in a fresh clone),
    reproduces metrics.json: the features cached in training are the eval-mode features."""
    fresh = {**env, "MMAUX_CACHE": str(tmp_path / "empty-cache")}
    result = subprocess.run([sys.executable, "-m", "mmaux", "evaluate", "--checkpoint", str(trained), "--json",
                             "--split", split], capture_output=True, text=True, env=fresh, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == read_metrics(trained)[split]


def test_stored_outputs_match_the_reloaded_model(trained):
    from mmaux.data.datasets import load_dataset
    from mmaux.evaluate import predict
    from mmaux.features import PostInputs

    model, info = load_model(trained)
    frame = load_dataset(info.dataset, splits=("test",)).split("test")
    outputs, arrays = predict(model, PostInputs(model, frame), info.label_names)
    stored, stored_arrays = read_outputs(trained)
    assert (outputs["pred"].to_numpy() == stored["pred"].to_numpy()).all()
    val_frame = load_dataset(info.dataset, splits=("val",)).split("val")
    val_outputs, _ = predict(model, PostInputs(model, val_frame, use_cache=False), info.label_names)
    assert (val_outputs["pred"].to_numpy() == read_outputs(trained, "val_outputs.parquet")[0]["pred"].to_numpy()).all()
    np.testing.assert_allclose(outputs["p_positive"], stored["p_positive"], atol=1e-6)
    np.testing.assert_allclose(arrays["text_emb"], stored_arrays["text_emb"], atol=2e-3)  # stored as float16
    assert stored["itm_match"].between(0, 1).all()


def test_predict_one_post_json(trained, tmp_path, env):
    from PIL import Image

    Image.new("RGB", (240, 240), (200, 30, 30)).save(tmp_path / "post.png")
    result = subprocess.run([sys.executable, "-m", "mmaux", "predict", "--checkpoint", str(trained), "--image",
                             str(tmp_path / "post.png"), "--text", "best day ever #blessed", "--json"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"label", "probabilities", "itm_match", "itc_cosine"}
    assert answer["label"] in answer["probabilities"]
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-5
    assert 0 <= answer["itm_match"] <= 1


def test_predict_bad_image_exits_2_with_one_line(trained, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    assert cli(["predict", "--checkpoint", str(trained), "--image", str(bad), "--text", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "notes.png" in err


def test_train_refuses_to_overwrite_a_checkpoint(trained, capsys):
    assert cli(["train", *TINY, "--out", str(trained)]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err


# --- refusals: nothing is executed, the message says what differs ---------------------------

def _copy(trained, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(trained, target)
    return target


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/mmaux-pwned",))


def test_pickle_in_place_of_safetensors_is_refused_without_executing(trained, tmp_path):
    folder = _copy(trained, tmp_path)
    (folder / "model.safetensors").write_bytes(pickle.dumps({"w": Boom()}))
    marker = Path("/tmp/mmaux-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(folder)
    assert not marker.exists()


def test_wrong_encoder_hash_is_refused(trained, tmp_path):
    folder = _copy(trained, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["encoders"]["minilm"] = "0" * 64
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="encoder 'minilm' weights differ"):
        load_model(folder)


def test_wrong_label_set_is_refused(trained, tmp_path):
    folder = _copy(trained, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["label_names"] = ["a", "b"]
    config["model"]["num_labels"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="classifier has 3 outputs"):
        load_model(folder)


def test_missing_file_is_refused(trained, tmp_path):
    folder = _copy(trained, tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        load_model(folder)


def test_sweep_resumes_after_an_interruption(env, tmp_path, capsys):
    """A finished run is skipped; a half-written one (no config.json) is trained again."""
    args = ["sweep", *TINY[:-4], "--epochs", "1", "--batch-size", "8", "--variants", "ce,itc", "--seeds", "0",
            "--out", str(tmp_path)]
    assert cli(args) == 0
    runs = sorted(tmp_path.glob("*/*/*"))
    assert [r.name for r in runs] == ["ce-seed0", "itc-seed0"]
    (runs[1] / "config.json").unlink()  # as if killed before the end
    stamp = (runs[0] / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert cli(args) == 0
    assert "sweep: 2 runs: 1 done, 1 to run" in capsys.readouterr().out
    assert (runs[1] / "config.json").exists()
    assert (runs[0] / "model.safetensors").stat().st_mtime_ns == stamp


def test_sweep_stores_layouts_also_for_runs_finished_before(env, tmp_path, monkeypatch):
    """`--layouts` lays out every run of the sweep that has none yet, including runs an earlier
    sweep finished (as when a rebuild is resumed); a run that has them is left alone."""
    from mmaux.analysis import embeddings

    args = ["sweep", *TINY[:-4], "--epochs", "1", "--batch-size", "8", "--variants", "ce,itc", "--seeds", "0",
            "--out", str(tmp_path)]
    assert cli(args) == 0
    ce, itc = sorted(tmp_path.glob("*/*/*"))
    (itc / embeddings.SHIPPED_LAYOUTS).write_bytes(b"")  # as if laid out already
    stored = []
    monkeypatch.setattr(embeddings, "store_layouts", stored.append)
    assert cli([*args, "--layouts"]) == 0
    assert stored == [ce]


def test_two_process_accelerate_launch(env, tmp_path):
    """The same training code under `accelerate launch --num_processes 2 --cpu`."""
    out = tmp_path / "ddp"
    launcher = Path(sys.executable).with_name("accelerate")
    result = subprocess.run([str(launcher), "launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
                             "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "mmaux", "train",
                             *TINY, "--epochs", "1", "--aux", "itc,itm", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_metrics(out)["test"]["n"] == 12


def test_an_aux_loss_that_cannot_reach_the_classifier_is_warned_about_and_recorded(env, tmp_path):
    """Late fusion over frozen, cached encoders with separate ITC projections (the old shipped
    configuration): ITC trains only its own projections. (With align-before-fuse, the cpu
    recipe's default, those projections are the attention's queries and keys, so ITC reaches.)"""
    out = tmp_path / "inert"
    with pytest.warns(UserWarning, match="ITC cannot reach the classifier"):
        assert cli(["train", *TINY, "--epochs", "1", "--text-tuning", "frozen", "--no-align-before-fuse",
                    "--aux", "itc", "--out", str(out)]) == 0
    assert read_metrics(out)["aux_reaches_classifier"] == {"itc": False}
