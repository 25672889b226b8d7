"""Runs trained elsewhere (`mmaux import authors|predictions`): a results folder in the authors'
naming, with an ITC effect planted in it, imports into predictions-only run folders whose effect
the library and the home page find (on test only: there are no validation predictions); every
kind of bad file stops the import with its file and row named and OUT_DIR left as it was."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apptest_support import page, texts
from authors_layout import write_single
from mmaux import cli
from mmaux.analysis import alignment, effects
from mmaux.analysis import runs as runs_lib
from mmaux.checkpoint import CONFIG, OUTPUTS, VAL_OUTPUTS, WEIGHTS, CheckpointError, load_model, read_info
from mmaux.data.images import BLANK_IMAGE
from mmaux.importing import parse_authors_name
from mmaux.ui import PREDICTIONS_ONLY_NOTE

SIZES = {"train": 6, "val": 30, "test": 120}  # ≥ 30 test posts: an effect on all of them can be supported
SEEDS = (30, 31, 32)  # the authors' default seed is 30
ACCURACY = {"": 0.6, "itc0.1": 0.9, "itm0.1": 0.6, "itc0.1itm0.1": 0.6}  # the ITC effect, planted
MODEL = "bert-vit-attention"
NO_IMAGE = "1040"  # a test post whose image file is missing: shown as the placeholder


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """MVSA-Single in the authors' layout (data_key_mvsa.csv and images), 120 test posts."""
    root = tmp_path_factory.mktemp("data")
    write_single(root, "mvsa-single", 1000, SIZES)
    (root / f"MVSA-Single/data/{NO_IMAGE}.jpg").unlink()
    return root


def split_posts(root: Path, split: str) -> pd.DataFrame:
    frame = pd.read_csv(root / "data_key_mvsa.csv", dtype=str)
    return frame[frame["split"] == split].reset_index(drop=True)


def predicted(labels: np.ndarray, accuracy: float, seed: list[int]) -> np.ndarray:
    """Each label kept with probability `accuracy`, else one of the two other classes."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(labels)) < accuracy, labels, (labels + 1 + rng.integers(0, 2, len(labels))) % 3)


def write_results(folder: Path, test: pd.DataFrame) -> Path:
    """Three seeds × four loss settings as the authors' code writes them (mm_late/)."""
    late = folder / "mm_late"
    late.mkdir(parents=True)
    labels = test["label"].astype(int).to_numpy()
    for seed in SEEDS:
        for loss, accuracy in ACCURACY.items():
            pd.DataFrame({"data_id": test["tweet_id"], "label": labels,
                          "prediction": predicted(labels, accuracy, [seed, len(loss)])}).to_csv(
                late / f"{MODEL}_task3_seed{seed}_{loss}_preds.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def results(data, tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("results"), split_posts(data, "test"))


@pytest.fixture(scope="module")
def imported(data, results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "runs"
    cache = pytest.MonkeyPatch()
    cache.setenv("MMAUX_CACHE", str(tmp_path_factory.mktemp("cache")))
    assert cli.main(["import", "authors", str(results), "--root", str(data), "--out", str(out)]) == 0
    cache.undo()
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- file names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, model, preset, seed, variant, betas", [
    ("bert-vit-attention_task3_seed30__preds.csv", "bert-vit-attention", "mvsa-single", 30, "CE", None),
    ("bernice-vit-aspect-att_task6_seed1_itc0.1_preds.csv", "bernice-vit-aspect-att", "msd", 1, "CE+ITC", (0.1,)),
    ("bert-resnet50-concat_cnn_task0_seed2_itm0.25_preds.csv", "bert-resnet50-concat_cnn", "tir-text-represented", 2,
     "CE+ITM", (0.25,)),
    ("mmbt_task2_seed30_itc0.1itm0.1_preds.csv", "mmbt", "tir", 30, "CE+ITC+ITM", (0.1, 0.1)),
    ("vilt_task5_seed30__N500_preds.csv", "vilt-N500", "micd", 30, "CE", None),
])
def test_authors_names_parse_into_model_task_seed_and_loss(name, model, preset, seed, variant, betas):
    parsed = parse_authors_name(name)
    assert (parsed.model, parsed.preset, parsed.seed, parsed.loss.variant) == (model, preset, seed, variant)
    if betas:
        assert [b for b, on in ((parsed.loss.beta_itc, parsed.loss.itc), (parsed.loss.beta_itm, parsed.loss.itm))
                if on] == list(betas)


