"""README.md and docs/ are read on the repository's web view: every relative link and anchor there
must lead somewhere, and the README stays a front door."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [a or b for a, b in LINK.findall(text)]


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` that lead to no file, or to no heading of the file they name."""
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page):
    assert not broken_links(page), f"{page.relative_to(REPO)}: " + "; ".join(broken_links(page))


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n[ok](other.md#a-section) [gone](missing.md) [no anchor](other.md#nowhere) "
                    "[here](#page) [not here](#elsewhere) ![img](pic.png) [web](https://example.org/x)\n"
                    "```\n[in code](ignored.md)\n```\n")
    assert broken_links(page) == ["missing.md: no such file", "other.md#nowhere: no heading #nowhere in other.md",
                                  "#elsewhere: no heading #elsewhere in page.md", "pic.png: no such file"]


def test_the_readme_is_a_front_door():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "make run" in text and "make test" in text
    for page in sorted((REPO / "docs").glob("*.md")):
        if page.name != "README.md":
            assert f"docs/{page.name}" in text or f"({page.name})" in (REPO / "docs" / "README.md").read_text(), \
                f"docs/{page.name} is linked from neither README.md nor docs/README.md"


def test_slug_follows_githubs_rule():
    assert slug("Runs from elsewhere") == "runs-from-elsewhere"
    assert slug("The built-in benchmark: SynthPosts (what it is and is not)") == \
        "the-built-in-benchmark-synthposts-what-it-is-and-is-not"
    assert slug("`mmaux claims`: the paper's claims") == "mmaux-claims-the-papers-claims"
