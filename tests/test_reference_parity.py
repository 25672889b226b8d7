"""The paper's datasets as the authors' code reads them: an image stored as `{id}.png` behind the
`{id}.jpg` template is used (and counted) everywhere; MICD's id column may be `id` or `tweet_id`;
the paper recipe trains each preset with the authors' batch size, recorded in the checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from authors_layout import AUTHORS_CSV, SPLIT_SIZES, write_authors_layout
from PIL import Image

from mmaux.checkpoint import read_info, read_outputs
from mmaux.cli import _with_recipe, build_parser
from mmaux.cli import main as cli
from mmaux.data.csvdata import PRESETS, CsvDatasetSpec, DatasetError, load_posts, validate
from mmaux.data.images import find_image

AS_PNG = ("1001", "1020")  # one train post, one test post of MVSA-Single
N_POSTS = sum(SPLIT_SIZES.values())


@pytest.fixture(scope="module")
def png_root(tmp_path_factory) -> Path:
    """The authors' layout with two MVSA-Single images stored as `{id}.png` (re-saved, same pixels)."""
    root = tmp_path_factory.mktemp("authors")
    write_authors_layout(root)
    for post_id in AS_PNG:
        jpg = root / PRESETS["mvsa-single"].image_template.format(id=post_id)
        with Image.open(jpg) as img:
            img.save(jpg.with_suffix(".png"), format="PNG")
        jpg.unlink()
    return root


def _template(root: Path, post_id: str) -> str:
    return str(root / PRESETS["mvsa-single"].image_template.format(id=post_id))


def test_find_image_falls_back_from_jpg_to_png_only(png_root, tmp_path):
    assert find_image(_template(png_root, "1001")) == _template(png_root, "1001")[:-4] + ".png"
    assert find_image(_template(png_root, "1002")) == _template(png_root, "1002")  # the .jpg is there
    assert find_image(str(tmp_path / "none.jpg")) == str(tmp_path / "none.jpg")  # neither: reported missing
    (tmp_path / "a.png").write_bytes(b"")
    assert find_image(str(tmp_path / "a.jpeg")) == str(tmp_path / "a.jpeg")  # only .jpg falls back


def test_validate_counts_the_png_images_and_accepts_them(private_cache_dir, png_root, capsys):
    assert cli(["data", "validate", "--preset", "mvsa-single", "--root", str(png_root)]) == 0
    out = capsys.readouterr().out
    assert f"{N_POSTS} rows, {N_POSTS} clean" in out
    assert "2 images found as .png (the template's .jpg is missing; the authors' loader reads these too)" in out
    assert out.endswith("Verdict: usable\n")
    posts = load_posts(CsvDatasetSpec.from_preset("mvsa-single", png_root)).set_index("post_id")
    assert [posts.loc[i, "image"] for i in AS_PNG] == [_template(png_root, i)[:-4] + ".png" for i in AS_PNG]


def test_an_image_that_is_neither_jpg_nor_png_stays_a_bad_row(private_cache_dir, tmp_path, capsys):
    write_authors_layout(tmp_path)
    jpg = Path(_template(tmp_path, "1001"))
    jpg.rename(jpg.with_suffix(".gif"))
    report = validate(CsvDatasetSpec.from_preset("mvsa-single", tmp_path))
    assert report.png_images == 0
    assert [(p.post_id, p.detail) for p in report.problems["missing_image"]] == [("1001", f"no file {jpg}")]
    assert cli(["data", "validate", "--preset", "mvsa-single", "--root", str(tmp_path)]) == 1


def test_the_png_folder_trains_and_predicts(private_cache_dir, png_root, tmp_path, tiny_bert, tiny_vit):
    out = tmp_path / "run"
    assert cli(["train", "--preset", "mvsa-single", "--root", str(png_root), "--recipe", "cpu", "--epochs", "1",
                "--batch-size", "4", "--aux", "itc,itm", "--text-encoder", tiny_bert, "--image-encoder", tiny_vit,
                "--out", str(out)]) == 0
    outputs, _ = read_outputs(out)
    assert len(outputs) == SPLIT_SIZES["test"] and "1020" in set(outputs["post_id"])
    predictions = tmp_path / "predictions.csv"
    assert cli(["predict", "--checkpoint", str(out), "--csv", str(png_root / AUTHORS_CSV["mvsa-single"]),
                "--image-root", str(png_root), "--image-template", PRESETS["mvsa-single"].image_template,
                "--out", str(predictions)]) == 0
    table = pd.read_csv(predictions, dtype={"post_id": str}, keep_default_na=False)
    assert len(table) == N_POSTS and (table["error"] == "").all()