@pytest.mark.parametrize("name, reason", [
    ("bert-vit-attention_task3_seed30_preds.csv", "not {txt}-{img}-{fusion}"),
    ("bert-vit-attention_task9_seed30__preds.csv", "task 9 is not one of the authors' tasks"),
    ("bert-clip-attention_task3_seed30__preds.csv", "model 'bert-clip-attention' is neither"),
    ("bert_task3_seed30__preds.csv", "model 'bert' is neither"),
    ("bert-vit-attention_task3_seed30_itc0.6itm0.6_preds.csv", "must stay below 1"),
])
def test_names_that_do_not_parse_say_why(name, reason):
    with pytest.raises(ValueError, match=None) as err:
        parse_authors_name(name)
    assert reason in str(err.value)


# --- the authors' results folder ------------------------------------------------------------------

def test_each_file_becomes_a_predictions_only_run_of_one_group(imported, results, data):
    table = runs_lib.discover_runs([imported])
    assert (table["error"] == "").all(), table["error"].tolist()
    assert len(table) == len(SEEDS) * len(ACCURACY)
    assert set(map(tuple, table[runs_lib.GROUP_COLUMNS].to_numpy())) == {("mvsa-single", "mvsa-single", MODEL)}
    assert table.groupby("variant")["seed"].apply(sorted).to_dict() == {v: list(SEEDS) for v in runs_lib.VARIANTS}
    folder = imported / "mvsa-single" / MODEL / "itc-seed31"
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG, "metrics.json", OUTPUTS])
    info = read_info(folder)
    assert info.model is None and info.imported.format == "authors" and not info.imported.probabilities
    assert info.imported.source == str(results / "mm_late" / f"{MODEL}_task3_seed31_itc0.1_preds.csv")
    assert json.loads((folder / CONFIG).read_text())["imported"]["weights"] is False
    assert (info.variant, info.seed, info.loss.beta_itc, info.label_names) == (
        "CE+ITC", 31, 0.1, ("neutral", "positive", "negative"))
    with pytest.raises(CheckpointError, match="no weights, so there is no model to run"):
        load_model(folder)
    # metrics from the predictions; the missing image is the placeholder, the text is there
    test = runs_lib.load_test_table(folder)
    truth = split_posts(data, "test")
    assert list(test["post_id"]) == list(truth["tweet_id"]) and (test["label_index"] == truth["label"].astype(int)).all()
    scores = json.loads((folder / "metrics.json").read_text())["test"]
    assert scores["accuracy"] == pytest.approx(test["correct"].mean()) and scores["n"] == SIZES["test"]
    assert test["confidence"].isna().all() and test["p_positive"].isna().all()
    post = test.set_index("post_id").loc[NO_IMAGE]
    assert post["image"] == str(BLANK_IMAGE) and not post["has_image"] and post["text"]


def test_the_planted_itc_effect_is_supported_on_test_only(imported):
    frame = effects.effects_table(runs_lib.discover_runs([imported]), n_boot=300)
    overall = frame[(frame["kind"] == effects.VS_CE) & (frame["slicing"] == effects.OVERALL)].set_index("effect")
    assert overall.loc["CE+ITC", "verdict"] == effects.TEST_ONLY
    assert overall.loc["CE+ITC", "ci_low"] > 0 and overall.loc["CE+ITC", "val_n"] == 0
    assert overall.loc["CE+ITM", "verdict"] == effects.INCONCLUSIVE
    assert effects.SUPPORTED not in set(frame["verdict"])  # no validation predictions: never plain "supported"


def test_the_home_page_shows_the_imported_effect(imported, monkeypatch, tmp_path):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "app-cache"))
    at = page("app.py", str(imported), monkeypatch).run()
    assert not at.exception
    summary = next(df.value for df in at.dataframe if "macro-F1" in df.value.columns)
    verdicts = summary.set_index("variant")["verdict"]
    assert verdicts["CE+ITC"] == effects.TEST_ONLY and verdicts["CE"] == "baseline"
    assert f"{len(SEEDS) * len(ACCURACY)} checkpoints" in texts(at.markdown)


