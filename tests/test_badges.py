"""Caveat badges: each says its fact only where it applies."""
import numpy as np

from mmaux import badges


def test_each_badge_only_where_it_applies():
    assert badges.untrained_itc(True, True) is None
    assert badges.untrained_itc(False, False) is None  # CE, CE+ITM: the name says there is no ITC
    assert badges.untrained_itc(True, False).text == "ITC projection untrained"  # ITC at weight 0
    assert badges.itm_at_chance(None) is None and badges.itm_at_chance(0.9) is None
    assert badges.itm_at_chance(0.52).text == "ITM head at chance (AUROC 0.52)"
    preds = np.array([0, 1, 2, 1])
    assert badges.identical_to_ce(preds, preds.copy()).text == "predictions identical to CE"
    assert badges.identical_to_ce(preds, np.array([0, 1, 2, 0])) is None
    assert badges.identical_to_ce(preds, None) is None
    assert badges.live_mismatch(0.0) is None
    assert badges.live_mismatch(0.142).text == "stored and live predictions differ on 14.2 % of posts"
    assert badges.borderline_flip(0.03, flipped=True).text == "borderline flip (|Δp| < 0.05)"
    assert badges.borderline_flip(-0.2, flipped=True) is None and badges.borderline_flip(0.01, flipped=False) is None
    assert badges.untrained_itc(True, False).markdown() == ":orange-badge[⚠ ITC projection untrained]"


class _Model:
    """Predicts class 1 for every post, whatever it is given."""

    def eval(self):
        return self

    def __call__(self, batch):
        import torch
        from types import SimpleNamespace

        return SimpleNamespace(logits=torch.tensor([[0.0, 1.0]] * batch))


class _Inputs:
    def __init__(self, n):
        self.n = n

    def batches(self, size):
        for start in range(0, self.n, size):
            yield min(size, self.n - start)


def test_live_predictions_run_every_post_in_batches():
    assert badges.live_predictions(_Model(), _Inputs(5), batch_size=2).tolist() == [1, 1, 1, 1, 1]
