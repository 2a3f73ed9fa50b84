"""Markdown: kept as written (it reads fine as is), with its headings located.

Only the structure that matters for citations is parsed: ATX (``# Title``) and
setext (underlined) headings, skipping fenced code blocks and YAML front matter
so that a ``# comment`` in a shell snippet is not taken for a heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.core.documents.model import Document, Page
from app.core.documents.text import read_text, require_text

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A line that starts a block which cannot be a setext heading's text.
_NOT_PARAGRAPH = re.compile(r"^ {0,3}(?:[-*+>]|\d+[.)]|#|`{3}|~{3}|\||<)|^(?: {4}|\t)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|\*|`)(.+?)\1")
# Underscore emphasis only at word edges, so snake_case names survive.
_UNDERSCORE = re.compile(r"(?<!\w)(__|_)(.+?)\1(?!\w)")
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.IGNORECASE)


@dataclass(frozen=True)
class _Heading:
    offset: int
    level: int
    text: str


def _clean(text: str) -> str:
    """Heading text without inline markup, as a reader would see it."""
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _UNDERSCORE.sub(r"\2", text)
    return " ".join(text.split())


def _front_matter(lines: list[str]) -> tuple[int, str | None]:
    """Return (lines to skip, title) for a leading YAML front-matter block."""
    if not lines or lines[0].rstrip() != "---":
        return 0, None
    title: str | None = None
    for index in range(1, len(lines)):
        line = lines[index].rstrip()
        if line in {"---", "..."}:
            return index + 1, title
        match = _FRONT_TITLE.match(line)
        if match and title is None:
            title = match.group(1).strip("\"'") or None
    return 0, None  # never closed: an ordinary thematic break, not front matter


def find_headings(text: str) -> tuple[list[_Heading], str | None]:
    """Locate the headings of a Markdown text; also return the front-matter title."""
    lines = text.split("\n")
    starts: list[int] = []
    position = 0
    for line in lines:
        starts.append(position)
        position += len(line) + 1

    first, front_title = _front_matter(lines)
    headings: list[_Heading] = []
    fence: str | None = None
    previous_is_paragraph = False
    for index in range(first, len(lines)):
        line = lines[index]
        fence_match = _FENCE.match(line)
        if fence is not None:
            # A fence closes on the same character, at least as long.
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                if not line.strip().strip(fence[0]):
                    fence = None
            previous_is_paragraph = False
            continue
        if fence_match:
            fence = fence_match.group(1)
            previous_is_paragraph = False
            continue
        atx = _ATX.match(line)
        if atx:
            title = _clean(atx.group(2) or "")
            if title:
                headings.append(_Heading(starts[index], len(atx.group(1)), title))
            previous_is_paragraph = False
            continue
        setext = _SETEXT.match(line)
        if setext and previous_is_paragraph:
            title = _clean(lines[index - 1])
            level = 1 if setext.group(1)[0] == "=" else 2
            # Multi-line setext paragraphs are rare; the last line is enough.
            headings.append(_Heading(starts[index - 1], level, title))
            previous_is_paragraph = False
            continue
        previous_is_paragraph = bool(line.strip()) and not _NOT_PARAGRAPH.match(line)
    return headings, front_title


def load_markdown(path: Path) -> Document:
    """Load a Markdown file: one page, text as written, headings with offsets.

    The title is the front matter's ``title:`` if there is one, else the first
    level-1 heading.
    """
    text = read_text(path)
    require_text(path, text)
    headings, front_title = find_headings(text)
    first_h1 = next((h.text for h in headings if h.level == 1), None)
    page = Page(
        number=None,
        text=text,
        headings=tuple((h.offset, h.text) for h in headings),
    )
    return Document(path=path, kind="markdown", title=front_title or first_h1, pages=[page])
