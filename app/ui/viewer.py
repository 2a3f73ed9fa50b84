"""The document viewer: opens a cited file at its passage and highlights it.

PDFs are shown as pages (QtPdf), jumped to the cited page with every line of
the passage painted over it (:mod:`app.ui.viewer_pdf`); pictures read by OCR
as the picture, marked where OCR read the passage (:mod:`app.ui.viewer_image`).
Other files are shown
as text: the same text the indexer extracted (so a citation's character span
points into it), with the passage highlighted and scrolled into view. In
both, the answer's supporting quote, when there is one, is highlighted more
strongly inside its passage. That text is read as ingest
reads it, in the reader process and off the GUI thread
(:class:`app.workers.reading_worker.DocumentReader`): the viewer says
"Reading …" meanwhile, and a file that hangs or crashes its parser ends in a
message, never a frozen window. Every failure becomes a message in the
widget; nothing here raises to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QShowEvent, QTextCharFormat, QTextCursor
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QStackedWidget,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

# locate_passage and pdf_search_candidates are imported from here by callers.
from app.core import documents
from app.core.passages import locate_passage, pdf_search_candidates  # noqa: F401
from app.ui.viewer_image import ImagePages, MarkedImageView
from app.ui.viewer_pdf import (
    NOT_FOUND_NOTE,
    PASSAGE_COLOR,
    QUOTE_COLOR,
    ZOOM_STEP,
    MarkedPdfView,
    PageBoxes,
    PdfPages,
    rich_escape,
)
from app.workers.reading_worker import DocumentReader

# Fixed backgrounds *and* foreground, so the highlight reads the same on a
# light or a dark palette (a yellow background under light text would not):
# the passage in a light wash, its supporting quote stronger, as on PDF pages.
HIGHLIGHT_BACKGROUND = PASSAGE_COLOR
QUOTE_BACKGROUND = QUOTE_COLOR
HIGHLIGHT_FOREGROUND = QColor("#1a1a1a")


@dataclass(frozen=True)
class Highlight:
    """One highlighted stretch of the document shown: the passage or its quote."""

    kind: str  # "passage" or "quote"
    text: str  # the text under the highlight, as the document has it
    lines: int  # how many lines it covers: of the text, or as laid out on the PDF page
    color: QColor


def _utf16_offset(text: str, index: int) -> int:
    """Qt positions count UTF-16 code units; Python indexes count code points."""
    return len(text[:index].encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- widgets


class DocumentViewer(PdfPages, ImagePages, QWidget):
    """Shows one cited passage in its file: a PDF page or the text, highlighted.

    Use it as a tab or inside :class:`ViewerDialog`. Call :meth:`show_passage`
    for each citation to show; the widget reuses itself.
    """

    _MESSAGE, _PDF, _TEXT, _IMAGE = range(4)

    #: A text document (or the message why it could not be read) is shown after reading it.
    reading_done = Signal()

    def __init__(self, parent: QWidget | None = None, reader: DocumentReader | None = None,
                 page_boxes: PageBoxes | None = None) -> None:
        """
        Args:
            reader: reads text documents (default: one of its own, with
                ingest's limits; tests pass one that injects faults).
            page_boxes: where OCR read each line of a scanned PDF page or a
                picture (the catalog's, see
                :meth:`app.core.stores.catalog.Catalog.page_boxes`), to mark a
                passage on a page without a text layer; ``None``: such passages
                are not marked on a PDF page, and a picture is shown as its text.
        """
        super().__init__(parent)
        self._page_boxes = page_boxes
        self._reader = reader or DocumentReader(parent=self)
        self._reader.read.connect(self._text_read)
        self._reader.failed.connect(self._read_failed)
        self._reader.extracted.connect(self._extracted)
        # The reader's thread and process end with this widget (close touches no Qt object).
        closer = self._reader.close
        self.destroyed.connect(lambda *_: closer())
        self._ticket = 0  # the read whose result is awaited; 0 when none
        self._reading: tuple[Path, str, str, tuple[int, int] | None] | None = None  # file, passage, quote, its span
        self._path: Path | None = None
        # An e-mail attachment being written out: where to show it once it is (see show_passage).
        self._extracting: tuple[int | None, tuple[int, int] | None, str, str | None, str,
                                tuple[int, int] | None] | None = None
        self._attached_to: Path | None = None  # the mail file of the attachment shown
        self._page: int | None = None  # 1-based page shown, PDFs only
        self._found = False
        self._highlighted = ""
        self._text = ""
        self._text_range: tuple[int, int] | None = None
        self._quote_range: tuple[int, int] | None = None

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.zoom_out_button = self._tool_button("−", "Zoom out (Ctrl+-)", self.zoom_out)
        self.fit_width_button = self._tool_button("Fit width", "Fit the page to the width (Ctrl+0)", self.fit_width)
        self.fit_width_button.setCheckable(True)
        self.zoom_in_button = self._tool_button("+", "Zoom in (Ctrl++)", self.zoom_in)
        self._zoom_widgets = (self.zoom_out_button, self.fit_width_button, self.zoom_in_button)
        # A picture's other frames (a multi-page TIFF): a PDF scrolls through its pages instead.
        self.previous_page_button = self._tool_button("‹", "Previous page of the picture", self.previous_frame)
        self.next_page_button = self._tool_button("›", "Next page of the picture", self.next_frame)
        self._frame_widgets = (self.previous_page_button, self.next_page_button)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.header, 1)
        for button in (*self._frame_widgets, *self._zoom_widgets):
            top.addWidget(button)

        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        self.note.setStyleSheet("color: palette(placeholder-text); font-style: italic;")

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setMargin(24)

        self.pdf_document = QPdfDocument(self)
        self.pdf_view = MarkedPdfView()
        # The view stays on the cited page through resizes until the user
        # scrolls it themselves (actionTriggered fires for user scrolling only).
        self._pinned = False
        self.pdf_view.verticalScrollBar().actionTriggered.connect(self._unpin)
        self.pdf_view.setPageMode(QPdfView.PageMode.MultiPage)
        self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.pdf_view.setDocument(self.pdf_document)

        self.text_view = QPlainTextEdit()
        self.text_view.setReadOnly(True)
        # Keep the cursor visible so keyboard users can still move and select.
        self.text_view.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )

        self.image_view = MarkedImageView()
        self.image_view.verticalScrollBar().actionTriggered.connect(self._unpin)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.pdf_view)
        self.stack.addWidget(self.text_view)
        self.stack.addWidget(self.image_view)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.stack, 1)

        for keys, slot in (
            (QKeySequence.StandardKey.ZoomIn, self.zoom_in),
            (QKeySequence.StandardKey.ZoomOut, self.zoom_out),
            (QKeySequence("Ctrl+0"), self.fit_width),
        ):
            shortcut = QShortcut(keys, self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

        self._show_message("Select a citation to see its passage here.")

    # ----------------------------------------------------------------- public API

    def show_passage(
        self,
        path: str,
        page: int | None,
        span: tuple[int, int] | None,
        passage: str,
        label: str | None = None,
        quote: str = "",
        quote_span: tuple[int, int] | None = None,
        part: str | None = None,
        attachment: str | None = None,
    ) -> None:
        """Open ``path`` at the passage and highlight every line of it, the quote more strongly.

        Args:
            path: the file, as the citation gives it.
            page: 1-based physical page for PDFs; ``None`` for other formats.
            span: the passage's character range in the extracted text of its
                page (a hint; the passage is searched for when it no longer fits).
            passage: the cited text.
            label: the printed page label ("iv"), shown when it differs from the number.
            quote: the sentence(s) of the passage that support the answer
                ("" for none), highlighted in a stronger colour.
            quote_span: the quote's character range on the page, in the
                frame of ``span`` (a hint, like ``span``).
            part: the e-mail attachment of ``path`` the passage is in (its
                locator, see :class:`~app.core.documents.model.Part`), and
            attachment: its file name. The attachment is shown as the file
                it is (a PDF's page, a document's text), written from its
                message by the reader process into a private folder; ``page``
                and ``span`` are then the attachment's own.
        """
        self._reset()
        file = Path(path)
        self._path = file
        self._attached_to = None
        self.setWindowTitle(file.name)
        if not file.exists():
            self._show_error(
                file,
                f"This file is no longer at {file}. It may have been moved, renamed or "
                "deleted since it was indexed.",
            )
            return
        if not file.is_file():
            self._show_error(file, f"{file} is not a file.")
            return
        if part is not None:
            name = attachment or "the attachment"
            self._attached_to = file
            self.header.setText(self._title(Path(name)))
            self.header.setToolTip(str(file))
            self._show_message(f"Opening {name} from {file.name}…")
            self._extracting = (page, span, passage, label, quote, quote_span)
            self._ticket = self._reader.extract(str(file), part)
            return
        self._open(file, page, span, passage, label, quote, quote_span)

    def _open(self, file: Path, page: int | None, span: tuple[int, int] | None, passage: str,
              label: str | None, quote: str, quote_span: tuple[int, int] | None) -> None:
        """Show ``file`` at the passage: a PDF's page, a picture, else its text (read in the reader)."""
        try:
            if file.suffix.lower() == ".pdf":
                self._show_pdf(file, page, passage, label, quote, span, quote_span)
            elif documents.kind_for(file) == "image" and self._show_image(file, page, span, passage, quote,
                                                                          quote_span):
                self._pinned = True
            else:
                self._start_reading(file, span, passage, quote, quote_span)
        except OSError as exc:
            self._show_error(file, f"Docent could not read {file.name}: {exc.strerror or exc}.")
        except Exception as exc:  # a viewer must never take the window down
            self._show_error(file, f"Docent could not show {file.name}: {exc}")

    def _extracted(self, ticket: int, written: str) -> None:
        """An attachment was written out: show it as the file it is."""
        if ticket != self._ticket or self._extracting is None:
            return  # a citation shown since then replaced this one
        page, span, passage, label, quote, quote_span = self._extracting
        self._ticket, self._extracting = 0, None
        self._path = Path(written)
        self._open(Path(written), page, span, passage, label, quote, quote_span)
        if not self.is_reading():
            self.reading_done.emit()

    @property
    def attached_to(self) -> Path | None:
        """The mail file whose attachment is shown (``None``: a file of the library is)."""
        return self._attached_to

    def _title(self, file: Path) -> str:
        """The header's name of the file shown: bold, with the message it is attached to."""
        title = f"<b>{rich_escape(file.name)}</b>"
        if self._attached_to is not None:
            title += f" (attached to {rich_escape(self._attached_to.name)})"
        return title

    def clear(self) -> None:
        """Show the empty state."""
        self._reset()
        self._path = None
        self._show_message("Select a citation to see its passage here.")

    def is_reading(self) -> bool:
        """Whether a text document is being read (the viewer says "Reading …")."""
        return self._ticket != 0

    def path(self) -> str | None:
        """The file shown, or ``None``."""
        return str(self._path) if self._path is not None else None

    def current_page(self) -> int | None:
        """The 1-based page the PDF view is on, or the picture's frame shown;
        ``None`` when neither is shown."""
        if self.stack.currentIndex() == self._IMAGE:
            return self._page
        if self.stack.currentIndex() != self._PDF:
            return None
        return self.pdf_view.pageNavigator().currentPage() + 1

    def zoom_in(self) -> None:
        """Enlarge the page or picture by one step."""
        self._zoom_view(ZOOM_STEP)

    def zoom_out(self) -> None:
        """Shrink the page or picture by one step."""
        self._zoom_view(1 / ZOOM_STEP)

    def fit_width(self) -> None:
        """Fit the page or picture to the view's width (the default)."""
        if self.stack.currentIndex() == self._IMAGE:
            self.image_view.fit_width()
            self.fit_width_button.setChecked(True)
        else:
            PdfPages.fit_width(self)

    def _zoom_view(self, factor: float) -> None:
        if self.stack.currentIndex() == self._IMAGE:
            self.image_view.zoom_by(factor)
            self.fit_width_button.setChecked(False)
        else:
            self._zoom_by(factor)

    def highlighted_text(self) -> str:
        """The highlighted passage (a PDF's with its spacing made single)."""
        return self._highlighted

    def highlights(self) -> list[Highlight]:
        """What is highlighted, passage first: the lines each covers and its colour."""
        if self.stack.currentIndex() in (self._PDF, self._IMAGE):
            view = self.pdf_view if self.stack.currentIndex() == self._PDF else self.image_view
            return [Highlight(m.kind, m.text, len(m.rects), m.color) for m in view.marks() if m.rects]
        if self.stack.currentIndex() != self._TEXT:
            return []
        out = []
        document = self.text_view.document()
        for kind, where, color in (("passage", self._text_range, HIGHLIGHT_BACKGROUND),
                                   ("quote", self._quote_range, QUOTE_BACKGROUND)):
            if where is None:
                continue
            start, end = where
            first = document.findBlock(_utf16_offset(self._text, start)).blockNumber()
            last = document.findBlock(_utf16_offset(self._text, max(start, end - 1))).blockNumber()
            out.append(Highlight(kind, self._text[start:end], last - first + 1, color))
        return out

    def highlight_found(self) -> bool:
        """Whether the passage was found in the file as it is now."""
        return self._found

    def note_text(self) -> str:
        """The note shown above the document ("" when none)."""
        return self.note.text() if self.note.isVisibleTo(self) else ""

    def message_text(self) -> str:
        """The message shown instead of a document ("" when a document is shown)."""
        return self.message.text() if self.stack.currentIndex() == self._MESSAGE else ""

    # ----------------------------------------------------------------- text files

    def _start_reading(
        self, file: Path, span: tuple[int, int] | None, passage: str, quote: str, quote_span: tuple[int, int] | None
    ) -> None:
        self.header.setText(self._title(file))
        self.header.setToolTip(str(file))
        self._show_message(f"Reading {file.name}…")
        self._reading = (file, passage, quote, quote_span)
        self._ticket = self._reader.request(str(file), passage, span)

    def _text_read(self, ticket: int, text: str, found: tuple[int, int] | None) -> None:
        if ticket != self._ticket or self._reading is None:
            return  # a citation shown since then replaced this read
        file, passage, quote, quote_span = self._reading
        self._ticket, self._reading = 0, None
        try:
            self._show_text(file, text, found, passage, quote, quote_span)
        except Exception as exc:  # noqa: BLE001 - a viewer must never take the window down
            self._show_error(file, f"Docent could not show {file.name}: {exc}")
        self.reading_done.emit()

    def _read_failed(self, ticket: int, reason: str) -> None:
        if ticket == self._ticket and self._extracting is not None and self._attached_to is not None:
            self._ticket, self._extracting = 0, None
            self._show_message(f"The attachment could not be opened from {self._attached_to.name}: {reason}.")
            self.reading_done.emit()
            return
        if ticket != self._ticket or self._reading is None:
            return
        file = self._reading[0]
        self._ticket, self._reading = 0, None
        self._show_error(file, f"{file.name} could not be read: {reason}.")
        self.reading_done.emit()

    def _show_text(
        self,
        file: Path,
        text: str,
        found: tuple[int, int] | None,
        passage: str,
        quote: str = "",
        quote_span: tuple[int, int] | None = None,
    ) -> None:
        self._text = text
        self.text_view.setPlainText(text)
        self.stack.setCurrentIndex(self._TEXT)
        self._set_zoom_visible(False)

        header = [self._title(file)]
        if found is None:
            self._found = False
            self._highlighted = ""
            self.text_view.setExtraSelections([])
            self.text_view.moveCursor(QTextCursor.MoveOperation.Start)
            if passage.strip():
                self._set_note(NOT_FOUND_NOTE)
        else:
            start, end = found
            self._found = True
            self._text_range = found
            self._highlighted = text[start:end]
            self._quote_range = _quote_in(text, found, quote, quote_span)
            self._highlight_ranges()
            header.append(f"line {text.count(chr(10), 0, start) + 1}")
        self.header.setText(" · ".join(header))
        self.header.setToolTip(str(file))
        # Scrolling needs the final viewport size: do it now and again once laid out.
        self._scroll_to_highlight()
        QTimer.singleShot(0, self, self._scroll_to_highlight)

    def _highlight_ranges(self) -> None:
        """The passage (every character of every line it covers), then the quote over it."""
        selections = []
        for where, background in ((self._text_range, HIGHLIGHT_BACKGROUND), (self._quote_range, QUOTE_BACKGROUND)):
            if where is None:
                continue
            lo, hi = (_utf16_offset(self._text, i) for i in where)
            cursor = QTextCursor(self.text_view.document())
            cursor.setPosition(lo)
            cursor.setPosition(hi, QTextCursor.MoveMode.KeepAnchor)
            fmt = QTextCharFormat()
            fmt.setBackground(background)
            fmt.setForeground(HIGHLIGHT_FOREGROUND)
            selection = QTextEdit.ExtraSelection()
            selection.cursor = cursor
            selection.format = fmt
            selections.append(selection)
        self.text_view.setExtraSelections(selections)

    def _scroll_to_highlight(self) -> None:
        """Bring the highlight into view: its end centred, then its start shown."""
        if self._text_range is None or self.stack.currentIndex() != self._TEXT:
            return
        start, end = (_utf16_offset(self._text, i) for i in self._text_range)
        cursor = self.text_view.textCursor()
        cursor.setPosition(end)
        self.text_view.setTextCursor(cursor)
        self.text_view.centerCursor()
        # A passage taller than the view must still show its first line.
        cursor.setPosition(start)
        self.text_view.setTextCursor(cursor)
        self.text_view.ensureCursorVisible()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        QTimer.singleShot(0, self, self._scroll_to_highlight)
        # A jump made before the view had its size lands on the wrong page
        # once laid out: jump again now that it is shown.
        QTimer.singleShot(0, self, self._rejump)

    def _unpin(self, *_: object) -> None:
        self._pinned = False

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt naming
        super().resizeEvent(event)
        if self._pinned:
            QTimer.singleShot(0, self, self._rejump)

    def wheelEvent(self, event) -> None:  # noqa: N802, ANN001
        self._pinned = False
        super().wheelEvent(event)

    def _rejump(self) -> None:
        if self.stack.currentIndex() == self._IMAGE and self._pinned:
            self.image_view.scroll_to_marks()
        if self.stack.currentIndex() == self._PDF and self._page is not None:
            self.pdf_view.pageNavigator().jump(self._page - 1, QPointF(0, 0), 0)
            self.pdf_view.scroll_to_mark(self._page - 1)

    # ----------------------------------------------------------------- states

    def _reset(self) -> None:
        if self._ticket:
            self._reader.cancel()  # a read still going on is stopped; its result is dropped
        self._ticket, self._reading, self._extracting = 0, None, None
        self._page = None
        self._found = False
        self._highlighted = ""
        self._text = ""
        self._text_range = None
        self._quote_range = None
        self.note.clear()
        self.note.setVisible(False)
        self.header.clear()
        self.header.setToolTip("")
        self.pdf_view.set_marks([])
        self.image_view.clear()
        self._picture = None
        self.text_view.setExtraSelections([])

    def _show_error(self, file: Path, message: str) -> None:
        self.header.setText(self._title(file))
        self.header.setToolTip(str(file))
        self._show_message(message)

    def _show_message(self, message: str) -> None:
        self.message.setText(message)
        self.stack.setCurrentIndex(self._MESSAGE)
        self._set_zoom_visible(False)

    def _set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(True)

    def _set_zoom_visible(self, visible: bool) -> None:
        for widget in self._zoom_widgets:
            widget.setVisible(visible)
        if not visible or self.stack.currentIndex() != self._IMAGE:
            for widget in self._frame_widgets:
                widget.setVisible(False)

    def _tool_button(self, text: str, tip: str, slot: object) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button


class ViewerDialog(QDialog):
    """A non-modal window around a :class:`DocumentViewer`, with a Close button."""

    def __init__(self, parent: QWidget | None = None, page_boxes: PageBoxes | None = None) -> None:
        """
        Args:
            page_boxes: see :class:`DocumentViewer` (the main window passes
                its own, which reads them from the catalog).
        """
        super().__init__(parent)
        self.setModal(False)
        self.setWindowTitle("Docent — source")
        self.resize(820, 900)
        self.viewer = DocumentViewer(self, page_boxes=page_boxes)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 8)
        layout.addWidget(self.viewer, 1)
        layout.addWidget(buttons)

    def show_passage(
        self,
        path: str,
        page: int | None,
        span: tuple[int, int] | None,
        passage: str,
        label: str | None = None,
        quote: str = "",
        quote_span: tuple[int, int] | None = None,
        part: str | None = None,
        attachment: str | None = None,
    ) -> None:
        """Show the passage (see :meth:`DocumentViewer.show_passage`) and title the window."""
        self.viewer.show_passage(path, page, span, passage, label, quote, quote_span, part, attachment)
        shown = self.viewer.current_page()
        where = f" — page {shown}" if shown is not None else ""
        name = f"{attachment} (attached to {Path(path).name})" if part is not None and attachment else Path(path).name
        self.setWindowTitle(f"{name}{where} — Docent")


# --------------------------------------------------------------------------- helpers


def _quote_in(
    text: str, passage: tuple[int, int], quote: str, span: tuple[int, int] | None
) -> tuple[int, int] | None:
    """Where the quote lies inside the passage's range of ``text`` (``None`` when it is not there).

    The quote's own span is tried first, as a hint; the search stays inside
    the passage, so a sentence repeated elsewhere in the file is not the one marked.
    """
    if not quote.strip():
        return None
    start, end = passage
    hint = None
    if span is not None and start <= span[0] < span[1] <= end:
        hint = (span[0] - start, span[1] - start)
    found = locate_passage(text[start:end], quote, hint)
    return (start + found[0], start + found[1]) if found else None

