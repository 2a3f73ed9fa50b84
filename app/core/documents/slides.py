"""Slide decks: PowerPoint (.pptx, via python-pptx) and OpenDocument (.odp).

Each slide is one page, numbered as in the deck, so a citation says "slide 3"
the way it says "page 3" of a PDF. A slide's text is its title (recorded as
the page's heading), then the text of its shapes in reading order (top to
bottom, then left to right), tables as rows of " | "-joined cells, then the
speaker notes after a line "Notes:". Hidden slides are indexed like the
others: they are still the author's words, and a search should find them.
Slides without any text are left out; the others keep their numbers.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from app.core.documents.archive import SafeArchive, open_archive, parse_xml
from app.core.documents.model import Document, Page
from app.core.documents.blocks import TextBuilder, tidy
from app.core.documents.opendocument import blocks, content_body, meta_title, q, table_lines
from app.errors import Cancelled, ParseError

OnPage = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
T = TypeVar("T")

PPTX_KIND = "PowerPoint file"
ODP_KIND = "OpenDocument presentation"

NO_TEXT = "no text to index (the slides hold only pictures)"
NOT_PPTX = "not a valid PowerPoint file (damaged, or another kind of file)"

# Shapes whose tops differ by less than this (in mm) read as one row, so two
# columns whose boxes are a hair apart still read left column first.
_ROW_TOLERANCE_MM = 7.5
_EMU_PER_MM = 36_000
# Titles PowerPoint and python-pptx write into untitled decks: no title at all.
_DEFAULT_TITLES = frozenset({"powerpoint presentation", "presentation"})


# --- shared ----------------------------------------------------------------

def reading_order(items: Sequence[tuple[float | None, float | None, T]]) -> list[T]:
    """Payloads of ``(top, left, payload)`` items in reading order.

    Items are grouped into rows (tops within ``_ROW_TOLERANCE_MM`` of the
    row's first), rows read top to bottom, each row left to right. Items
    without a position keep their stacking order, after the placed ones.
    """
    placed = [(top, left or 0.0, i, payload)
              for i, (top, left, payload) in enumerate(items) if top is not None]
    unplaced = [payload for top, _, payload in items if top is None]
    placed.sort(key=lambda item: (item[0], item[1], item[2]))
    rows: list[list[tuple[float, float, int, T]]] = []
    for item in placed:
        if rows and item[0] - rows[-1][0][0] <= _ROW_TOLERANCE_MM:
            rows[-1].append(item)
        else:
            rows.append([item])
    ordered = [payload for row in rows for _, _, _, payload in sorted(row, key=lambda i: (i[1], i[2]))]
    return ordered + unplaced


def _slide_page(number: int, title: str | None, body: list[str], notes: str) -> Page | None:
    """One slide as a page (``None`` when it has no text at all)."""
    builder = TextBuilder()
    if title:
        builder.add_block(title, heading=True)
    for block in body:
        builder.add_block(block)
    notes = tidy(notes)
    if notes:
        builder.add_block("Notes:\n" + notes)
    if not builder.text:
        return None
    return Page(number=number, text=builder.text, headings=tuple(builder.headings))


def _progress(done: int, total: int, on_page: OnPage | None, should_stop: ShouldStop | None) -> None:
    if on_page is not None:
        on_page(done, total)
    if should_stop is not None and should_stop():
        raise Cancelled()


def _single_line(text: str | None) -> str | None:
    clean = " ".join((text or "").split())
    return clean or None


# --- PowerPoint ------------------------------------------------------------

def _is_xml_part(name: str) -> bool:
    return name.lower().endswith((".xml", ".rels"))


def _verified_package(archive: SafeArchive) -> bytes:
    """The deck's XML parts, read within the archive's limits, as a new zip.

    python-pptx inflates every member of the zip it is given into memory, with
    no size limit, and parses its XML itself. So it is never given the file:
    it gets a stored (uncompressed) zip of the XML parts as SafeArchive read
    and parsed them (sizes counted while inflating, damaged XML refused with
    a clear reason, entities never expanded), with the binary parts (pictures, media,
    embedded workbooks, which text extraction never looks at) left empty.
    A zip bomb is thus refused before python-pptx runs, media are never
    inflated, and python-pptx parses exactly the bytes that were checked.
    """
    out = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as package:
        for name in archive.names():
            if name.endswith("/") or name in seen:
                continue
            seen.add(name)
            blob = b""
            if _is_xml_part(name):
                blob = archive.read(name)
                parse_xml(blob, archive.path, f"{archive.kind} ({name})")
            package.writestr(name, blob)
    return out.getvalue()


def _open_presentation(path: Path) -> Any:
    from pptx import Presentation

    with open_archive(path, kind=PPTX_KIND) as archive:
        package = _verified_package(archive)
    try:
        return Presentation(io.BytesIO(package))
    except ParseError:
        raise
    except Exception as exc:  # KeyError, ValueError (not a deck), lxml errors
        raise ParseError(path, NOT_PPTX) from exc


def _table_text(table: Any) -> str:
    lines = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            if cell.is_spanned:
                continue  # merged away: its text is in the merge origin
            text = " ".join(cell.text.split())
            if text:
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _chart_title(shape: Any) -> str:
    try:
        chart = shape.chart
        if chart.has_title and chart.chart_title.has_text_frame:
            return str(chart.chart_title.text_frame.text)
    except Exception:  # a chart part python-pptx cannot read: its title is a nicety
        return ""
    return ""


def _pptx_position(shape: Any) -> tuple[float | None, float | None]:
    try:
        top, left = shape.top, shape.left
    except Exception:  # a placeholder whose layout lost its position
        return None, None
    return (None if top is None else top / _EMU_PER_MM,
            None if left is None else left / _EMU_PER_MM)


def _skipped_placeholder(shape: Any) -> bool:
    """Footers, slide numbers and dates repeat on every slide: noise in an index."""
    from pptx.enum.shapes import PP_PLACEHOLDER

    if not shape.is_placeholder:
        return False
    try:
        kind = shape.placeholder_format.type
    except Exception:
        return False
    return kind in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.DATE)


def _shape_blocks(shapes: Any, skip_id: int | None) -> list[str]:
    """Text blocks of ``shapes`` in reading order; groups are read as one unit."""
    # isinstance, not shape.shape_type: python-pptx raises on shapes whose
    # geometry it does not recognise, and one odd shape must not cost the deck.
    from pptx.shapes.group import GroupShape

    items: list[tuple[float | None, float | None, list[str]]] = []
    for shape in shapes:
        if skip_id is not None and shape.shape_id == skip_id:
            continue
        if _skipped_placeholder(shape):
            continue
        found: list[str] = []
        if isinstance(shape, GroupShape):
            # Children's positions are in the group's own frame: order them
            # among themselves, and place the group as a whole on the slide.
            found = _shape_blocks(shape.shapes, None)
        elif getattr(shape, "has_table", False) and shape.has_table:
            found = [_table_text(shape.table)]
        elif getattr(shape, "has_chart", False) and shape.has_chart:
            found = [_chart_title(shape)]
        elif shape.has_text_frame:
            found = [shape.text_frame.text]
        found = [block for block in found if block.strip()]
        if found:
            top, left = _pptx_position(shape)
            items.append((top, left, found))
    return [block for group in reading_order(items) for block in group]


def _pptx_notes(slide: Any) -> str:
    if not slide.has_notes_slide:
        return ""  # asking for notes_slide would create an empty one
    frame = slide.notes_slide.notes_text_frame
    return "" if frame is None else str(frame.text)


def load_pptx(
    path: Path,
    *,
    on_page: OnPage | None = None,
    should_stop: ShouldStop | None = None,
) -> Document:
    """Load a PowerPoint deck (.pptx): one page per slide, numbered from 1.

    See the module docstring for what a slide's page holds. Footer, date and
    slide-number placeholders are left out. The title is the deck's core
    properties title, else the first slide title.
    """
    prs = _open_presentation(path)
    slides = list(prs.slides)
    pages: list[Page] = []
    first_title: str | None = None
    for number, slide in enumerate(slides, start=1):
        title_shape = slide.shapes.title
        title = _single_line(title_shape.text_frame.text) if title_shape is not None else None
        first_title = first_title or title
        body = _shape_blocks(slide.shapes, title_shape.shape_id if title_shape is not None else None)
        page = _slide_page(number, title, body, _pptx_notes(slide))
        if page is not None:
            pages.append(page)
        _progress(number, len(slides), on_page, should_stop)
    if not pages:
        raise ParseError(path, NO_TEXT)
    core_title: str | None = None
    try:
        core_title = _single_line(prs.core_properties.title)
    except Exception:  # a damaged core.xml must not cost us the slides
        core_title = None
    if core_title and core_title.lower() in _DEFAULT_TITLES:
        core_title = None
    return Document(path=path, kind="pptx", title=core_title or first_title, pages=pages)


# --- OpenDocument presentation ---------------------------------------------

_LENGTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([a-z]*)\s*$")
_MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "in": 25.4, "inch": 25.4, "pt": 25.4 / 72,
                "pc": 25.4 / 6, "px": 25.4 / 96, "": 25.4 / 96}
# Placeholders repeated on every slide (they hold fields, not the author's words).
_ODP_SKIPPED_CLASSES = frozenset({"header", "footer", "date-time", "page-number"})


def _length_mm(value: str | None) -> float | None:
    if not value:
        return None
    match = _LENGTH.match(value)
    if match is None or match.group(2) not in _MM_PER_UNIT:
        return None
    return float(match.group(1)) * _MM_PER_UNIT[match.group(2)]


def _odp_position(shape: Any) -> tuple[float | None, float | None]:
    top = _length_mm(shape.get(q("svg:y")) or shape.get(q("svg:y1")))
    left = _length_mm(shape.get(q("svg:x")) or shape.get(q("svg:x1")))
    return top, left


def _odp_shape_text(shape: Any) -> list[str]:
    """Blocks of one shape: its text boxes, text paragraphs and tables."""
    found: list[str] = []
    for child in shape:
        if not isinstance(child.tag, str):
            continue
        if child.tag == q("table:table"):
            found.append(table_lines(child))
        elif child.tag == q("draw:text-box"):
            found.extend(text for text, _ in blocks(child))
        elif child.tag in (q("text:p"), q("text:h"), q("text:list")):
            found.extend(text for text, _ in blocks([child]))
    return [block for block in found if block.strip()]


def _odp_shapes(container: Any) -> tuple[str | None, list[str]]:
    """``(title, body blocks)`` of a draw:page or draw:g, body in reading order."""
    title: str | None = None
    items: list[tuple[float | None, float | None, list[str]]] = []
    for shape in container:
        if not isinstance(shape.tag, str) or shape.tag == q("presentation:notes"):
            continue
        kind = shape.get(q("presentation:class"))
        if kind in _ODP_SKIPPED_CLASSES:
            continue
        if shape.tag == q("draw:g"):
            inner_title, found = _odp_shapes(shape)
            found = ([inner_title] if inner_title else []) + found
        else:
            found = _odp_shape_text(shape)
        if kind == "title" and title is None and found:
            title = _single_line(" ".join(found))
            continue
        if found:
            top, left = _odp_position(shape)
            items.append((top, left, found))
    return title, [block for group in reading_order(items) for block in group]


def _odp_notes(page: Any) -> str:
    notes = page.find(q("presentation:notes"))
    if notes is None:
        return ""
    texts: list[str] = []
    for frame in notes.iter(q("draw:frame")):
        if frame.get(q("presentation:class")) in (None, "notes"):
            texts.extend(_odp_shape_text(frame))
    return "\n".join(texts)


def load_odp(
    path: Path,
    *,
    on_page: OnPage | None = None,
    should_stop: ShouldStop | None = None,
) -> Document:
    """Load an OpenDocument presentation (.odp): one page per slide, numbered from 1.

    See the module docstring for what a slide's page holds. Header, footer,
    date and page-number frames are left out. The title is meta.xml's
    dc:title, else the first slide title.
    """
    if should_stop is not None and should_stop():
        raise Cancelled()
    with open_archive(path, kind=ODP_KIND) as archive:
        body = content_body(archive, "presentation")
        doc_title = meta_title(archive)
    slides = body.findall(q("draw:page"))
    pages: list[Page] = []
    first_title: str | None = None
    for number, slide in enumerate(slides, start=1):
        title, shapes = _odp_shapes(slide)
        first_title = first_title or title
        page = _slide_page(number, title, shapes, _odp_notes(slide))
        if page is not None:
            pages.append(page)
        _progress(number, len(slides), on_page, should_stop)
    if not pages:
        raise ParseError(path, NO_TEXT)
    return Document(path=path, kind="odp", title=doc_title or first_title, pages=pages)