# --- MICD's id column ------------------------------------------------------------------------------

@pytest.mark.parametrize("column", ["id", "tweet_id"])
def test_micd_takes_id_or_tweet_id_and_says_which(private_cache_dir, png_root, tmp_path, column, capsys):
    csv = tmp_path / "micd.csv"
    pd.read_csv(png_root / AUTHORS_CSV["micd"], dtype=str).rename(columns={"id": column}).to_csv(csv, index=False)
    spec = CsvDatasetSpec.from_preset("micd", png_root, csv=csv)
    assert spec.id_column == column  # recorded so in a checkpoint's dataset spec
    assert list(load_posts(spec)["post_id"][:2]) == ["9000", "9001"]
    assert cli(["data", "validate", "--preset", "micd", "--root", str(png_root), "--csv", str(csv)]) == 0
    assert f"\nids from column {column} (the micd preset accepts id or tweet_id)\n" in capsys.readouterr().out


def test_micd_without_either_id_column_names_both(png_root, tmp_path):
    csv = tmp_path / "micd.csv"
    pd.read_csv(png_root / AUTHORS_CSV["micd"], dtype=str).rename(columns={"id": "post"}).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"missing column\(s\) id \(or tweet_id\); the file has post, text"):
        load_posts(CsvDatasetSpec.from_preset("micd", png_root, csv=csv))


def test_other_presets_say_nothing_of_their_id_column(png_root):
    assert validate(CsvDatasetSpec.from_preset("msd", png_root), check_images=False).id_note == ""


# --- batch sizes ------------------------------------------------------------------------------------

PAPER_BATCH = {"tir": 8, "tir-text-represented": 8, "tir-image-adds": 8, "mhp": 8,
               "mvsa-single": 16, "micd": 16, "msd": 16}


def _options(*argv: str):
    return _with_recipe(build_parser().parse_args(["train", "--out", "x", *argv]))


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_paper_recipe_uses_the_authors_batch_size_per_preset(key):
    assert PRESETS[key].paper_batch_size == PAPER_BATCH[key]
    assert _options("--preset", key, "--root", ".").batch_size == PAPER_BATCH[key]
    assert _options("--preset", key, "--root", ".", "--batch-size", "4").batch_size == 4  # the flag wins
    assert _options("--preset", key, "--root", ".", "--recipe", "cpu").batch_size == 64  # the cpu recipe's own
    assert _options("--task", "sentiment").batch_size == 16  # SynthPosts: the paper recipe's 16


def test_recipe_defaults_for_normalisation_and_reencoding():
    assert _options("--task", "sentiment").normalize_tweets is True
    assert _options("--task", "sentiment", "--no-normalize-tweets").normalize_tweets is False
    assert _options("--task", "sentiment", "--recipe", "cpu").normalize_tweets is False
    assert _options("--task", "sentiment", "--recipe", "cpu", "--normalize-tweets").normalize_tweets is True
    assert _options("--task", "sentiment").itm_reencode is False
    assert _options("--task", "sentiment", "--itm-reencode").itm_reencode is True


def test_paper_recipe_records_batch_size_and_normalisation(private_cache_dir, png_root, tmp_path, tiny_bert, tiny_vit):
    out = tmp_path / "run"
    assert cli(["train", "--preset", "mhp", "--root", str(png_root), "--epochs", "1", "--aux", "itm",
                "--itm-reencode", "--max-text-length", "16", "--text-encoder", tiny_bert,
                "--image-encoder", tiny_vit, "--out", str(out)]) == 0
    info = read_info(out)
    assert info.train["batch_size"] == 8 and info.model.normalize_tweets and info.model.loss.itm_reencode
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["train"]["batch_size"] == 8 and recorded["model"]["normalize_tweets"] is True
