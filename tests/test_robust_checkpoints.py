"""Broken and hostile checkpoint folders: nothing in them is executed, loading them fails with a
`CheckpointError` naming the file and the fix, `discover_runs` lists every good checkpoint and
marks each bad one, and the dashboard's pages warn instead of failing.

Every bad folder is a copy of the session's tiny trained checkpoint with one thing broken."""
from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import robust_support as rs
from mmaux import probes
from mmaux.analysis.runs import discover_runs, usable
from mmaux.checkpoint import CheckpointError, load_model
from mmaux.encoders import encoder_fingerprint
from mmaux.predict import Predictor

pytestmark = pytest.mark.slow  # trains the session's tiny checkpoint on first use (a few seconds)


@pytest.fixture(scope="module")
def good(tmp_path_factory, tiny_bert, tiny_vit):
    with rs.private_cache(tmp_path_factory):
        yield rs.tiny_checkpoint(tmp_path_factory, tiny_bert, tiny_vit)


class Boom:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _write_config(folder: Path, config: dict):
    (folder / "config.json").write_text(json.dumps(config))


def _edit_model(folder: Path, **changes):
    config = _config(folder)
    config["model"].update(changes)
    _write_config(folder, config)


def _unknown_encoder(folder: Path, name: str):
    config = _config(folder)
    old = config["model"]["text_encoder"]
    config["model"]["text_encoder"] = name
    config["encoders"][name] = config["encoders"].pop(old)
    _write_config(folder, config)


def _two_labels(folder: Path):
    config = _config(folder)
    config["label_names"] = ["sad", "happy"]
    config["model"]["num_labels"] = 2
    _write_config(folder, config)


def _link_outside(folder: Path, name: str):
    """Move the file out of the folder (under a name no checkpoint search looks for) and leave a
    symbolic link to it in its place."""
    outside = folder.parent / f"outside-{folder.name}"
    outside.mkdir()
    (folder / name).rename(outside / "moved")
    (folder / name).symlink_to(outside / "moved")


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# name -> (how to break a copy, the file the message names, what it says)
BREAKERS = {
    "pickle in place of weights": (lambda f, m: (f / "model.safetensors").write_bytes(pickle.dumps({"w": Boom(m)})),
                                   "model.safetensors", "not a readable safetensors file"),
    "torch.save zip in place of weights": (lambda f, m: torch.save({"w": Boom(m)}, f / "model.safetensors"),
                                           "model.safetensors", "not a readable safetensors file"),
    "truncated weights": (lambda f, m: _truncate(f / "model.safetensors"),
                          "model.safetensors", "not a readable safetensors file"),
    "config missing": (lambda f, m: (f / "config.json").unlink(), "config.json", "missing"),
    "config not JSON": (lambda f, m: (f / "config.json").write_text("{'model': nope"),
                        "config.json", "not valid JSON"),
    "config nested too deeply": (lambda f, m: (f / "config.json").write_text("[" * 100_000),
                                 "config.json", "nested too deeply"),
    "config not UTF-8": (lambda f, m: (f / "config.json").write_bytes(b"\xff\xfe{\x00}"),
                         "config.json", "invalid checkpoint config"),
    "unknown architecture": (lambda f, m: _edit_model(f, architecture="transformer-xxl"),
                             "config.json", "architecture must be one of"),
    "unknown hub encoder": (lambda f, m: _unknown_encoder(f, "no-such-org/no-such-model"),
                            "config.json", "encoder 'no-such-org/no-such-model' cannot be found here"),
    "encoder path climbing out": (lambda f, m: _unknown_encoder(f, "../../../../no/such/encoder"),
                                  "config.json", "cannot be found here"),
    "label count differs from the weights": (lambda f, m: _two_labels(f),
                                             "model.safetensors", "classifier has 3 outputs"),
    "label names differ from num_labels": (lambda f, m: _edit_model(f, num_labels=4),
                                           "config.json", "label_names has 3 names but the model has 4"),
    "weights are a link outside": (lambda f, m: _link_outside(f, "model.safetensors"),
                                   "model.safetensors", "outside the checkpoint folder"),
    "config is a link outside": (lambda f, m: _link_outside(f, "config.json"),
                                 "config.json", "outside the checkpoint folder"),
    "metrics not an object": (lambda f, m: (f / "metrics.json").write_text("[1, 2, 3]"),
                              "metrics.json", "not a metrics file"),
    "metrics with text scores": (lambda f, m: (f / "metrics.json").write_text('{"test": {"macro_f1": "high"}}'),
                                 "metrics.json", "malformed test scores"),
    "outputs missing": (lambda f, m: (f / "test_outputs.parquet").unlink(), "test_outputs.parquet", "missing"),
}
LOAD_TIME_ONLY = {"metrics not an object", "metrics with text scores", "outputs missing"}  # Predictor never reads them


