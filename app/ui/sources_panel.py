"""The sources panel: the passages an answer cites, as cards the user can open.

Each card names the file and where in it the passage is (page, printed page,
or section), marks citations Docent inferred rather than the model wrote,
shows the sentence(s) of the passage that support the answer as a
highlighted quote, and the passage with the question's words in bold. Clicking a card (or
Enter on it) asks for the passage to be opened in the viewer; the buttons ask
for the file to be opened outside Docent. The main window decides whether
either is allowed; this panel only emits signals.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QContextMenuEvent, QGuiApplication, QKeyEvent, QMouseEvent, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

# highlight_terms is imported from here by callers that mark words in a passage.
from app.core.documents.model import page_word
from app.core.passages import highlight_terms, query_terms  # noqa: F401
from app.ui.answer_support import QUOTE_BACKGROUND, QUOTE_BAR, QUOTE_INK

EMPTY_TEXT = "Select an answer to see its sources."
UNCITED_NOTE = "This answer cites none of the sources; these were given to the model"
NO_SOURCES_TEXT = "No passages from your documents were given to the model for this answer."
NEAREST_NOTE = "Not found in your documents. The nearest passages found, for you to judge:"
FOUND_NOTE = "Answering from these passages… The answer's own citations replace them when it is written."

# Enough passage to judge relevance at a glance; the viewer shows the rest.
_PASSAGE_CHARS = 600


def location_text(item: dict[str, Any]) -> str:
    """Where a passage is: "page 3 (printed iv)", "slide 2", 'section "Baking"' or "";
    in an e-mail's attachment "page 2 · attached to papers.eml" (the card's name is the attachment's)."""
    page = item.get("page")
    label = item.get("label")
    heading = item.get("heading")
    attachment = item.get("attachment")
    where = ""
    if page is not None:
        where = f"{page_word(attachment or item.get('path'))} {page}"
        if label and str(label) != str(page):
            where += f" (printed {label})"
    elif heading:
        where = f'section "{heading}"'
    if attachment:
        message = Path(str(item.get("path") or "")).name
        return (f"{where} · " if where else "") + f"attached to {message}"
    return where


