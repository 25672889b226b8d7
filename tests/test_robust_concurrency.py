"""Dashboard sessions share one cached `Predictor` per checkpoint (st.cache_resource). Several
sessions using it at once must get exactly what each would get alone: nothing in prediction,
encoding or attribution may leave shared mutable state behind (train mode, Captum hooks,
accumulated gradients) or depend on what another thread is doing."""
from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch

import robust_support as rs
from mmaux.predict import Predictor, predict_many

try:
    from mmaux.analysis.attributions import attribute_post
except ImportError:  # the attributions module is optional here
    attribute_post = None

pytestmark = pytest.mark.slow  # trains the session's tiny checkpoint on first use (a few seconds)

THREADS = 4
STEPS = (8, 4)  # integrated-gradients steps (text, image): enough to exercise Captum, quick
TEXTS = ["best day ever #blessed 🎉", "worst. service. ever. @shop", "", "a cat on a sofa", "so good so good",
         "\u202eمرحبا", "not happy at all", "ok"]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory, tiny_bert, tiny_vit):
    with rs.private_cache(tmp_path_factory):
        yield Predictor(rs.tiny_checkpoint(tmp_path_factory, tiny_bert, tiny_vit))


def _posts():
    return [rs.photo((40 + 8 * i, 32 + 4 * i), seed=i) for i in range(len(TEXTS))], list(TEXTS)


def _jobs(predictor):
    """(name, zero-argument function returning a numpy array) for everything a page does with a
    shared Predictor: predictions of batches and of single posts, encoding, predict_many, and
    attributions (integrated gradients and occlusion)."""
    images, texts = _posts()

    def predict(lo, hi):
        out = predictor.predict(images[lo:hi], texts[lo:hi])
        return np.array([[*p.probabilities.values(), p.itm_match, p.itc_cosine] for p in out])

    def encoded():
        batch = predictor.encode(images[:3], texts[:3])
        return np.concatenate([batch.text_states.flatten().numpy(), batch.image_pooled.flatten().numpy()])

    def many():
        out = predict_many([predictor, predictor], images[2:5], texts[2:5])
        return np.array([[*p.probabilities.values(), p.itc_cosine] for row in out for p in row])

    jobs = [(f"predict {lo}:{hi}", lambda lo=lo, hi=hi: predict(lo, hi))
            for lo, hi in ((0, 8), (0, 4), (4, 8), (1, 2), (5, 6))]
    jobs += [("encode", encoded), ("predict_many", many)]
    if attribute_post is not None:
        def attribution(i, method):
            result = attribute_post(predictor, images[i], texts[i], method=method, n_steps=STEPS)
            return np.concatenate([result.token_scores.ravel(), result.image_scores.ravel(),
                                   [result.probability, result.target]])

        jobs += [(f"integrated gradients {i}", lambda i=i: attribution(i, "integrated gradients")) for i in (0, 3)]
        jobs += [("occlusion 1", lambda: attribution(1, "occlusion"))]
    return jobs


def _assert_untouched(model: torch.nn.Module):
    assert not model.training and not any(m.training for m in model.modules())
    for name, module in model.named_modules():
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert not getattr(module, hooks), f"{name or 'model'} kept {hooks}"
    assert all(p.grad is None for p in model.parameters())
    from torch.nn.modules import module as nn_module

    assert not nn_module._global_forward_hooks and not nn_module._global_forward_pre_hooks
    assert not nn_module._global_backward_hooks


def test_parallel_sessions_get_exactly_the_sequential_results(predictor):
    jobs = _jobs(predictor)
    sequential = {name: run() for name, run in jobs}
    _assert_untouched(predictor.model)
    order = [job for job in jobs for _ in range(2)]  # every job twice, interleaved with the others
    random.Random(0).shuffle(order)
    threads_seen = set()

    def run(job):
        threads_seen.add(threading.get_ident())
        return job[0], job[1]()

    with ThreadPoolExecutor(THREADS) as pool:
        parallel = list(pool.map(run, order))
    assert len(threads_seen) > 1
    for name, result in parallel:
        np.testing.assert_array_equal(result, sequential[name], err_msg=name)
    _assert_untouched(predictor.model)


def test_two_sessions_filling_the_feature_cache_at_once(predictor, tmp_path, monkeypatch):
    """Two threads encode the same posts with an empty feature cache: both get the same features,
    and the cache holds complete files (each writer has its own temporary file)."""
    from safetensors.torch import load_file

    from mmaux.features import PostInputs

    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path))
    images = [tmp_path / f"{i}.png" for i in range(6)]
    for i, path in enumerate(images):
        rs.photo((36, 30), seed=i).save(path)
    frame = pd.DataFrame({"text": TEXTS[:6], "image": [str(p) for p in images]})
    barrier = threading.Barrier(2)

    def encode(_):
        barrier.wait()
        inputs = PostInputs(predictor.model, frame)
        return inputs.text_states, inputs.image_tokens, inputs.image_pooled

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(encode, range(2))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    cached = sorted((tmp_path / "features").iterdir())
    assert len(cached) == 2 and all(p.suffix == ".safetensors" for p in cached)
    for path in cached:
        load_file(path)  # complete
    _assert_untouched(predictor.model)


def test_no_grad_and_eval_mode_are_not_leaked_to_the_caller(predictor):
    """A page's thread keeps its own autograd state: attributions turn gradients on only inside."""
    images, texts = _posts()
    assert torch.is_grad_enabled()
    if attribute_post is not None:
        attribute_post(predictor, images[0], texts[0], n_steps=STEPS)
    predictor.predict(images[:1], texts[:1])
    assert torch.is_grad_enabled()
    _assert_untouched(predictor.model)
