"""mmaux.data.csvdata: each preset reads a fixture written in its exact layout; validation finds
every kind of problem; the CSV reader copes with BOMs and delimiters and refuses non-UTF-8."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from mmaux.data.csvdata import (PRESETS, TIR_COLUMNS, CsvDatasetSpec, DatasetError,
                                add_validate_parser, apply_bad_row_policy, load_posts, validate)

SPLIT_OF_ROW = ["train", "train", "val", "val", "test", "test"]


def write_image(path: Path, color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 8), color).save(path, format="JPEG")


def write_preset_dataset(root: Path, key: str) -> list[str]:
    """Six posts in the exact CSV + folder layout of a preset; returns the expected labels."""
    preset = PRESETS[key]
    rows, expected = [], []
    for i, split in enumerate(SPLIT_OF_ROW):
        post_id = str(1000 + i)
        label_index = i % len(preset.classes)
        row = {preset.id_column: post_id, preset.text_column: f"post number {i}, with a comma",
               preset.split_column: split}
        if preset.label_from_argmax:
            row |= {col: (0.7 if j == label_index else 0.1)
                    for j, col in enumerate(preset.label_from_argmax)}
        else:
            row[preset.label_column] = label_index
        rows.append(row)
        expected.append(preset.classes[label_index])
        write_image(root / preset.image_template.format(id=post_id))
    pd.DataFrame(rows).to_csv(root / preset.csv_name, index=False)
    return expected


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_every_preset_reads_its_own_layout(tmp_path, key):
    expected = write_preset_dataset(tmp_path, key)
    spec = CsvDatasetSpec.from_preset(key, tmp_path)
    df = load_posts(spec)
    assert list(df.columns[:6]) == ["post_id", "text", "image", "label", "label_index", "split"]
    assert df["label"].tolist() == expected
    assert df["label_index"].tolist() == [PRESETS[key].classes.index(x) for x in expected]
    assert df["split"].tolist() == SPLIT_OF_ROW
    assert df["text"][0] == "post number 0, with a comma"
    assert all(Path(p).is_file() for p in df["image"])
    report = validate(spec)
    assert report.usable and not report.bad_rows, report.format()
    assert sum(report.counts["train"].values()) == 2


def test_tir_label_is_argmax_of_four_columns(tmp_path):
    write_image(tmp_path / "text-image" / "T7.jpg")
    scores = "0.2,0.5,0.1,0.2"
    write_csv(tmp_path / "tir.csv",
              f"tweet_id,text,{','.join(TIR_COLUMNS)},split\n7,hi,{scores},train\n"
              "8,yo,,,,,train\n")
    df = load_posts(CsvDatasetSpec.from_preset("TIR", tmp_path))
    assert df.loc[0, "label"] == "image_adds_text_notrepr" and df.loc[0, "label_index"] == 1
    assert df.loc[0, "image"] == str(tmp_path / "text-image" / "T7.jpg")
    assert df.loc[1, "label_index"] == -1  # no scores at all: an unknown label
    assert not set(TIR_COLUMNS) & set(df.columns)


def test_micd_uses_id_column_and_underscore_one_template(tmp_path):
    write_preset_dataset(tmp_path, "micd")
    header = (tmp_path / "micd.csv").read_text().splitlines()[0]
    assert header.split(",")[0] == "id"
    df = load_posts(CsvDatasetSpec.from_preset("micd", tmp_path))
    assert df.loc[0, "image"] == str(tmp_path / "MIC" / "spc_imgs_twitter" / "1000_1.jpg")
    assert df.loc[0, "post_id"] == "1000"


def test_preset_csv_override_and_unknown_preset(tmp_path):
    spec = CsvDatasetSpec.from_preset("msd", tmp_path, csv=tmp_path / "other.csv")
    assert spec.csv == str(tmp_path / "other.csv") and spec.name == "msd"
    with pytest.raises(DatasetError, match="unknown dataset preset 'nope'; known: tir"):
        CsvDatasetSpec.from_preset("nope", tmp_path)


def test_spec_round_trips_through_json(tmp_path):
    spec = CsvDatasetSpec.from_preset("tir", tmp_path)
    again = CsvDatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.classes == TIR_COLUMNS


# --- the base format -------------------------------------------------------------------------

def custom_spec(tmp_path: Path, csv_name: str = "posts.csv", **kwargs) -> CsvDatasetSpec:
    return CsvDatasetSpec(csv=str(tmp_path / csv_name), image_root=str(tmp_path),
                          image_template="img/{id}.jpg", **kwargs)


def test_labels_as_names_or_indices_split_aliases_and_extra_columns(tmp_path):
    write_csv(tmp_path / "posts.csv",
              "tweet_id,text,label,split,followers,topic\n"
              "0012,a,Positive,train,10,x\n"
              "1234567890123456789,b,2,dev,,y\n"
              "3,NA,1.0,Validation,30,z\n")
    spec = custom_spec(tmp_path, classes=("neutral", "positive", "negative"))
    df = load_posts(spec)
    assert df["post_id"].tolist() == ["0012", "1234567890123456789", "3"]
    assert df["label"].tolist() == ["positive", "negative", "positive"]
    assert df["split"].tolist() == ["train", "val", "val"]
    assert df.loc[2, "text"] == "NA"
    assert df["followers"].dtype.kind == "f" and pd.isna(df.loc[1, "followers"])
    assert df["topic"].tolist() == ["x", "y", "z"]
    assert df.attrs["classes"] == ["neutral", "positive", "negative"]


def test_classes_inferred_from_the_data(tmp_path):
    write_csv(tmp_path / "ints.csv", "tweet_id,text,label,split\n1,a,2,train\n2,b,0,test\n")
    write_csv(tmp_path / "names.csv", "tweet_id,text,label,split\n1,a,dog,train\n2,b,cat,test\n")
    assert load_posts(custom_spec(tmp_path, "ints.csv")).attrs["classes"] == ["0", "1", "2"]
    names = load_posts(custom_spec(tmp_path, "names.csv"))
    assert names.attrs["classes"] == ["cat", "dog"] and names["label_index"].tolist() == [1, 0]


@pytest.mark.parametrize("d", [",", ";", "\t", "|"])
def test_bom_and_other_delimiters(tmp_path, d):
    write_csv(tmp_path / "posts.csv", f"\ufefftweet_id{d}text{d}label{d}split\n"
                                      f"1{d}\"hello, world; | ok\"{d}1{d}train\n"
                                      f"2{d}bye{d}0{d}test\n")
    df = load_posts(custom_spec(tmp_path))
    assert df["post_id"].tolist() == ["1", "2"]  # no BOM glued to the first column name
    assert df["text"].tolist() == ["hello, world; | ok", "bye"]


def test_non_utf8_csv_gives_a_clear_error(tmp_path):
    write_csv(tmp_path / "posts.csv", "tweet_id,text,label,split\n1,ok,0,train\n2,café,1,test\n",
              encoding="latin-1")
    with pytest.raises(DatasetError, match=r"posts\.csv: not UTF-8 text \(line 3: .*Re-save"):
        load_posts(custom_spec(tmp_path))
    report = validate(custom_spec(tmp_path))
    assert not report.usable and "not UTF-8" in report.format()


def test_missing_columns_are_fatal_and_list_what_is_there(tmp_path):
    write_csv(tmp_path / "posts.csv", "id,tweet,label,split\n1,a,0,train\n")
    with pytest.raises(DatasetError, match="missing column.s. tweet_id, text; the file has id, "
                                           "tweet, label, split"):
        load_posts(custom_spec(tmp_path))
    report = validate(custom_spec(tmp_path))
    assert not report.usable and "FATAL: " in report.format()
    with pytest.raises(DatasetError, match="missing column"):
        apply_bad_row_policy(pd.DataFrame(), report, "skip")


# --- validation finds each problem kind ------------------------------------------------------

@pytest.fixture
def messy(tmp_path) -> CsvDatasetSpec:
    for post_id in ("1", "2", "4", "5", "6", "7"):
        write_image(tmp_path / "img" / f"{post_id}.jpg")
    (tmp_path / "img" / "8.jpg").write_text("<html>rate limited</html>")
    (tmp_path / "img" / "9.jpg").write_bytes(b"")
    write_csv(tmp_path / "posts.csv",
              "tweet_id,text,label,split\n"
              "1,fine,positive,train\n"     # row 0: clean
              "2,fine too,negative,val\n"   # row 1: clean
              "3,no image,neutral,train\n"  # row 2: missing image
              "4,  ,neutral,train\n"        # row 3: empty text
              "5,what,angry,test\n"         # row 4: unknown label
              "1,again,positive,train\n"    # row 5: duplicate id
              "6,where,7,train\n"           # row 6: label index out of range
              "7,when,neutral,holdout\n"    # row 7: bad split
              "8,html,neutral,test\n"       # row 8: unreadable image
              "9,empty,neutral,test\n"      # row 9: zero-byte image
              ",no id,neutral,test\n")      # row 10: missing id
    return custom_spec(tmp_path, classes=("neutral", "positive", "negative"))


def test_validation_finds_each_problem_kind(messy):
    report = validate(messy)
    rows = {kind: [p.row for p in found] for kind, found in report.problems.items()}
    assert rows == {"missing_id": [10], "duplicate_id": [5], "empty_text": [3],
                    "unknown_label": [4, 6], "bad_split": [7], "missing_image": [2],
                    "unreadable_image": [8, 9]}
    assert report.bad_rows == {2, 3, 4, 5, 6, 7, 8, 9, 10}
    assert report.usable  # rows 0 and 1 survive, one of them in train
    assert report.counts == {"train": {"positive": 1}, "val": {"negative": 1}}
    unreadable = report.problems["unreadable_image"]
    assert "HTML page" in unreadable[0].detail and "empty" in unreadable[1].detail


def test_report_text_lists_counts_and_examples(messy):
    text = validate(messy).format()
    assert "11 rows, 2 clean; classes: neutral, positive, negative" in text
    assert "  train       1 rows  (neutral 0, positive 1, negative 0)" in text
    assert "missing image file: 1 rows" in text
    assert f"row 2 (id 3): no file {Path(messy.image_root) / 'img' / '3.jpg'}" in text
    assert "row 5 (id 1): same id as row 0" in text
    assert "row 4 (id 5): label 'angry' is not a class name or index" in text
    assert "Verdict: usable (after skipping 9 bad rows)" in text


def test_report_shows_at_most_ten_examples(tmp_path):
    body = "".join(f"{i},text,0,train\n" for i in range(15))
    write_csv(tmp_path / "posts.csv", "tweet_id,text,label,split\n" + body)
    text = validate(custom_spec(tmp_path, classes=("a", "b"))).format()
    assert "missing image file: 15 rows" in text and "... and 5 more" in text
    assert "row 9 (id 9)" in text and "row 10 (id 10)" not in text


def test_validation_without_image_checks(messy):
    report = validate(messy, check_images=False)
    assert not report.problems["missing_image"] and not report.problems["unreadable_image"]


def test_bad_row_policy(messy):
    report = validate(messy)
    df = load_posts(messy)
    with pytest.raises(DatasetError, match="9 bad rows .*skip"):
        apply_bad_row_policy(df, report, "fail")
    kept, skipped = apply_bad_row_policy(df, report, "skip")
    assert kept["post_id"].tolist() == ["1", "2"]
    assert [p.row for p in skipped] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "row 3 (id 4): the text is empty" in [str(p) for p in skipped]


def test_fail_policy_passes_clean_data(tmp_path):
    write_preset_dataset(tmp_path, "msd")
    spec = CsvDatasetSpec.from_preset("msd", tmp_path)
    kept, skipped = apply_bad_row_policy(load_posts(spec), validate(spec), "fail")
    assert len(kept) == 6 and skipped == []


# --- CLI -------------------------------------------------------------------------------------

def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mmaux data")
    add_validate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["validate", *argv])
    return args.func(args)


def test_cli_exit_codes(tmp_path, messy, capsys):
    root = tmp_path / "mvsa"
    write_preset_dataset(root, "mvsa-single")
    assert run_cli(["--preset", "mvsa-single", "--root", str(root)]) == 0
    assert "Verdict: usable" in capsys.readouterr().out

    custom = ["--csv", messy.csv, "--image-template", "img/{id}.jpg",
              "--classes", "neutral,positive,negative"]
    assert run_cli(custom) == 1
    assert run_cli([*custom, "--bad-rows", "skip"]) == 0
    assert "empty text: 1 rows" in capsys.readouterr().out


def test_cli_column_options(tmp_path, capsys):
    write_image(tmp_path / "pics" / "a1.jpg")
    write_csv(tmp_path / "d.csv", "pid;body;y;part\na1;hello;1;train\n")
    assert run_cli(["--csv", str(tmp_path / "d.csv"), "--image-template", "pics/{id}.jpg",
                    "--id-column", "pid", "--text-column", "body", "--label-column", "y",
                    "--split-column", "part"]) == 0
    assert "classes: 0, 1" in capsys.readouterr().out


def test_cli_argument_errors_exit_2(tmp_path, capsys):
    assert run_cli(["--csv", str(tmp_path / "absent.csv"), "--image-template", "{id}.jpg"]) == 2
    assert capsys.readouterr().err.strip() == f"error: CSV file not found: {tmp_path / 'absent.csv'}"
    assert run_cli(["--preset", "msd"]) == 2
    assert "--preset needs --root" in capsys.readouterr().err
    assert run_cli([]) == 2
    assert run_cli(["--preset", "msd", "--root", str(tmp_path)]) == 2  # no msd.csv there
    with pytest.raises(SystemExit) as exc:
        run_cli(["--preset", "unknown"])
    assert exc.value.code == 2


def test_cli_unusable_dataset_exits_1(tmp_path, capsys):
    write_csv(tmp_path / "posts.csv", "a,b\n1,2\n")
    assert run_cli(["--csv", str(tmp_path / "posts.csv"), "--image-template", "{id}.jpg"]) == 1
    assert "NOT usable" in capsys.readouterr().out
