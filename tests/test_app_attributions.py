"""AppTest of the Attributions page: two checkpoints' integrated gradients side by side, their
difference, and modality reliance for the post and averaged per slice over the test set."""
import math

import pytest

pytestmark = pytest.mark.slow


def test_attributions_page_shows_both_checkpoints_and_their_difference(open_page):
    at = open_page("pages/4_Attributions.py", n_checkpoints=2)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3  # two image maps and their difference
    deltas = [c.value for c in at.caption if c.value.startswith("Convergence delta")]
    assert len(deltas) == 2
    agreement = at.dataframe[0].value
    assert all(math.isfinite(v) for v in agreement["rank correlation"])
    post_drops = at.dataframe[1].value
    assert list(post_drops.columns) == ["p_pred", "blank image", "empty text", "swapped image"]


def test_attributions_page_averages_reliance_per_slice(open_page):
    at = open_page("pages/4_Attributions.py", n_checkpoints=1, state={"_reliance_all": True,
                                                                       "_attr_method": "occlusion"})
    assert not at.exception, at.exception
    per_slice = at.dataframe[-1].value
    assert not per_slice.empty
    assert per_slice["n"].iloc[0] > 0
