"""The runs table (discovery, broken checkpoints, grouping, default set) and group comparisons,
on hand-written checkpoint folders (config, metrics and outputs only: no weights are loaded)."""
import json

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import save_file

from mmaux.analysis import runs
from mmaux.checkpoint import CheckpointInfo, write_outputs
from mmaux.config import ModelConfig
from mmaux.data.datasets import DatasetSpec
from mmaux.data.synthposts import SynthSpec
from mmaux.losses import LossConfig

LABELS = ("neutral", "positive", "negative")
VARIANT_FLAGS = {"ce": (False, False), "itc": (True, False), "itm": (False, True), "itc+itm": (True, True)}


def make_run(folder, variant="ce", seed=0, arch="attention", task="sentiment", preds=(0, 1, 2, 0), f1=0.5):
    """A checkpoint folder with a valid config, metrics, an empty (valid) weights file and test outputs."""
    itc, itm = VARIANT_FLAGS[variant]
    info = CheckpointInfo(model=ModelConfig(num_labels=3, architecture=arch, loss=LossConfig(itc=itc, itm=itm)),
                          dataset=DatasetSpec(synth=SynthSpec(task=task)), label_names=LABELS,
                          encoders={"minilm": "0" * 64}, seed=seed)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(info.to_dict()))
    (folder / "metrics.json").write_text(json.dumps({"test": {"macro_f1": f1, "accuracy": f1 + 0.1,
                                                              "weighted_f1": f1 + 0.05}}))
    save_file({}, folder / "model.safetensors")  # a valid, empty weights file
    preds = np.asarray(preds)
    outputs = pd.DataFrame({"post_id": [f"test_{i:05d}" for i in range(len(preds))],
                            "label_index": [0, 1, 2, 0][:len(preds)],
                            "pred": preds, "confidence": 0.9, "itm_match": np.nan, "itc_cosine": 0.1,
                            **{f"p_{n}": (preds == i) * 0.9 + 0.05 for i, n in enumerate(LABELS)}})
    write_outputs(folder / "test_outputs.parquet", outputs, {"text_emb": np.zeros((len(preds), 2))})
    return folder


@pytest.fixture
def root(tmp_path):
    """Two seeds of the four variants of sentiment · attention, one of mmbt CE, and a broken run."""
    base = tmp_path / "ckpts" / "synthposts-sentiment"
    for variant in VARIANT_FLAGS:
        for seed in (0, 1):
            make_run(base / "attention" / f"{variant}-seed{seed}", variant, seed, f1=0.5 + 0.1 * seed)
    make_run(base / "mmbt" / "ce-seed0", "ce", 0, arch="mmbt")
    broken = base / "attention" / "itc-seed2"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    return tmp_path / "ckpts"


def test_discover_lists_every_run_once_with_broken_ones_as_error_rows(root, tmp_path):
    table = runs.discover_runs([root, root / "synthposts-sentiment", tmp_path / "missing"])
    assert len(table) == 10
    broken = table[table["error"] != ""]
    assert broken["folder"].str.endswith("itc-seed2").all() and "not valid JSON" in broken["error"].iloc[0]
    good = runs.usable(table)
    assert len(good) == 9 and set(good["dataset"]) == {"SynthPosts"} and set(good["task"]) == {"sentiment"}
    assert list(good["label"].iloc[[0, 2]]) == ["sentiment · attention · CE · seed 0",
                                                "sentiment · attention · CE+ITC · seed 0"]
    assert list(good["variant"][:8]) == ["CE", "CE", "CE+ITC", "CE+ITC", "CE+ITM", "CE+ITM", "CE+ITC+ITM", "CE+ITC+ITM"]


def test_missing_outputs_is_an_error_row(root):
    folder = root / "synthposts-sentiment" / "mmbt" / "ce-seed0"
    (folder / "test_outputs.parquet").unlink()
    row = runs.describe_run(folder)
    assert "test_outputs.parquet: missing" in row["error"]


def test_groups_and_summary(root):
    table = runs.usable(runs.discover_runs([root]))
    keys = [key for key, _ in runs.groups(table)]
    assert keys == [("SynthPosts", "sentiment", "attention"), ("SynthPosts", "sentiment", "mmbt")]
    assert runs.group_name(keys[0]) == "SynthPosts · sentiment · attention"
    summary = runs.seed_summary(table)
    ce = summary[(summary["architecture"] == "attention") & (summary["variant"] == "CE")].iloc[0]
    assert ce["seeds"] == 2 and ce["macro_f1"] == "55.0 ± 7.1"


def test_default_comparison_is_the_four_variants_of_one_seed(root):
    table = runs.discover_runs([root])
    chosen = runs.default_comparison(table)
    assert [f.split("/")[-1] for f in chosen] == ["ce-seed0", "itc-seed0", "itm-seed0", "itc+itm-seed0"]
    assert runs.default_comparison(table.iloc[:0]) == []


