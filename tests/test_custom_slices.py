"""Slices a user defines (a filter on any post column, or posts picked on a map): read from and
written to the URL exactly, applied to every run alike, and estimated by the effects' and the
claims' procedure: an effect planted in the slice is found, nothing is found under the null."""
import numpy as np
import pandas as pd
import pytest

from mmaux.analysis import custom_slices as custom
from mmaux.analysis import effects, simulate
from mmaux.analysis.custom_slices import CustomSlice, CustomSliceError
from mmaux.analysis.runs import VARIANTS


def _posts() -> pd.DataFrame:
    return pd.DataFrame({"post_id": ["a", "b", "c", "d"],
                         "text": ["So SAD today #rain #cold", "happy #sun", "sad but fine", "plain words here ok"],
                         "label": ["neg", "pos", "neg", "neu"], "label_index": [0, 2, 0, 1],
                         "likes": [3, 10, 0, 7], "city": ["Paris", "Oslo", "Paris", "Rome"],
                         "pred": [0, 2, 2, 1], "confidence": [0.9, 0.8, 0.4, 0.6], "p_neg": [0.9, 0.1, 0.3, 0.2]})


def test_a_slice_round_trips_through_its_link_text():
    text = "sad posts|text|contains|sad;tagged|hashtags|≥|2;picked|post_id|in|a,c"
    slices = custom.parse(text)
    assert [s.name for s in slices] == ["sad posts", "tagged", "picked"]
    assert custom.to_text(slices) == text
    assert custom.parse("") == [] and custom.parse(None) == []
    assert slices[0].slicing == "custom: sad posts"
    assert slices[2].describe() == "2 posts picked by hand" and slices[0].describe() == 'text contains "sad"'


@pytest.mark.parametrize("text, words", [
    ("x|text|like|sad", "unknown operator 'like'"),
    ("x|likes|≥|many", "≥ needs a number"),
    ("x|text|contains", "name|column|operator|value"),
    ("|text|contains|sad", "name is empty"),
    ("x|text|contains|sad;x|likes|≥|2", "two slices are named 'x'"),
])
def test_a_bad_slice_is_refused_with_the_part_at_fault(text, words):
    with pytest.raises(CustomSliceError, match=words):
        custom.parse(text)


def test_too_many_picked_posts_are_refused_not_truncated():
    ids = ",".join(f"p{i}" for i in range(custom.MAX_IDS + 1))
    with pytest.raises(CustomSliceError, match=f"at most {custom.MAX_IDS}"):
        CustomSlice("big", "post_id", "in", ids)
    assert len(CustomSlice("ok", "post_id", "in", ids.rsplit(",", 1)[0]).values()) == custom.MAX_IDS


def test_masks_on_text_counts_metadata_and_ids():
    posts = custom.derive(_posts())
    assert list(posts[custom.HASHTAGS]) == [2, 1, 0, 0] and list(posts[custom.WORDS]) == [5, 2, 3, 4]

    def ids(text):
        return list(posts["post_id"][CustomSlice.from_text(text).mask(posts)])

    assert ids("s|text|contains|sad") == ["a", "c"]  # any case
    assert ids("s|hashtags|≥|1") == ["a", "b"]
    assert ids("s|likes|≤|3") == ["a", "c"]
    assert ids("s|likes|=|10.0") == ["b"]  # a number equals its other spelling
    assert ids("s|city|≠|Paris") == ["b", "d"]
    assert ids("s|post_id|in|d, a") == ["a", "d"]
    with pytest.raises(CustomSliceError, match="holds no numbers"):
        CustomSlice.from_text("s|city|≥|2").mask(posts)
    with pytest.raises(CustomSliceError, match="column 'nope'.*choose one of text, hashtags"):
        CustomSlice.from_text("s|nope|=|1").mask(posts)


def test_filter_columns_are_the_posts_never_a_runs_outputs():
    columns = custom.filter_columns(custom.derive(_posts()))
    assert columns == ["text", "hashtags", "words", "post_id", "label", "likes", "city"]
    with_confidence = custom.derive(_posts(), pd.Series([0.5] * 4, index=list("abcd")))
    assert custom.CE_CONFIDENCE in custom.filter_columns(with_confidence)


