"""AppTest of the Attributions page: two checkpoints' integrated gradients side by side, their
difference, and modality reliance for the post and averaged per slice over the test set."""
import json
import math

import pytest

pytestmark = pytest.mark.slow


def test_attributions_page_shows_both_checkpoints_and_their_difference(open_page):
    at = open_page("pages/4_Attributions.py", n_checkpoints=2)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3  # two converged image maps and their difference
    checks = [c.value for c in at.caption if c.value.startswith("Integrated gradients, text:")]
    assert len(checks) == 2 and all(c.count("converged in") == 2 for c in checks)  # text and image, each
    assert not any("did not converge" in w.value for w in at.warning)
    assert not any("ITC projection untrained" in m.value for m in at.markdown)  # CE, CE+ITM: their names say it
    maps = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][:2]  # the two checkpoints' image maps
    scales = [next((t["zmin"], t["zmax"]) for t in m["data"] if t["type"] == "heatmap") for m in maps]
    assert scales[0] == scales[1] and scales[0][1] > 0  # one colour scale, said in a caption
    assert any(c.value.startswith(f"The image maps share one colour scale, ±{scales[0][1]:.3g}") for c in at.caption)
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


def test_a_map_that_does_not_converge_is_labelled_with_occlusion_beside(open_page, app_runs, monkeypatch):
    from mmaux.analysis import attributions
    from mmaux.analysis.runs import load_test_table

    monkeypatch.setattr(attributions, "REL_TOLERANCE", 0.0)  # nothing can converge
    monkeypatch.setattr(attributions, "ABS_TOLERANCE", 0.0)
    monkeypatch.setattr(attributions, "IMAGE_LADDER", (2, 4))
    monkeypatch.setattr(attributions, "TEXT_LADDER", (2,))
    post = load_test_table(app_runs[1]["folder"].iloc[0])["post_id"].iloc[7]  # not explained by the other tests
    at = open_page("pages/4_Attributions.py", n_checkpoints=1, state={"post_id": post})
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Image map did not converge (delta") and "occlusion beside" in w for w in warnings)
    assert any(w.startswith("Text map did not converge (delta") for w in warnings)
    maps = [c.proto.spec for c in at.get("plotly_chart")][:2]  # (reliance bars may follow, when cached)
    assert "(did not converge)" in maps[0] and '"text":"occlusion"' in maps[1]
