"""The chat: conversations, the transcript with streaming answers, the question box."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QUrl, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.documents.model import citation_place
from app.core.answering.wholedoc import progress_text
from app.core.answering.render import answer_html
from app.ui.answer_support import (
    UNSUPPORTED_INK,
    decline_html,
    mark_sentences,
    quotes_html,
    unsupported_sentences,
    wording_notice_html,
)


@dataclass
class TurnView:
    """What the transcript shows of one question and its answer."""

    turn_id: int | None  # None while the answer is streaming
    question: str
    answer: str
    record: dict = field(default_factory=dict)
    streaming: bool = False


def streaming_status(turn: TurnView) -> str:
    """The line under an answer being written: what the model is reading
    (once the sources are found, before its first word), then "Answering…"."""
    found = turn.record.get("found")
    if found and not turn.answer:
        files = len(set(found))
        passages = f"{len(found)} passage{'s' if len(found) != 1 else ''}"
        where = f"in {files} file{'s' if files != 1 else ''}"
        return f"Found {passages} {where} (see Sources); the model is reading them…"
    return "Answering…"


class QuestionBox(QPlainTextEdit):
    """Enter sends, Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt naming
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


_STYLE = f"""
<style>
  .q {{ font-weight: 600; margin-top: 14px; }}
  .meta {{ color: palette(mid); font-size: small; }}
  .snippet {{ color: gray; font-size: small; }}
  .declined {{ font-style: italic; }}
  .declined-head {{ font-weight: 600; margin-bottom: 2px; }}
  .near-head {{ font-weight: 600; margin-top: 6px; margin-bottom: 2px; }}
  .notice {{ color: #9a5b00; font-weight: 600; margin-bottom: 2px; }}
  .unsupported {{ color: {UNSUPPORTED_INK}; text-underline-style: wave; }}
  .uncited {{ color: #9a5b00; font-weight: 600; }}
  pre {{ background: rgba(127,127,127,0.12); padding: 6px; }}
  code {{ background: rgba(127,127,127,0.12); }}
</style>
"""


