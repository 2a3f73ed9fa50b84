"""Word (.docx) documents via python-docx.

The body is walked in XML order so paragraphs and tables come out interleaved
as the reader sees them. Text is read from the XML runs directly rather than
through ``Paragraph.text``, whose coverage (hyperlinks, fields, tracked
insertions) differs between python-docx versions.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.core.documents.archive import open_archive
from app.core.documents.blocks import TextBuilder
from app.core.documents.model import Document, Page
from app.errors import ParseError

_HEADING_STYLE = re.compile(r"^(?:heading\s*\d|title)$", re.IGNORECASE)
# Custom heading styles usually inherit from a built-in one; look a few up.
_STYLE_DEPTH = 4


def _qn(tag: str) -> str:
    from docx.oxml.ns import qn

    return str(qn(tag))


class _Reader:
    """Turns the XML of a python-docx document into text blocks."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.t = _qn("w:t")
        self.tab = _qn("w:tab")
        self.br = _qn("w:br")
        self.cr = _qn("w:cr")
        self.nb_hyphen = _qn("w:noBreakHyphen")
        self.p = _qn("w:p")
        self.tbl = _qn("w:tbl")
        self.tr = _qn("w:tr")
        self.tc = _qn("w:tc")
        self.sdt = _qn("w:sdt")
        self.sdt_content = _qn("w:sdtContent")

    def paragraph_text(self, p: Any) -> str:
        """Visible text of a ``w:p`` element (deleted revisions excluded)."""
        pieces: list[str] = []
        for node in p.iter(self.t, self.tab, self.br, self.cr, self.nb_hyphen):
            if node.tag == self.t:
                pieces.append(node.text or "")
            elif node.tag == self.tab:
                pieces.append("\t")
            elif node.tag == self.nb_hyphen:
                pieces.append("-")
            else:
                pieces.append("\n")
        return "".join(pieces)

    def is_heading(self, p: Any) -> bool:
        """True when the paragraph's style (or one it is based on) is a heading."""
        from docx.text.paragraph import Paragraph

        try:
            style = Paragraph(p, self.document).style
        except Exception:  # a dangling style reference: treat as body text
            return False
        for _ in range(_STYLE_DEPTH):
            if style is None:
                return False
            if _HEADING_STYLE.match(style.name or ""):
                return True
            style = style.base_style
        return False

    def style_name(self, p: Any) -> str:
        from docx.text.paragraph import Paragraph

        try:
            return Paragraph(p, self.document).style.name or ""
        except Exception:
            return ""

    def table_lines(self, tbl: Any) -> str:
        """A table as lines, one per row, cells separated by ' | '."""
        lines: list[str] = []
        for tr in self.rows(tbl):
            cells = []
            for tc in tr.findall(self.tc):
                text = " ".join(self.paragraph_text(p) for p in tc.iter(self.p))
                cells.append(" ".join(text.split()))
            if any(cells):
                lines.append(" | ".join(cells))
        return "\n".join(lines)

    def rows(self, container: Any) -> Iterator[Any]:
        """This table's own rows (nested tables are flattened into their cell)."""
        for child in container.iterchildren():
            if child.tag == self.tr:
                yield child
            elif child.tag == self.sdt:
                content = child.find(self.sdt_content)
                if content is not None:
                    yield from self.rows(content)

    def blocks(self, container: Any) -> Iterator[tuple[Any, str]]:
        """Yield ``(element, kind)`` for body paragraphs and tables, in order."""
        for child in container.iterchildren():
            if child.tag == self.p:
                yield child, "p"
            elif child.tag == self.tbl:
                yield child, "tbl"
            elif child.tag == self.sdt:
                # Content controls wrap ordinary body content.
                content = child.find(self.sdt_content)
                if content is not None:
                    yield from self.blocks(content)


def load_word(path: Path) -> Document:
    """Load a .docx file as one page: paragraphs, headings and tables in order.

    Headings (styles "Title" and "Heading N", or styles based on them) are kept
    as their own line and recorded with their offsets. The title is the core
    properties' title, else the first Title/Heading paragraph.
    """
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    # python-docx inflates every part it is given: the parts' claims are
    # judged first, so a zip bomb or a password-protected file fails saying so.
    with open_archive(path, kind="Word document") as archive:
        archive.check_claims()
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ParseError(path, "not a valid Word document (damaged, or not a .docx file)") from exc
    except OSError:
        raise
    except Exception as exc:  # lxml errors on broken XML inside the package
        raise ParseError(path, "not a valid Word document (damaged, or not a .docx file)") from exc

    reader = _Reader(document)
    builder = TextBuilder(str.strip)
    first_title: str | None = None
    first_heading: str | None = None
    for element, kind in reader.blocks(document.element.body):
        if kind == "tbl":
            builder.add_block(reader.table_lines(element))
            continue
        text = reader.paragraph_text(element)
        heading = bool(text.strip()) and reader.is_heading(element)
        if heading:
            clean = " ".join(text.split())
            if first_title is None and reader.style_name(element).lower() == "title":
                first_title = clean
            if first_heading is None:
                first_heading = clean
        builder.add_block(text, heading=heading)

    text = builder.text
    if not text.strip():
        raise ParseError(path, "no text to index (the document is blank or holds only images)")

    core_title: str | None = None
    try:
        core_title = (document.core_properties.title or "").strip() or None
    except Exception:  # broken core.xml must not cost us the body text
        core_title = None
    page = Page(number=None, text=text, headings=tuple(builder.headings))
    return Document(
        path=path,
        kind="docx",
        title=core_title or first_title or first_heading,
        pages=[page],
    )