def test_the_predictions_page_compares_imported_runs(imported, monkeypatch, tmp_path):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "app-cache"))
    at = page("pages/1_Predictions.py", str(imported), monkeypatch).run()
    assert not at.exception
    posts = next(df.value for df in at.dataframe if "image" in df.value.columns and "text" in df.value.columns)
    assert len(posts) == min(SIZES["test"], 100)  # the page's first 100 rows
    assert posts.iloc[:, 4].str.fullmatch(r"[✓✗] (neutral|positive|negative)").all()  # no confidence to show
    detail = next(df.value for df in at.dataframe if "itm_match" in df.value.columns)
    assert (detail["itm_match"] == "not recorded").all() and (detail["itc_cosine"] == "not recorded").all()


@pytest.mark.parametrize("path", ["pages/2_Match_Scores.py", "pages/5_Your_Post.py"])
def test_pages_that_run_the_model_say_why_imported_runs_are_not_there(imported, path, monkeypatch, tmp_path):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "app-cache"))
    at = page(path, str(imported), monkeypatch).run()
    assert not at.exception
    assert f"left out: {PREDICTIONS_ONLY_NOTE}, and this page runs the model." in texts(at.info)


# --- bad input: named, non-zero, nothing written --------------------------------------------------

def _rewrite(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype=str)
    change(frame)
    frame.to_csv(path, index=False)


def _set(row: int, column: str, value: str):
    def change(frame):
        frame.loc[row, column] = value
    return change


def _duplicate(frame):
    frame.loc[7, "data_id"] = frame.loc[2, "data_id"]