def test_every_run_gets_the_same_posts_in_a_confidence_slice():
    """CE confidence is the mean over the group's CE runs, so a slice by it holds the same posts
    for the CE+ITC run, whose own confidence differs."""
    base = _posts()
    group = pd.DataFrame({"folder": ["ce0", "ce1", "itc0"], "variant": ["CE", "CE", "CE+ITC"]})
    tables = {"ce0": base, "ce1": base.assign(confidence=[0.7, 0.6, 0.2, 0.8]), "itc0": base.assign(confidence=1.0)}
    out = custom.add_columns(group, tables, [CustomSlice("unsure", custom.CE_CONFIDENCE, "≤", "0.7")])
    assert list(out["ce0"][custom.CE_CONFIDENCE]) == pytest.approx([0.8, 0.7, 0.3, 0.7])
    for table in out.values():
        assert list(table["custom: unsure"]) == [custom.OUT, custom.IN, custom.IN, custom.IN]
    assert custom.add_columns(group, {**tables, "val-less": None}, [])["val-less"] is None


def _loader(test, val):
    """A group of simulated runs as split tables (post_id, text, label_index, pred, confidence,
    slice columns), the way `runs.load_split_table` gives them."""
    group = pd.DataFrame([{"folder": f"{v}-{s}", "variant": v, "seed": s, "dataset": "sim", "task": "t",
                           "architecture": "a"} for v in VARIANTS for s in test.seeds(v)])
    splits = {"test": test, "val": val}

    def load(folder, split):
        variant, seed = folder.rsplit("-", 1)
        part = splits[split]
        posts = part.posts.assign(text=np.where(part.posts["image_adds"], "look #pic", "plain"))
        return posts.assign(pred=part.preds[variant, int(seed)], confidence=0.5,
                            **{f"p_{name}": 1 / 3 for name in part.labels})
    return group, load


def test_an_effect_planted_in_a_users_slice_is_found_there_and_in_the_contrast():
    """CE+ITC gains only on posts with an image that adds meaning; the user's slice 'tagged' (a
    hashtag in the text) holds exactly those posts. Its in-slice effect and the contrast in − out
    are supported; the out-slice effect is not; the slices join the group's one family."""
    rng = np.random.default_rng(5)
    group, load = _loader(*simulate.simulate_group(rng, simulate.REGIMES[0], 5, planted=0.6, where="image_adds"))
    tagged = CustomSlice("tagged", custom.HASHTAGS, "≥", "1")
    frame = custom.group_effects(group, [tagged], load)
    rows = frame[(frame["effect"] == "CE+ITC") & (frame["slicing"] == tagged.slicing)].set_index("slice")
    assert rows.loc[custom.IN, "verdict"] == effects.SUPPORTED and rows.loc[custom.IN, "delta"] > 5
    assert rows.loc[custom.OUT, "verdict"] == effects.INCONCLUSIVE
    plain = effects.group_effects(*effects.group_splits(group, load))
    assert frame["family_size"].iloc[0] == len(plain) + 6  # in and out × the three variants vs CE
    contrast = custom.group_contrast(group, custom.Contrast("CE+ITC", tagged.slicing, custom.IN, None), [tagged], load)
    row = contrast.iloc[0]
    assert (row["slice_a"], row["slice_b"], row["family_size"]) == (custom.IN, "the rest", 1)
    assert row["verdict"] == effects.SUPPORTED and row["delta"] > 5 and row["direction"] == "as claimed"


def test_under_the_null_a_users_contrast_is_rarely_supported():
    """CE runs relabelled as the variants (nothing to find): over 40 groups, a contrast of the
    user's own is supported at most 3 times (the binomial's 95th percentile at p = 0.05)."""
    rng = np.random.default_rng(8)
    supported = 0
    for _ in range(40):
        test, val = (effects.SplitPredictions(s.posts, {(v, k): s.preds["CE", i * 5 + k] for i, v in enumerate(VARIANTS)
                                                         for k in range(5)}, s.labels)
                     for s in simulate.simulate_group(rng, simulate.REGIMES[1], 20, posts=400))
        group, load = _loader(test, val)
        row = custom.group_contrast(group, custom.Contrast("CE+ITC", "evidence", "image_only", "text_only"), [],
                                    load).iloc[0]
        supported += row["verdict"] == effects.SUPPORTED
    assert supported <= 3


def test_a_contrast_reads_back_from_its_text():
    contrast = custom.Contrast("ITM main", "custom: tagged", custom.IN, None)
    assert custom.Contrast.from_text(contrast.to_text()) == contrast
    with pytest.raises(CustomSliceError, match="an effect among"):
        custom.Contrast.from_text("CE+XYZ|evidence|a|b")
