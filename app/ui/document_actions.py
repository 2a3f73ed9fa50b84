"""Opening the documents an answer cites: in the viewer, outside Docent, or their folder.

A mixin of :class:`app.ui.main_window.MainWindow`. Every path is checked
first (:func:`app.core.opening.check_openable`): only files of the library
are opened, whatever a citation says.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from app.core.opening import NotOpenable, check_openable
from app.core.paths import is_inside


class DocumentActions:
    """Opening cited files, for the main window (which provides ``reader`` and ``banner``)."""

    def _check(self, path: str) -> Path | None:
        roots = [r.path for r in self.reader.roots()]
        try:
            return check_openable(path, roots, lambda p: self.reader.file(p) is not None)
        except NotOpenable as exc:
            self.banner.show_message("Docent will not open this file.", details=str(exc), level="warning")
            return None

    def open_passage(self, source: dict, quote: dict | None = None) -> None:
        """Show a cited passage in the in-app viewer, at its page, every line
        highlighted, and the answer's supporting ``quote`` in it more strongly."""
        from app.ui.viewer import ViewerDialog

        real = self._check(source["path"])
        if real is None:
            return
        if getattr(self, "viewer", None) is None:
            self.viewer = ViewerDialog(self, page_boxes=getattr(self, "page_boxes", None))
        span = tuple(source["span"]) if source.get("span") else None
        quote = quote or source.get("quote") or {}
        quote_span = tuple(quote["span"]) if quote.get("span") else None
        self.viewer.show()  # shown first: the PDF view jumps within its real size
        self.viewer.show_passage(str(real), source.get("page"), span, source.get("text", ""), source.get("label"),
                                 quote.get("text", ""), quote_span, source.get("part"), source.get("attachment"))
        self.viewer.raise_()

    def open_external(self, path: str) -> None:
        real = self._check(path)
        if real is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(real)))

    def show_in_folder(self, path: str) -> None:
        real = self._check(path)
        if real is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(real.parent)))

    def _open_folder(self, folder: str) -> None:
        target = Path(folder).resolve()
        if any(is_inside(target, r.path) for r in self.reader.roots()) and target.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))
