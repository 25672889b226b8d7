"""mmaux.data.csvdata: each preset reads the authors' layout (file names, headers, image folders);
validation finds every kind of problem, decoding every image; its verdict is train's; the CSV
reader copes with BOMs and delimiters and refuses non-UTF-8."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from authors_layout import AUTHORS_CSV, MICD_WITHOUT_IMAGE, SPLIT_SIZES, TIR_HEADER, write_authors_layout
from PIL import Image

from mmaux.cli import build_parser
from mmaux.data.csvdata import (PRESETS, TIR_COLUMNS, CsvDatasetSpec, DatasetError,
                                apply_bad_row_policy, load_posts, validate)
from mmaux.data.images import BLANK_IMAGE, check_image

SPLITS_IN_ORDER = [s for s, n in SPLIT_SIZES.items() for _ in range(n)]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """validate remembers decoded images in the cache: never the user's."""
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path_factory.mktemp("cache")))


def write_image(path: Path, color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 8), color).save(path, format="JPEG")


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture(scope="module")
def authors(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """(data folder, expected labels per preset) of the five datasets in the authors' layout."""
    root = tmp_path_factory.mktemp("data")
    return root, write_authors_layout(root)


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_every_preset_reads_the_authors_layout(authors, key):
    root, expected = authors
    spec = CsvDatasetSpec.from_preset(key, root)
    assert Path(spec.csv).name == AUTHORS_CSV[key.split("-")[0] if key.startswith("tir") else key]
    df = load_posts(spec)
    assert list(df.columns[:6]) == ["post_id", "text", "image", "label", "label_index", "split"]
    assert df["label"].tolist() == expected[key]
    assert df["label_index"].tolist() == [PRESETS[key].classes.index(x) for x in expected[key]]
    assert df["split"].tolist() == SPLITS_IN_ORDER
    assert df["text"][0].endswith(", post 0 !")
    assert all(Path(p).is_file() for p in df["image"])
    report = validate(spec)
    assert report.verdict("fail") == (True, "usable") and not report.bad_rows, report.format()
    assert sum(report.counts["train"].values()) == SPLIT_SIZES["train"]


def test_tir_is_one_file_for_three_tasks(authors):
    root, expected = authors
    assert (root / "data_key_imgtxt_random.csv").read_text().splitlines()[0] == TIR_HEADER
    frames = {key: load_posts(CsvDatasetSpec.from_preset(key, root))
              for key in ("tir", "tir-text-represented", "tir-image-adds")}
    assert frames["tir"].attrs["classes"] == list(TIR_COLUMNS)
    assert frames["tir-text-represented"].attrs["classes"] == ["text_notrepr", "text_repr"]
    assert frames["tir-image-adds"].attrs["classes"] == ["image_notadds", "image_adds"]
    # the relation task keeps both binary columns as slices, each binary task the other one
    assert {"text_is_represented", "image_adds"} <= set(frames["tir"].columns)
    assert "image_adds" in frames["tir-text-represented"].columns
    assert "text_is_represented" in frames["tir-image-adds"].columns
    relation = frames["tir"].set_index("post_id")["label"]
    adds = frames["tir-image-adds"].set_index("post_id")["label"]
    assert all((r.startswith("image_adds")) == (a == "image_adds") for r, a in zip(relation, adds))


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


def test_micd_posts_without_an_image_get_the_blank_one(authors):
    root, _ = authors
    assert (root / "data_key_mic.csv").read_text().splitlines()[0] == "id,text,label,split"
    spec = CsvDatasetSpec.from_preset("micd", root)
    df = load_posts(spec).set_index("post_id")
    assert df.loc["9000", "image"] == str(root / "MIC" / "spc_imgs_twitter" / "9000_1.jpg")
    without = df.index[~df["has_image"]].tolist()
    assert without == list(MICD_WITHOUT_IMAGE)
    assert (df.loc[without, "image"] == str(BLANK_IMAGE)).all()
    report = validate(spec)
    assert not report.bad_rows and report.without_image == 2
    assert "2 clean rows have no image file: they get the blank image" in report.format()


def test_missing_image_policy_is_per_spec(tmp_path):
    write_image(tmp_path / "img" / "1.jpg")
    write_csv(tmp_path / "posts.csv", "tweet_id,text,label,split\n1,a,0,train\n2,b,1,train\n")
    strict = custom_spec(tmp_path)
    assert [p.post_id for p in validate(strict).problems["missing_image"]] == ["2"]
    assert "has_image" not in load_posts(strict).columns  # no constant slice for complete data
    blank = custom_spec(tmp_path, missing_image="blank")
    assert not validate(blank).bad_rows
    assert load_posts(blank)["has_image"].tolist() == [True, False]
    with pytest.raises(DatasetError, match="missing_image must be one of fail, blank"):
        custom_spec(tmp_path, missing_image="skip")


def test_short_csv_names_are_the_fallback_and_csv_wins(tmp_path, authors):
    root, _ = authors
    shutil.copy(root / "data_key_msd.csv", tmp_path / "msd.csv")
    assert CsvDatasetSpec.from_preset("msd", tmp_path).csv == str(tmp_path / "msd.csv")
    shutil.copy(root / "data_key_msd.csv", tmp_path / "data_key_msd.csv")
    assert CsvDatasetSpec.from_preset("msd", tmp_path).csv == str(tmp_path / "data_key_msd.csv")
    spec = CsvDatasetSpec.from_preset("msd", tmp_path, csv=tmp_path / "other.csv")
    assert spec.csv == str(tmp_path / "other.csv") and spec.name == "msd"
    with pytest.raises(DatasetError, match="unknown dataset preset 'nope'; known: tir"):
        CsvDatasetSpec.from_preset("nope", tmp_path)


def test_spec_round_trips_through_json(tmp_path):
    spec = CsvDatasetSpec.from_preset("micd", tmp_path)
    again = CsvDatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.missing_image == "blank"
    old = {k: v for k, v in spec.to_dict().items() if k != "missing_image"}  # recorded before
    assert CsvDatasetSpec.from_dict(old).missing_image == "fail"


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

def truncated_jpeg(path: Path) -> None:
    """A real photo-sized JPEG cut to a quarter of its bytes: its header still reads fine."""
    write_image(path)
    Image.effect_noise((160, 120), 60).convert("RGB").save(path, format="JPEG", quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 4])


