"""Which spaces a checkpoint trained (from its config alone) and the references beside every
alignment number: chance, and the same number for a random projection of the frozen features."""
import numpy as np
import pytest
import torch

from mmaux.analysis import spaces
from mmaux.model import MultimodalClassifier


@pytest.mark.parametrize(("itc", "itm", "kind"), [(False, False, None), (True, False, "itc"),
                                                  (False, True, "itm"), (True, True, "itm")])
def test_trained_spaces_follow_the_loss_switches(tiny_late_config, itc, itm, kind):
    trained = spaces.trained_spaces(tiny_late_config(itc=itc, itm=itm))
    assert (trained.itc, trained.itm, trained.score_kind, trained.itc_after_fusion) == (itc, itm, kind, False)
    assert spaces.trained_spaces(tiny_late_config("mmbt")).itc_after_fusion


def test_random_projection_recall_is_at_chance_even_when_the_features_pair_up():
    """Image features that are a linear function of the text features (perfectly paired), seen
    through two independent random projections: recall@k sits at chance k / n."""
    rng = np.random.default_rng(0)
    n, text_dim, image_dim = 1000, 48, 96
    text = rng.normal(size=(n, text_dim))
    image = text @ rng.normal(size=(text_dim, image_dim)) + 0.1 * rng.normal(size=(n, image_dim))
    recalls = {k: [] for k in ("i2t@10", "t2i@10", "i2t@1")}
    for seed in range(3):
        numbers = spaces.alignment_numbers(*spaces.random_baseline(text, image, dim=32, seed=10 * seed))
        for k in recalls:
            recalls[k].append(numbers[k])
    chance = spaces.chance_numbers(n)
    for k, values in recalls.items():  # 3 × 1000 posts: chance ± 4 binomial standard errors
        p = chance[k]
        assert abs(np.mean(values) - p) <= 4 * np.sqrt(p * (1 - p) / (3 * n)), (k, values)
    assert chance["i2t@10"] == 0.01 and chance["true vs shuffled AUROC"] == 0.5
    # the same features, trained to align (here: the identity), are far above chance
    aligned = spaces.alignment_numbers(text, text)
    assert aligned["i2t@1"] == 1.0 and aligned["true vs shuffled AUROC"] == 1.0


def test_reference_table_puts_random_and_chance_beside_each_number():
    table = spaces.reference_table({"i2t@5": 0.3, "modality gap": 0.2},
                                   {"i2t@5": 0.004, "modality gap": 0.7}, n=100)
    assert table["number"].tolist() == ["i2t@5", "modality gap"]
    assert table["random projection"].tolist() == [0.004, 0.7]
    assert table["chance"].iloc[0] == 0.05 and np.isnan(table["chance"].iloc[1])


def test_frozen_features_are_the_inputs_of_a_frozen_late_fusion_models_itc(tiny_late_config, tiny_bert, make_batch):
    """With the whole text encoder frozen, the frozen features are exactly what the ITC
    projections read: the random baseline projects the same vectors the checkpoint projects."""
    torch.manual_seed(0)
    model = MultimodalClassifier(tiny_late_config(text_tuning="frozen")).eval()
    batch, _ = make_batch(tiny_bert, 32, n=5)

    class Inputs:  # PostInputs' interface over one ready batch
        def batches(self, size):
            yield batch

    text, image = spaces.frozen_features(model, Inputs())
    with torch.no_grad():
        enc = model.backbone(batch)
    np.testing.assert_allclose(text, enc.text_pooled.numpy(), atol=1e-5)
    np.testing.assert_allclose(image, enc.image_pooled.numpy(), atol=1e-5)
