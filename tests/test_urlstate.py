"""The view lives in the URL on every page: a shared link opens the same checkpoints, post and
page options; the sidebar and the main area show the same post; page links carry the view."""
import os

import pytest

from apptest_support import checkpoint_root, page, texts
from mmaux import selection
from mmaux.analysis import runs

pytestmark = pytest.mark.slow  # the Embeddings page lays out the test posts


@pytest.fixture(scope="module")
def root():
    return checkpoint_root()


def _link(root) -> dict[str, str]:
    """A link naming the ITC run of the first group's second seed and a post of the middle."""
    table = runs.usable(runs.discover_runs(root.split(os.pathsep)))
    itc = table[table["itc"] & ~table["itm"]].sort_values("seed")
    folder = itc["folder"].iloc[min(1, len(itc) - 1)]
    post = runs.load_test_table(folder)["post_id"].iloc[101]
    return {**selection.Selection.of_folders(table, [folder]).to_params(), "post": post, "map": "PCA"}, folder


def test_a_link_opens_the_same_view_and_sidebar_and_main_agree(root, monkeypatch):
    link, folder = _link(root)
    at = page("pages/3_Embeddings.py", root, monkeypatch)
    for name, value in link.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception
    assert at.session_state["selected_checkpoints"] == [folder]
    assert next(r for r in at.sidebar.radio if r.label == "Map").value == "PCA"
    assert next(s for s in at.sidebar.selectbox if s.label == "Post").value == link["post"]  # sidebar
    assert f"Post {link['post']}" in texts(at.markdown)  # main area
    assert {k: at.query_params[k] for k in link} == link  # the URL still says so


def test_page_links_carry_the_view(root, monkeypatch):
    link, folder = _link(root)
    at = page("pages/1_Predictions.py", root, monkeypatch)
    for name, value in {**link, "variant": f"{runs.BASELINE},{link['variant']}"}.items():
        if name != "map":
            at.query_params[name] = value
    at.run()
    assert not at.exception
    links = [p for p in at.get("page_link")]
    assert links, "the post detail links to the analysis pages"
    for element in links:
        query = element.proto.query_string
        assert f"post={link['post']}" in query and f"task={link['task']}" in query, query
