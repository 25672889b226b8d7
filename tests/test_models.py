"""mmaux.model: every architecture trains on tiny Hugging Face models loaded by path, freezing
and LoRA touch exactly the parameters they should, checkpoints round-trip, ITM reuses the
encoders' outputs, and ModelConfig rejects bad values by name."""
from __future__ import annotations

import math

import pytest
import torch

from mmaux.analysis import spaces
from mmaux.config import ModelConfig
from mmaux.encoders import load_tokenizer
from mmaux.losses import LossConfig
from mmaux.model import MultimodalClassifier, PostBatch

LATE = ["concat", "attention", "gmu", "aspect"]


def _step(model, batch, labels, lr=1e-3, seed=0):
    """One training step (forward, backward, AdamW); returns the output before the update."""
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    out = model(batch, labels, generator=torch.Generator().manual_seed(seed))
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    return out


def _grads(module) -> dict[str, bool]:
    """Parameter name -> whether it received a non-zero gradient."""
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in module.named_parameters()}


def _snapshot(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(before, module) -> set[str]:
    return {n for n, p in module.named_parameters() if not torch.equal(before[n], p.detach())}


# --- every architecture, forward + backward with ITC + ITM ------------------------------------

@pytest.mark.parametrize("architecture", LATE + ["mmbt"])
def test_architecture_trains_with_itc_and_itm_on_tiny_encoders_by_path(architecture, tiny_late_config,
                                                                         tiny_bert, make_batch):
    torch.manual_seed(0)
    model = MultimodalClassifier(tiny_late_config(architecture))
    batch, labels = make_batch(tiny_bert, 32, n=4)
    out = _step(model, batch, labels)

    assert out.logits.shape == (4, 3) and out.itm_logits.shape == (4, 2)
    assert out.text_emb.shape == out.image_emb.shape == (4, 8) and out.fused.shape == (4, 16)
    assert set(out.losses) == {"ce", "itc", "itm"} and math.isfinite(out.loss.item())
    expected = 0.8 * out.losses["ce"] + 0.1 * out.losses["itc"] + 0.1 * out.losses["itm"]
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    grads = _grads(model)
    for head in ("classifier.1.weight", "text_proj.weight", "image_proj.weight", "logit_scale", "itm_head.weight"):
        assert grads[head], head
    assert any(g for n, g in grads.items() if n.startswith("backbone.text."))  # text fine-tuned (default)
    assert not any(g for n, g in grads.items() if n.startswith("backbone.image."))  # vision frozen (default)


def test_attention_model_trains_on_the_builtin_encoders():
    cfg = ModelConfig(num_labels=2, architecture="attention", max_text_length=16, hidden_dim=32, proj_dim=16,
                      loss=LossConfig(itc=True, itm=True))
    model = MultimodalClassifier(cfg)
    tok = load_tokenizer(cfg.text_encoder)
    enc = tok(["a cat on a sofa", "stocks fell today"], padding=True, truncation=True,
              max_length=cfg.max_text_length, return_tensors="pt")
    size = model.image_spec.size
    assert size == 224
    batch = PostBatch(attention_mask=enc["attention_mask"], input_ids=enc["input_ids"],
                      pixel_values=torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)))
    out = _step(model, batch, torch.tensor([0, 1]))
    assert math.isfinite(out.loss.item()) and set(out.losses) == {"ce", "itc", "itm"}
    grads = _grads(model.backbone)
    assert grads["text.model.encoder.layer.0.attention.self.query.weight"]
    assert not any(g for n, g in grads.items() if n.startswith("image."))


# --- freezing and LoRA ------------------------------------------------------------------------

