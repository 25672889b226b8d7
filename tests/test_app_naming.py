"""Every page, rendered with AppTest on the shipped checkpoints: one name per concept. The loss
variants are spelled CE, CE+ITC, CE+ITM and CE+ITC+ITM everywhere (titles, tables, legends,
options, help), each page's title is its name in the navigation, and no page shows a literal
"None" (a missing number is said in words)."""
import re

import pytest
from google.protobuf import text_format

from apptest_support import checkpoint_root, page
from mmaux.ui import NAV_PAGES

pytestmark = pytest.mark.slow

# any other spelling of a variant: "CE only", "CE + ITC", "ITC on", "ITM off", "+ITC" or "ITC+ITM" alone
OTHER_SPELLING = re.compile(r"CE only|CE \+ IT[CM]|(?<![+\w])IT[CM] (?:on|off)\b|(?<![A-Z])\+ ?IT[CM]|"
                            r"(?<!CE\+)\bITC ?\+ ?ITM")
NONE = re.compile(r"\bNone\b")
ELEMENT_ID = re.compile(r'^\s*id: ".*"$', re.MULTILINE)  # Streamlit's own ids end in "-None": not shown


def rendered(at) -> tuple[list[str], list[str]]:
    """(every text the page shows: markdown, captions, labels, options, help, chart specs, table
    headers and cells; a description of each table cell left empty, which the browser shows as
    'None')."""
    texts, empty = [], []
    for node in at._tree:
        proto = getattr(node, "proto", None)
        if node.type == "dataframe":
            frame = node.value
            texts += [str(c) for c in frame.columns] + [str(i) for i in frame.index]
            texts += [v for v in frame.to_numpy().ravel() if isinstance(v, str)]
            empty += [f"{frame.columns[c]!r} row {frame.index[r]!r}" for r, c in zip(*frame.isna().to_numpy().nonzero())]
        elif node.type == "plotly_chart":
            texts.append(proto.spec)
        elif proto is not None and hasattr(proto, "ListFields"):
            texts.append(ELEMENT_ID.sub("", text_format.MessageToString(proto, as_utf8=True)))
    return texts, empty


@pytest.fixture(scope="module")
def root():
    return checkpoint_root()


@pytest.mark.parametrize("path,title", [(path, title) for path, title, _ in NAV_PAGES])
def test_every_page_names_variants_one_way_titles_itself_as_the_navigation_and_shows_no_none(
        path, title, root, monkeypatch):
    at = page(path if path != NAV_PAGES[0][0] else "app.py", root, monkeypatch).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == [title]
    texts, empty = rendered(at)
    assert any("CE" in t for t in texts)  # the variants are named on every page (the picker at least)
    others = sorted({m.group(0) for t in texts for m in OTHER_SPELLING.finditer(t)})
    assert not others, f"{title}: other spellings of a variant: {others}"
    nones = [t[max(0, m.start() - 60):m.end() + 20] for t in texts for m in NONE.finditer(t)]
    assert not nones, f"{title}: a literal None: {nones}"
    assert not empty, f"{title}: table cells shown as 'None': {empty}"


def test_the_pattern_catches_every_other_spelling():
    for wrong in ("CE only", "CE + ITC", "CE + ITC + ITM", "ITC on · ITM off", "ITC off", "+ITC", "(+ITM)",
                  "ITC+ITM effects", "CE, +ITC, +ITM"):
        assert OTHER_SPELLING.search(wrong), wrong
    for right in ("CE", "CE+ITC", "CE+ITM", "CE+ITC+ITM", "CE+ITC vs CE", "CE+ITC on relation = X", "ITC cosine",
                  "ITM head"):
        assert not OTHER_SPELLING.search(right), right