@pytest.fixture
def messy(tmp_path) -> CsvDatasetSpec:
    for post_id in ("1", "2", "4", "5", "6", "7", "11"):
        write_image(tmp_path / "img" / f"{post_id}.jpg")
    (tmp_path / "img" / "8.jpg").write_text("<html>rate limited</html>")
    (tmp_path / "img" / "9.jpg").write_bytes(b"")
    truncated_jpeg(tmp_path / "img" / "12.jpg")
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
              ",no id,neutral,test\n"       # row 10: missing id
              "11,fine three,neutral,test\n"  # row 11: clean
              "12,cut,neutral,test\n")      # row 12: truncated JPEG (its header is fine)
    return custom_spec(tmp_path, classes=("neutral", "positive", "negative"))


BAD = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]


def test_validation_finds_each_problem_kind(messy):
    report = validate(messy)
    rows = {kind: [p.row for p in found] for kind, found in report.problems.items()}
    assert rows == {"missing_id": [10], "duplicate_id": [5], "empty_text": [3],
                    "unknown_label": [4, 6], "bad_split": [7], "missing_image": [2],
                    "unreadable_image": [8, 9, 12]}
    assert report.bad_rows == set(BAD)
    assert report.usable  # rows 0, 1 and 11 survive, one in each split
    assert report.counts == {"train": {"positive": 1}, "val": {"negative": 1}, "test": {"neutral": 1}}
    unreadable = report.problems["unreadable_image"]
    assert "HTML page" in unreadable[0].detail and "empty" in unreadable[1].detail
    cut = Path(messy.image_root) / "img" / "12.jpg"
    assert str(unreadable[2]).startswith(f"line 14 (id '12'): {cut}: truncated or corrupt image data")