def test_frozen_vision_gets_no_gradient_but_full_vision_does(tiny_late_config, tiny_bert, make_batch):
    batch, labels = make_batch(tiny_bert, 32)
    for tuning, expect_image_grads in (("frozen", False), ("full", True)):
        model = MultimodalClassifier(tiny_late_config("concat", vision_tuning=tuning))
        model(batch, labels).loss.backward()
        grads = _grads(model.backbone)
        assert any(g for n, g in grads.items() if n.startswith("image.")) == expect_image_grads, tuning
        assert grads["text.model.encoder.layer.1.attention.self.query.weight"], tuning


def test_frozen_text_gets_no_gradient(tiny_late_config, tiny_bert, make_batch):
    model = MultimodalClassifier(tiny_late_config("attention", text_tuning="frozen"))
    batch, labels = make_batch(tiny_bert, 32)
    model(batch, labels).loss.backward()
    text = dict(model.backbone.text.named_parameters())
    assert all(p.grad is None and not p.requires_grad for p in text.values())
    assert _grads(model)["backbone.fusion.query.weight"]
    assert model.backbone.frozen_text_layers == 2


def test_frozen_mmbt_runs_its_top_layer_live_and_trains_the_image_projection(tiny_late_config, tiny_bert,
                                                                            make_batch):
    """With a frozen text encoder MMBT still mixes image and text tokens in its top layer: no
    text weight changes, but the gradient flows through that layer to the image projection."""
    model = MultimodalClassifier(tiny_late_config("mmbt", text_tuning="frozen"))
    batch, labels = make_batch(tiny_bert, 32)
    model.train()(batch, labels).loss.backward()
    assert all(not p.requires_grad for p in model.backbone.text.parameters())
    assert model.backbone.frozen_text_layers == 1 and model.backbone.tuned_from == 2
    assert _grads(model)["backbone.image_to_text.weight"]
    assert not any(m.training for m in model.backbone.text.modules())


def test_top_layer_only_full_tuning_freezes_the_bottom(tiny_late_config, tiny_bert, make_batch):
    model = MultimodalClassifier(tiny_late_config("attention", text_trainable_layers=1))
    batch, labels = make_batch(tiny_bert, 32)
    model(batch, labels).loss.backward()
    grads = {n: g for n, g in _grads(model.backbone.text).items()}
    assert all(g for n, g in grads.items() if n.startswith("model.encoder.layer.1.") and "bias" not in n)
    assert not any(g for n, g in grads.items() if not n.startswith("model.encoder.layer.1."))


def test_lora_on_the_top_layer_trains_only_its_adapters(tiny_late_config, tiny_bert, make_batch):
    model = MultimodalClassifier(tiny_late_config("attention", text_tuning="lora", text_trainable_layers=1))
    batch, labels = make_batch(tiny_bert, 32)
    _step(model, batch, labels)  # lora_B starts at zero: after one step lora_A gets gradients too
    model.zero_grad()
    model(batch, labels, generator=torch.Generator().manual_seed(1)).loss.backward()

    text_grads = _grads(model.backbone.text)
    with_grad = {n for n, g in text_grads.items() if g}
    lora = {n for n in text_grads if "lora_" in n}
    assert lora and all(n.startswith("model.encoder.layer.1.") for n in lora)
    assert with_grad == lora  # every adapter of layer 1 and nothing else in the text encoder
    assert {n for n, p in model.backbone.text.named_parameters() if p.requires_grad} == lora

    saved = model.trained_state_dict()
    assert {f"backbone.text.{n}" for n in lora} <= set(saved)
    text_saved = {k for k in saved if k.startswith("backbone.text.")}
    assert text_saved == {f"backbone.text.{n}" for n in lora}  # no frozen base weights
    assert "backbone.text.model.encoder.layer.1.attention.self.query.base_layer.weight" in model.untouched_keys()


# --- ViLT -------------------------------------------------------------------------------------

