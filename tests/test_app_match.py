"""AppTest of the ITM match scores page on real checkpoints (one without and one with ITM)."""
import math

import pytest

pytestmark = pytest.mark.slow


def test_match_page_shows_scores_heatmaps_and_health(open_page):
    at = open_page("pages/2_Match_Scores.py", n_checkpoints=2)
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) >= 2 * 2 + 2  # ranked texts and heatmap per checkpoint, distributions, reliability
    health = at.dataframe[0].value
    assert len(health) == 2
    for column in ("true vs shuffled AUROC", "i2t@1", "t2i@10"):
        assert all(math.isfinite(v) for v in health[column])
    assert any("No ITM head" in info.value for info in at.info)


def test_match_page_follows_the_post_choice(open_page):
    at = open_page("pages/2_Match_Scores.py", n_checkpoints=1)
    post = at.sidebar.selectbox[0]
    other = post.options[3].split(":")[0]  # options are shown as "<post id>: <text>"
    post.set_value(other).run()
    assert not at.exception, at.exception
    assert at.session_state["post_id"] == other