def test_parallel_decoding_finds_the_same_as_one_thread(messy):
    assert validate(messy, workers=1).problems == validate(messy, workers=4).problems


def test_images_that_decoded_are_not_decoded_again_until_they_change(messy, monkeypatch):
    from mmaux.data import csvdata

    decoded = []
    monkeypatch.setattr(csvdata, "check_image", lambda path: decoded.append(Path(path).name)
                        or check_image(path))
    first = validate(messy)
    assert sorted(decoded) == sorted(["1.jpg", "2.jpg", "4.jpg", "5.jpg", "6.jpg", "7.jpg", "11.jpg",
                                      "8.jpg", "9.jpg", "12.jpg"])
    decoded.clear()
    assert validate(messy).problems == first.problems
    assert sorted(decoded) == ["12.jpg", "8.jpg", "9.jpg"]  # only the bad ones, to report them again
    decoded.clear()
    truncated_jpeg(Path(messy.image_root) / "img" / "11.jpg")  # changed since: decoded again
    assert [p.post_id for p in validate(messy).problems["unreadable_image"]] == ["8", "9", "11", "12"]
    assert "11.jpg" in decoded
    decoded.clear()
    assert len(validate(messy, cache=False).problems["unreadable_image"]) == 4 and len(decoded) == 10
    for cache_file in Path(os.environ["MMAUX_CACHE"], "decoded-images").iterdir():
        cache_file.write_text("[not json")  # a damaged cache means: decode again
    decoded.clear()
    assert validate(messy).problems["unreadable_image"][0].post_id == "8" and len(decoded) == 10


def test_report_text_lists_counts_and_examples(messy):
    text = validate(messy).format()
    assert "13 rows, 3 clean; classes: neutral, positive, negative" in text
    assert "  train       1 rows  (neutral 0, positive 1, negative 0)" in text
    assert "missing image file: 1 rows" in text
    assert "unreadable, truncated or corrupt image: 3 rows" in text
    assert f"line 4 (id '3'): no file {Path(messy.image_root) / 'img' / '3.jpg'}" in text
    assert "line 7 (id '1'): same id as line 2" in text
    assert "line 6 (id '5'): label 'angry' is not a class name or index" in text
    assert text.endswith("Verdict: NOT usable as is: 10 bad rows; with --on-bad-rows skip they "
                         "are dropped and 3 rows are used")
    assert validate(messy).format("skip").endswith(
        "Verdict: usable with --on-bad-rows skip (10 bad rows dropped, 3 rows used), with 3 warnings above")


def test_report_shows_at_most_ten_examples_unless_asked(tmp_path):
    body = "".join(f"{i},text,0,train\n" for i in range(15))
    write_csv(tmp_path / "posts.csv", "tweet_id,text,label,split\n" + body)
    report = validate(custom_spec(tmp_path, classes=("a", "b")))
    text = report.format()
    assert "missing image file: 15 rows" in text and "... and 5 more (--all lists them)" in text
    assert "line 11 (id '9')" in text and "line 12 (id '10')" not in text
    assert "line 16 (id '14')" in report.format(max_examples=None)


def test_validation_without_image_checks(messy):
    report = validate(messy, check_images=False)
    assert not report.problems["missing_image"] and not report.problems["unreadable_image"]


def test_bad_row_policy(messy):
    report = validate(messy)
    df = load_posts(messy)
    with pytest.raises(DatasetError, match="NOT usable as is: 10 bad rows; with --on-bad-rows skip"):
        apply_bad_row_policy(df, report, "fail")
    kept, skipped = apply_bad_row_policy(df, report, "skip")
    assert kept["post_id"].tolist() == ["1", "2", "11"]
    assert [p.row for p in skipped] == BAD
    assert "line 5 (id '4'): the text is empty" in [str(p) for p in skipped]


