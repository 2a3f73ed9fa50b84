"""The viewer's PDF pages: a cited page shown with QtPdf, the passage and its quote painted over it, zoom.

The passage is found in the page's own text as PDFium reads it (the indexer's
extractor reads it a little differently, so the citation's character span is
only a hint there), and every line it covers is painted, with the supporting
quote in a stronger colour on top. A scanned page has no text layer to
search: its passage is marked from the boxes OCR recorded for each line at
ingest (asked of the catalog through ``page_boxes``), by the citation's span.
:class:`MarkedPdfView` paints them;
:class:`PdfPages` is a mixin of :class:`app.ui.viewer.DocumentViewer`, which
owns the widgets (``pdf_document``, ``pdf_view``, ``header``, the zoom
buttons) and the states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QPointF, QRect, QRectF, QSizeF
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPaintEvent
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView

from app.core.documents.model import LineBox
from app.core.passages import locate_passage, pdf_search_candidates

#: Where OCR read each line of a file's page: ``(path, 1-based page)`` → its
#: line boxes (empty for a page with a text layer, or a file not indexed).
PageBoxes = Callable[[str, int], Sequence[LineBox]]

NOT_FOUND_NOTE = "passage not found in the current file (it may have changed since it was indexed)"

# The cited passage: every line it covers, in a light wash; the supporting
# quote on top of it in a stronger colour. Painted with a multiply blend, so
# the print under them stays black and readable.
PASSAGE_COLOR = QColor("#fff0a0")
QUOTE_COLOR = QColor("#ffb020")

#: How much one zoom step enlarges (or, inverted, shrinks) a page.
ZOOM_STEP = 1.25
_MIN_ZOOM = 0.1
_MAX_ZOOM = 8.0
# How far above the passage the view starts, as a share of its height, so
# the passage reads in context rather than glued to the top edge.
_CONTEXT_ABOVE = 0.2
# PDFium's line boxes hug the glyphs; a little air makes each line a band.
_LINE_PAD_POINTS = 1.5
_PDF_ERRORS: dict[QPdfDocument.Error, str] = {
    QPdfDocument.Error.FileNotFound: "the file was not found",
    QPdfDocument.Error.InvalidFileFormat: "it is not a valid PDF (damaged or truncated)",
    QPdfDocument.Error.IncorrectPassword: "it is protected by a password",
    QPdfDocument.Error.UnsupportedSecurityScheme: "it uses an unsupported encryption scheme",
    QPdfDocument.Error.DataNotYetAvailable: "its data is not available yet",
    QPdfDocument.Error.Unknown: "an unknown error occurred",
}


@dataclass(frozen=True)
class PdfMark:
    """A highlighted stretch of one page: the passage or the quote.

    ``rects`` are the boxes of the lines it covers, in page points (origin at
    the page's top left), one per line as PDFium lays the text out.
    """

    kind: str  # "passage" or "quote"
    page: int  # 0-based
    text: str
    color: QColor
    rects: list[QRectF] = field(default_factory=list)


class MarkedPdfView(QPdfView):
    """A QPdfView that paints :class:`PdfMark` boxes over its pages."""

    def __init__(self, parent=None) -> None:  # noqa: ANN001 - a QWidget or None
        super().__init__(parent)
        self._marks: list[PdfMark] = []

    def set_marks(self, marks: list[PdfMark]) -> None:
        """Paint these marks (replacing any before)."""
        self._marks = list(marks)
        self.viewport().update()

    def marks(self) -> list[PdfMark]:
        """The marks painted, passage first."""
        return list(self._marks)

    def page_geometry(self, index: int) -> QRect | None:
        """Where page ``index`` lies in the scrolled document, in pixels.

        QPdfView keeps its layout private; this repeats its sum (pages one
        under another, each sized by the zoom mode, centred, with the
        document margins and the page spacing) for the multi-page mode.
        """
        document = self.document()
        if document is None or not 0 <= index < document.pageCount():
            return None
        margins = self.documentMargins()
        screen = QGuiApplication.primaryScreen()
        resolution = (screen.logicalDotsPerInch() if screen else 72.0) / 72.0
        available = self.viewport().width() - margins.left() - margins.right()
        sizes = [self._page_size(document, p, resolution, available) for p in range(index + 1)]
        widest = max(w for w, _ in sizes)
        total_width = widest + margins.left() + margins.right()
        y = margins.top() + sum(h + self.pageSpacing() for _, h in sizes[:-1])
        width, height = sizes[-1]
        x = (max(total_width, self.viewport().width()) - width) // 2
        return QRect(x, y, width, height)

    def _page_size(self, document: QPdfDocument, page: int, resolution: float, available: int) -> tuple[int, int]:
        points = document.pagePointSize(page)
        if self.zoomMode() == QPdfView.ZoomMode.Custom:
            factor = resolution * self.zoomFactor()
            return round(points.width() * factor), round(points.height() * factor)
        width, height = round(points.width() * resolution), round(points.height() * resolution)
        if width <= 0:
            return 0, 0
        factor = available / width
        return round(width * factor), round(height * factor)

    def mark_to_view(self, page: int, rect: QRectF, geometry: QRect | None = None) -> QRectF | None:
        """A box in page points as a rectangle of the viewport, in pixels
        (``geometry``: the page's, when the caller has it already)."""
        geometry = geometry or self.page_geometry(page)
        document = self.document()
        if geometry is None or document is None:
            return None
        points = document.pagePointSize(page)
        if points.width() <= 0:
            return None
        scale = geometry.width() / points.width()
        left = geometry.x() - self.horizontalScrollBar().value()
        top = geometry.y() - self.verticalScrollBar().value()
        return QRectF(left + rect.x() * scale, top + rect.y() * scale, rect.width() * scale, rect.height() * scale)

    def scroll_to_mark(self, page: int) -> None:
        """Scroll so the first mark on ``page`` shows with some context above; the page top without one."""
        geometry = self.page_geometry(page)
        if geometry is None:
            return
        target = geometry.y()
        rects = [r for m in self._marks if m.page == page for r in m.rects]
        document = self.document()
        if rects and document is not None and document.pagePointSize(page).width() > 0:
            scale = geometry.width() / document.pagePointSize(page).width()
            top = min(r.top() for r in rects) * scale
            target += max(0, round(top - self.viewport().height() * _CONTEXT_ABOVE))
        self.verticalScrollBar().setValue(target)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt naming
        super().paintEvent(event)
        if not self._marks:
            return
        painter = QPainter(self.viewport())
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
        pages = {m.page: self.page_geometry(m.page) for m in self._marks}
        for mark in self._marks:  # the passage first, the quote over it
            for rect in mark.rects:
                shown = self.mark_to_view(mark.page, rect, pages[mark.page])
                if shown is not None and shown.intersects(QRectF(event.rect())):
                    painter.fillRect(shown, mark.color)
        painter.end()


class PdfPages:
    """Showing a PDF at a cited page, for :class:`app.ui.viewer.DocumentViewer`."""

    def fit_width(self) -> None:
        """Fit the PDF's pages to the view's width (the default)."""
        self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.fit_width_button.setChecked(True)

    def _show_pdf(self, file: Path, page: int | None, passage: str, label: str | None, quote: str,
                  span: tuple[int, int] | None = None, quote_span: tuple[int, int] | None = None) -> None:
        self.pdf_document.close()
        error = self.pdf_document.load(str(file))
        if error != QPdfDocument.Error.None_ or self.pdf_document.status() != QPdfDocument.Status.Ready:
            reason = _PDF_ERRORS.get(error, "it could not be loaded")
            self._show_error(file, f"Docent cannot display {file.name}: {reason}.")
            return
        count = self.pdf_document.pageCount()
        if count <= 0:
            self._show_error(file, f"{file.name} has no pages to show.")
            return
        wanted = page if page is not None else 1
        if not 1 <= wanted <= count:
            self._set_note(f"page {wanted} is beyond the end of this file (it has {count} pages now)")
            wanted = 1
        self._page = wanted
        index = wanted - 1

        printed = label or self.pdf_document.pageLabel(index)
        parts = [self._title(file), f"page {wanted} of {count}"]
        if printed and printed != str(wanted):
            parts.append(f"printed page {rich_escape(printed)}")
        self.header.setText(" · ".join(parts))
        self.header.setToolTip(str(file))

        marks = self._pdf_marks(index, passage, quote) or self._ocr_marks(file, index, span, passage, quote,
                                                                          quote_span)
        self._found = bool(marks)
        self._highlighted = " ".join(marks[0].text.split()) if marks else ""
        if not marks and passage.strip() and not self.note_text():
            self._set_note(NOT_FOUND_NOTE)
        self.pdf_view.set_marks(marks)

        self.fit_width()
        self.stack.setCurrentIndex(self._PDF)
        self._set_zoom_visible(True)
        self.pdf_view.pageNavigator().jump(index, QPointF(0, 0), 0)
        self.pdf_view.scroll_to_mark(index)
        self._pinned = True

    def _pdf_marks(self, index: int, passage: str, quote: str) -> list[PdfMark]:
        """The passage's and the quote's marks on page ``index`` (none when the passage is not there)."""
        text = self.pdf_document.getAllText(index).text()
        found = _find_on_page(text, passage)
        if found is None:
            return []
        start, end = found
        marks = [self._mark("passage", index, text, start, end, PASSAGE_COLOR)]
        if quote.strip():
            inside = locate_passage(text[start:end], quote)
            where = (start + inside[0], start + inside[1]) if inside else locate_passage(text, quote)
            if where is not None:
                marks.append(self._mark("quote", index, text, where[0], where[1], QUOTE_COLOR))
        return marks

    def _ocr_marks(self, file: Path, index: int, span: tuple[int, int] | None, passage: str, quote: str,
                   quote_span: tuple[int, int] | None) -> list[PdfMark]:
        """The passage's and the quote's marks on a page read by OCR, from its
        lines' boxes (none when the page has no boxes or the citation no span)."""
        if self._page_boxes is None or span is None or not passage.strip():
            return []
        try:
            boxes = list(self._page_boxes(str(file), index + 1))
        except Exception:  # noqa: BLE001 - the catalog is a nicety here; the page still shows
            return []
        return ocr_marks(boxes, index, span, passage, quote, quote_span, self.pdf_document.pagePointSize(index))

    def _mark(self, kind: str, index: int, text: str, start: int, end: int, color: QColor) -> PdfMark:
        lo, hi = _utf16_offset(text, start), _utf16_offset(text, end)
        selection = self.pdf_document.getSelectionAtIndex(index, lo, hi - lo)
        rects = [
            polygon.boundingRect().adjusted(0, -_LINE_PAD_POINTS, 0, _LINE_PAD_POINTS)
            for polygon in selection.bounds()
        ]
        return PdfMark(kind, index, selection.text() or text[start:end], color, rects)

    def _zoom_by(self, factor: float) -> None:
        if self.stack.currentIndex() != self._PDF:
            return
        current = self._effective_zoom()
        self.pdf_view.setZoomMode(QPdfView.ZoomMode.Custom)
        self.pdf_view.setZoomFactor(max(_MIN_ZOOM, min(_MAX_ZOOM, current * factor)))
        self.fit_width_button.setChecked(False)

    def _effective_zoom(self) -> float:
        """The zoom factor on screen; in fit-width mode QPdfView reports 1.0."""
        if self.pdf_view.zoomMode() != QPdfView.ZoomMode.FitToWidth or self._page is None:
            return self.pdf_view.zoomFactor()
        # Mirror QPdfView's own fit-width sum: viewport width over page width in pixels.
        points = self.pdf_document.pagePointSize(self._page - 1)
        if points.width() <= 0:
            return 1.0
        margins = self.pdf_view.documentMargins()
        width = self.pdf_view.viewport().width() - margins.left() - margins.right()
        pixels = points.width() * self.pdf_view.logicalDpiX() / 72.0
        return max(_MIN_ZOOM, width / pixels) if width > 0 else 1.0


def ocr_marks(boxes: Sequence[LineBox], index: int, span: tuple[int, int], passage: str, quote: str,
              quote_span: tuple[int, int] | None, size: QSizeF) -> list[PdfMark]:
    """The passage's and the quote's marks on page ``index`` read by OCR, from
    its lines' ``boxes`` (fractions of the page), in the units of ``size``
    (page points for a PDF, pixels for a picture); none when no line is covered."""
    rects = _box_rects(boxes, span, size)
    if not rects:
        return []
    marks = [PdfMark("passage", index, passage, PASSAGE_COLOR, rects)]
    if quote.strip():
        where = quote_span
        if where is None or not span[0] <= where[0] < where[1] <= span[1]:
            # The passage is the page text of its span: the quote's place in it is one on the page.
            inside = locate_passage(passage, quote)
            where = (span[0] + inside[0], span[0] + inside[1]) if inside else None
        quote_rects = _box_rects(boxes, where, size) if where is not None else []
        if quote_rects:
            marks.append(PdfMark("quote", index, quote, QUOTE_COLOR, quote_rects))
    return marks


def _box_rects(boxes: Sequence[LineBox], span: tuple[int, int], size: QSizeF) -> list[QRectF]:
    """The parts of OCR line boxes that ``span`` covers, in page points (one per line).

    A line only partly covered is cut in proportion to its characters: OCR
    gives a box per line, not per letter, and print is near enough even.
    """
    start, end = span
    rects = []
    for first, last, left, top, right, bottom in boxes:
        if first >= end or last <= start or last <= first:
            continue
        width = right - left
        lo = left + width * (max(first, start) - first) / (last - first)
        hi = left + width * (min(last, end) - first) / (last - first)
        rects.append(QRectF(lo * size.width(), top * size.height(), (hi - lo) * size.width(),
                            (bottom - top) * size.height()).adjusted(0, -_LINE_PAD_POINTS, 0, _LINE_PAD_POINTS))
    return rects


def _find_on_page(text: str, passage: str) -> tuple[int, int] | None:
    """Where the passage lies in a page's PDFium text: whole (or by its opening
    and ending), else the longest run of its words that is there."""
    found = locate_passage(text, passage)
    if found is not None:
        return found
    # Hyphenation and ligatures read differently by the two extractors: a
    # run of the passage's words still shows the user where it is.
    for candidate in pdf_search_candidates(passage):
        found = locate_passage(text, candidate)
        if found is not None:
            return found
    return None


def _utf16_offset(text: str, index: int) -> int:
    """PDFium and Qt count UTF-16 code units; Python indexes count code points."""
    return len(text[:index].encode("utf-16-le")) // 2


def rich_escape(text: str) -> str:
    """HTML-escape for rich-text labels."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
