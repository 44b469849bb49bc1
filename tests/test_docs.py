"""The documentation holds together: the README is a front page of at most 250 lines, and
every relative link (markdown links and images) of README.md and docs/*.md names a file
that exists, resolved from the file that holds it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250

# [text](target) and ![alt](target), the target up to the first space or ")"; an optional
# "title" after the target is left out.  Reference definitions "[id]: target" too.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, ...


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(text: str) -> list[str]:
    """The relative link targets of a markdown text, outside code, without #anchors."""
    text = CODE_SPAN.sub("", FENCE.sub("", text))
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    links = []
    for target in targets:
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path:
            links.append(path)
    return links


def broken_links(path: Path) -> list[str]:
    return [
        link
        for link in relative_links(path.read_text(encoding="utf-8"))
        if not (path.parent / link).exists()
    ]


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == [], f"{path.relative_to(ROOT)}: links to missing files"


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_docs_exist():
    assert len(doc_files()) > 1


def test_the_link_check_finds_a_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "figure.png").write_bytes(b"")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "![ok](../figure.png) [ok](../figure.png#top) [web](https://example.org/x.md)\n"
        "[mail](mailto:a@b.c) [anchor](#section) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n"
        "![broken](figure.png) [broken](missing.md#part)\n"
        "[ref]: ../missing-too.md\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["figure.png", "missing.md", "../missing-too.md"]