class ChatPanel(QWidget):
    """Transcript and question box; the main window feeds it turns."""

    send_requested = Signal(str, object)  # question, scope path or None
    stop_requested = Signal()
    regenerate_requested = Signal(int)  # turn id
    select_turn_requested = Signal(int)  # turn id: show its sources
    why_requested = Signal(int)
    copy_requested = Signal(int)
    citation_clicked = Signal(int, int)  # turn id, source number
    quote_clicked = Signal(int, int)  # turn id, index in the record's "quotes"
    nearest_clicked = Signal(int, int)  # turn id, index in a decline's "nearest"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.turns: list[TurnView] = []
        self.selected_turn: int | None = None
        self._busy = False

        self.title = QLabel("<b>New chat</b>")
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.setOpenExternalLinks(False)
        self.transcript.anchorClicked.connect(self._anchor)
        # Files dropped on the transcript go to the window, not into the text.
        self.transcript.setAcceptDrops(False)
        self.transcript.viewport().setAcceptDrops(False)

        self.question = QuestionBox()
        self.question.setPlaceholderText("Ask a question about your documents… (Enter sends, Shift+Enter for a new line)")
        self.question.setFixedHeight(72)
        self.question.setAcceptDrops(False)
        self.question.viewport().setAcceptDrops(False)
        self.question.submitted.connect(self._send)

        self.scope = QComboBox()
        self.scope.setToolTip("Ask within all documents, one folder or one file")
        self.scope.addItem("All documents", None)
        self.scope.setMinimumWidth(160)

        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.stop_button.setEnabled(False)

        # A whole-document answer reads its files in parts before it writes:
        # this says how far it got and about how long is left.
        self.progress_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(10)
        self.progress = QWidget()
        progress_row = QHBoxLayout(self.progress)
        progress_row.setContentsMargins(0, 0, 0, 0)
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.progress_bar, 1)
        self.progress.hide()
        self._progress_started: float | None = None

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Scope:"))
        controls.addWidget(self.scope, 1)
        controls.addStretch(1)
        controls.addWidget(self.stop_button)
        controls.addWidget(self.send_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.question)
        layout.addLayout(controls)

        # Tokens arrive faster than the eye: repaint at most every 50 ms.
        self._render_timer = QTimer(self, singleShot=True, interval=50)
        self._render_timer.timeout.connect(self.render)
        self.empty_html = ""
        self.render()

    # --- feeding -------------------------------------------------------------

    def set_title(self, title: str) -> None:
        self.title.setText(f"<b>{html.escape(title)}</b>")

    def set_turns(self, turns: list[TurnView]) -> None:
        self.turns = list(turns)
        self.render()

    def set_scopes(self, scopes: list[tuple[str, str]]) -> None:
        """(label, path) choices after “All documents”; keeps the current choice."""
        current = self.scope.currentData()
        self.scope.blockSignals(True)
        self.scope.clear()
        self.scope.addItem("All documents", None)
        for label, path in scopes:
            self.scope.addItem(label, path)
        index = self.scope.findData(current)
        self.scope.setCurrentIndex(max(0, index))
        self.scope.blockSignals(False)

    def set_scope(self, path: str | None) -> None:
        index = self.scope.findData(path)
        if index < 0 and path is not None:
            self.scope.addItem(path, path)
            index = self.scope.count() - 1
        self.scope.setCurrentIndex(max(0, index))

    def set_busy(self, busy: bool) -> None:
        """While an answer streams: Stop on, Send off."""
        self._busy = busy
        self.stop_button.setEnabled(busy)
        self.send_button.setEnabled(not busy)
        if not busy:
            self.hide_progress()

    def show_progress(self, label: str, done: int, total: int) -> None:
        """Show ``Reading label: done of total parts, about N s left`` with a bar."""
        if self._progress_started is None or done == 0:
            self._progress_started = time.monotonic()
        elapsed = time.monotonic() - self._progress_started
        self.progress_label.setText(progress_text(label, done, total, elapsed))
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(min(done, total))
        self.progress.show()

    def hide_progress(self) -> None:
        """Hide the reading progress (the answer is done, stopped or failed)."""
        self.progress.hide()
        self._progress_started = None

    def start_answer(self, question: str) -> None:
        self.turns.append(TurnView(None, question, "", streaming=True))
        self.render()

    def show_found(self, found: list[dict]) -> None:
        """Retrieval is done: the streaming turn says what the model is reading."""
        if self.turns and self.turns[-1].streaming:
            self.turns[-1].record["found"] = [str(item.get("path") or "") for item in found]
            self.render()

    def append_token(self, piece: str) -> None:
        if self.turns and self.turns[-1].streaming:
            self.turns[-1].answer += piece
            if not self._render_timer.isActive():
                self._render_timer.start()

    def streaming_text(self) -> str:
        return self.turns[-1].answer if self.turns and self.turns[-1].streaming else ""

    # --- rendering -----------------------------------------------------------

    def render(self) -> None:
        """Rebuild the transcript, keeping the view at the bottom if it was there."""
        bar = self.transcript.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        if not self.turns:
            body = self.empty_html or (
                "<p style='color:gray'>Ask a question about your documents. Every answer lists "
                "its sources; click a [n] to see the passage on its page.</p>"
            )
        else:
            body = "".join(self._turn_html(t) for t in self.turns)
        self.transcript.setHtml(_STYLE + body)
        if at_bottom:
            bar.setValue(bar.maximum())

    def _turn_html(self, t: TurnView) -> str:
        question = html.escape(t.question).replace("\n", "<br>")
        out = [f"<p class='q'>You: {question}</p>", self._answer_html(t)]
        if t.streaming:
            out.append(f"<p class='meta'>{html.escape(streaming_status(t))} (Esc to stop)</p>")
        elif t.turn_id is not None:
            notes = []
            if t.record.get("cached_from"):
                # Given before over the same passages and settings: Regenerate writes it again.
                when = str(t.record["cached_from"])[:16].replace("T", " ")
                notes.append(f"cached, from {when} UTC")
            if t.record.get("stopped"):
                notes.append("stopped")
            if t.record.get("declined"):
                if "searched" not in t.record:  # an older decline, without the nearest passages
                    notes.append("not found in your documents")
            elif not t.record.get("citations"):
                # Said on a line of its own, in colour: nothing backs this answer.
                out.append("<p class='uncited'>⚠ This answer cites none of your documents: "
                           "nothing shown here backs it. Check it before relying on it.</p>")
            elif all(c.get("inferred") for c in t.record["citations"]):
                notes.append("sources matched to the answer (the model wrote no [n] markers)")
            # What the checks changed or noticed: markers taken out (invented
            # numbers, unsupported claims), a long file sampled, an injection.
            notes += [str(f) for f in t.record.get("flags") or []]
            cites = t.record.get("citations", [])
            if cites:
                items = " · ".join(
                    f"<a href='cite:{t.turn_id}:{c['n']}'>[{c['n']}]</a> {html.escape(citation_place(c))}"
                    for c in cites
                )
                out.append(f"<p class='meta'>Sources: {items}</p>")
            marker = "▶ " if t.turn_id == self.selected_turn else ""
            links = " · ".join(
                f"<a href='action:{name}:{t.turn_id}'>{label}</a>"
                for name, label in (("sources", "Sources"), ("why", "Why this answer"),
                                    ("copy", "Copy"), ("regenerate", "Regenerate"))
            )
            note = f" — {html.escape('; '.join(notes))}" if notes else ""
            out.append(f"<p class='meta'>{marker}{links}{note}</p>")
        return "".join(out)

    def _answer_html(self, t: TurnView) -> str:
        """The answer itself, with what backs it up.

        A decline (one that records what was searched) says so and lists the
        nearest passages. An answer shows its supporting quotes under it,
        with the sentences no cited passage says marked; when most of its
        wording is not in the documents, a notice and the quotes come first.
        """
        record = t.record
        if t.streaming or t.turn_id is None:
            text = answer_html(t.answer, 0) if t.answer else "<p class='meta'>…</p>"
            return f"<div>{text}</div>"
        if record.get("declined") and "searched" in record:
            return f"<div>{decline_html(t.turn_id, record, t.question)}</div>"
        text = answer_html(t.answer, [int(s["n"]) for s in record.get("sources", [])]) if t.answer else ""
        text = text.replace('href="cite:', f'href="cite:{t.turn_id}:')
        if record.get("declined"):
            return f"<div class='declined'>{text}</div>"
        unsupported = unsupported_sentences(record)
        if unsupported:
            text = mark_sentences(text, unsupported)
        quotes = quotes_html(t.turn_id, record)
        if record.get("wording_unsupported") and quotes:
            return f"{wording_notice_html()}{quotes}<p class='meta'>The model wrote:</p><div>{text}</div>"
        return f"<div>{text}</div>{quotes}"

    def _anchor(self, url: QUrl) -> None:
        parts = url.toString().split(":")
        if parts[0] == "cite" and len(parts) == 3:
            self.citation_clicked.emit(int(parts[1]), int(parts[2]))
        elif parts[0] in ("quote", "near") and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            signal = self.quote_clicked if parts[0] == "quote" else self.nearest_clicked
            signal.emit(int(parts[1]), int(parts[2]))
        elif parts[0] == "action" and len(parts) == 3:
            action, turn = parts[1], int(parts[2])
            {
                "sources": self.select_turn_requested,
                "why": self.why_requested,
                "copy": self.copy_requested,
                "regenerate": self.regenerate_requested,
            }[action].emit(turn)
        # Any other link is ignored: answers never open anything else.

    # --- sending -------------------------------------------------------------

    def _send(self) -> None:
        text = self.question.toPlainText().strip()
        if not text or self._busy:
            return
        self.question.clear()
        self.send_requested.emit(text, self.scope.currentData())


