"""The paper's five datasets as their users unpack them, in miniature: one data folder holding the
authors' CSV files (`data_key_*.csv`, exact headers) and each dataset's image folder, with small
JPEGs drawn by Pillow at test time (nothing binary is committed).

    write_authors_layout(root) -> {preset key: expected label names in CSV row order}

TIR is one file serving three presets (`tir`, `tir-text-represented`, `tir-image-adds`). The
MICD posts in `MICD_WITHOUT_IMAGE` have no image file, as some of the real ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mmaux.data.csvdata import PRESETS, TIR_COLUMNS

AUTHORS_CSV = {"tir": "data_key_imgtxt_random.csv", "mvsa-single": "data_key_mvsa.csv",
               "mhp": "data_key_mhp.csv", "msd": "data_key_msd.csv", "micd": "data_key_mic.csv"}
TIR_HEADER = ("index,tweet_id,user_id,text,text_is_represented,image_adds,image_adds_text_repr,"
              "image_adds_text_notrepr,image_notadds_text_repr,image_notadds_text_notrepr,split")
TIR_PRESETS = ("tir", "tir-text-represented", "tir-image-adds")
# every class in every split; 12 test posts, as the Embeddings page's k-NN overlap needs k + 2 = 12
SPLIT_SIZES = {"train": 8, "val": 4, "test": 12}
MICD_WITHOUT_IMAGE = ("9005", "9013")  # one train post, one test post
WORDS = "love hate this so good bad cat dog photo of my new car the stock market fell".split()


def write_image(path: Path, seed: int, size=(40, 32)) -> None:
    """A small noisy JPEG, different for every seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def _rows(n_classes: int, first_id: int, sizes: dict[str, int] = SPLIT_SIZES):
    """(post id, text, label index, split) of `sizes` posts per split, labels cycling over the classes."""
    i = 0
    for split, size in sizes.items():
        for k in range(size):
            words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(5)]
            yield str(first_id + i), " ".join(words) + f" , post {i} !", k % n_classes, split
            i += 1


def write_tir(root: Path) -> dict[str, list[str]]:
    """data_key_imgtxt_random.csv with the authors' header; relation r in 0..3 sets all six columns."""
    lines, relations = [TIR_HEADER], []
    for n, (post_id, text, r, split) in enumerate(_rows(4, 7000)):
        onehot = [int(j == r) for j in range(4)]
        image_adds, text_repr = int(r in (0, 1)), int(r in (0, 2))
        lines.append(",".join(map(str, [n, post_id, 500 + n, f'"{text}"', text_repr, image_adds,
                                        *onehot, split])))
        relations.append(r)
        write_image(root / PRESETS["tir"].image_template.format(id=post_id), seed=int(post_id))
    (root / AUTHORS_CSV["tir"]).write_text("\n".join(lines) + "\n")
    return {"tir": [TIR_COLUMNS[r] for r in relations],
            "tir-text-represented": [PRESETS["tir-text-represented"].classes[int(r in (0, 2))]
                                     for r in relations],
            "tir-image-adds": [PRESETS["tir-image-adds"].classes[int(r in (0, 1))] for r in relations]}


def write_single(root: Path, key: str, first_id: int, sizes: dict[str, int] = SPLIT_SIZES) -> list[str]:
    """One of the `id/tweet_id,text,label,split` datasets (`sizes` posts per split; a larger test
    split lets a test find an effect); labels written as class indices."""
    preset = PRESETS[key]
    rows, labels = [], []
    for post_id, text, label, split in _rows(len(preset.classes), first_id, sizes):
        rows.append({preset.id_column: post_id, "text": text, "label": label, "split": split})
        labels.append(preset.classes[label])
        if not (key == "micd" and post_id in MICD_WITHOUT_IMAGE):
            write_image(root / preset.image_template.format(id=post_id), seed=int(post_id))
    pd.DataFrame(rows).to_csv(root / AUTHORS_CSV[key], index=False)
    return labels


def write_authors_layout(root: Path) -> dict[str, list[str]]:
    """All five datasets in one data folder, as the authors' code reads them."""
    root.mkdir(parents=True, exist_ok=True)
    expected = write_tir(root)
    for first_id, key in ((1000, "mvsa-single"), (3000, "mhp"), (5000, "msd"), (9000, "micd")):
        expected[key] = write_single(root, key, first_id)
    return expected