def test_vilt_trains_one_step_and_changes_the_loss(tiny_vilt, make_batch):
    cfg = ModelConfig(num_labels=3, architecture="vilt", vilt_model=tiny_vilt, max_text_length=16, proj_dim=8,
                      loss=LossConfig(itc=True, itm=True))
    torch.manual_seed(0)
    model = MultimodalClassifier(cfg)
    assert model.image_spec.size == 32 and model.image_spec.std == (0.25, 0.25, 0.25)
    batch, labels = make_batch(tiny_vilt, 32, n=4)

    def eval_loss():
        model.eval()
        with torch.no_grad():
            return model(batch, labels, generator=torch.Generator().manual_seed(7)).loss.item()

    before_loss, before = eval_loss(), _snapshot(model)
    out = _step(model, batch, labels, lr=1e-2)
    assert math.isfinite(out.loss.item()) and set(out.losses) == {"ce", "itc", "itm"}
    changed = _changed(before, model)
    assert any(n.startswith("backbone.vilt.encoder.") for n in changed)
    assert "itm_head.weight" in changed and "logit_scale" in changed
    assert eval_loss() != pytest.approx(before_loss, abs=1e-6)


def test_tiny_bert_and_vit_both_change_in_one_step(tiny_late_config, tiny_bert, make_batch):
    model = MultimodalClassifier(tiny_late_config("gmu", vision_tuning="full"))
    batch, labels = make_batch(tiny_bert, 32)
    before = _snapshot(model)
    out = _step(model, batch, labels)
    assert math.isfinite(out.loss.item())
    changed = _changed(before, model)
    assert any(n.startswith("backbone.text.model.encoder.") for n in changed)
    assert any(n.startswith("backbone.image.model.") for n in changed)