def test_fail_policy_passes_clean_data(authors):
    spec = CsvDatasetSpec.from_preset("msd", authors[0])
    kept, skipped = apply_bad_row_policy(load_posts(spec), validate(spec), "fail")
    assert len(kept) == sum(SPLIT_SIZES.values()) and skipped == []


def test_no_option_fixes_an_empty_split(tmp_path):
    for i in (1, 2):
        write_image(tmp_path / "img" / f"{i}.jpg")
    write_csv(tmp_path / "posts.csv", "tweet_id,text,label,split\n1,a,0,train\n2,b,1,test\n")
    report = validate(custom_spec(tmp_path))
    for policy in ("fail", "skip"):
        usable, line = report.verdict(policy)
        assert not usable and line.startswith("NOT usable: no clean val rows")
    assert report.verdict("skip", splits=("test",)) == (True, "usable, with 1 warning above")  # evaluate: test only


# --- CLI -------------------------------------------------------------------------------------

def run_cli(argv: list[str]) -> int:
    """`mmaux data validate ARGV` in this process: its exit status (1: not usable) without the
    error handling of `mmaux.cli.main` around it."""
    args = build_parser().parse_args(["data", "validate", *argv])
    return args.func(args)


def test_cli_exit_codes(messy, authors, capsys):
    assert run_cli(["--preset", "mvsa-single", "--root", str(authors[0])]) == 0
    assert capsys.readouterr().out.endswith("Verdict: usable\n")

    custom = ["--csv", messy.csv, "--image-template", "img/{id}.jpg",
              "--classes", "neutral,positive,negative"]
    assert run_cli(custom) == 1
    out = capsys.readouterr()
    assert "with --on-bad-rows skip they are dropped" in out.out
    assert "decoding images" in out.err  # the progress bar
    assert run_cli([*custom, "--on-bad-rows", "skip"]) == 0
    assert run_cli([*custom, "--bad-rows", "skip", "--workers", "1"]) == 0  # the old spelling
    assert "empty text: 1 rows" in capsys.readouterr().out


@pytest.mark.parametrize("policy", ["fail", "skip"])
@pytest.mark.parametrize("case", ["clean", "messy", "empty_split", "no_columns"])
def test_validate_exit_status_is_trains_verdict(tmp_path, messy, authors, policy, case):
    """Exit 0 exactly when `apply_bad_row_policy` (what train runs) accepts the dataset."""
    if case == "clean":
        spec = CsvDatasetSpec.from_preset("mhp", authors[0])
    elif case == "messy":
        spec = messy
    else:
        write_image(tmp_path / "img" / "1.jpg")
        write_csv(tmp_path / "e.csv", "tweet_id,text,label,split\n1,a,0,train\n" if case == "empty_split"
                  else "a,b\n1,2\n")
        spec = custom_spec(tmp_path, "e.csv")
    argv = ["--csv", spec.csv, "--image-root", spec.image_root, "--image-template",
            spec.image_template, "--on-bad-rows", policy]
    if spec.classes:
        argv += ["--classes", ",".join(spec.classes)]
    try:
        apply_bad_row_policy(load_posts(spec), validate(spec), policy)
        trains = True
    except DatasetError:
        trains = False
    assert (run_cli(argv) == 0) == trains
    assert trains == {"clean": True, "messy": policy == "skip"}.get(case, False)


