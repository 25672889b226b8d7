"""Modality reliance: the cheap perturbations (features encoded once and broadcast) must give
what feeding the model a really blank image, a really empty text or really swapped images gives."""
import numpy as np
import pandas as pd
import pytest
import torch

from mmaux.analysis import reliance
from mmaux.encoders import load_tokenizer
from mmaux.model import MultimodalClassifier, PostBatch

N = 4


@pytest.fixture(params=["attention", "mmbt"])
def model_and_batch(request, tiny_late_config, tiny_bert, make_batch):
    torch.manual_seed(0)
    model = MultimodalClassifier(tiny_late_config(request.param, text_trainable_layers=1)).eval()
    batch, _ = make_batch(tiny_bert, 32, n=N, max_length=12)
    return model, batch


def _p_pred(model, batch, pred) -> np.ndarray:
    with torch.no_grad():
        return model(batch).logits.softmax(-1).gather(1, pred[:, None])[:, 0].numpy()


def test_drops_equal_direct_forward_passes_of_the_perturbed_posts(model_and_batch, tiny_bert):
    model, batch = model_and_batch
    swap = np.array([2, 3, 1, 0])
    drops = reliance.Perturber(model).drops(reliance.encoded(model, batch), swap)
    with torch.no_grad():
        probs = model(batch).logits.softmax(-1)
    pred = probs.argmax(-1)
    p = probs.gather(1, pred[:, None])[:, 0].numpy()
    np.testing.assert_array_equal(drops["pred"], pred.numpy())
    blank = PostBatch(attention_mask=batch.attention_mask, input_ids=batch.input_ids,
                      pixel_values=torch.zeros_like(batch.pixel_values))
    empty = load_tokenizer(tiny_bert)([""] * N, return_tensors="pt")
    no_text = PostBatch(attention_mask=empty["attention_mask"], input_ids=empty["input_ids"],
                        pixel_values=batch.pixel_values)
    swapped = batch.pair(torch.as_tensor(swap), torch.arange(N))
    expected = {"blank image": blank, "empty text": no_text, "swapped image": swapped}
    for name, perturbed in expected.items():
        np.testing.assert_allclose(drops[name], p - _p_pred(model, perturbed, pred), atol=1e-5, err_msg=name)


def test_reliance_table_covers_every_post_and_is_cached(model_and_batch, tmp_path, monkeypatch):
    model, batch = model_and_batch
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))
    for name in ("model.safetensors", "test_outputs.parquet"):
        (tmp_path / name).write_bytes(b"stands in for the checkpoint's content")

    class Inputs:  # PostInputs' interface over a ready batch
        frame = pd.DataFrame({"post_id": [f"p{i}" for i in range(N)]})

        def __len__(self):
            return N

        def batch(self, rows):
            return batch.pair(torch.as_tensor(list(rows)), torch.as_tensor(list(rows)))

    ids = Inputs.frame["post_id"]
    assert not reliance.is_cached(tmp_path, ids)
    table = reliance.cached_reliance_table(tmp_path, model, Inputs())
    assert list(table["post_id"]) == list(ids) and table[list(reliance.PERTURBATIONS)].notna().all().all()
    assert reliance.is_cached(tmp_path, ids)
    monkeypatch.setattr(reliance, "reliance_table", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    pd.testing.assert_frame_equal(reliance.cached_reliance_table(tmp_path, model, Inputs()), table)


def test_per_slice_means():
    table = pd.DataFrame({"post_id": ["a", "b", "c"], "blank image": [0.3, 0.1, 0.2],
                          "empty text": [0.0, 0.2, 0.4], "swapped image": [0.1, 0.1, 0.1]})
    posts = pd.DataFrame({"post_id": ["a", "b", "c"], "evidence": ["image", "image", "text"]})
    result = reliance.per_slice(table, posts, ["evidence"]).set_index("value")
    assert result.loc["all", "n"] == 3 and result.loc["all", "empty text"] == pytest.approx(0.2)
    assert result.loc["image", "blank image"] == pytest.approx(0.2) and result.loc["text", "n"] == 1