# --- checkpoints ------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    dict(architecture="attention"),
    dict(architecture="attention", text_trainable_layers=1, vision_tuning="full"),
    dict(architecture="concat", text_tuning="lora", text_trainable_layers=1),
    dict(architecture="mmbt"),
    dict(architecture="attention", text_tuning="adapter", itc_image_pool="attention", align_before_fuse=True),
    dict(architecture="mmbt", text_tuning="adapter"),
    dict(architecture="concat", text_tuning="adapter", itc_image_pool="attention", align_before_fuse=True),
    dict(architecture="mmbt", text_tuning="adapter", itc_image_pool="attention", align_before_fuse=True),
], ids=["full", "top-layer", "lora", "mmbt", "adapter", "mmbt-adapter", "concat-aligned", "mmbt-aligned"])
def test_trained_state_dict_round_trips(overrides, tiny_late_config, tiny_bert, make_batch):
    cfg = tiny_late_config(**overrides)
    model = MultimodalClassifier(cfg)
    batch, labels = make_batch(tiny_bert, 32)
    _step(model, batch, labels)
    model.class_weights.copy_(torch.tensor([0.5, 1.0, 2.0]))
    saved = model.trained_state_dict()
    assert not set(saved) & model.untouched_keys()

    torch.manual_seed(123)  # different random heads: everything they need must come from `saved`
    fresh = MultimodalClassifier(cfg)
    result = fresh.load_state_dict(saved, strict=False)
    assert set(result.missing_keys) == fresh.untouched_keys()
    assert result.unexpected_keys == []

    model.eval(), fresh.eval()
    with torch.no_grad():
        a, b = (m(batch, labels, generator=torch.Generator().manual_seed(5)) for m in (model, fresh))
    for name in ("logits", "text_emb", "image_emb", "fused", "itm_logits", "loss"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


# --- ITM reuses the encoders' outputs ---------------------------------------------------------

@pytest.mark.parametrize("reencode, passes", [(False, 1), (True, 2)])
def test_itm_runs_the_encoders_once_unless_reencoding(reencode, passes, tiny_late_config, tiny_bert, make_batch):
    cfg = tiny_late_config("attention", loss=LossConfig(itc=True, itm=True, itm_reencode=reencode))
    model = MultimodalClassifier(cfg)
    calls = {"text": 0, "image": 0}
    text_layer, image = model.backbone.text.layers[-1], model.backbone.image
    text_layer.register_forward_hook(lambda *_: calls.__setitem__("text", calls["text"] + 1))
    image.register_forward_hook(lambda *_: calls.__setitem__("image", calls["image"] + 1))
    batch, labels = make_batch(tiny_bert, 32, n=6)
    out = _step(model, batch, labels)
    assert calls == {"text": passes, "image": passes}
    assert math.isfinite(out.losses["itm"].item())


def test_reencoding_and_shared_features_agree_in_eval_mode(tiny_late_config, tiny_bert, make_batch):
    """Late fusion sees only unimodal outputs, so fusing swapped pairs from cached features is
    the same computation as re-running the encoders on the swapped batch."""
    batch, labels = make_batch(tiny_bert, 32, n=6)
    losses = []
    for reencode in (False, True):
        torch.manual_seed(0)
        model = MultimodalClassifier(tiny_late_config("attention", loss=LossConfig(itm=True, itm_reencode=reencode)))
        model.eval()
        with torch.no_grad():
            losses.append(model(batch, labels, generator=torch.Generator().manual_seed(3)).losses["itm"].item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


# --- outputs ----------------------------------------------------------------------------------

def test_output_fields(tiny_late_config, tiny_bert, make_batch):
    batch, labels = make_batch(tiny_bert, 32, n=5)
    plain = MultimodalClassifier(tiny_late_config("concat", itc=False, itm=False)).eval()
    with torch.no_grad():
        out = plain(batch)
    assert out.itm_logits is None and out.itm_match is None
    assert out.loss is None and out.losses is None
    assert plain.itm_head is None

    with_itm = MultimodalClassifier(tiny_late_config("concat")).eval()
    with torch.no_grad():
        out = with_itm(batch, labels)
    assert out.itm_match.shape == (5,) and ((out.itm_match >= 0) & (out.itm_match <= 1)).all()
    assert out.itc_cosine.shape == (5,) and ((out.itc_cosine >= -1) & (out.itc_cosine <= 1)).all()
    assert set(out.losses) == {"ce", "itc", "itm"}


# --- ModelConfig ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    (dict(architecture="transformer"), "architecture"),
    (dict(architecture="vilt"), "vilt_model"),
    (dict(architecture="vilt", vilt_model="x", text_tuning="lora"), "text_tuning"),
    (dict(text_tuning="adapters"), "text_tuning"),
    (dict(vision_tuning="lora"), "vision_tuning"),
    (dict(num_labels=1), "num_labels"),
    (dict(hidden_dim=0), "hidden_dim"),
    (dict(text_trainable_layers=-1), "text_trainable_layers"),
    (dict(dropout=1.0), "dropout"),
])
def test_model_config_rejects_bad_values_by_name(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**({"num_labels": 3} | kwargs))


def test_model_config_dict_round_trip_and_errors():
    cfg = ModelConfig(num_labels=4, architecture="gmu", loss=LossConfig(itc=True, beta_itc=0.2))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="fusion_type"):
        ModelConfig.from_dict(cfg.to_dict() | {"fusion_type": "x"})
    with pytest.raises(ValueError, match="num_labels"):
        ModelConfig.from_dict({"architecture": "gmu"})
    with pytest.raises(ValueError, match="gamma"):
        ModelConfig.from_dict(cfg.to_dict() | {"loss": {"itc": True, "gamma": 1}})
    with pytest.raises(ValueError, match="JSON object"):
        ModelConfig.from_dict([("num_labels", 2)])


# --- the auxiliary losses reach the classifier --------------------------------------------------

def _aux_only_grads(model, batch, labels, name):
    """Gradients of one auxiliary loss alone (the CE weight at 0)."""
    model.zero_grad()
    out = model.train()(batch, labels, generator=torch.Generator().manual_seed(0))
    out.losses[name].backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}


