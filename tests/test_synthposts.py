"""SynthPosts: determinism, label rules, no sentiment leaks, label noise, image sanity, cache."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmaux.data import synth_lexicon as lex
from mmaux.data import synthposts as sp

SMALL = dict(seed=3, n_train=30, n_val=6, n_test=20)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "images").glob("*.png"))}


@pytest.fixture(scope="module")
def posts(tmp_path_factory) -> pd.DataFrame:
    """One small generation per task (the posts are the same; labels differ)."""
    out = {}
    for task in sp.TASKS:
        folder = tmp_path_factory.mktemp(task)
        sp.generate(sp.SynthSpec(task, **SMALL), folder)
        out[task] = pd.read_csv(folder / "posts.csv", keep_default_na=False)
    out["folder"] = folder
    return out


def test_generation_is_byte_identical(tmp_path, posts):
    sp.generate(sp.SynthSpec("relation", **SMALL), tmp_path)
    assert _digests(tmp_path) == _digests(posts["folder"])
    assert (tmp_path / "posts.csv").read_bytes() == (posts["folder"] / "posts.csv").read_bytes()


def test_test_split_alone_equals_test_split_of_all(tmp_path, posts):
    sp.generate(sp.SynthSpec("relation", **SMALL), tmp_path, splits=("test",))
    alone = pd.read_csv(tmp_path / "posts.csv", keep_default_na=False)
    full = posts["relation"]
    pd.testing.assert_frame_equal(alone, full[full.split == "test"].reset_index(drop=True))
    assert _digests(tmp_path) == {k: v for k, v in _digests(posts["folder"]).items()
                                  if k.startswith("test_")}


def test_posts_are_shared_across_tasks(posts):
    content = ["post_id", "text", "image", "emoji", "evidence", "caption", "background"]
    assert posts["sentiment"][content].equals(posts["sarcasm"][content])
    assert posts["sentiment"][content].equals(posts["relation"][content])


def test_columns_and_label_names(posts):
    for task, classes in sp.TASKS.items():
        frame = posts[task]
        assert set(sp.COLUMNS) <= set(frame.columns)
        assert set(frame.label) <= set(classes)
        assert frame.post_id.is_unique
        assert (frame.label == frame.label_clean).all()  # no noise asked


def test_latents_follow_the_documented_rules(posts):
    frame = posts["sentiment"]
    for row in frame.itertuples():
        t, i = row.text_sentiment, row.image_sentiment
        expected = {"text_only": (t != "neutral" and i == "neutral"),
                    "image_only": (t == "neutral" and i != "neutral"),
                    "both_agree": t == i,
                    "both_conflict": {t, i} == {"positive", "negative"}}[row.evidence]
        assert expected, row
        assert row.image_adds == (row.evidence in ("image_only", "both_conflict"))
        assert row.text_names_image == row.text_represented
        assert (row.mentioned == row.subject) == row.text_represented
        assert row.relation == sp.relation_name(row.image_adds, row.text_represented)
        assert row.emoji.split("|")[0] == row.subject and 2 <= len(row.emoji.split("|")) <= 3
        assert row.subject in sp.subjects() and row.mentioned in sp.subjects()


def test_task_labels(posts):
    s, sar, rel = posts["sentiment"], posts["sarcasm"], posts["relation"]
    conflict = s.evidence == "both_conflict"
    assert (s.label[conflict] == "negative").all()
    assert (s.label[s.evidence == "text_only"] == s.text_sentiment[s.evidence == "text_only"]).all()
    image_only = s.evidence == "image_only"
    assert (s.label[image_only] == s.image_sentiment[image_only]).all()
    assert ((sar.label == "sarcastic") == conflict).all()
    assert (rel.label == rel.relation).all()


def _sentiment_pattern() -> re.Pattern:
    words = [w for s in ("positive", "negative")
             for w in lex.ADJ[s] + lex.REACT[s] + lex.HASHTAGS[s]]
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w#])({alternatives})(?!\w)", re.IGNORECASE)


def test_neutral_texts_carry_no_sentiment(posts):
    frame = posts["sentiment"]
    neutral = frame[frame.text_sentiment == "neutral"]
    assert len(neutral) > 0
    pattern = _sentiment_pattern()
    emoji_chars = {c for s in ("positive", "negative") for c in lex.TEXT_EMOJI[s]}
    for text in neutral.text:
        assert not pattern.search(text), text
        assert not emoji_chars & set(text), text


def test_lexicons_do_not_overlap():
    pattern = _sentiment_pattern()
    neutral = (lex.ADJ["neutral"] + lex.REACT["neutral"] + lex.HASHTAGS["neutral"] + lex.WHEN
               + lex.SLANG + lex.CAPTIONS + [sp.noun(n) for n in sp.emoji_pool()["neutral"]])
    assert not [w for w in neutral if pattern.search(w)]


def test_label_noise_flips_about_p():
    spec = sp.SynthSpec("sentiment", seed=1, label_noise=0.2)
    noisy = [sp._noisy_label(spec, "train", i, "neutral") for i in range(2000)]
    assert 0.17 < np.mean([n != "neutral" for n in noisy]) < 0.23
    assert set(noisy) == set(sp.TASKS["sentiment"])


def test_noise_is_recorded_by_generate(tmp_path):
    spec = sp.SynthSpec("sarcasm", seed=2, n_train=40, n_val=0, n_test=10, label_noise=0.5)
    frame = sp.generate(spec, tmp_path)
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    assert (train.label != train.label_clean).any()
    assert (test.label == test.label_clean).all()


def test_images_are_large_rgb_and_drawn(posts):
    folder = posts["folder"]
    for rel in posts["relation"].image:
        img = Image.open(folder / rel)
        assert img.mode == "RGB" and min(img.size) >= 224
        pixels = np.asarray(img, dtype=np.int64)
        colours = np.unique(pixels @ np.array([1 << 16, 1 << 8, 1]))
        assert pixels.std() > 10 and len(colours) > 50


def test_glyph_is_drawn_in_colour():
    tile = np.asarray(sp.glyph("party_popper"))
    opaque = tile[tile[..., 3] > 200][:, :3]
    assert len(opaque) > 1000 and len(np.unique(opaque, axis=0)) > 5


def test_emoji_pool_is_large_and_renders():
    pool = sp.emoji_pool()
    names = [n for names in pool.values() for n in names]
    assert len(set(names)) == len(names) >= 300
    assert min(len(v) for v in pool.values()) >= 60


def test_templates_are_many_and_none_dominates():
    assert len(lex.TEMPLATES) >= 40
    chosen = [sp._text(np.random.default_rng(i), "positive", "chair")[1] for i in range(2000)]
    assert pd.Series(chosen).value_counts(normalize=True).max() <= 0.05


@pytest.mark.parametrize("kwargs", [dict(task="nope"), dict(task="sentiment", seed=-1),
                                    dict(task="sentiment", n_train=-5),
                                    dict(task="sentiment", n_test=2.5),
                                    dict(task="sentiment", label_noise=1.0),
                                    dict(task="sentiment", label_noise=-0.1)])
def test_spec_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        sp.SynthSpec(**kwargs)


def test_ensure_caches_and_repairs(tmp_path):
    spec = sp.SynthSpec("sentiment", seed=4, n_train=4, n_val=2, n_test=3)
    folder = sp.ensure(spec, splits=("test",), cache_root=tmp_path)
    assert len(pd.read_csv(folder / "posts.csv")) == 3
    stamp = (folder / "posts.csv").stat().st_mtime_ns
    assert sp.ensure(spec, splits=("test",), cache_root=tmp_path) == folder
    assert (folder / "posts.csv").stat().st_mtime_ns == stamp  # reused, not regenerated
    next((folder / "images").iterdir()).unlink()  # damage it
    assert sp.ensure(spec, splits=("test",), cache_root=tmp_path) == folder
    assert len(list((folder / "images").iterdir())) == 3
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_ensure_takes_a_subset_from_a_cached_superset(tmp_path):
    spec = sp.SynthSpec("relation", seed=4, n_train=4, n_val=2, n_test=3)
    full = sp.ensure(spec, cache_root=tmp_path)
    part = sp.ensure(spec, splits=("val",), cache_root=tmp_path)
    assert part != full and set(pd.read_csv(part / "posts.csv").split) == {"val"}
    assert _digests(part) == {k: v for k, v in _digests(full).items() if k.startswith("val_")}


@pytest.mark.parametrize("splits", [(), ("dev",), "test"])
def test_bad_splits_are_rejected(tmp_path, splits):
    with pytest.raises(ValueError):
        sp.generate(sp.SynthSpec("sentiment", n_test=1), tmp_path, splits=splits)


@pytest.fixture(scope="module")
def layout_sample(tmp_path_factory) -> pd.DataFrame:
    """The first 1200 training posts of the shipped generation (seed 7), labelled for every task."""
    folder = tmp_path_factory.mktemp("layout")
    frame = sp.generate(sp.SynthSpec("sentiment", seed=7, n_train=1200, n_val=0, n_test=0), folder)
    for task in sp.TASKS:
        frame[task] = [sp.clean_label(task, post) for post in frame.to_dict("records")]
    sizes, side = frame["glyph_sizes"].str.split("|"), frame[["width", "height"]].min(axis=1)
    frame["subject_size"] = sizes.str[0].astype(int) / side
    frame["extra_size"] = sizes.str[1].astype(int) / side
    return frame


LABELS = ["sentiment", "sarcasm", "relation", "image_adds", "image_sentiment"]


@pytest.fixture(scope="module")
def plans() -> pd.DataFrame:
    """20000 posts of seed 7 as planned before drawing (glyphs, caption), labelled for every task."""
    frame = pd.DataFrame([sp.plan_post(7, "train", i)[0] for i in range(20000)])
    for task in sp.TASKS:
        frame[task] = [sp.clean_label(task, post) for post in frame.to_dict("records")]
    return frame.assign(has_caption=frame["caption"] != "")


def _independent(values: pd.Series, labels: pd.Series) -> float:
    from scipy.stats import chi2_contingency

    return chi2_contingency(pd.crosstab(values, labels)).pvalue


@pytest.mark.parametrize("layout", ["n_glyphs", "has_caption"])
@pytest.mark.parametrize("label", LABELS)
def test_glyph_count_and_caption_are_independent_of_every_label(plans, layout, label):
    """No shortcut (v1's one-glyph images were always neutral): chi-square over 20000 posts, 1 % level."""
    assert _independent(plans[layout], plans[label]) > 0.01


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["subject_size", "extra_size", "background"])
@pytest.mark.parametrize("label", LABELS)
def test_drawn_layout_is_independent_of_every_label(layout_sample, layout, label):
    """Glyph sizes (relative to the image side, in quartiles) and background kind are
    independent of every label (chi-square over 1200 drawn posts, 1 % level)."""
    frame = layout_sample
    values = frame[layout]
    if layout.endswith("_size"):
        values = pd.qcut(values, 4, labels=False)
    assert _independent(values, frame[label]) > 0.01


