"""Shared fixtures: tiny randomly initialised Hugging Face models saved to disk, offline.

`tiny_bert`, `tiny_vit` and `tiny_vilt` are folders that `AutoModel` / `AutoTokenizer` load by
path, so they stand in for "any Hugging Face text / vision / ViLT model" at a few KB each.
`make_batch` builds a `PostBatch` of random pixels and tokenised texts for any of them.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

TINY_WORDS = ("a man is playing guitar someone strumming the stock market fell sharply today "
              "cat dog photo of my new car love hate this so good bad").split()
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS, ".", ",", "!"]
TINY_IMAGE_SIZE = 32
TEXTS = ["a man is playing guitar .", "my new car !", "the stock market fell sharply today",
         "love this cat photo", "so bad", "someone strumming a guitar , so good"]


def _write_vocab(folder: Path) -> None:
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}))


def _write_preprocessor(folder: Path) -> None:
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "size": TINY_IMAGE_SIZE}))


@pytest.fixture(scope="session", autouse=True)
def _hub_offline():
    """No test may reach the Hugging Face hub (there is no network anyway)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def private_cache_dir(tmp_path_factory):
    """MMAUX_CACHE pointed at the session's private cache while the module runs
    (`robust_support.private_cache`), so no test reads or fills the user's .cache."""
    import robust_support

    with robust_support.private_cache(tmp_path_factory) as folder:
        yield folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer, 32-wide BERT with its WordPiece vocabulary, as a model folder."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    _write_vocab(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> str:
    """A 2-layer, 32-wide ViT on 32 px images (16 patches of 8 px), with a preprocessor config."""
    from transformers import ViTConfig, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(1)
    config = ViTConfig(image_size=TINY_IMAGE_SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64)
    ViTModel(config).save_pretrained(folder)
    _write_preprocessor(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_vilt(tmp_path_factory) -> str:
    """A 2-layer, 32-wide ViLT on 32 px images, tokenised with the tiny BERT vocabulary."""
    from transformers import ViltConfig, ViltModel

    folder = tmp_path_factory.mktemp("tiny-vilt")
    torch.manual_seed(2)
    config = ViltConfig(vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, image_size=TINY_IMAGE_SIZE, patch_size=8, max_position_embeddings=40,
                        max_image_length=-1)
    ViltModel(config).save_pretrained(folder)
    _write_vocab(folder)
    _write_preprocessor(folder)
    return str(folder)


@pytest.fixture(scope="session")
def make_batch():
    """make_batch(tokenizer_path, image_size, n=4, seed=0, max_length=16) -> (PostBatch, labels)."""
    from transformers import AutoTokenizer

    from mmaux.model import PostBatch

    tokenizers = {}

    def build(tokenizer_path: str, image_size: int, n: int = 4, seed: int = 0, max_length: int = 16,
              num_labels: int = 3):
        if tokenizer_path not in tokenizers:
            tokenizers[tokenizer_path] = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
        texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
        enc = tokenizers[tokenizer_path](texts, padding="max_length", truncation=True, max_length=max_length,
                                         return_tensors="pt")
        g = torch.Generator().manual_seed(seed)
        pixels = torch.randn(n, 3, image_size, image_size, generator=g)
        labels = torch.arange(n) % num_labels
        return PostBatch(attention_mask=enc["attention_mask"], input_ids=enc["input_ids"],
                         pixel_values=pixels), labels

    return build


@pytest.fixture(scope="session")
def tiny_late_config(tiny_bert, tiny_vit):
    """tiny_late_config(**overrides) -> ModelConfig of a late-fusion model on tiny BERT + ViT."""
    from mmaux.config import ModelConfig
    from mmaux.losses import LossConfig

    def build(architecture: str = "attention", itc: bool = True, itm: bool = True, loss: LossConfig | None = None,
              **overrides) -> ModelConfig:
        values = dict(num_labels=3, architecture=architecture, text_encoder=tiny_bert, image_encoder=tiny_vit,
                      hidden_dim=16, proj_dim=8, max_text_length=16, mmbt_image_tokens=2,
                      loss=loss or LossConfig(itc=itc, itm=itm))
        return ModelConfig(**(values | overrides))

    return build


# --- dashboard page tests (AppTest) ---------------------------------------------------------------

@pytest.fixture(scope="session")
def app_runs():
    """(root, usable runs table) of the checkpoints AppTests open: `MMAUX_CHECKPOINTS` when set,
    else the shipped checkpoints/. Skips when there are none yet (the sweep writes them)."""
    import os

    from mmaux.analysis.runs import discover_runs, usable
    from mmaux.paths import DEFAULT_CHECKPOINTS

    root = os.environ.get("MMAUX_CHECKPOINTS") or str(DEFAULT_CHECKPOINTS)
    runs = usable(discover_runs([root]))
    if runs.empty:
        pytest.skip(f"no usable checkpoints under {root}: run `make checkpoints` (or set MMAUX_CHECKPOINTS)")
    return root, runs


@pytest.fixture
def open_page(app_runs, monkeypatch):
    """open_page(path, n_checkpoints, state) -> AppTest run once with `n_checkpoints` runs of one
    group selected (CE first, then ITM ones: both kinds are covered) and `state` put into
    st.session_state first (widget keys)."""
    from streamlit.testing.v1 import AppTest

    from mmaux.analysis.runs import GROUP_COLUMNS
    from mmaux.paths import REPO_ROOT

    root, runs = app_runs
    monkeypatch.setenv("MMAUX_CHECKPOINTS", root)
    group = runs[(runs[GROUP_COLUMNS] == runs[GROUP_COLUMNS].iloc[0]).all(axis=1)]
    group = group.sort_values(["seed", "itm", "itc"])

    def run(path: str, n_checkpoints: int = 2, state: dict | None = None, timeout: float = 180):
        at = AppTest.from_file(str(REPO_ROOT / path), default_timeout=timeout)
        chosen = list(group["folder"][:1]) + list(group[group["itm"]]["folder"][:n_checkpoints - 1])
        if len(chosen) < n_checkpoints:
            pytest.skip(f"needs a CE and {n_checkpoints - 1} ITM checkpoint(s) of one group under {root}")
        at.session_state["selected_checkpoints"] = chosen[:n_checkpoints]
        for key, value in (state or {}).items():
            at.session_state[key] = value
        return at.run()

    return run
