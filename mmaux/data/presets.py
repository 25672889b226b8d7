"""The paper's five datasets as the authors' code lays them out (`PRESETS`), and the command-line
options that name a CSV dataset (`add_csv_options`): what the command line needs to describe a
dataset, kept apart from the code that reads one (`mmaux.data.csvdata`) so that parsing a command
imports neither pandas nor Pillow."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

MISSING_IMAGE_POLICIES = ("fail", "blank")  # a post without an image file: a bad row, or BLANK_IMAGE
BAD_ROW_POLICIES = ("fail", "skip")  # train's --on-bad-rows
MAX_EXAMPLES = 10  # examples shown per problem kind in ValidationReport.format()


@dataclass(frozen=True)
class DatasetPreset:
    """Where one of the paper's datasets keeps its columns and images."""
    name: str  # the paper's name, e.g. "MVSA-Single"
    task: str  # what is classified
    csv_names: tuple[str, ...]  # CSV file names looked for in the root, in order (authors' first)
    image_template: str  # image path relative to the root, with {id}
    classes: tuple[str, ...] = ()  # class names by label index; () = taken from the data
    id_column: str = "tweet_id"
    text_column: str = "text"
    label_column: str = "label"
    split_column: str = "split"
    label_from_argmax: tuple[str, ...] = ()  # label = argmax over these columns (TIR)
    missing_image: str = "fail"  # a post without an image file: "fail" (bad row) or "blank"
    other_id_columns: tuple[str, ...] = ()  # also accepted as the id column, when id_column is absent
    paper_batch_size: int = 16  # the authors' training batch for this dataset (the paper recipe's default)


TIR_COLUMNS = ("image_adds_text_repr", "image_adds_text_notrepr",
               "image_notadds_text_repr", "image_notadds_text_notrepr")

TIR_CSV = ("data_key_imgtxt_random.csv", "tir.csv")  # one file, three tasks
TIR_IMAGES = "text-image/T{id}.jpg"

PRESETS: dict[str, DatasetPreset] = {
    "tir": DatasetPreset("TIR", "text-image relation", TIR_CSV, TIR_IMAGES,
                         classes=TIR_COLUMNS, label_from_argmax=TIR_COLUMNS, paper_batch_size=8),
    "tir-text-represented": DatasetPreset(
        "TIR", "is the text represented in the image", TIR_CSV, TIR_IMAGES,
        classes=("text_notrepr", "text_repr"), label_column="text_is_represented", paper_batch_size=8),
    "tir-image-adds": DatasetPreset(
        "TIR", "does the image add to the text's meaning", TIR_CSV, TIR_IMAGES,
        classes=("image_notadds", "image_adds"), label_column="image_adds", paper_batch_size=8),
    "mvsa-single": DatasetPreset("MVSA-Single", "sentiment", ("data_key_mvsa.csv", "mvsa-single.csv"),
                                 "MVSA-Single/data/{id}.jpg",
                                 classes=("neutral", "positive", "negative")),
    # MHP and MICD class names are not published with the data: labels are the indices.
    "mhp": DatasetPreset("MHP", "hate speech", ("data_key_mhp.csv", "mhp.csv"),
                         "MHP/Data/Images/{id}.jpg", classes=("0", "1", "2", "3"), paper_batch_size=8),
    "msd": DatasetPreset("MSD", "sarcasm", ("data_key_msd.csv", "msd.csv"),
                         "MSD/dataset_image/{id}.jpg", classes=("not_sarcastic", "sarcastic")),
    "micd": DatasetPreset("MICD", "influencer content", ("data_key_mic.csv", "micd.csv"),
                          "MIC/spc_imgs_twitter/{id}_1.jpg", classes=("0", "1"), id_column="id",
                          other_id_columns=("tweet_id",), missing_image="blank"),
}


def preset_csv(key: str, root: str | Path) -> Path:
    """The preset's CSV in `root`: the first of its names that exists, else the authors' name."""
    candidates = [Path(root) / name for name in PRESETS[key].csv_names]
    return next((path for path in candidates if path.is_file()), candidates[0])


def add_csv_options(parser: argparse.ArgumentParser) -> None:
    """The options that name a CSV dataset (shared by validate, train and evaluate)."""
    group = parser.add_argument_group("CSV dataset (the paper's format)")
    group.add_argument("--preset", choices=sorted(PRESETS), help="one of the paper's datasets")
    group.add_argument("--root", help="dataset root folder (with --preset)")
    group.add_argument("--csv", help="the CSV file (default for a preset: the authors' "
                                     "<root>/data_key_*.csv, else <root>/<preset>.csv)")
    group.add_argument("--image-template", help="image path relative to the image root, "
                                                "with {id}, e.g. 'images/{id}.jpg'")
    group.add_argument("--image-root", help="folder the template is relative to "
                                            "(default: --root, else the CSV's folder)")
    for column in ("id", "text", "label", "split"):
        group.add_argument(f"--{column}-column", help=f"name of the {column} column")
    group.add_argument("--classes", help="comma-separated class names, by label index")
    group.add_argument("--missing-image", choices=MISSING_IMAGE_POLICIES,
                       help="a post without an image file: a bad row ('fail', the default except "
                            "for micd) or the blank image plus a has_image column ('blank')")
