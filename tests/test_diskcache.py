"""The analysis disk cache: frames come back exactly, a damaged entry is recomputed, and keys
follow the code that computes a result."""
import types

import numpy as np
import pandas as pd
import pytest

from mmaux.analysis import diskcache


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))


def test_a_cached_frame_comes_back_exactly_and_is_computed_once():
    frame = pd.DataFrame({"effect": ["CE+ITC", "ITC main"], "n": [1000, 30], "delta": [6.02, np.nan],
                          "small": [False, True], "reason": ["", "CI covers 0"]})
    calls = []

    def compute():
        calls.append(1)
        return frame

    first = diskcache.cached_frame("effects", "k", compute)
    again = diskcache.cached_frame("effects", "k", compute)
    pd.testing.assert_frame_equal(again, first)
    assert len(calls) == 1 and again["delta"].isna().tolist() == [False, True]


def test_a_damaged_entry_is_recomputed():
    diskcache.cached_frame("effects", "k", lambda: pd.DataFrame({"a": [1]}))
    (diskcache.cache_dir("effects") / "k.parquet").write_bytes(b"not parquet")
    assert diskcache.cached_frame("effects", "k", lambda: pd.DataFrame({"a": [2]}))["a"].tolist() == [2]


def test_the_source_key_changes_with_the_code(tmp_path):
    source = tmp_path / "estimator.py"
    source.write_text("N_BOOT = 1000\n")
    module = types.SimpleNamespace(__file__=str(source))
    before = diskcache.source_key(module)
    source.write_text("N_BOOT = 20000\n")
    assert diskcache.source_key(module) != before


def test_a_shipped_frame_is_read_first_and_never_written(tmp_path):
    shipped = tmp_path / "checkpoints" / ".analysis"
    (shipped / "effects").mkdir(parents=True)
    pd.DataFrame({"a": [7]}).to_parquet(shipped / "effects" / "k.parquet")

    def compute():
        raise AssertionError("a shipped frame must not be recomputed")

    assert diskcache.cached_frame("effects", "k", compute, [tmp_path / "nowhere", shipped])["a"].tolist() == [7]
    assert not (diskcache.cache_dir("effects") / "k.parquet").exists()  # nothing copied into the cache


def test_a_damaged_shipped_frame_is_recomputed_into_the_cache_and_left_as_it_was(tmp_path):
    shipped = tmp_path / ".analysis"
    (shipped / "effects").mkdir(parents=True)
    (shipped / "effects" / "k.parquet").write_bytes(b"planted")
    assert diskcache.cached_frame("effects", "k", lambda: pd.DataFrame({"a": [2]}), [shipped])["a"].tolist() == [2]
    assert (shipped / "effects" / "k.parquet").read_bytes() == b"planted"
    assert pd.read_parquet(diskcache.cache_dir("effects") / "k.parquet")["a"].tolist() == [2]