BAD_FILES = {  # kind -> (change to the CE seed-31 file, what the message says about its row)
    "id not in the dataset": (_set(4, "data_id", "424242"), "line 6 (id '424242'): not in "),
    "id of another split": (_set(4, "data_id", "1006"), "line 6 (id '1006'): not a test post of mvsa-single "
                                                         "(it is in val)"),
    "duplicated id": (_duplicate, "line 9 (id '1038'): duplicate of line 4"),
    "label that disagrees": (_set(0, "label", "2"), "line 2 (id '1036'): label '2', but data_key_mvsa.csv says 0 "
                                                    "(neutral)"),
    "prediction outside the labels": (_set(3, "prediction", "3"), "line 5 (id '1039'): prediction '3' is not a "
                                                                  "class of mvsa-single (0-2: neutral, positive, "
                                                                  "negative)"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_stops_the_import_naming_file_and_row(kind, data, results, tmp_path, capsys):
    change, said = BAD_FILES[kind]
    bad = shutil.copytree(results, tmp_path / "results")
    target = bad / "mm_late" / f"{MODEL}_task3_seed31__preds.csv"
    _rewrite(target, change)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    assert cli.main(["import", "authors", str(bad), "--root", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{target}: 1 problem(s):\n  {said}" in err and f"nothing was written to {out}" in err
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_unparsed_names_are_listed_and_skipped_only_when_asked(data, results, tmp_path, capsys):
    bad = shutil.copytree(results, tmp_path / "results")
    stray = bad / "txt_only" / "bert_task3_seed30__preds.csv"
    stray.parent.mkdir()
    stray.write_text("data_id,label,prediction\n")
    out = tmp_path / "out"
    assert cli.main(["import", "authors", str(bad), "--root", str(data), "--out", str(out)]) == 2
    assert f"{stray}: file name does not parse: model 'bert' is neither" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(["import", "authors", str(bad), "--root", str(data), "--out", str(out), "--skip-unparsed"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped: {stray}: file name does not parse" in printed and "imported 12 run(s)" in printed
    assert len(runs_lib.usable(runs_lib.discover_runs([out]))) == 12


def test_importing_again_never_replaces_a_run(data, results, imported, tmp_path, capsys):
    out = shutil.copytree(imported, tmp_path / "runs")
    before = snapshot(out)
    assert cli.main(["import", "authors", str(results), "--root", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: already holds 12 of these runs: {out / 'mvsa-single' / MODEL / 'ce-seed30'}" in err
    assert "nothing was written" in err and snapshot(out) == before


def test_two_files_of_one_run_are_refused(data, results, tmp_path, capsys):
    bad = shutil.copytree(results, tmp_path / "results")
    shutil.copytree(bad / "mm_late", bad / "mm_late" / "testing")  # the authors' --testing runs, same names
    assert cli.main(["import", "authors", str(bad), "--root", str(data), "--out", str(tmp_path / "out")]) == 2
    assert (f"mvsa-single/{MODEL}/ce-seed30: 2 files are this one run" in capsys.readouterr().err
            and not (tmp_path / "out").exists())


# --- any framework: post_id, pred, p_<class> ------------------------------------------------------

def write_predictions(path: Path, posts: pd.DataFrame, accuracy: float, seed: list[int]) -> None:
    """post_id, pred (class names) and probabilities that favour the prediction."""
    labels = posts["label"].astype(int).to_numpy()
    pred = predicted(labels, accuracy, seed)
    probs = np.full((len(pred), 3), 0.15)
    probs[np.arange(len(pred)), pred] = 0.7
    names = ("neutral", "positive", "negative")
    pd.DataFrame({"post_id": posts["tweet_id"], "pred": [names[p] for p in pred],
                  **{f"p_{n}": probs[:, k] for k, n in enumerate(names)}}).to_csv(path, index=False)


def test_predictions_with_probabilities_and_validation_import_and_can_be_supported(data, tmp_path, capsys):
    out = tmp_path / "out"
    for seed in SEEDS:
        for variant, accuracy in (("CE", 0.6), ("CE+ITC", 0.9)):
            test, val = tmp_path / f"{variant}-{seed}-test.csv", tmp_path / f"{variant}-{seed}-val.csv"
            write_predictions(test, split_posts(data, "test"), accuracy, [seed, len(variant)])
            write_predictions(val, split_posts(data, "val"), accuracy, [seed, len(variant), 1])
            assert cli.main(["import", "predictions", str(test), "--preset", "mvsa-single", "--root", str(data),
                             "--arch", "my-clip", "--variant", variant, "--seed", str(seed), "--val", str(val),
                             "--out", str(out)]) == 0
    assert "imported 1 run(s)" in capsys.readouterr().out
    folder = out / "mvsa-single" / "my-clip" / "itc-seed30"
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG, "metrics.json", OUTPUTS, VAL_OUTPUTS])
    assert not (folder / WEIGHTS).exists() and read_info(folder).imported.probabilities
    table = runs_lib.load_test_table(folder)
    assert table["confidence"].eq(np.float32(0.7)).all() and table["p_neutral"].isin([np.float32(0.15), np.float32(0.7)]).all()
    assert 0 < alignment.expected_calibration_error(table["confidence"], table["correct"]) < 1
    frame = effects.effects_table(runs_lib.discover_runs([out]), n_boot=300)
    row = frame[(frame["effect"] == "CE+ITC") & (frame["slicing"] == effects.OVERALL)].iloc[0]
    assert row["verdict"] == effects.SUPPORTED and row["val_n"] == SIZES["val"]


@pytest.mark.parametrize("change, said", [
    (lambda f: f.assign(p_neutral=0.5), "line 2 (id '1036'): probabilities sum to"),
    (lambda f: f.drop(columns="p_negative"), "probability columns p_neutral, p_positive; give all of p_neutral, "
                                             "p_positive, p_negative (one per class of the dataset) or none"),
    (lambda f: f.assign(pred="happy"), "line 2 (id '1036'): prediction 'happy' is not a class of mvsa-single"),
    (lambda f: f.iloc[:0], "preds.csv: no predictions, only a header"),
])
def test_bad_probabilities_or_predictions_stop_the_import(change, said, data, tmp_path, capsys):
    path = tmp_path / "preds.csv"
    write_predictions(path, split_posts(data, "test"), 0.6, [0])
    change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)
    assert cli.main(["import", "predictions", str(path), "--preset", "mvsa-single", "--root", str(data), "--arch",
                     "my-clip", "--variant", "ce", "--seed", "0", "--out", str(tmp_path / "out")]) == 2
    assert said in capsys.readouterr().err and not (tmp_path / "out").exists()