@pytest.mark.parametrize("architecture", ["attention", "concat", "gmu", "mmbt"])
@pytest.mark.parametrize("loss", ["itc", "itm"])
def test_each_aux_loss_alone_moves_a_parameter_that_changes_the_logits(architecture, loss, tiny_late_config,
                                                                     tiny_bert, make_batch):
    """With text_tuning="adapter" (the cpu recipe), ITC alone and ITM alone give a non-zero
    gradient on the text adapter, and changing the adapter along it changes the task logits."""
    model = MultimodalClassifier(tiny_late_config(architecture, text_tuning="adapter", adapter_dim=4))
    batch, labels = make_batch(tiny_bert, 32, n=6)
    with torch.no_grad():  # leave the identity start, so the adapter's down-projection gets a gradient too
        model.backbone.text_adapter.up.weight.normal_(0, 0.1)
    grads = _aux_only_grads(model, batch, labels, loss)
    assert "backbone.text_adapter.down.weight" in grads
    model.eval()
    with torch.no_grad():
        before = model(batch).logits
        model.backbone.text_adapter.down.weight -= 10.0 * grads["backbone.text_adapter.down.weight"]
        after = model(batch).logits
    assert not torch.allclose(before, after)
    assert model.auxiliary_reach(batch, labels) == {"itc": True, "itm": True}


def test_itc_cannot_reach_a_late_fusion_classifier_over_frozen_encoders(tiny_late_config, tiny_bert, make_batch):
    """The configuration the old shipped checkpoints used: ITC trains only its own projections."""
    model = MultimodalClassifier(tiny_late_config("attention", text_tuning="frozen"))
    batch, labels = make_batch(tiny_bert, 32, n=6)
    assert set(_aux_only_grads(model, batch, labels, "itc")) == {"text_proj.weight", "image_proj.weight",
                                                                 "logit_scale"}
    assert model.auxiliary_reach(batch, labels) == {"itc": False, "itm": True}


def test_adapter_starts_as_identity_and_trains_alone(tiny_late_config, tiny_bert, make_batch):
    model = MultimodalClassifier(tiny_late_config("attention", text_tuning="adapter", adapter_dim=4))
    tokens = torch.randn(2, 5, model.backbone.text.hidden_size)
    assert torch.equal(model.backbone.text_adapter(tokens), tokens)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("backbone.text.", "backbone.image.")) for n in trained)
    assert model.backbone.frozen_text_layers == model.backbone.text.num_layers  # the whole stack is cacheable
    assert {n for n in model.trained_state_dict() if "text_adapter" in n} == {
        f"backbone.text_adapter.{p}.{w}" for p in ("norm", "down", "up") for w in ("weight", "bias")}


def test_frozen_encoders_are_in_eval_mode_from_construction(tiny_late_config):
    """Features computed right after building a model (as training caches them) are eval-mode ones."""
    model = MultimodalClassifier(tiny_late_config("attention", text_tuning="adapter"))
    assert model.training and model.backbone.text_adapter.training
    assert not any(m.training for m in model.backbone.image.modules())
    assert not any(m.training for m in model.backbone.text.modules())


def test_hard_itm_negatives_need_itc(tiny_late_config):
    with pytest.raises(ValueError, match="enable ITC"):
        tiny_late_config("attention", loss=LossConfig(itm=True, itm_negatives="hard"))


