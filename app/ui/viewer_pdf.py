"""The viewer's PDF pages: a cited page shown with QtPdf, the passage found by its search, zoom.

A mixin of :class:`app.ui.viewer.DocumentViewer`, which owns the widgets
(``pdf_document``, ``pdf_view``, ``header``, the zoom buttons) and the states.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QPointF
from PySide6.QtPdf import QPdfDocument, QPdfSearchModel
from PySide6.QtPdfWidgets import QPdfView

from app.core.passages import pdf_search_candidates

NOT_FOUND_NOTE = "passage not found in the current file (it may have changed since it was indexed)"

_ZOOM_STEP = 1.25
_MIN_ZOOM = 0.1
_MAX_ZOOM = 8.0
_PDF_ERRORS: dict[QPdfDocument.Error, str] = {
    QPdfDocument.Error.FileNotFound: "the file was not found",
    QPdfDocument.Error.InvalidFileFormat: "it is not a valid PDF (damaged or truncated)",
    QPdfDocument.Error.IncorrectPassword: "it is protected by a password",
    QPdfDocument.Error.UnsupportedSecurityScheme: "it uses an unsupported encryption scheme",
    QPdfDocument.Error.DataNotYetAvailable: "its data is not available yet",
    QPdfDocument.Error.Unknown: "an unknown error occurred",
}


class PdfPages:
    """Showing a PDF at a cited page, for :class:`app.ui.viewer.DocumentViewer`."""

    def zoom_in(self) -> None:
        """Enlarge the PDF by one step."""
        self._zoom_by(_ZOOM_STEP)

    def zoom_out(self) -> None:
        """Shrink the PDF by one step."""
        self._zoom_by(1 / _ZOOM_STEP)

    def fit_width(self) -> None:
        """Fit the PDF's pages to the view's width (the default)."""
        self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.fit_width_button.setChecked(True)

    def _show_pdf(self, file: Path, page: int | None, passage: str, label: str | None) -> None:
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
        parts = [f"<b>{rich_escape(file.name)}</b>", f"page {wanted} of {count}"]
        if printed and printed != str(wanted):
            parts.append(f"printed page {rich_escape(printed)}")
        self.header.setText(" · ".join(parts))
        self.header.setToolTip(str(file))

        self.fit_width()
        self.stack.setCurrentIndex(self._PDF)
        self._set_zoom_visible(True)
        self.pdf_view.pageNavigator().jump(index, QPointF(0, 0), 0)
        self._pinned = True

        model = QPdfSearchModel(self)
        model.setDocument(self.pdf_document)
        chosen = ""
        for candidate in pdf_search_candidates(passage):
            model.setSearchString(candidate)
            # resultsOnPage searches that one page at once; the full, page by
            # page search goes on in the background and numbers the results.
            if model.resultsOnPage(index):
                chosen = candidate
                break
        if not chosen:
            model.setSearchString("")
            if passage.strip() and not self.note_text():
                self._set_note(NOT_FOUND_NOTE)
        self._search_model = model
        self._found = bool(chosen)
        self._highlighted = chosen
        self.pdf_view.setSearchModel(model)
        if chosen:
            model.statusChanged.connect(self._select_pdf_result)
            model.countChanged.connect(self._select_pdf_result)
            self._select_pdf_result()

    def _select_pdf_result(self) -> None:
        """Make the first result on the cited page the current one, once numbered."""
        model = self._search_model
        if model is None or self._page is None or self.pdf_view.searchModel() is not model:
            return
        if self.pdf_view.currentSearchResultIndex() >= 0:
            return
        index = self._page - 1
        for row in range(model.rowCount(QModelIndex())):
            if model.resultAtIndex(row).page() == index:
                # The view scrolls to the result and paints it as the current one.
                self.pdf_view.setCurrentSearchResultIndex(row)
                return

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


def rich_escape(text: str) -> str:
    """HTML-escape for rich-text labels."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
