"""The out-of-distribution score: a post far from the reference posts is past the 99th
percentile, one drawn like them is not; the words say so."""
import numpy as np
import pandas as pd

from mmaux import ood


def _cloud(n=400, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=d) * 3 + rng.normal(size=(n, d))  # one direction, some spread


def test_a_post_like_the_data_is_not_flagged_and_a_far_one_is():
    rng = np.random.default_rng(1)
    refs = ood.References.fit(_cloud(), _cloud(seed=2))
    like_text, like_image = _cloud(n=1, seed=0)[:1] + rng.normal(scale=0.01, size=(1, 16)), _cloud(n=1, seed=2)
    far = -_cloud(n=1, seed=0)  # the opposite direction
    table = ood.scores(refs, np.vstack([like_text, far]), np.vstack([like_image, like_image]))
    assert table["text_percentile"].iloc[0] < ood.WARN_PERCENTILE <= table["text_percentile"].iloc[1]
    assert list(table["unlike_the_data"]) == [False, True]
    assert ood.describe(table.iloc[1]).endswith("unlike the data")
    assert ood.describe(table.iloc[1]).startswith("text > 99.9th")


def test_each_reference_post_is_scored_against_the_others():
    features = _cloud(n=50)
    reference = ood.Reference.fit(features, k=3)
    assert reference.own.shape == (50,) and (reference.own > 0).all()  # not its own nearest neighbour
    percentiles = reference.percentile(features)
    assert (percentiles < 100).all()  # a reference post is as close as its neighbours are


def test_ordinals():
    row = pd.Series({"text_percentile": 42.0, "image_percentile": 99.3, "unlike_the_data": True})
    assert ood.describe(row) == "text 42nd, image 99.3th percentile: unlike the data"