def test_align_before_fuse_attends_in_the_itc_space(tiny_late_config, tiny_bert, make_batch):
    """The attention's queries and keys are the ITC projections: one set of weights, trained by
    ITC and by the classifier alike; ITC embeddings come out of them."""
    model = MultimodalClassifier(tiny_late_config("attention", text_tuning="adapter", itc_image_pool="attention",
                                                  align_before_fuse=True))
    fusion = model.backbone.fusion
    assert model.text_proj is None and model.image_proj is None
    assert fusion.query.bias is None and fusion.key.bias is None and fusion.query.out_features == 8  # proj_dim
    batch, labels = make_batch(tiny_bert, 32, n=6)
    model.eval()
    with torch.no_grad():
        out = model(batch)
        enc = model.backbone(batch)
    torch.testing.assert_close(out.text_emb, fusion.query(enc.text_pooled))
    torch.testing.assert_close(out.image_emb, fusion.key(enc.image_pooled))
    grads = _aux_only_grads(model, batch, labels, "itc")
    assert {"backbone.fusion.query.weight", "backbone.fusion.key.weight"} <= set(grads)
    assert not any(k.startswith(("text_proj", "image_proj")) for k in model.state_dict())


@pytest.mark.parametrize("architecture", ["concat", "mmbt"])
def test_align_before_fuse_fuses_the_agreement_of_the_itc_embeddings(architecture, tiny_late_config, tiny_bert,
                                                                    make_batch):
    """Concat and MMBT with align_before_fuse: ITC embeddings are the projections of each side
    alone (a text's does not change with its image: retrieval, not joint states), ITC alone
    trains them, and the fused vector, hence the ITM head, changes with their agreement."""
    model = MultimodalClassifier(tiny_late_config(architecture, text_tuning="adapter", itc_image_pool="attention",
                                                  align_before_fuse=True))
    query, key = model.backbone.itc_projections
    assert model.text_proj is None and model.image_proj is None and query.bias is None and key.bias is None
    batch, labels = make_batch(tiny_bert, 32, n=6)
    model.eval()
    with torch.no_grad():
        out, enc = model(batch), model.backbone(batch)
        torch.testing.assert_close(out.text_emb, query(enc.text_pooled))
        torch.testing.assert_close(out.image_emb, key(enc.image_pooled))
        rolled = model(batch.pair(torch.roll(torch.arange(6), 1), torch.arange(6)))  # other images, same texts
        torch.testing.assert_close(rolled.text_emb, out.text_emb)
        own = torch.arange(6)
        torch.testing.assert_close(model.backbone.fuse_pairs(enc.state, own, own), enc.fused)
        match = model.backbone.fusion.match if architecture == "concat" else model.backbone.match
        match.weight.zero_()
        without = model.backbone(batch).fused
    assert not torch.allclose(without, enc.fused)
    assert {"backbone.fusion.query.weight" if architecture == "concat" else "backbone.query.weight"} \
        <= set(_aux_only_grads(model, batch, labels, "itc"))
    assert not spaces.trained_spaces(model.cfg).itc_after_fusion


def test_aligned_concat_mixes_the_encoders_pooled_image_not_itcs_pooling(tiny_late_config, tiny_bert, make_batch):
    """ITC's learned image pooling feeds ITC (and the agreement term) only: the concat mix reads
    the encoder's pooled image, so CE on the mix cannot pull ITC's pooling toward its own cells."""
    model = MultimodalClassifier(tiny_late_config("concat", text_tuning="adapter", itc_image_pool="attention",
                                                  align_before_fuse=True))
    batch, _ = make_batch(tiny_bert, 32, n=6)
    model.eval()
    with torch.no_grad():
        before = model.backbone(batch)
        model.backbone.itc_image_pool.score.weight.normal_()
        after = model.backbone(batch)
    (mix_before, _), (mix_after, _) = before.state[1], after.state[1]
    torch.testing.assert_close(mix_after, mix_before)  # the mix's image part ignores ITC's pooling
    assert not torch.allclose(after.itc_emb[1], before.itc_emb[1])  # ITC's image embedding follows it


@pytest.mark.parametrize("overrides", [dict(architecture="gmu"), dict(architecture="mmbt", text_tuning="full")])
def test_align_before_fuse_is_refused_where_it_is_not_built(overrides, tiny_late_config):
    with pytest.raises(ValueError, match="align_before_fuse is built for attention, concat, mmbt"):
        tiny_late_config(align_before_fuse=True, **overrides)
