"""Markdown: kept as written (it reads fine as is), with its headings located.

Only the structure that matters for citations is taken from the text: its
headings (ATX ``# Title`` and setext, underlined), found by a CommonMark
parser (markdown-it-py), so a ``# comment`` in a fenced or indented code
block is never taken for a heading. YAML front matter is set aside first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from app.core.documents.model import Document, Page
from app.core.documents.text import read_text, require_text

_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.IGNORECASE)

# The CommonMark grammar as written: raw HTML blocks are recognised (so a
# heading-like line inside one is not a heading); nothing is rendered. Only
# the block structure is parsed for the whole text (inline parsing of every
# paragraph would cost most of the time); a heading's own text is parsed
# inline when it is found.
_PARSER = MarkdownIt("commonmark").disable("inline")
_INLINE = MarkdownIt("commonmark")


@dataclass(frozen=True)
class _Heading:
    offset: int
    level: int
    text: str


def _plain(inline: Token) -> str:
    """A heading's text without inline markup, as a reader would see it."""
    parts: list[str] = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(_plain(child))  # its alt text
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


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
    """Locate the headings of a Markdown text; also return the front-matter title.

    A heading's offset is the character position of the line it starts on
    (for a setext heading, its last line of text, above the underline).
    """
    lines = text.split("\n")
    starts: list[int] = []
    position = 0
    for line in lines:
        starts.append(position)
        position += len(line) + 1

    first, front_title = _front_matter(lines)
    tokens = _PARSER.parse("\n".join(lines[first:]))
    headings: list[_Heading] = []
    for index, token in enumerate(tokens):
        # Top-level headings only: a "#" line in a list or quote is part of it.
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        (inline,) = _INLINE.parseInline(tokens[index + 1].content)
        title = _plain(inline)
        if not title:
            continue
        line = first + token.map[0]
        if token.markup in ("=", "-"):
            # Setext: the text's last line, the one the underline sits under.
            line = first + token.map[1] - 2
        headings.append(_Heading(starts[line], int(token.tag[1]), title))
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