def test_every_subject_is_shown_and_named_often_enough(layout_sample):
    """81 subjects: about 100 of 8000 training posts show each one, half of them name it."""
    assert len(sp.subjects()) == 81
    assert layout_sample["subject"].nunique() == 81
    assert set(layout_sample["mentioned"]) <= set(sp.subjects())


def test_other_tasks_reuse_the_rendered_posts_with_their_own_labels(tmp_path):
    """A second task relabels the cached posts (no rendering) into exactly what generating it
    directly would write."""
    spec = sp.SynthSpec("sentiment", seed=4, n_train=6, n_val=2, n_test=3, label_noise=0.3)
    sp.ensure(spec, cache_root=tmp_path / "cache")
    relation = sp.ensure(sp.SynthSpec("relation", seed=4, n_train=6, n_val=2, n_test=3, label_noise=0.3),
                         cache_root=tmp_path / "cache")
    direct = tmp_path / "direct"
    sp.generate(sp.SynthSpec("relation", seed=4, n_train=6, n_val=2, n_test=3, label_noise=0.3), direct)
    assert (relation / "posts.csv").read_bytes() == (direct / "posts.csv").read_bytes()
    assert _digests(relation) == _digests(direct)


def test_version_1_posts_are_still_generated_for_older_checkpoints(tmp_path):
    """Checkpoints record the generator version; v1 (one-glyph neutral images, 243 subjects)
    stays reproducible for them, and a config without a version means v1."""
    from mmaux.data.datasets import DatasetSpec

    spec = DatasetSpec.from_dict({"kind": "synthposts", "task": "sentiment", "seed": 7, "n_train": 0,
                                  "n_val": 0, "n_test": 40, "label_noise": 0.0}).synth
    assert spec.version == 1
    frame = sp.generate(spec, tmp_path)
    assert frame["subject"].nunique() > 30 and not set(frame["subject"]) <= set(sp.subjects())
    assert (frame["n_glyphs"] == 1).any()
    assert (frame.loc[frame["n_glyphs"] == 1, "image_sentiment"] == "neutral").all()
