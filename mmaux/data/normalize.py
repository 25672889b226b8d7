"""Tweet normalisation as BERTweet's `normalizeTweet` (Nguyen et al. 2020) documents it.

The paper's authors pass every text through it before tokenising (the default of their dataset
classes), so a model trained with `normalize_tweets` reads what theirs read:
- the text is split into tweet tokens (links, mentions, hashtags, emoticons, numbers, words with
  inner apostrophes or hyphens, ellipses and emoji kept whole; any other mark is a token);
- user mentions become `@USER`, links `HTTPURL`, each emoji its `:name:` (the `emoji` package);
- ’ is read as ' and … as ...;
- contractions are split off their word as in the Penn Treebank ("don't" -> "do n't",
  "I'm" -> "I 'm", "it's" -> "it 's"; "can't" and "ain't" stay whole; "cannot" -> "can not");
- a.m. / p.m. stay one token; tokens are joined by single spaces.
Written from that documented behaviour (BERTweet's TweetNormalizer needs NLTK, not a dependency
here). Like the original, the contraction rules are case-sensitive ("DON'T" stays whole).

Every place a text meets a tokenizer (training and evaluation inputs, `Predictor`) goes through
`tokenizer_texts`, so training and prediction never see differently prepared texts.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import emoji

# one line of the dashboard under a word map of a checkpoint that normalises its texts
NOTE = ("Words as the model read them: its texts are normalised as tweets (mentions → @USER, "
        "links → HTTPURL, emoji → :name:, contractions split).")

_TOKEN = re.compile(r"""
    (?i:(?:https?://|www\.)\S+?)(?=[.,;:!?)\]"']*(?:\s|$))  # links, trailing punctuation left out
  | (?<![\w@])@\w+                          # user mentions
  | \#\w+                                   # hashtags
  | [\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+         # e-mail addresses (not mentions)
  | \b[ap]\.m\b\.?                          # a.m., p.m.
  | \d+(?:[.,:/]\d+)+                       # numbers with separators: 3.5, 10:30, 1,000
  | \w+(?:['\-]\w+)*                        # words, with inner apostrophes and hyphens
  | [<>]?[:;=][\-o*']?[)\](\[dDpP/\\}{@|](?!\w) | <3  # emoticons
  | \.(?:\s*\.)+                            # ellipses
  | \S                                      # any other mark
""", re.VERBOSE)
_CONTRACTION = re.compile(r"(\w+?)(n't|'m|'re|'s|'ll|'d|'ve)")
_WHOLE = ("can't", "ain't")  # the contractions normalizeTweet keeps in one piece


def normalize_tweet(text: str) -> str:
    """`text` as BERTweet's normalizeTweet would give it (see the module docstring)."""
    text = text.replace("’", "'").replace("…", "...")
    return " ".join(part for token in _tokens(text) for part in _normalize_token(token))


def tokenizer_texts(texts: Iterable[str], normalize: bool) -> list[str]:
    """The texts as a tokenizer gets them: normalised as tweets when the checkpoint says so."""
    return [normalize_tweet(t) for t in texts] if normalize else list(texts)


def _tokens(text: str) -> Iterator[str]:
    """Tweet tokens; each emoji (with its modifiers and joiners) is one token, its `:name:`."""
    start = 0
    for found in emoji.emoji_list(text):
        yield from _TOKEN.findall(text[start:found["match_start"]])
        yield emoji.demojize(found["emoji"])
        start = found["match_end"]
    yield from _TOKEN.findall(text[start:])


def _normalize_token(token: str) -> tuple[str, ...]:
    if token.startswith("@") and len(token) > 1:
        return ("@USER",)
    if token.lower().startswith(("http", "www")):
        return ("HTTPURL",)
    if token == "cannot":
        return ("can", "not")
    split = _CONTRACTION.fullmatch(token)
    if split is None or token in _WHOLE:
        return (token,)
    return split.groups()
