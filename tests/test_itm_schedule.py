"""ITM's schedule (warm-up, ramp, learning-rate scale): configured, recorded, applied step by step,
and absent from old configs, which load and train exactly as before."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mmaux.config import ModelConfig
from mmaux.losses import ITM_SCHEDULE_FIELDS, LossConfig, joint_loss

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


# --- the weights ------------------------------------------------------------------------------------

def test_without_a_schedule_the_weights_are_the_papers_at_every_step():
    for cfg in (LossConfig(), LossConfig(itc=True), LossConfig(itm=True), LossConfig(itc=True, itm=True)):
        assert not cfg.itm_scheduled
        for progress in (None, 0.0, 0.5, 3.0, 7.9):
            assert cfg.weights(progress) == (cfg.ce_weight, 0.1 * cfg.itc, 0.1 * cfg.itm)


def test_warm_up_trains_itm_alone_then_the_ramp_falls_linearly_to_beta_itm():
    for itc in (False, True):  # the same schedule for CE+ITM and CE+ITC+ITM
        cfg = LossConfig(itc=itc, itm=True, itm_warmup_epochs=2, itm_ramp_epochs=2, itm_ramp_from=0.7)
        assert cfg.itm_scheduled
        assert cfg.weights(0.0) == cfg.weights(1.99) == (0.0, 0.0, 1.0)
        itc_w = 0.1 if itc else 0.0
        for progress, itm in ((2.0, 0.7), (3.0, 0.4), (4.0, 0.1), (7.5, 0.1)):
            ce, got_itc, got_itm = cfg.weights(progress)
            assert got_itm == pytest.approx(itm) and got_itc == itc_w
            assert ce == pytest.approx(1 - itc_w - itm)


def test_joint_loss_takes_the_scheduled_weights():
    cfg = LossConfig(itc=True, itm=True)
    ce, itc, itm = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)
    assert joint_loss(cfg, ce, itc, itm).item() == pytest.approx(0.8 + 0.2 + 0.4)
    assert joint_loss(cfg, ce, itc, itm, (0.0, 0.0, 1.0)).item() == pytest.approx(4.0)


@pytest.mark.parametrize("field, value", [("itm_warmup_epochs", -1), ("itm_ramp_epochs", 1.5),
                                          ("itm_ramp_from", 1.0), ("itm_lr_scale", 0.0)])
def test_bad_schedule_values_name_their_field(field, value):
    with pytest.raises(ValueError, match=field):
        LossConfig(itm=True, **{field: value})


def test_the_ramp_leaves_ce_a_positive_weight_beside_itc():
    with pytest.raises(ValueError, match="itm_ramp_from"):
        LossConfig(itc=True, itm=True, itm_ramp_epochs=1, itm_ramp_from=0.9)
    LossConfig(itc=True, itm=False, itm_ramp_from=0.9)  # no ITM: the ramp is never used


def test_variants_without_itm_record_the_neutral_schedule():
    schedule = dict(itm_warmup_epochs=2, itm_ramp_epochs=1, itm_ramp_from=0.5, itm_lr_scale=10.0)
    for aux in ("none", "itc"):
        assert LossConfig.from_aux(aux, **schedule) == LossConfig.from_aux(aux)
    for aux in ("itm", "itc,itm"):
        cfg = LossConfig.from_aux(aux, **schedule)
        assert {f: getattr(cfg, f) for f in ITM_SCHEDULE_FIELDS} == schedule


# --- old configs --------------------------------------------------------------------------------------

def _shipped_configs() -> list[Path]:
    return sorted(SHIPPED.glob("*/*/*/config.json"))


def test_shipped_configs_record_the_papers_schedule_and_older_ones_load_with_it():
    """The shipped checkpoints record ITM's schedule as the paper's (no warm-up, no ramp, one
    learning rate); a config written before the schedule existed (no such fields) loads with the
    same."""
    configs = _shipped_configs()
    if not configs:
        pytest.skip("no shipped checkpoints")
    for path in configs:
        recorded = json.loads(path.read_text())["model"]
        older = {**recorded, "loss": {k: v for k, v in recorded["loss"].items() if k not in ITM_SCHEDULE_FIELDS}}
        for cfg in (ModelConfig.from_dict(recorded), ModelConfig.from_dict(older)):
            assert not cfg.loss.itm_scheduled and cfg.loss.itm_lr_scale == 1.0
            assert cfg.loss.weights(0.0) == cfg.loss.weights() == (
                cfg.loss.ce_weight, cfg.loss.beta_itc * cfg.loss.itc, cfg.loss.beta_itm * cfg.loss.itm)
        assert {f: recorded["loss"][f] for f in ITM_SCHEDULE_FIELDS} == {
            "itm_warmup_epochs": 0, "itm_ramp_epochs": 0, "itm_ramp_from": 0.8, "itm_lr_scale": 1.0}


def test_new_configs_round_trip_the_schedule(tiny_late_config):
    loss = LossConfig(itm=True, itm_warmup_epochs=1, itm_ramp_epochs=2, itm_ramp_from=0.6, itm_lr_scale=5.0)
    cfg = tiny_late_config(loss=loss)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# --- the optimizer groups -----------------------------------------------------------------------------

def _groups_by_name(model, groups):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


@pytest.mark.parametrize("architecture", ["attention", "concat"])
def test_itm_lr_scale_puts_the_itm_head_and_match_layer_in_their_own_group(architecture, tiny_late_config):
    from mmaux.model import MultimodalClassifier

    cfg = tiny_late_config(architecture=architecture, align_before_fuse=True, text_tuning="adapter",
                           loss=LossConfig(itc=True, itm=True, itm_lr_scale=10.0))
    model = MultimodalClassifier(cfg)
    lrs = _groups_by_name(model, model.param_groups(1e-5, 1e-3, 0.01))
    itm = set(model.itm_parameter_names())
    assert itm == {"itm_head.weight", "itm_head.bias", "backbone.fusion.match.weight"}
    assert lrs["itm_head.weight"] == (pytest.approx(1e-2), 0.01) and lrs["itm_head.bias"] == (pytest.approx(1e-2), 0.0)
    assert lrs["backbone.fusion.match.weight"] == (pytest.approx(1e-2), 0.01)
    assert all(lr == 1e-3 for name, (lr, _) in lrs.items() if name not in itm)  # adapter, q, k, classifier


def test_without_the_scale_the_groups_are_as_before(tiny_late_config):
    """Old configs (itm_lr_scale 1): one group per (lr, decay), as the shipped checkpoints were trained."""
    from mmaux.model import MultimodalClassifier

    model = MultimodalClassifier(tiny_late_config(align_before_fuse=True, text_tuning="adapter"))
    groups = model.param_groups(1e-3, 1e-3, 2.5e-4)
    assert sorted((g["lr"], g["weight_decay"]) for g in groups) == [(1e-3, 0.0), (1e-3, 2.5e-4)]
    trained = [p for _, p in model.named_parameters() if p.requires_grad]
    assert sum(len(g["params"]) for g in groups) == len(trained)


# --- applied in training, step by step --------------------------------------------------------------

@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMAUX_CACHE", str(tmp_path / "cache"))


def _train_tiny(tiny_late_config, tmp_path, loss: LossConfig, epochs: int = 3, **train):
    from mmaux.data.datasets import DatasetSpec
    from mmaux.data.synthposts import SynthSpec
    from mmaux.train import TrainConfig, train as run

    model = tiny_late_config(loss=loss, text_tuning="adapter", align_before_fuse=True)
    cfg = TrainConfig(model=model, dataset=DatasetSpec(synth=SynthSpec(task="sentiment", n_train=24, n_val=8, n_test=8)),
                      out_dir=str(tmp_path / "run"), epochs=epochs, batch_size=8, lr=1e-3, head_lr=1e-3, **train)
    return run(cfg, progress=False)


@pytest.mark.slow
def test_training_applies_the_scheduled_weights_at_every_step(tiny_late_config, tmp_path, private_cache,
                                                             monkeypatch):
    import mmaux.train as train_module
    from mmaux.checkpoint import read_info, read_metrics

    used, optimizers = [], []
    real_joint, real_adamw = train_module.joint_loss, torch.optim.AdamW
    monkeypatch.setattr(train_module, "joint_loss", lambda *a, **k: used.append(a[4]) or real_joint(*a, **k))
    monkeypatch.setattr(torch.optim, "AdamW", lambda *a, **k: optimizers.append(real_adamw(*a, **k)) or optimizers[-1])
    loss = LossConfig(itc=True, itm=True, itm_warmup_epochs=1, itm_ramp_epochs=1, itm_ramp_from=0.6, itm_lr_scale=4.0)
    folder = _train_tiny(tiny_late_config, tmp_path, loss)

    steps = 3  # 24 posts, batch 8
    expected = [loss.weights(epoch + step / steps) for epoch in range(3) for step in range(steps)]
    assert used == expected
    assert used[0] == (0.0, 0.0, 1.0) and used[steps][2] == pytest.approx(0.6) and used[-1] == (0.8, 0.1, 0.1)
    # the optimizer trained the ITM head and match layer at 4 x the head lr
    (optimizer,) = optimizers
    assert sorted({g["lr"] for g in optimizer.param_groups}) == [pytest.approx(1e-3), pytest.approx(4e-3)]
    # recorded: the schedule in config.json, each epoch's weights and loss parts in metrics.json
    assert read_info(folder).model.loss == loss
    recorded = json.loads((folder / "config.json").read_text())["model"]["loss"]
    assert {f: recorded[f] for f in ITM_SCHEDULE_FIELDS} == {f: getattr(loss, f) for f in ITM_SCHEDULE_FIELDS}
    history = read_metrics(folder)["history"]
    assert [tuple(h["weights"]) for h in history] == [expected[steps - 1], expected[2 * steps - 1], expected[-1]]
    assert set(history[0]["train_losses"]) == {"ce", "itc", "itm"}


@pytest.mark.slow
def test_an_unscheduled_run_trains_exactly_as_before(tiny_late_config, tmp_path, private_cache, monkeypatch):
    """Without a schedule the step's loss is the model's own joint loss (the code path the shipped
    checkpoints were trained with): joint_loss is never recombined in the training loop."""
    import mmaux.train as train_module

    calls = []
    monkeypatch.setattr(train_module, "joint_loss", lambda *a, **k: calls.append(a))
    _train_tiny(tiny_late_config, tmp_path, LossConfig(itc=True, itm=True), epochs=1)
    assert calls == []


def test_warm_up_must_leave_a_joint_epoch(tiny_late_config):
    from mmaux.data.datasets import DatasetSpec
    from mmaux.data.synthposts import SynthSpec
    from mmaux.train import TrainConfig

    model = tiny_late_config(loss=LossConfig(itm=True, itm_warmup_epochs=2))
    with pytest.raises(ValueError, match="itm_warmup_epochs"):
        TrainConfig(model=model, dataset=DatasetSpec(synth=SynthSpec(task="sentiment")), out_dir="x", epochs=2)
    TrainConfig(model=replace(model, loss=LossConfig(itc=True, itm_warmup_epochs=0)),
                dataset=DatasetSpec(synth=SynthSpec(task="sentiment")), out_dir="x", epochs=2)


def test_cli_recipes_and_flags():
    from mmaux.cli import _train_config, _with_recipe, build_parser

    def options(*argv):
        return _with_recipe(build_parser().parse_args(["train", "--out", "x", "--task", "sentiment", *argv]))

    for recipe in ("paper", "cpu"):
        args = options("--recipe", recipe)
        assert (args.weight_decay, args.dropout) == (2.5e-4, 0.05)
        cfg = _train_config(args, "attention", "itm", 0, Path("x"), 3)
        assert cfg.weight_decay == 2.5e-4 and cfg.model.dropout == 0.05
    args = options("--recipe", "cpu", "--itm-warmup-epochs", "2", "--itm-lr-scale", "10", "--weight-decay", "0.05",
                   "--dropout", "0.2")
    for aux in ("itm", "itc,itm"):
        cfg = _train_config(args, "attention", aux, 0, Path("x"), 3)
        assert cfg.model.loss.itm_warmup_epochs == 2 and cfg.model.loss.itm_lr_scale == 10.0
        assert cfg.weight_decay == 0.05 and cfg.model.dropout == 0.2
    assert _train_config(args, "attention", "itc", 0, Path("x"), 3).model.loss.itm_warmup_epochs == 0
