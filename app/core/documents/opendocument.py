"""OpenDocument text (.odt), and the ODF text walking the .odp loader shares.

An OpenDocument file is a zip of XML: ``content.xml`` holds the body,
``meta.xml`` the title. Both are read through :mod:`archive` (size limits,
no entity expansion) and walked with lxml directly: paragraphs, headings
(``text:h``), lists, sections and tables come out as blocks of text in
document order, separated by blank lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.core.documents.archive import PROTECTED, SafeArchive, open_archive
from app.core.documents.blocks import TextBuilder
from app.core.documents.model import Document, Page
from app.errors import Cancelled, ParseError

KIND = "OpenDocument text"

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
}

# A hostile <text:s text:c="999999999"/> must not allocate a gigabyte of spaces.
_MAX_SPACES = 100


def q(name: str) -> str:
    """Clark notation for a prefixed ODF name: ``q("text:p")`` → ``{urn…}p``."""
    prefix, _, local = name.partition(":")
    return f"{{{NS[prefix]}}}{local}"


# Block-level elements that hold no reader-visible text (change tracking keeps
# deleted text here; a table of contents repeats the headings).
_SKIPPED_BLOCKS = frozenset(
    q(name) for name in (
        "text:tracked-changes", "text:table-of-content", "text:sequence-decls",
        "text:variable-decls", "text:user-field-decls", "office:forms",
        "office:annotation", "office:annotation-end", "table:table-header-columns",
        "table:table-columns", "table:table-column",
    )
)
_ROW_CONTAINERS = frozenset(
    q(name) for name in ("table:table-header-rows", "table:table-rows", "table:table-row-group")
)


def _is_element(node: Any) -> bool:
    # Unresolved entity references, comments and processing instructions have
    # a non-string tag; only their tail is text (entities are never expanded).
    return isinstance(node.tag, str)


def inline_text(paragraph: Any, extras: list[Any]) -> str:
    """Visible text of a ``text:p``/``text:h``.

    Footnote bodies and text boxes anchored in the paragraph are not run into
    its text: their elements are appended to ``extras``, to be read as blocks
    after it.
    """
    pieces: list[str] = [paragraph.text or ""] if _is_element(paragraph) else []
    for child in paragraph:
        if _is_element(child):
            tag = child.tag
            if tag == q("text:s"):
                try:
                    count = int(child.get(q("text:c"), "1"))
                except ValueError:
                    count = 1
                pieces.append(" " * max(1, min(count, _MAX_SPACES)))
            elif tag == q("text:tab"):
                pieces.append("\t")
            elif tag == q("text:line-break"):
                pieces.append("\n")
            elif tag == q("text:note"):
                body = child.find(q("text:note-body"))
                if body is not None:
                    extras.append(body)
            elif tag in (q("office:annotation"), q("office:annotation-end")):
                pass  # reviewers' comments are not the document's text
            elif tag.startswith(f"{{{NS['draw']}}}"):
                extras.append(child)  # a frame or shape anchored in the text
            else:
                pieces.append(inline_text(child, extras))
        pieces.append(child.tail or "")
    return "".join(pieces)


def blocks(container: Any) -> Iterator[tuple[str, bool]]:
    """Yield ``(text, is_heading)`` for the blocks inside ``container``, in order."""
    for child in container:
        if not _is_element(child) or child.tag in _SKIPPED_BLOCKS:
            continue
        tag = child.tag
        if tag in (q("text:p"), q("text:h")):
            extras: list[Any] = []
            yield inline_text(child, extras), tag == q("text:h")
            for extra in extras:
                yield from blocks(extra)
        elif tag == q("table:table"):
            yield table_lines(child), False
        else:
            # Lists, list items, sections, text boxes, frames: their content
            # is more blocks. Unknown elements are walked too, losing no text.
            yield from blocks(child)


def _rows(container: Any) -> Iterator[Any]:
    for child in container:
        if not _is_element(child):
            continue
        if child.tag == q("table:table-row"):
            yield child
        elif child.tag in _ROW_CONTAINERS:
            yield from _rows(child)


def table_lines(table: Any) -> str:
    """A ``table:table`` as lines, one per row, non-empty cells joined by " | "."""
    lines: list[str] = []
    for row in _rows(table):
        cells = []
        for cell in row:
            if not _is_element(cell) or cell.tag != q("table:table-cell"):
                continue  # covered (merged) cells repeat nothing
            text = " ".join(" ".join(t.split()) for t, _ in blocks(cell))
            if text.strip():
                cells.append(text.strip())
        if cells:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def require_unencrypted(archive: SafeArchive) -> None:
    """Raise ParseError(PROTECTED) when the package's content is password-encrypted.

    An encrypted OpenDocument file is still a zip, but its manifest marks
    content.xml as encrypted and the member holds ciphertext, which would
    otherwise read as "damaged XML".
    """
    name = "META-INF/manifest.xml"
    if not archive.has(name):
        return
    try:
        manifest = archive.xml(name)
    except ParseError:
        return  # a damaged manifest is no reason to refuse a readable body
    for entry in manifest.iter(q("manifest:file-entry")):
        if (entry.get(q("manifest:full-path")) == "content.xml"
                and entry.find(q("manifest:encryption-data")) is not None):
            raise ParseError(archive.path, PROTECTED)


def meta_title(archive: SafeArchive) -> str | None:
    """The title in ``meta.xml`` (dc:title), or ``None``."""
    if not archive.has("meta.xml"):
        return None
    try:
        meta = archive.xml("meta.xml")
    except ParseError:
        return None  # the title is a nicety; a damaged meta.xml must not cost the body
    node = meta.find(f".//{q('dc:title')}")
    if node is None:
        return None
    title = " ".join("".join(node.itertext()).split())
    return title or None


def content_body(archive: SafeArchive, part: str) -> Any:
    """The ``office:body/office:PART`` element of content.xml (e.g. ``"text"``)."""
    require_unencrypted(archive)
    root = archive.xml("content.xml")
    body = root.find(f"{q('office:body')}/{q('office:' + part)}")
    if body is None:
        raise ParseError(archive.path, f"not a valid {archive.kind} (its content.xml holds no {part})")
    return body


def load_odt(
    path: Path,
    *,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Document:
    """Load an OpenDocument text (.odt) as one page.

    Paragraphs, headings (``text:h``, recorded with their offsets), list
    items, sections and tables (rows as lines, cells joined by " | ") come
    out in document order as blocks a blank line apart. Footnotes follow the
    paragraph that cites them; comments, deleted tracked changes and the
    generated table of contents are left out. The title is meta.xml's
    dc:title, else the first heading.
    """
    if should_stop is not None and should_stop():
        raise Cancelled()
    with open_archive(path, kind=KIND) as archive:
        body = content_body(archive, "text")
        title = meta_title(archive)
    builder = TextBuilder()
    for text, heading in blocks(body):
        builder.add_block(text, heading=heading)
    if not builder.text:
        raise ParseError(path, "no text to index (the document is blank or holds only images)")
    if on_page is not None:
        on_page(1, 1)
    first_heading = builder.headings[0][1] if builder.headings else None
    page = Page(number=None, text=builder.text, headings=tuple(builder.headings))
    return Document(path=path, kind="odt", title=title or first_heading, pages=[page])