class ChatsList(QWidget):
    """Conversations: new, rename, delete, choose."""

    new_requested = Signal()
    rename_requested = Signal(int)
    delete_requested = Signal(int)
    chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        from PySide6.QtWidgets import QListWidget

        super().__init__(parent)
        self.setMaximumWidth(260)
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._chosen)
        self.list.itemDoubleClicked.connect(lambda item: self.rename_requested.emit(item.data(Qt.ItemDataRole.UserRole)))
        new = QPushButton("New chat")
        new.setToolTip("Start a new conversation (Ctrl+N)")
        new.clicked.connect(self.new_requested)
        rename = QPushButton("Rename")
        rename.clicked.connect(lambda: self._emit_current(self.rename_requested))
        delete = QPushButton("Delete")
        delete.clicked.connect(lambda: self._emit_current(self.delete_requested))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(QLabel("<b>Chats</b>"))
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(rename)
        row.addWidget(delete)
        layout.addWidget(new)
        layout.addLayout(row)
        self._ids: list[int] = []

    def set_conversations(self, items: list[tuple[int, str]], current: int | None) -> None:
        from PySide6.QtWidgets import QListWidgetItem

        self.list.blockSignals(True)
        self.list.clear()
        self._ids = [cid for cid, _ in items]
        for cid, title in items:
            item = QListWidgetItem(title)
            item.setData(Qt.ItemDataRole.UserRole, cid)
            item.setToolTip(title)
            self.list.addItem(item)
        if current in self._ids:
            self.list.setCurrentRow(self._ids.index(current))
        self.list.blockSignals(False)

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _chosen(self, row: int) -> None:
        if 0 <= row < len(self._ids):
            self.chosen.emit(self._ids[row])

    def _emit_current(self, signal) -> None:  # noqa: ANN001
        row = self.list.currentRow()
        if 0 <= row < len(self._ids):
            signal.emit(self._ids[row])


def chat_splitter(chats: ChatsList, panel: ChatPanel) -> QSplitter:
    """Conversations beside the transcript."""
    split = QSplitter(Qt.Orientation.Horizontal)
    split.addWidget(chats)
    split.addWidget(panel)
    split.setStretchFactor(1, 1)
    split.setSizes([150, 580])
    return split
