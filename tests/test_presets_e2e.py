"""Every preset in the authors' layout, end to end as a user runs it: `mmaux data validate` →
`mmaux sweep` (CE and +ITC+ITM, tiny offline encoders) → `mmaux evaluate` → every dashboard page
(AppTest) on those checkpoints. And the installed `mmaux` command and the bench scripts run from
another folder than the repository.

The five datasets share one data folder (`authors_layout.py`: 24 posts each, small JPEGs drawn at
test time); TIR's file serves three presets. About a second per checkpoint on 2 cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from authors_layout import MICD_WITHOUT_IMAGE, SPLIT_SIZES, write_authors_layout

from apptest_support import page
from mmaux.analysis.runs import discover_runs, usable
from mmaux.checkpoint import read_metrics
from mmaux.cli import main as cli
from mmaux.data.csvdata import PRESETS
from mmaux.paths import REPO_ROOT

pytestmark = pytest.mark.slow

PAGES = ("app.py", "pages/1_Predictions.py", "pages/2_Match_Scores.py", "pages/3_Embeddings.py",
         "pages/4_Attributions.py", "pages/5_Your_Post.py")
NO_MATCH_SCORE = "trained with neither ITM nor ITC"  # what Match scores says of a CE checkpoint


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_authors_layout(root)
    return root


@pytest.fixture(scope="module")
def runs_root(private_cache_dir, data_root, tmp_path_factory, tiny_bert, tiny_vit) -> Path:
    """A sweep per preset (CE and +ITC+ITM, one seed) into one checkpoint root."""
    root = tmp_path_factory.mktemp("runs")
    for key in sorted(PRESETS):
        assert cli(["sweep", "--preset", key, "--root", str(data_root), "--variants", "ce,itc+itm",
                    "--seeds", "0", "--recipe", "cpu", "--epochs", "1", "--batch-size", "4",
                    "--text-encoder", tiny_bert, "--image-encoder", tiny_vit, "--out", str(root)]) == 0
    return root


def _checkpoints(runs_root: Path, key: str) -> list[str]:
    """The preset's CE and +ITC+ITM checkpoint folders, CE first."""
    folder = runs_root / key / "attention"
    return [str(folder / "ce-seed0"), str(folder / "itc+itm-seed0")]


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_validate_accepts_the_authors_layout(private_cache_dir, data_root, key, capsys):
    assert cli(["data", "validate", "--preset", key, "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("Verdict: usable\n")
    assert f"{sum(SPLIT_SIZES.values())} rows, {sum(SPLIT_SIZES.values())} clean" in out
    if key == "micd":
        assert f"{len(MICD_WITHOUT_IMAGE)} clean rows have no image file" in out


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_trained_checkpoints_evaluate_to_their_metrics(runs_root, key, capsys):
    for folder in _checkpoints(runs_root, key):
        assert cli(["evaluate", "--checkpoint", folder, "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out)
        assert metrics == read_metrics(folder)["test"]
        assert metrics["n"] == SPLIT_SIZES["test"]
        assert list(metrics["per_class"]) == list(PRESETS[key].classes)
        if key == "micd":  # the posts without an image are a slice of their own
            assert set(metrics["per_slice"]["has_image"]) == {"False", "True"}
        if key == "tir":
            assert {"image_adds", "text_is_represented"} <= set(metrics["per_slice"])
    assert usable(discover_runs([runs_root])).shape[0] == 2 * len(PRESETS)


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_every_page_opens_the_presets_checkpoints(runs_root, key, monkeypatch):
    chosen = _checkpoints(runs_root, key)
    failures = {}
    for path in PAGES:
        state = {"_embed_method": "PCA"} if "Embeddings" in path else {}  # UMAP: tested elsewhere
        at = page(path, str(runs_root), monkeypatch, selected_checkpoints=chosen, **state).run()
        problems = [e.message for e in at.exception] + [
            e.value for e in at.error if NO_MATCH_SCORE not in e.value]  # CE has no match score
        if problems:
            failures[path] = problems
        elif path != "app.py":
            assert at.session_state["selected_checkpoints"] == chosen, path  # both were shown
    assert not failures


# --- the installed command and the bench scripts, from another folder ---------------------------

def test_mmaux_command_runs_where_the_data_lives(private_cache_dir, data_root):
    """The `mmaux` console command, run from the folder holding the data, with a relative --root."""
    command = Path(sys.executable).parent / "mmaux"
    assert command.exists(), f"{command} missing: the Makefile installs mmaux (pip install -e .)"
    result = subprocess.run([str(command), "data", "validate", "--preset", "micd", "--root", data_root.name],
                            cwd=data_root.parent, env={**os.environ, "PYTHONPATH": ""},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Dataset {data_root.name}/data_key_mic.csv\n")
    assert result.stdout.endswith("Verdict: usable\n") and "decoding images" in result.stderr


def test_usage_names_the_command_as_it_was_invoked(tmp_path):
    """`mmaux --help` prints `usage: mmaux`, `python -m mmaux --help` prints `usage: python -m mmaux`."""
    for command, usage in (([str(Path(sys.executable).parent / "mmaux")], "usage: mmaux "),
                           ([sys.executable, "-m", "mmaux"], "usage: python -m mmaux ")):
        result = subprocess.run([*command, "--help"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""},
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and result.stdout.startswith(usage), (command, result.stdout[:200])


BENCH_HELP = """
import runpy, sys
bench, scripts = sys.argv[1], sys.argv[2:]
clean_path = [bench] + sys.path[1:]  # as `python bench/<script>`: the script's folder first
sys.path[:] = clean_path
import mmaux  # the installed package, not the repository on sys.path
for script in scripts:
    sys.path[:], sys.argv = list(clean_path), [script, "--help"]
    try:
        runpy.run_path(f"{bench}/{script}", run_name="__main__")
    except SystemExit as exit:
        assert exit.code in (0, None), (script, exit.code)
    print("ran", script)
"""


def test_bench_scripts_start_from_another_folder(tmp_path):
    """Every `python bench/<script> --help` works outside the repository (one interpreter, so the
    heavy imports are paid once); `import mmaux` needs the installed package there."""
    scripts = sorted(p.name for p in (REPO_ROOT / "bench").glob("*.py"))
    result = subprocess.run([sys.executable, "-c", BENCH_HELP, str(REPO_ROOT / "bench"), *scripts],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in result.stdout.splitlines() if line.startswith("ran ")] == [
        f"ran {s}" for s in scripts]
    assert "usage: validate_images.py" in result.stdout
