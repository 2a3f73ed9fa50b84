"""The viewer's pictures: a scanned page saved as an image, shown with the cited passage marked on it.

A picture (PNG, JPEG, TIFF, WebP) is indexed by OCR, which records a box for
every line it read (:meth:`app.core.stores.catalog.Catalog.page_boxes`). The
viewer shows the picture itself, the frame cited for a multi-page TIFF, with
the passage's lines washed over and its supporting quote stronger, as on a
scanned PDF page. Nothing is read by OCR again to show it: the boxes come
from the catalog. A picture without boxes there (not indexed, or changed
since) is shown as text by the caller instead.

:class:`MarkedImageView` paints; :class:`ImagePages` is a mixin of
:class:`app.ui.viewer.DocumentViewer`, which owns the widgets and the states.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QImage, QImageReader, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QScrollArea, QWidget

from app.ui.viewer_pdf import NOT_FOUND_NOTE, PdfMark, ocr_marks, rich_escape

# A picture is drawn at most this large (pixels); a bigger one is decoded
# scaled down, which is also quicker. Its marks are fractions of the page, so
# they fit whatever size it is drawn at.
_MAX_DRAWN_PIXELS = 12_000_000
_MARGIN = 8
_MIN_ZOOM = 0.05
_MAX_ZOOM = 8.0
# How far above the passage the view starts, as a share of its height.
_CONTEXT_ABOVE = 0.2


class _Canvas(QWidget):
    """The picture at the view's scale, with its marks over it."""

    def __init__(self, view: MarkedImageView) -> None:
        super().__init__()
        self._view = view

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt naming
        image = self._view.image()
        if image.isNull():
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(QRectF(0, 0, self.width(), self.height()), image)
        # Multiply keeps the print under a mark black and readable.
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
        for mark in self._view.marks():  # the passage first, the quote over it
            for rect in mark.rects:
                shown = self._view.mark_to_view(rect)
                if shown.intersects(QRectF(event.rect())):
                    painter.fillRect(shown, mark.color)
        painter.end()


class MarkedImageView(QScrollArea):
    """A picture fitted to the width (or zoomed), with :class:`PdfMark` boxes, in image pixels, painted over it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._marks: list[PdfMark] = []
        self._zoom: float | None = None  # None: fit the width
        self._canvas = _Canvas(self)
        self.setWidget(self._canvas)
        self.setWidgetResizable(False)
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)

    def set_image(self, image: QImage, marks: list[PdfMark]) -> None:
        """Show ``image`` with these marks (their rects in its pixels), fitted to the width."""
        self._image = image
        self._marks = list(marks)
        self._zoom = None
        self._relayout()

    def clear(self) -> None:
        """Show nothing (and hold no picture in memory)."""
        self.set_image(QImage(), [])

    def image(self) -> QImage:
        """The picture shown (null when none)."""
        return self._image

    def marks(self) -> list[PdfMark]:
        """The marks painted, passage first."""
        return list(self._marks)

    def scale(self) -> float:
        """Screen pixels per picture pixel."""
        if self._image.isNull():
            return 1.0
        if self._zoom is not None:
            return self._zoom
        available = self.viewport().width() - 2 * _MARGIN
        return max(_MIN_ZOOM, available / self._image.width()) if available > 0 else 1.0

    def fit_width(self) -> None:
        """Fit the picture to the width again."""
        self._zoom = None
        self._relayout()

    def zoom_by(self, factor: float) -> None:
        """Enlarge (``factor`` > 1) or shrink the picture, keeping the view's centre where it was."""
        if self._image.isNull():
            return
        bar = self.verticalScrollBar()
        centre = (bar.value() + self.viewport().height() / 2) / max(1, self._canvas.height())
        self._zoom = max(_MIN_ZOOM, min(_MAX_ZOOM, self.scale() * factor))
        self._relayout()
        bar.setValue(round(centre * self._canvas.height() - self.viewport().height() / 2))

    def mark_to_view(self, rect: QRectF) -> QRectF:
        """A box in picture pixels as a rectangle of the drawn picture, in screen pixels."""
        s = self._canvas.width() / self._image.width() if not self._image.isNull() else 1.0
        return QRectF(rect.x() * s, rect.y() * s, rect.width() * s, rect.height() * s)

    def scroll_to_marks(self) -> None:
        """Scroll so the first mark shows with some context above it; the top without one."""
        rects = [self.mark_to_view(r) for m in self._marks for r in m.rects]
        if not rects:
            self.verticalScrollBar().setValue(0)
            return
        top = min(r.top() for r in rects)
        self.verticalScrollBar().setValue(max(0, round(top - self.viewport().height() * _CONTEXT_ABOVE)))
        left = min(r.left() for r in rects)
        if left > self.viewport().width():
            self.horizontalScrollBar().setValue(round(left - _MARGIN))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        if self._zoom is None:
            self._relayout()

    def _relayout(self) -> None:
        if self._image.isNull():
            self._canvas.resize(0, 0)
        else:
            s = self.scale()
            self._canvas.resize(max(1, round(self._image.width() * s)), max(1, round(self._image.height() * s)))
        self._canvas.update()


