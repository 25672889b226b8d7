"""mmaux.data.normalize: BERTweet-style tweet normalisation, exact on hand-written tweets; and a
checkpoint trained with `--normalize-tweets` reads normalised texts at training, evaluation and
prediction time, in the Attributions word map (which says so) and in `Predictor.model_texts`
(the Your post page's token count); one trained without it reads the raw texts."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from authors_layout import write_image

from apptest_support import page, texts
from mmaux.analysis.attributions import attribute_post
from mmaux.checkpoint import read_info, read_metrics
from mmaux.cli import main as cli
from mmaux.config import ModelConfig
from mmaux.data.images import load_image
from mmaux.data.normalize import NOTE, normalize_tweet, tokenizer_texts
from mmaux.paths import DEFAULT_CHECKPOINTS

TWEETS = [
    ("@jack just setting up my twttr", "@USER just setting up my twttr"),
    ("Check this out https://t.co/AbC123xyz!!", "Check this out HTTPURL ! !"),
    ("I love it 😂😂 #blessed", "I love it :face_with_tears_of_joy: :face_with_tears_of_joy: #blessed"),
    ("Don't worry, I can't stop and won't stop", "Do n't worry , I can't stop and wo n't stop"),
    ("It's 5 p.m. and I'm still at work…", "It 's 5 p.m. and I 'm still at work ..."),
    ("RT @user_1: we're going to www.example.com/tickets, who's in? ❤️",
     "RT @USER : we 're going to HTTPURL , who 's in ? :red_heart:"),
    ("@a @b thanks!!! you’ve been great 👍🏽",
     "@USER @USER thanks ! ! ! you 've been great :thumbs_up_medium_skin_tone:"),
    ("They cannot be serious... 🙄 http://bit.ly/x1",
     "They can not be serious ... :face_with_rolling_eyes: HTTPURL"),
    ("ain't nobody got time for that, y'all :)", "ain't nobody got time for that , y'all :)"),
    ("Email me at jane.doe@mail.com, I'd love to hear from you 🇫🇷",
     "Email me at jane.doe@mail.com , I 'd love to hear from you :France:"),
]


@pytest.mark.parametrize("tweet, expected", TWEETS)
def test_normalize_tweet(tweet, expected):
    assert normalize_tweet(tweet) == expected


def test_tokenizer_texts_normalise_only_when_asked():
    tweets = [tweet for tweet, _ in TWEETS]
    assert tokenizer_texts(tweets, normalize=True) == [expected for _, expected in TWEETS]
    assert tokenizer_texts(tweets, normalize=False) == tweets


def test_configs_without_the_field_read_as_off():
    assert ModelConfig.from_dict({"num_labels": 2}).normalize_tweets is False
    shipped = next(DEFAULT_CHECKPOINTS.rglob("config.json"))
    recorded = json.loads(shipped.read_text())["model"]
    assert recorded["normalize_tweets"] is False  # the shipped set records it: SynthPosts is not tweets
    older = {k: v for k, v in recorded.items() if k != "normalize_tweets"}  # written before the field existed
    assert ModelConfig.from_dict(older).normalize_tweets is False
    assert read_info(shipped.parent).model.normalize_tweets is False
    with pytest.raises(ValueError, match="normalize_tweets must be true or false"):
        ModelConfig(num_labels=2, normalize_tweets="yes")


# --- applied wherever a text meets the tokenizer --------------------------------------------------

RAW = "@user{i} love this cat http://t.co/x{i} 😂"
NORMALISED = "@USER love this cat HTTPURL :face_with_tears_of_joy:"


@pytest.fixture(scope="module")
def tweets_csv(tmp_path_factory) -> Path:
    """24 posts whose texts all normalise to NORMALISED, two classes, images as img/{id}.jpg."""
    root = tmp_path_factory.mktemp("tweets")
    splits = ["train"] * 8 + ["val"] * 4 + ["test"] * 12
    rows = [{"tweet_id": str(100 + i), "text": RAW.format(i=i), "label": i % 2, "split": split}
            for i, split in enumerate(splits)]
    for row in rows:
        write_image(root / "img" / f"{row['tweet_id']}.jpg", seed=int(row["tweet_id"]))
    pd.DataFrame(rows).to_csv(root / "posts.csv", index=False)
    return root / "posts.csv"


@pytest.fixture
def tokenised(monkeypatch) -> list[str]:
    """Every text the training/evaluation inputs and the predictor hand to a tokenizer."""
    import mmaux.features
    import mmaux.predict

    seen = []

    class Recording:
        def __init__(self, tokenizer):
            self.tokenizer = tokenizer

        def __call__(self, texts, **kwargs):
            seen.extend([texts] if isinstance(texts, str) else texts)
            return self.tokenizer(texts, **kwargs)

        def __getattr__(self, name):
            return getattr(self.tokenizer, name)

    for module in (mmaux.features, mmaux.predict):
        real = module.load_tokenizer
        monkeypatch.setattr(module, "load_tokenizer", lambda name, real=real: Recording(real(name)))
    return seen


@pytest.mark.parametrize("flag, expected", [("--normalize-tweets", NORMALISED), (None, None)])
def test_the_recorded_setting_is_applied_at_train_evaluate_and_predict(
        private_cache_dir, tweets_csv, tmp_path, tokenised, tiny_bert, tiny_vit, flag, expected, capsys, monkeypatch):
    out = tmp_path / "run"
    assert cli(["train", "--csv", str(tweets_csv), "--image-template", "img/{id}.jpg", "--recipe", "cpu",
                *([flag] if flag else []), "--epochs", "1", "--batch-size", "4", "--aux", "itc,itm",
                "--text-encoder", tiny_bert, "--image-encoder", tiny_vit, "--out", str(out)]) == 0
    raw = [RAW.format(i=i) for i in range(24)]
    assert read_info(out).model.normalize_tweets is (flag is not None)
    assert json.loads((out / "config.json").read_text())["model"]["normalize_tweets"] is (flag is not None)
    assert set(tokenised) == ({expected} if expected else set(raw))  # train, val and test inputs
    tokenised.clear()

    capsys.readouterr()
    assert cli(["evaluate", "--checkpoint", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == read_metrics(out)["test"]
    assert set(tokenised) == ({expected} if expected else set(raw[12:]))  # the test posts
    tokenised.clear()

    from mmaux.predict import Predictor

    post, image = "@bob love this cat http://x.co 😂", load_image(tweets_csv.parent / "img" / "100.jpg")
    predictor = Predictor(out)
    predictor.predict([image], [post])
    attribute_post(predictor, image, post, n_steps=(4, 4))  # the word map's tokens
    assert tokenised == [expected or post] * 2
    assert predictor.model_texts([post]) == [expected or post]  # what Your post counts tokens of

    at = page("pages/4_Attributions.py", str(tmp_path), monkeypatch, selected_checkpoints=[str(out)]).run()
    assert not at.exception
    assert (NOTE in texts(at.caption)) is (flag is not None)  # the word map says it shows normalised words