def test_checkpoint_stamp_changes_when_a_file_is_rewritten(root):
    folder = root / "synthposts-sentiment" / "mmbt" / "ce-seed0"
    before = runs.checkpoint_stamp(folder)
    (folder / "metrics.json").write_text(json.dumps({"test": {}}) + "\n" * 10)
    assert runs.checkpoint_stamp(folder) != before


def test_join_posts_adds_posts_names_and_correctness():
    outputs = pd.DataFrame({"post_id": ["a", "b", "c"], "label_index": [0, 1, 2], "pred": [0, 2, 2],
                            **{f"p_{n}": 0.0 for n in LABELS}})
    posts = pd.DataFrame({"post_id": ["b", "a"], "text": ["tb", "ta"], "image": ["ib", "ia"],
                          "label": ["positive", "neutral"], "evidence": ["text_only", "image_only"],
                          "likes": [4, 9], "split": "test", "p_value": [0.1, 0.2], "pred": [9, 9]})
    table = runs.join_posts(outputs, posts, LABELS)
    assert list(table["text"]) == ["ta", "tb", ""]  # post c is not among the posts: kept, blank
    assert list(table["likes"][:2]) == [9, 4]  # metadata kept, for a user's own slices
    assert "split" not in table and "p_value" not in table and list(table["pred"]) == [0, 2, 2]
    assert list(table["pred_label"]) == ["neutral", "negative", "negative"]
    assert list(table["correct"]) == [True, False, True]
    assert runs.class_names(table) == list(LABELS)
    assert runs.slice_columns(table) == ["evidence", "label"]


def test_distinguishing_names_keep_what_differs():
    labels = ["s · attention · CE · seed 0", "s · attention · CE+ITC · seed 0", "s · attention · CE+ITC+ITM · seed 1"]
    assert runs.distinguishing_names(labels) == ["CE · seed 0", "CE+ITC · seed 0", "CE+ITC+ITM · seed 1"]
    assert runs.distinguishing_names(labels[:2]) == ["CE", "CE+ITC"]  # the variant, by its one name
    assert runs.distinguishing_names(labels[:1]) == labels[:1]


def test_flip_masks():
    y = np.array([0, 1, 2, 0])
    preds = {"base": np.array([0, 2, 2, 1]), "aux": np.array([1, 1, 2, 0])}
    assert runs.flip_mask(y, preds, "base", "aux", runs.FIXED).tolist() == [False, True, False, True]
    assert runs.flip_mask(y, preds, "base", "aux", runs.BROKEN).tolist() == [True, False, False, False]
    assert runs.flip_mask(y, preds, "base", "aux", runs.DISAGREE).tolist() == [True, True, False, True]
    assert runs.flip_mask(y, preds, "base", "aux", "all posts").all()


def test_consistent_fixes_pairs_seeds(root):
    table = runs.discover_runs([root])
    ce0, itc0 = (str(root / "synthposts-sentiment" / "attention" / f"{v}-seed0") for v in ("ce", "itc"))
    pairs = runs.seed_pairs(table, ce0, itc0)
    assert [tuple(p.split("/")[-1] for p in pair) for pair in pairs] == [("ce-seed0", "itc-seed0"),
                                                                          ("ce-seed1", "itc-seed1")]
    posts = pd.DataFrame({"post_id": ["a", "b"], "label_index": [1, 1]})
    fixed_both = {f: pd.DataFrame({"post_id": ["a", "b"], "pred": [1, 0] if "itc" in f else [0, 0]})
                  for pair in pairs for f in pair}
    assert runs.consistent_fixes(posts, pairs, fixed_both).tolist() == [True, False]


def test_prediction_columns_mark_right_and_wrong():
    posts = pd.DataFrame({"post_id": ["a", "b"]})
    table = pd.DataFrame({"post_id": ["b", "a"], "correct": [False, True], "pred_label": ["neg", "pos"],
                          "confidence": [0.5, 0.912]})
    assert runs.prediction_columns(posts, {"f": table}, {"f": "CE"})["CE"].tolist() == ["✓ pos 0.91", "✗ neg 0.50"]


def test_validation_outputs_are_optional_and_part_of_the_stamp(root):
    folder = root / "synthposts-sentiment" / "mmbt" / "ce-seed0"
    assert runs.load_split_table(folder, "val") is None  # written before validation outputs were saved
    with pytest.raises(ValueError, match="unknown split"):
        runs.load_split_table(folder, "train")
    before = runs.checkpoint_stamp(folder)
    (folder / runs.SPLIT_OUTPUTS["val"]).write_bytes(b"later")
    assert runs.checkpoint_stamp(folder) != before