def _snippet(text: str) -> str:
    """The passage on one paragraph, cut at a word near the display limit."""
    flat = " ".join(str(text).split())
    if len(flat) <= _PASSAGE_CHARS:
        return flat
    cut = flat.rfind(" ", 0, _PASSAGE_CHARS)
    return flat[: cut if cut > _PASSAGE_CHARS // 2 else _PASSAGE_CHARS] + " …"


class SourceCard(QFrame):
    """One cited passage. Focusable; click, Enter or Space opens it."""

    activated = Signal()
    open_external = Signal()
    show_in_folder = Signal()
    focus_moved = Signal(int)  # -1 up, +1 down: the panel moves focus between cards

    def __init__(self, item: dict[str, Any], terms: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item = item
        self.setObjectName("sourceCard")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_Hover, True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        path = str(item.get("path") or "")
        # An e-mail's attachment is a document of its own: named first, its message after.
        name = str(item.get("attachment") or "") or Path(path).name or path
        where = location_text(item)
        title = f"<b>[{html.escape(str(item.get('n', '?')))}]</b> {html.escape(name)}"
        if where:
            title += f" · {html.escape(where)}"
        if item.get("inferred"):
            muted = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
            title += f' <i style="color: {muted}">(inferred)</i>'
        self.header = self._label(title)
        self.header.setToolTip(path)
        if item.get("inferred"):
            self.header.setToolTip(
                f"{path}\nInferred: the answer did not cite this by number; Docent matched "
                "the answer's sentences to it."
            )
        quote = item.get("quote") or {}
        self.quote = self._label(html.escape(f"“{' '.join(str(quote.get('text') or '').split())}”"))
        self.quote.setWordWrap(True)
        # Fixed colours (dark on light), as in the chat and the viewer.
        self.quote.setStyleSheet(
            f"background: {QUOTE_BACKGROUND}; color: {QUOTE_INK}; border-left: 3px solid {QUOTE_BAR};"
            " padding: 4px 6px;"
        )
        self.quote.setToolTip("The sentence of this passage that supports the answer")
        self.quote.setVisible(bool(str(quote.get("text") or "").strip()))
        self.passage = self._label(highlight_terms(_snippet(item.get("text") or ""), terms))
        self.passage.setWordWrap(True)
        self.passage_html = self.passage.text()

        self.external_button = self._button("Open with system app", self.open_external.emit)
        self.folder_button = self._button("Show in folder", self.show_in_folder.emit)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addStretch(1)
        buttons.addWidget(self.external_button)
        buttons.addWidget(self.folder_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.quote)
        layout.addWidget(self.passage)
        layout.addLayout(buttons)

        self.setAccessibleName(f"Source {item.get('n', '')}: {name} {where}".strip())
        self.setToolTip("Click to show this passage in the document")

    def _label(self, text: str) -> QLabel:
        # Parented at once: a parentless label that is shown (setVisible) becomes
        # a window of its own for a moment, and takes the focus from the app's.
        label = QLabel(text, self)
        label.setTextFormat(Qt.TextFormat.RichText)
        # No text interaction, so a click anywhere on the card reaches the card.
        label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        return label

    def _button(self, text: str, slot: Any) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the context menu serves keyboard users
        button.setCursor(Qt.CursorShape.ArrowCursor)
        button.clicked.connect(slot)
        return button

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt naming
        # Accepting the press makes the release come here too.
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt naming
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            self.activated.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt naming
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.activated.emit()
        elif key == Qt.Key.Key_Up:
            self.focus_moved.emit(-1)
        elif key == Qt.Key.Key_Down:
            self.focus_moved.emit(1)
        elif key == Qt.Key.Key_Menu:
            self._menu(self.rect().center())
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 - Qt naming
        self._menu(event.pos())

    def _menu(self, at: QPoint) -> None:
        menu = QMenu(self)
        for text, slot in (
            ("Show passage", self.activated.emit),
            ("Open with system app", self.open_external.emit),
            ("Show in folder", self.show_in_folder.emit),
        ):
            action = QAction(text, menu)
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.addSeparator()
        copy = QAction("Copy passage", menu)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(str(self.item.get("text") or "")))
        menu.addAction(copy)
        menu.exec(self.mapToGlobal(at))


_CARD_STYLE = """
QFrame#sourceCard {
    border: 1px solid palette(mid);
    border-radius: 6px;
    background: palette(base);
}
QFrame#sourceCard:hover { border-color: palette(highlight); }
QFrame#sourceCard:focus { border: 2px solid palette(highlight); }
"""


class SourcesPanel(QWidget):
    """The cited passages of the selected answer, as clickable cards.

    Signals:
        open_requested(dict): show this citation/source in the viewer.
        open_external_requested(str): open this file with the system's app.
        show_in_folder_requested(str): reveal this file in the file manager.
    """

    open_requested = Signal(dict)
    open_external_requested = Signal(str)
    show_in_folder_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[dict[str, Any]] = []
        self._cards: list[SourceCard] = []

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text); font-style: italic;")
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: palette(placeholder-text);")

        self._content = QWidget()
        self._content.setStyleSheet(_CARD_STYLE)
        self._cards_layout = QVBoxLayout(self._content)
        self._cards_layout.setContentsMargins(2, 2, 2, 2)
        self._cards_layout.setSpacing(8)
        self._cards_layout.addStretch(1)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self._content)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.title)
        layout.addWidget(self.note)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.scroll, 1)
        self.clear()

    # ----------------------------------------------------------------- public API

    def show_answer(
        self, question: str, citations: list[dict], sources: list[dict], nearest: list[dict] | None = None
    ) -> None:
        """Show the cards for one answer.

        The citations when there are any; otherwise the sources that were given
        to the model, under a note saying the answer cites none of them. A
        decline shows the ``nearest`` passages found, under a note saying so.
        With no question and nothing to show it returns to the empty state.
        """
        if not citations and not sources and nearest:
            self._show_nearest(question, nearest)
            return
        if not question.strip() and not citations and not sources:
            self.clear()  # no answer to speak of: the empty state, not "no sources"
            return
        self._clear_cards()
        terms = query_terms(question)
        shown = list(citations) if citations else list(sources)
        self.title.setText(f"<b>Sources</b> for “{html.escape(' '.join(question.split()))}”")
        self.title.setVisible(bool(question.strip()))
        if citations:
            self.note.setVisible(False)
        elif sources:
            self.note.setText(UNCITED_NOTE)
            self.note.setVisible(True)
        else:
            self.note.setVisible(False)
        if not shown:
            self.empty.setText(NO_SOURCES_TEXT)
            self.empty.setVisible(True)
            self.scroll.setVisible(False)
            return
        self.empty.setVisible(False)
        self.scroll.setVisible(True)
        for item in shown:
            self._add_card(dict(item), terms)
        self.scroll.verticalScrollBar().setValue(0)

    def show_found(self, question: str, found: list[dict]) -> None:
        """Show the passages retrieval found for ``question`` while the answer
        is written, each with its best sentence; the answer's own sources
        replace them (:meth:`show_answer`) when it is done."""
        self._show_listed("Found", FOUND_NOTE, question, [dict(item) for item in found])

    def _show_nearest(self, question: str, nearest: list[dict]) -> None:
        self._show_listed("Nearest passages", NEAREST_NOTE, question,
                          [{**hit, "n": i} for i, hit in enumerate(nearest, start=1)])

    def _show_listed(self, heading: str, note: str, question: str, items: list[dict]) -> None:
        """Cards for ``items`` under "``heading`` for “question”" and ``note``."""
        self._clear_cards()
        self.title.setText(f"<b>{heading}</b> for “{html.escape(' '.join(question.split()))}”")
        self.title.setVisible(bool(question.strip()))
        self.note.setText(note)
        self.note.setVisible(True)
        self.empty.setVisible(False)
        self.scroll.setVisible(True)
        terms = query_terms(question)
        for item in items:
            self._add_card(item, terms)
        self.scroll.verticalScrollBar().setValue(0)

    def clear(self) -> None:
        """Back to the empty state: no answer selected."""
        self._clear_cards()
        self.title.setVisible(False)
        self.note.setVisible(False)
        self.empty.setText(EMPTY_TEXT)
        self.empty.setVisible(True)
        self.scroll.setVisible(False)

    def cards(self) -> list[dict]:
        """The citation/source dicts shown, in order."""
        return list(self._items)

    def card_widget(self, index: int) -> SourceCard:
        """The card widget at ``index`` (for tests and keyboard focus)."""
        return self._cards[index]

    def click_card(self, index: int) -> None:
        """Act as a click on card ``index``: emit :attr:`open_requested` with its dict."""
        self.open_requested.emit(self._items[index])

    def empty_text(self) -> str:
        """The message shown instead of cards ("" when cards are shown)."""
        return self.empty.text() if not self.empty.isHidden() else ""

    def note_text(self) -> str:
        """The note above the cards ("" when none)."""
        return self.note.text() if not self.note.isHidden() else ""

    # ----------------------------------------------------------------- internals

    def _add_card(self, item: dict[str, Any], terms: list[str]) -> None:
        index = len(self._items)
        card = SourceCard(item, terms, self._content)
        path = str(item.get("path") or "")
        card.activated.connect(lambda i=index: self.click_card(i))
        card.open_external.connect(lambda p=path: self.open_external_requested.emit(p))
        card.show_in_folder.connect(lambda p=path: self.show_in_folder_requested.emit(p))
        card.focus_moved.connect(lambda step, i=index: self._focus_card(i + step))
        self._items.append(item)
        self._cards.append(card)
        # Before the trailing stretch, which keeps the cards at the top.
        self._cards_layout.insertWidget(self._cards_layout.count() - 1, card)

    def _focus_card(self, index: int) -> None:
        if 0 <= index < len(self._cards):
            card = self._cards[index]
            card.setFocus(Qt.FocusReason.TabFocusReason)
            self.scroll.ensureWidgetVisible(card)

    def _clear_cards(self) -> None:
        for card in self._cards:
            self._cards_layout.removeWidget(card)
            card.deleteLater()
        self._cards.clear()
        self._items.clear()
