"""Slices a user defines: a named filter on any post column, or a set of posts picked on a map,
used like a dataset's own slicings by the effects, the contrasts and the home page's heatmap.

A slice is one line of text, so a view that uses it can live in the URL (?custom=, several
joined by ';'):

    sad posts|text|contains|sad            text contains "sad" (any case)
    tagged|hashtags|≥|2                    two or more hashtags
    unsure|CE confidence|≤|0.6             the CE runs' mean confidence at most 0.6
    picked|post_id|in|test_3,test_17       posts chosen by hand (a lasso on Embeddings)

Each slice becomes one slicing column, `custom: <name>`, whose values are IN and OUT, added to
every run's split table of a group (`add_columns`). The columns a filter can read are the posts'
own (text, label, slice columns, a user CSV's extra metadata columns) and the derived `DERIVED`
ones. "CE confidence" is the same for every run of a group (the mean over its CE runs), since a
slice must hold the same posts for every run it compares. A slice of picked post ids has no
validation posts, so its effects can at best be "supported on test only".
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmaux.analysis import claims, effects
from mmaux.analysis import runs as runs_lib

PARAM = "custom"  # ?custom=<slice>;<slice>...
SEPARATOR, FIELD = ";", "|"
PREFIX = "custom: "  # a custom slice's slicing column
IN, OUT = "in", "out"
OPS = ("contains", "=", "≠", "≥", "≤", "in")
NUMERIC_OPS = ("≥", "≤")
HASHTAGS, WORDS, CE_CONFIDENCE = "hashtags", "words", "CE confidence"
DERIVED = (HASHTAGS, WORDS, CE_CONFIDENCE)  # computed from the posts (and the CE runs), not stored
MAX_IDS = 400  # picked posts kept in a link: a longer URL is refused by some servers and browsers
HASHTAG = re.compile(r"#\w+")


class CustomSliceError(ValueError):
    """A slice that cannot be read or applied; the message says which part and what to do."""


@dataclass(frozen=True)
class CustomSlice:
    name: str
    column: str
    op: str
    value: str

    def __post_init__(self):
        for part, text in (("name", self.name), ("column", self.column), ("value", self.value)):
            if not str(text).strip():
                raise CustomSliceError(f"the slice's {part} is empty; give it one")
            if SEPARATOR in text or FIELD in text:
                raise CustomSliceError(f"the slice's {part} {text!r} contains '{SEPARATOR}' or '{FIELD}', which "
                                       "separate slices in the link; leave them out")
        if self.op not in OPS:
            raise CustomSliceError(f"unknown operator {self.op!r} in slice {self.name!r}; use one of {', '.join(OPS)}")
        if self.op in NUMERIC_OPS and _number(self.value) is None:
            raise CustomSliceError(f"slice {self.name!r}: {self.op} needs a number, got {self.value!r}")
        if self.op == "in" and len(self.values()) > MAX_IDS and self.column == "post_id":
            raise CustomSliceError(f"slice {self.name!r} names {len(self.values())} posts; a link keeps at most "
                                   f"{MAX_IDS}: select fewer posts, or define the slice by a filter")

    @property
    def slicing(self) -> str:
        """The slicing column this slice adds to a split table."""
        return PREFIX + self.name

    def values(self) -> list[str]:
        return [v.strip() for v in self.value.split(",") if v.strip()]

    def to_text(self) -> str:
        return FIELD.join((self.name, self.column, self.op, self.value))

    @classmethod
    def from_text(cls, text: str) -> CustomSlice:
        parts = text.split(FIELD)
        if len(parts) != 4:
            raise CustomSliceError(f"a slice is 'name{FIELD}column{FIELD}operator{FIELD}value', got {text!r}")
        return cls(*(p.strip() for p in parts))

    def describe(self) -> str:
        """'text contains "sad"', 'post_id in 12 posts'."""
        if self.op == "in" and self.column == "post_id":
            return f"{len(self.values())} posts picked by hand"
        value = f'"{self.value}"' if self.op == "contains" else self.value
        return f"{self.column} {self.op} {value}"

    def mask(self, posts: pd.DataFrame) -> np.ndarray:
        """Which of `posts` (a split table with `derive`d columns) are in the slice."""
        if self.column not in posts:
            raise CustomSliceError(f"slice {self.name!r} reads column {self.column!r}, which these posts do not "
                                   f"have; choose one of {', '.join(filter_columns(posts))}")
        column = posts[self.column]
        if self.op in NUMERIC_OPS:
            numbers = pd.to_numeric(column, errors="coerce")
            if numbers.isna().all() and column.notna().any():
                raise CustomSliceError(f"slice {self.name!r}: column {self.column!r} holds no numbers, so "
                                       f"{self.op} cannot compare it; use = or contains")
            limit = _number(self.value)
            return (numbers >= limit if self.op == "≥" else numbers <= limit).fillna(False).to_numpy()
        text = column.astype(str)
        if self.op == "contains":
            return text.str.contains(self.value, case=False, regex=False).to_numpy()
        if self.op == "in":
            return text.isin(self.values()).to_numpy()
        equal = (text == self.value) | _same_number(column, self.value)
        return (equal if self.op == "=" else ~equal).to_numpy()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _same_number(column: pd.Series, value: str) -> pd.Series:
    """Where a numeric column equals `value` as a number (1 = "1.0")."""
    number = _number(value)
    if number is None:
        return pd.Series(False, index=column.index)
    return pd.to_numeric(column, errors="coerce") == number


def parse(text: str | None) -> list[CustomSlice]:
    """The slices of a ?custom= value (empty for None or ''). Raises CustomSliceError, naming the
    slice at fault; two slices of one name are refused."""
    found = [CustomSlice.from_text(part) for part in (text or "").split(SEPARATOR) if part.strip()]
    names = [s.name for s in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CustomSliceError(f"two slices are named {', '.join(map(repr, twice))}; give each its own name")
    return found


def to_text(slices: Iterable[CustomSlice]) -> str:
    return SEPARATOR.join(s.to_text() for s in slices)


def filter_columns(posts: pd.DataFrame) -> list[str]:
    """The columns a slice can filter on: text, the derived ones, then the posts' other columns
    (gold label, slice columns, a CSV's metadata), never a run's own outputs."""
    own = [c for c in posts.columns if c not in (*runs_lib.OUTPUT_COLUMNS, "image", "text", *DERIVED)
           and not c.startswith(("p_", PREFIX))]
    return ["text", HASHTAGS, WORDS, *([CE_CONFIDENCE] if CE_CONFIDENCE in posts else []), *own]


def derive(table: pd.DataFrame, ce_confidence: pd.Series | None = None) -> pd.DataFrame:
    """`table` with the derived columns: hashtags and words counted in the text, and the CE runs'
    mean confidence per post (`ce_confidence`, indexed by post_id) where given."""
    text = table["text"].fillna("").astype(str)
    derived = table.assign(**{HASHTAGS: text.map(lambda t: len(HASHTAG.findall(t))),
                              WORDS: text.str.split().str.len().fillna(0).astype(int)})
    if ce_confidence is not None:
        derived[CE_CONFIDENCE] = derived["post_id"].map(ce_confidence).to_numpy()
    return derived


def ce_confidence(group: pd.DataFrame, tables: Mapping[str, pd.DataFrame | None]) -> pd.Series | None:
    """post_id -> the mean confidence of the group's CE runs on that post (None without CE runs)."""
    ce = [tables[f] for f in group.loc[group["variant"] == runs_lib.BASELINE, "folder"] if tables.get(f) is not None]
    if not ce:
        return None
    return pd.concat([t.set_index("post_id")["confidence"] for t in ce], axis=1).mean(axis=1)


def apply(tables: Mapping[str, pd.DataFrame | None], slices: Sequence[CustomSlice],
          confidence: pd.Series | None = None) -> dict[str, pd.DataFrame | None]:
    """Each split table (None kept as None) with the derived columns (`derive`, CE confidence from
    `confidence`) and one slicing column per slice (`CustomSlice.slicing`: IN or OUT)."""
    out = {}
    for folder, table in tables.items():
        if table is not None:
            table = derive(table, confidence)
            for one in slices:
                table[one.slicing] = np.where(one.mask(table), IN, OUT)
        out[folder] = table
    return out


def add_columns(group: pd.DataFrame, tables: Mapping[str, pd.DataFrame | None],
                slices: Sequence[CustomSlice]) -> dict[str, pd.DataFrame | None]:
    """`apply` to the split tables of one group's runs, CE confidence from its own CE runs: the
    same posts in a slice for every run."""
    return apply(tables, slices, ce_confidence(group, tables))


def group_splits(group: pd.DataFrame, slices: Sequence[CustomSlice],
                 load: effects.TableLoader = runs_lib.load_split_table):
    """`effects.group_splits` with the slices' columns added to both splits' tables."""
    loaded = {split: add_columns(group, {f: load(f, split) for f in group["folder"]}, slices)
              for split in ("test", "val")}
    return effects.group_splits(group, lambda folder, split: loaded[split][folder])


def group_effects(group: pd.DataFrame, slices: Sequence[CustomSlice],
                  load: effects.TableLoader = runs_lib.load_split_table) -> pd.DataFrame:
    """The group's effects (`effects.group_effects`) over its usual slicings *and* the custom
    slices, as one family: adding slices adds tests, and the correction counts them."""
    test, val = group_splits(group, slices, load)
    key = tuple(group[runs_lib.GROUP_COLUMNS].iloc[0])
    frame = effects.group_effects(test, val, [*runs_lib.COMPARISON_SLICES, *(s.slicing for s in slices)],
                                  family=runs_lib.group_name(key))
    return frame.assign(**dict(zip(runs_lib.GROUP_COLUMNS, key)))


@dataclass(frozen=True)
class Contrast:
    """A contrast a user asks for: Δ(slice A) − Δ(slice B) of one effect, on one slicing."""

    effect: str  # a key of `effects.CONTRASTS`: a variant vs CE, or a main effect
    slicing: str
    a: str  # a value of the slicing
    b: str | None  # another value; None: every other post

    def claim(self) -> claims.Claim:
        op = claims.Operationalisation(self.slicing, (self.a,), None if self.b is None else (self.b,), self.a,
                                       claims.REST if self.b is None else self.b)
        return claims.Claim(f"{self.effect}: {op.describe()}", (self.effect,), (op,))

    def to_text(self) -> str:
        return FIELD.join((self.effect, self.slicing, self.a, self.b or ""))

    @classmethod
    def from_text(cls, text: str) -> Contrast:
        parts = text.split(FIELD)
        if len(parts) != 4 or parts[0] not in effects.CONTRASTS:
            raise CustomSliceError(f"a contrast is 'effect{FIELD}slicing{FIELD}slice A{FIELD}slice B' with an effect "
                                   f"among {', '.join(effects.CONTRASTS)}, got {text!r}")
        return cls(parts[0], parts[1], parts[2], parts[3] or None)


def group_contrast(group: pd.DataFrame, contrast: Contrast, slices: Sequence[CustomSlice] = (),
                   load: effects.TableLoader = runs_lib.load_split_table) -> pd.DataFrame:
    """One user contrast on one group, decided as the claims are (`claims.group_contrasts`) in a
    family of its own: one row, or none when a side has no posts or the effect's variants are
    missing."""
    test, val = group_splits(group, slices, load)
    if contrast.slicing not in test.posts:
        raise CustomSliceError(f"the contrast's slicing {contrast.slicing!r} is not a column of these posts")
    key = tuple(group[runs_lib.GROUP_COLUMNS].iloc[0])
    frame = claims.group_contrasts(test, val, [contrast.claim()], family=f"your contrast · {runs_lib.group_name(key)}")
    return frame.assign(**dict(zip(runs_lib.GROUP_COLUMNS, key)))