def _broken_copy(good: Path, parent: Path, case: str) -> tuple[Path, Path]:
    """(folder, marker): a copy of `good` broken by BREAKERS[case]."""
    folder = parent / case.replace(" ", "-")
    shutil.copytree(good, folder)
    marker = parent / f"{folder.name}.pwned"
    BREAKERS[case][0](folder, marker)
    return folder, marker


@pytest.fixture(scope="module")
def bad_root(good, tmp_path_factory) -> Path:
    """One good copy (under an odd name) plus one copy per breaker, in one root."""
    root = tmp_path_factory.mktemp("bad-root")
    shutil.copytree(good, root / "good $(touch pwned) ü ✓")
    for case in BREAKERS:
        _broken_copy(good, root, case)
    return root


@pytest.mark.parametrize("case", [c for c in BREAKERS if c not in LOAD_TIME_ONLY])
def test_loading_a_broken_checkpoint_names_the_file_and_runs_nothing(good, tmp_path, case):
    folder, marker = _broken_copy(good, tmp_path, case)
    _, file_name, says = BREAKERS[case]
    with pytest.raises(CheckpointError) as caught:
        Predictor(folder)
    message = str(caught.value)
    assert f"{folder / file_name}" in message and says in message, message
    assert not marker.exists()


def test_discover_runs_lists_the_good_one_and_marks_every_bad_one(bad_root):
    table = discover_runs([bad_root])
    assert len(table) == 1 + len(BREAKERS)
    good = usable(table)
    assert [Path(f).name for f in good["folder"]] == ["good $(touch pwned) ü ✓"]
    assert good["macro_f1"].notna().all()
    errors = dict(zip(table["folder"].map(lambda f: Path(f).name), table["error"]))
    for case, (_, file_name, says) in BREAKERS.items():
        folder = bad_root / case.replace(" ", "-")
        assert f"{folder / file_name}" in errors[folder.name] and says in errors[folder.name], case
    assert not list(bad_root.glob("*.pwned")) and not (Path.cwd() / "pwned").exists()


def test_predictor_loads_through_a_path_with_dot_dot_and_odd_names(bad_root):
    odd = bad_root / "good $(touch pwned) ü ✓"
    via_dots = bad_root / "config-missing" / ".." / odd.name
    predictor = Predictor(via_dots)
    assert predictor.label_names == ("neutral", "positive", "negative")
    table = discover_runs([f"{bad_root}/config-missing/../", bad_root])  # the same root twice
    assert len(table) == 1 + len(BREAKERS) and table["folder"].is_unique
    assert not (Path.cwd() / "pwned").exists()