def read_frame(file: Path, page: int) -> tuple[QImage, int]:
    """Frame ``page`` (1-based) of a picture, turned upright as its EXIF says
    (as OCR read it), at most ``_MAX_DRAWN_PIXELS``; and how many frames it has.
    A null image when it cannot be decoded or has no such frame."""
    reader = QImageReader(str(file))
    reader.setAutoTransform(True)
    count = max(1, reader.imageCount())
    if page > 1 and not reader.jumpToImage(page - 1):
        return QImage(), count
    size = reader.size()
    if size.isValid() and size.width() * size.height() > _MAX_DRAWN_PIXELS:
        shrink = (_MAX_DRAWN_PIXELS / (size.width() * size.height())) ** 0.5
        reader.setScaledSize(QSize(max(1, int(size.width() * shrink)), max(1, int(size.height() * shrink))))
    return reader.read(), count


class ImagePages:
    """Showing a picture at a cited frame with the passage marked, for :class:`app.ui.viewer.DocumentViewer`."""

    _picture: _Picture | None = None  # the picture shown, while one is

    def _show_image(self, file: Path, page: int | None, span: tuple[int, int] | None, passage: str, quote: str,
                    quote_span: tuple[int, int] | None) -> bool:
        """Show the picture with the passage marked where OCR read it.

        Returns False, showing nothing, when there is nothing to mark it by
        (no boxes in the catalog for this page, or no span): the caller then
        shows the picture's text instead.
        """
        if self._page_boxes is None or span is None or not passage.strip():
            return False
        wanted = page if page is not None and page >= 1 else 1
        try:
            boxes = list(self._page_boxes(str(file), wanted))
        except Exception:  # noqa: BLE001 - the catalog is a nicety here; the text still shows
            return False
        if not boxes:
            return False
        image, count = read_frame(file, wanted)
        if image.isNull():
            return False
        marks = ocr_marks(boxes, wanted - 1, span, passage, quote, quote_span,
                          QSizeF(image.width(), image.height()))
        self._found = bool(marks)
        self._highlighted = " ".join(marks[0].text.split()) if marks else ""
        if not marks:
            self._set_note(NOT_FOUND_NOTE)
        self._picture = _Picture(file, count, wanted, marks)
        self.stack.setCurrentIndex(self._IMAGE)
        self._set_zoom_visible(True)
        self._put_frame(wanted, image)
        return True

    def previous_frame(self) -> None:
        """Show the picture's page before the one shown (a multi-page TIFF)."""
        self._go_to_frame(-1)

    def next_frame(self) -> None:
        """Show the picture's page after the one shown."""
        self._go_to_frame(+1)

    def _go_to_frame(self, step: int) -> None:
        picture = self._picture
        if picture is None or self.stack.currentIndex() != self._IMAGE or self._page is None:
            return
        wanted = self._page + step
        if not 1 <= wanted <= picture.count:
            return
        image, _ = read_frame(picture.file, wanted)
        if image.isNull():
            self._set_note(f"page {wanted} of {picture.file.name} could not be decoded")
            return
        self._put_frame(wanted, image)

    def _put_frame(self, page: int, image: QImage) -> None:
        """Show frame ``page`` of the current picture: the cited one with its marks."""
        picture = self._picture
        assert picture is not None
        self._page = page
        cited = page == picture.cited
        parts = [self._title(picture.file)]
        if picture.count > 1:
            parts.append(f"page {page} of {picture.count}" + ("" if cited else f" (cited: page {picture.cited})"))
        parts.append("read by OCR")
        self.header.setText(" · ".join(parts))
        self.header.setToolTip(str(picture.file))
        self.image_view.set_image(image, picture.marks if cited else [])
        self.fit_width_button.setChecked(True)
        for widget in self._frame_widgets:
            widget.setVisible(picture.count > 1)
        self.previous_page_button.setEnabled(page > 1)
        self.next_page_button.setEnabled(page < picture.count)
        self.image_view.scroll_to_marks()


@dataclass(frozen=True)
class _Picture:
    """The picture shown: its file, how many pages (frames) it has, the cited one and its marks."""

    file: Path
    count: int
    cited: int
    marks: list[PdfMark]
