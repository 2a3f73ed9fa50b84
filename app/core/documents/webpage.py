"""HTML pages: the visible text, laid out in lines as a browser would.

Uses the standard library's tolerant ``html.parser`` only. Scripts, styles and
other invisible content are dropped; block elements become line breaks;
headings are recorded with their offsets; ``<pre>`` keeps its layout.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from app.core.documents.model import Document, Page
from app.core.documents.text import bom_encoding, decode_bytes, require_text

# Content never shown to a reader.
_INVISIBLE = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object", "canvas"}
)
# Elements whose boundaries end a paragraph (a blank line in the output).
_PARAGRAPH = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "details",
        "dialog", "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "main",
        "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "ul",
    }
)
# Elements whose boundaries end a line.
_LINE = frozenset({"br", "dd", "dt", "li", "option", "tr", "tbody", "thead", "tfoot"})
_CELLS = frozenset({"td", "th"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)
# What may appear inside <head>; anything else implies the body has begun.
_HEAD_CONTENT = frozenset(
    {"head", "title", "meta", "link", "style", "script", "base", "noscript", "template"}
)
_WHITESPACE = re.compile(r"\s+")

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Browsers only look this far for a charset declaration.
_PRESCAN_BYTES = 4096


def declared_charset(data: bytes) -> str | None:
    """The charset an HTML document declares (BOM, meta tag or XML prolog)."""
    found = bom_encoding(data)
    if found is not None:
        return found[0]
    head = data[:_PRESCAN_BYTES]
    match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    return match.group(1).decode("ascii") if match else None


class _VisibleText(HTMLParser):
    """Collects visible text with coalesced line breaks and heading offsets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.pending_break = 0  # 0 none, 1 newline, 2 blank line
        self.pending_space = False
        self.pending_cell = False  # a table cell began; separate it from the last
        self.skip: list[str] = []  # open invisible elements
        self.pre_depth = 0
        self.pre_fresh = False  # just after <pre>: its first newline is markup
        self.title_parts: list[str] | None = None
        self.title: str | None = None
        self.heading_start: int | None = None
        self.heading_parts: list[str] | None = None
        self.headings: list[tuple[int, str]] = []
        self.cells_in_row: list[int] = [0]

    # -- output -----------------------------------------------------------
    def _break(self, strength: int) -> None:
        self.pending_break = max(self.pending_break, strength)
        self.pending_space = False
        self.pending_cell = False

    def _emit(self, text: str) -> None:
        prefix = ""
        if self.parts:
            if self.pending_break:
                prefix = "\n" * self.pending_break
            elif self.pending_cell:
                # Same cell separator as Word tables, so rows read alike everywhere.
                prefix = " | "
            elif self.pending_space:
                prefix = " "
        if self.heading_parts is not None and self.heading_start is None:
            self.heading_start = self.length + len(prefix)
        self.pending_break = 0
        self.pending_space = False
        self.pending_cell = False
        self.parts.append(prefix + text)
        self.length += len(prefix) + len(text)

    # -- parser callbacks -------------------------------------------------
    def _leave_head_if_over(self, tag: str | None) -> None:
        # An unclosed <head> ends where body content starts, as in browsers.
        if self.skip == ["head"] and (tag is None or tag not in _HEAD_CONTENT):
            self.skip.pop()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._leave_head_if_over(tag)
        if self.skip:
            if tag in _INVISIBLE and tag not in _VOID:
                self.skip.append(tag)
            elif tag == "title" and self.title is None and self.skip == ["head"]:
                self.title_parts = []
            return
        if tag == "title" and self.title is None:
            self.title_parts = []
            return
        if tag in _INVISIBLE:
            self.skip.append(tag)
            return
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)
        if tag == "table":
            self.cells_in_row.append(0)
        elif tag == "tr":
            self.cells_in_row[-1] = 0
        elif tag in _CELLS:
            # Empty cells add no separator: "a | c" reads better than "a |  | c".
            if self.cells_in_row[-1] and not self.pending_break:
                self.pending_cell = True
            self.cells_in_row[-1] += 1
        if tag == "pre":
            self.pre_depth += 1
            self.pre_fresh = True
        if tag in _HEADINGS:
            self.heading_parts = []
            self.heading_start = None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and friends: a start tag with no content.
        if not self.skip and tag in _LINE | _PARAGRAPH:
            self._break(2 if tag in _PARAGRAPH else 1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.title_parts is not None:
            self.title = " ".join("".join(self.title_parts).split()) or None
            self.title_parts = None
            return
        if self.skip:
            if tag in self.skip:
                # Close it and anything left unclosed inside it.
                while self.skip and self.skip.pop() != tag:
                    pass
            return
        if tag in _HEADINGS and self.heading_parts is not None:
            text = " ".join("".join(self.heading_parts).split())
            if text and self.heading_start is not None:
                self.headings.append((self.heading_start, text))
            self.heading_parts = None
            self.heading_start = None
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if tag == "table" and len(self.cells_in_row) > 1:
            self.cells_in_row.pop()
        if tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self.title_parts is not None:
            self.title_parts.append(data)
            return
        if self.skip == ["head"] and data.strip():
            self._leave_head_if_over(None)
        if self.skip:
            return
        if self.pre_depth:
            if self.pre_fresh and data.startswith("\n"):
                data = data[1:]
            self.pre_fresh = False
            if data:
                self._emit(data)
                if self.heading_parts is not None:
                    self.heading_parts.append(data)
            return
        collapsed = _WHITESPACE.sub(" ", data)
        if not collapsed.strip():
            if collapsed and self.parts:
                self.pending_space = True
            return
        if collapsed[0] == " ":
            self.pending_space = True
        self._emit(collapsed.strip())
        if collapsed[-1] == " ":
            self.pending_space = True
        if self.heading_parts is not None:
            self.heading_parts.append(collapsed)


def html_to_text(markup: str) -> tuple[str, str | None, list[tuple[int, str]]]:
    """Return ``(visible text, <title>, headings)`` of an HTML string."""
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    body = "".join(parser.parts).strip("\n")
    return body, parser.title, parser.headings


def load_html(path: Path) -> Document:
    """Load an HTML page as one page of visible text.

    The ``<title>`` becomes the document title and the text's first line;
    headings h1-h6 are recorded with their offsets.
    """
    data = path.read_bytes()
    markup = decode_bytes(path, data, declared_charset(data))
    body, title, headings = html_to_text(markup)
    require_text(path, body)
    if title and body:
        # The title leads the text, so shift heading offsets past it.
        prefix = title + "\n\n"
        body = prefix + body
        headings = [(offset + len(prefix), text) for offset, text in headings]
    return Document(
        path=path,
        kind="html",
        title=title,
        pages=[Page(number=None, text=body, headings=tuple(headings))],
    )