def test_cli_column_options_and_missing_image_option(tmp_path, capsys):
    for post_id in ("a1", "a2"):
        write_image(tmp_path / "pics" / f"{post_id}.jpg")
    write_csv(tmp_path / "d.csv", "pid;body;y;part\na1;hello;1;train\na2;hi;0;val\na3;yo;0;test\n")
    argv = ["--csv", str(tmp_path / "d.csv"), "--image-template", "pics/{id}.jpg",
            "--id-column", "pid", "--text-column", "body", "--label-column", "y",
            "--split-column", "part"]
    assert run_cli(argv) == 1  # a3 has no image
    assert "classes: 0, 1" in capsys.readouterr().out
    assert run_cli([*argv, "--missing-image", "blank"]) == 0
    assert "1 clean rows have no image file" in capsys.readouterr().out


def test_cli_argument_errors_exit_2(tmp_path, capsys):
    assert run_cli(["--csv", str(tmp_path / "absent.csv"), "--image-template", "{id}.jpg"]) == 2
    assert capsys.readouterr().err.strip() == f"error: CSV file not found: {tmp_path / 'absent.csv'}"
    assert run_cli(["--preset", "msd"]) == 2
    assert "--preset needs --root" in capsys.readouterr().err
    assert run_cli([]) == 2
    assert "give --preset NAME --root DIR, or --csv" in capsys.readouterr().err
    assert run_cli(["--preset", "msd", "--root", str(tmp_path)]) == 2  # no CSV there
    assert capsys.readouterr().err.strip() == (
        f"error: no CSV for preset msd in {tmp_path}: looked for data_key_msd.csv or msd.csv; "
        "pass --csv FILE if yours is named differently")
    with pytest.raises(SystemExit) as exc:
        run_cli(["--preset", "unknown"])
    assert exc.value.code == 2


def test_cli_unusable_dataset_exits_1(tmp_path, capsys):
    write_csv(tmp_path / "posts.csv", "a,b\n1,2\n")
    assert run_cli(["--csv", str(tmp_path / "posts.csv"), "--image-template", "{id}.jpg"]) == 1
    assert "NOT usable" in capsys.readouterr().out


def test_a_class_missing_from_a_split_is_a_warning_in_validate_and_in_train(tmp_path, capsys):
    """Train has no 'neutral' post and val no 'positive' one: validate says both (and still
    'usable': a warning, not a refusal), and loading the data for training warns the same."""
    for post_id in range(1, 7):
        write_image(tmp_path / "img" / f"{post_id}.jpg")
    write_csv(tmp_path / "posts.csv", "tweet_id,text,label,split\n1,a,positive,train\n2,b,negative,train\n"
                                      "3,c,neutral,val\n4,d,negative,val\n5,e,neutral,test\n6,f,positive,test\n")
    spec = custom_spec(tmp_path, classes=("neutral", "positive", "negative"))
    report = validate(spec)
    assert report.class_warnings() == [
        "WARNING: no clean train rows of class 'neutral': the model will never learn to predict it; add training "
        "posts of it",
        "WARNING: no clean val rows of class 'positive': its val F1 counts as 0 in macro-F1 whatever the model "
        "predicts; move some posts of it into val",
        "WARNING: no clean test rows of class 'negative': its test F1 counts as 0 in macro-F1 whatever the model "
        "predicts; move some posts of it into test"]
    assert report.format().endswith("Verdict: usable, with 3 warnings above")
    assert run_cli(["--csv", spec.csv, "--image-template", "img/{id}.jpg", "--classes",
                    "neutral,positive,negative"]) == 0
    with pytest.warns(UserWarning, match="no clean train rows of class 'neutral'"):
        apply_bad_row_policy(load_posts(spec), report, "fail")


def test_a_huge_value_is_cut_in_every_message(tmp_path):
    write_image(tmp_path / "img" / "1.jpg")
    huge = "x" * 5_000_000
    write_csv(tmp_path / "posts.csv", f"tweet_id,text,label,split\n1,a,{huge},train\n")
    report = validate(custom_spec(tmp_path, classes=("neutral", "positive")))
    text = report.format()
    assert len(text) < 2_000
    assert "line 2 (id '1'): label 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'… (5,000,000 characters) " \
           "is not a class name or index" in text