def test_encoder_folder_with_a_pickle_is_refused_without_running_it(good, tmp_path, tiny_bert):
    """A config may name any local encoder folder, with a recorded hash that matches it: a
    pytorch_model.bin pickle there is refused by the weights-only loader, reported as a
    CheckpointError (the dashboard shows it), and never executed."""
    marker = tmp_path / "encoder.pwned"
    evil = tmp_path / "evil-encoder"
    shutil.copytree(tiny_bert, evil)
    (evil / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": Boom(marker)}, evil / "pytorch_model.bin")
    folder = tmp_path / "ckpt"
    shutil.copytree(good, folder)
    _unknown_encoder(folder, str(evil))
    config = _config(folder)
    config["encoders"][str(evil)] = encoder_fingerprint(str(evil))
    _write_config(folder, config)
    with pytest.raises(CheckpointError, match=r"config\.json: the model cannot be built from the encoders"):
        load_model(folder)
    assert not marker.exists()


def test_recorded_encoder_names_must_match_the_model(good, tmp_path):
    """A config cannot swap in another encoder while keeping the recorded hash of the original."""
    folder = tmp_path / "ckpt"
    shutil.copytree(good, folder)
    _edit_model(folder, text_encoder=str(tmp_path / "elsewhere"))
    with pytest.raises(CheckpointError, match="records weight hashes for encoders"):
        load_model(folder)


# --- probe-set names with path separators -------------------------------------------------------

@pytest.mark.parametrize("name", ["../../escape", "..\\..\\escape", "/etc/escape", "a/../../escape",
                                  "~/escape", "escape\x00"])
def test_probe_set_names_cannot_leave_the_sets_folder_or_overwrite(tmp_path, name):
    sets = tmp_path / "sets" / "inner"
    probe = probes.Probe("original", "hello", rs.photo((8, 8)))
    folder = probes.save_probe_set([probe], name, root=sets)
    assert folder.parent == sets and folder.name.endswith("escape")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sets"]
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="nothing was changed"):
        probes.save_probe_set([probes.Probe("other", "bye", rs.photo((8, 8), seed=1))], name, root=sets)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("name", ["..", "../..", "/", "...", " "])
def test_probe_set_names_with_nothing_left_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="choose a name"):
        probes.save_probe_set([probes.Probe("original", "hello", rs.photo((8, 8)))], name, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- the dashboard ------------------------------------------------------------------------------

def test_home_page_warns_about_each_bad_checkpoint(bad_root, monkeypatch):
    from apptest_support import page, texts

    at = page("app.py", str(bad_root), monkeypatch).run()
    assert not at.exception
    assert f"{len(BREAKERS)} checkpoint folder(s) cannot be used" in texts(at.warning)
    broken = next(df.value for df in at.dataframe if list(df.value.columns) == ["folder", "error"])
    assert len(broken) == len(BREAKERS) and broken["error"].str.len().gt(0).all()
    assert "**1 checkpoints**" in texts(at.markdown)
    assert not list(bad_root.glob("*.pwned"))


def test_your_post_page_reports_a_checkpoint_that_cannot_be_loaded(good, tmp_path, monkeypatch, tiny_bert):
    """A checkpoint that lists fine but fails to load (its encoder folder holds a refused pickle):
    st.error naming it, and the other checkpoint still predicts."""
    from apptest_support import page, texts

    root = tmp_path / "root"
    shutil.copytree(good, root / "good")
    evil = tmp_path / "evil-encoder"
    shutil.copytree(tiny_bert, evil)
    (evil / "model.safetensors").unlink()
    torch.save({"w": Boom(tmp_path / "page.pwned")}, evil / "pytorch_model.bin")
    bad = root / "bad"
    shutil.copytree(good, bad)
    _unknown_encoder(bad, str(evil))
    config = _config(bad)
    config["encoders"][str(evil)] = encoder_fingerprint(str(evil))
    config["seed"] = 1  # another label in the picker
    _write_config(bad, config)
    monkeypatch.setenv("MMAUX_PROBES", str(tmp_path / "probes"))
    at = page("pages/5_Your_Post.py", str(root), monkeypatch, selected_checkpoints=[str(root / "good"), str(bad)],
              your_post_image=("phone.jpg", rs.exif_rotated_jpeg()), your_post_text="hello").run()
    assert not at.exception
    assert "cannot be loaded" in texts(at.error) and "cannot be built from the encoders" in texts(at.error)
    table = next(df.value for df in at.dataframe if "itc_cosine" in df.value.columns)
    assert len(table) == 1 and np.isfinite(table["itc_cosine"].astype(float)).all()
    assert not (tmp_path / "page.pwned").exists()
