"""The team window: a team library's folders, chat, sources and audit, from its server.

Everything shown comes from the server, within what the user's key may read:
the folders and their files' statuses (read-only for readers), answers
streamed as they are written with their numbered sources, the cited page's
indexed text with the passage highlighted, and the user's own audit
records. The connection's state is always in the status bar.

A dropped connection never loses the chat: the transcript stays, a question
that could not be sent (or whose answer was cut off) goes back into the
question box with a Retry, and the conversation carries on, with what was
said before, once the server answers again. The GUI thread only paints:
every request runs on :mod:`app.workers.team_worker`'s threads.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QColor, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTableView,
    QTextBrowser,
    QTextEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.stores.audit_tail import AuditRow
from app.core.team_client import TeamClient
from app.ui.audit_table import AuditTableModel
from app.ui.connect_dialog import ConnectDialog, start_thread
from app.workers.team_worker import CONNECTED, OFFLINE, POLL_MS, RECONNECTING, TeamAsker, TeamWorker

#: Audit records fetched for the Audit tab.
AUDIT_SHOWN = 500
# Translucent, so the text stays readable in light and dark themes.
_PASSAGE_TINT = QColor(255, 200, 0, 110)
_STATE_COLOURS = {CONNECTED: "#2e9e4f", RECONNECTING: "#d08b00", OFFLINE: "#d9534f"}


@dataclass
class Turn:
    """One question and its answer as the transcript shows it.

    ``status``: ``asking`` (being streamed), ``done``, ``stopped``, ``lost``
    (the connection dropped), ``failed`` (the server refused).
    """

    question: str
    answer: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    status: str = "asking"
    note: str = ""
    ask_id: int = 0


class _Requests(QObject):
    """Signals carrying requests to the workers' threads (queued connections)."""

    poll = Signal()
    start = Signal()
    page = Signal(object)
    audit = Signal(int)
    add_folder = Signal(str)
    ask = Signal(int, str, list)
    close_watch = Signal()
    close_asker = Signal()


def _name(path: str) -> str:
    """A server path's last part, whichever system the server runs."""
    return PurePath(path.replace("\\", "/")).name or path


def _inside(path: str, folder: str) -> bool:
    """Whether the server path ``path`` is ``folder`` or under it (either separator)."""
    if path == folder:
        return True
    folder = folder.rstrip("/\\")
    return path.startswith(folder + "/") or path.startswith(folder + "\\")


def source_label(source: dict[str, Any]) -> str:
    """``[n] file, p. 3`` (or the attachment) for a source of an answer."""
    where = _name(str(source.get("path", "")))
    if source.get("attachment"):
        where += f" › {source['attachment']}"
    page = source.get("label") or source.get("page")
    if page is not None:
        where += f", p. {page}"
    return f"[{source.get('n', '?')}] {where}"


def passage_span(source: dict[str, Any], page: dict[str, Any]) -> tuple[int, int] | None:
    """Where the cited passage lies in the page's text, or None if it cannot be placed.

    The page's ``passages`` give each stored passage's span in the page's
    text; the source's own ``span`` is on the document's page (it may cover
    lesser passages it was widened to), so the offset between the two frames
    comes from the matching passage.
    """
    text = str(page.get("text", ""))
    span = source.get("span")
    for p in page.get("passages") or []:
        if p.get("id") != source.get("chunk_id"):
            continue
        if isinstance(span, list) and len(span) == 2:
            base = int(span[0]) - int(p["start"])
            lo, hi = int(span[0]) - base, int(span[1]) - base
            if 0 <= lo < hi <= len(text):
                return lo, hi
        return int(p["start"]), int(p["end"])
    found = text.find(str(source.get("text", "")).strip()[:200]) if source.get("text") else -1
    if found >= 0:
        return found, found + len(str(source["text"]).strip())
    return None


class TeamWindow(QMainWindow):
    """A team library, through its server (see the module's description).

    Args:
        client: connected to the server with the user's key (the window owns it).
        me: ``whoami``'s answer for that key.
        poll_ms: how often the connection is checked.
    """

    def __init__(self, client: TeamClient, me: dict[str, Any], parent: QWidget | None = None,
                 poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.client = client
        self.me = me
        self.url = client.url
        self.user = str(me.get("user", "?"))
        self.role = str(me.get("role", "reader"))
        self.can_edit = bool(me.get("can_edit"))
        self.setWindowTitle(f"Docent — team library {self.url} — {self.user} ({self.role})")
        self.resize(1200, 780)

        self.state = RECONNECTING
        self.state_reason = ""
        self.turns: list[Turn] = []
        self._ask_id = 0
        self._asking: Turn | None = None
        self._page_seq = 0
        self._shown_source: dict[str, Any] | None = None
        self._closed = False

        self._build()
        self._set_state(RECONNECTING, "Connecting…")
        self._start_workers(poll_ms)

    # --- building -----------------------------------------------------------

    def _build(self) -> None:
        # The library: folders with their files' statuses.
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(6, 6, 6, 6)
        heading = QLabel(f"<b>Team library</b><br>{html.escape(self.url)}", left)
        left_layout.addWidget(heading)
        self.library_tree = QTreeWidget(left)
        self.library_tree.setHeaderLabels(["Folder / file", "Status"])
        self.library_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.library_tree.header().setStretchLastSection(False)
        left_layout.addWidget(self.library_tree, 1)
        self.library_note = QLabel(left)
        self.library_note.setWordWrap(True)
        left_layout.addWidget(self.library_note)
        self.add_folder_button: QPushButton | None = None
        if self.can_edit:
            self.add_folder_button = QPushButton("Add folder on server…", left)
            self.add_folder_button.clicked.connect(self.add_server_folder)
            left_layout.addWidget(self.add_folder_button)
            self.library_note.setText(f"You are an {self.role}: you may add folders inside "
                                      f"{', '.join(self.me.get('scopes') or []) or 'the whole library'}.")
        else:
            self.library_note.setText("Read-only: your key may ask and read, not change the library.")

        # The chat: transcript, notice (connection lost / offline), question box.
        chat = QWidget(self)
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(6, 6, 6, 6)
        self.transcript = QTextBrowser(chat)
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._anchor_clicked)
        chat_layout.addWidget(self.transcript, 1)
        notice_row = QHBoxLayout()
        self.notice = QLabel(chat)
        self.notice.setWordWrap(True)
        self.retry_button = QPushButton("Retry", chat)
        self.retry_button.clicked.connect(self.ask)
        notice_row.addWidget(self.notice, 1)
        notice_row.addWidget(self.retry_button)
        chat_layout.addLayout(notice_row)
        self._show_notice("")
        ask_row = QHBoxLayout()
        self.question_edit = QPlainTextEdit(chat)
        self.question_edit.setPlaceholderText("Ask the team library… (Ctrl+Enter)")
        self.question_edit.setFixedHeight(70)
        self.ask_button = QPushButton("Ask", chat)
        self.ask_button.clicked.connect(self.ask)
        self.stop_button = QPushButton("Stop", chat)
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        buttons = QVBoxLayout()
        buttons.addWidget(self.ask_button)
        buttons.addWidget(self.stop_button)
        ask_row.addWidget(self.question_edit, 1)
        ask_row.addLayout(buttons)
        chat_layout.addLayout(ask_row)
        QShortcut(QKeySequence("Ctrl+Return"), self.question_edit, activated=self.ask)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.stop)

        # The sources of the shown answer, and the cited page.
        side = QSplitter(Qt.Orientation.Vertical, self)
        sources_box = QWidget(side)
        sources_layout = QVBoxLayout(sources_box)
        sources_layout.setContentsMargins(6, 6, 6, 6)
        sources_layout.addWidget(QLabel("<b>Sources</b>", sources_box))
        self.sources_list = QListWidget(sources_box)
        self.sources_list.itemClicked.connect(self._source_clicked)
        self.sources_list.itemActivated.connect(self._source_clicked)
        sources_layout.addWidget(self.sources_list)
        viewer_box = QWidget(side)
        viewer_layout = QVBoxLayout(viewer_box)
        viewer_layout.setContentsMargins(6, 6, 6, 6)
        self.viewer_title = QLabel("Click a source to read its page.", viewer_box)
        self.viewer_title.setWordWrap(True)
        self.viewer = QPlainTextEdit(viewer_box)
        self.viewer.setReadOnly(True)
        viewer_layout.addWidget(self.viewer_title)
        viewer_layout.addWidget(self.viewer, 1)
        side.addWidget(sources_box)
        side.addWidget(viewer_box)
        side.setSizes([200, 500])

        chat_split = QSplitter(Qt.Orientation.Horizontal, self)
        chat_split.addWidget(chat)
        chat_split.addWidget(side)
        chat_split.setSizes([600, 400])

        # The audit tab: the user's own records.
        audit = QWidget(self)
        audit_layout = QVBoxLayout(audit)
        top = QHBoxLayout()
        self.audit_label = QLabel(f"Your audit records on {self.url}", audit)
        refresh = QPushButton("Refresh", audit)
        refresh.clicked.connect(self.refresh_audit)
        top.addWidget(self.audit_label, 1)
        top.addWidget(refresh)
        audit_layout.addLayout(top)
        self.audit_model = AuditTableModel(self)
        self.audit_table = QTableView(audit)
        self.audit_table.setModel(self.audit_model)
        self.audit_table.horizontalHeader().setStretchLastSection(True)
        self.audit_table.verticalHeader().hide()
        self.audit_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        audit_layout.addWidget(self.audit_table, 1)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(chat_split, "Chat")
        self.tabs.addTab(audit, "Audit")
        self.tabs.currentChanged.connect(self._tab_changed)

        main = QSplitter(Qt.Orientation.Horizontal, self)
        main.addWidget(left)
        main.addWidget(self.tabs)
        main.setSizes([320, 880])
        self.setCentralWidget(main)

        # Always visible: where the window stands with the server.
        self.state_label = QLabel(self)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.statusBar().addPermanentWidget(self.state_label, 1)

    def _start_workers(self, poll_ms: int) -> None:
        self.requests = _Requests()
        # The watch and the answers run on two threads: a long answer must
        # not hold up noticing that the server went away.
        self.worker = TeamWorker(self.client, poll_ms=poll_ms)
        self.asker = TeamAsker(self.client.clone())
        r, w, a = self.requests, self.worker, self.asker
        r.start.connect(w.start)
        r.poll.connect(w.poll)
        r.page.connect(w.fetch_page)
        r.audit.connect(w.fetch_audit)
        r.add_folder.connect(w.add_folder)
        r.close_watch.connect(w.close)
        r.ask.connect(a.ask)
        r.close_asker.connect(a.close)
        w.state_changed.connect(self._set_state)
        w.library_changed.connect(self._show_library)
        w.page_loaded.connect(self._page_loaded)
        w.page_failed.connect(self._page_failed)
        w.audit_loaded.connect(self._audit_loaded)
        w.audit_failed.connect(lambda m: self.audit_label.setText(m))
        w.job_queued.connect(self._job_queued)
        w.job_failed.connect(lambda m: QMessageBox.warning(self, "Add folder on server", m))
        a.token.connect(self._token)
        a.answered.connect(self._answered)
        a.failed.connect(self._ask_failed)
        a.stopped.connect(lambda _id: None)  # the window marked it stopped when Stop was pressed
        self.watch_thread = start_thread(w, "docent-team-watch")
        self.ask_thread = start_thread(a, "docent-team-ask")
        r.start.emit()

    # --- the connection -----------------------------------------------------

    def _set_state(self, state: str, reason: str) -> None:
        was = self.state
        self.state, self.state_reason = state, reason
        if state == CONNECTED:
            text = f"● Connected to {self.url} as {self.user} ({self.role})"
        elif state == RECONNECTING:
            text = "● Reconnecting…" + (f" {reason}" if reason else "")
        else:
            text = f"● Offline: {reason} Docent keeps trying."
        self.state_label.setText(text)
        self.state_label.setStyleSheet(f"color: {_STATE_COLOURS.get(state, '')};")
        if state == CONNECTED and was != CONNECTED and self.notice.isVisible():
            self._show_notice("The connection is back: press Retry to send your question.", retry=True)
        elif state != CONNECTED and self._asking is None and self.question_edit.toPlainText().strip() \
                and self.notice.isVisible():
            self._show_notice("Not connected — your question is kept; Retry once the connection is back.",
                              retry=True)

    def _show_notice(self, text: str, retry: bool = False) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self.retry_button.setVisible(retry)

    # --- the library --------------------------------------------------------

    def _show_library(self, library: dict[str, Any]) -> None:
        self.library_tree.clear()
        files = list(library.get("files") or [])
        for folder in library.get("folders") or []:
            path = str(folder.get("path", ""))
            counts = folder.get("files") or {}
            summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty"
            item = QTreeWidgetItem([_name(path) or path, summary])  # the whole path is its tooltip
            item.setToolTip(0, path)
            item.setData(0, Qt.ItemDataRole.UserRole, path)
            for f in [f for f in files if _inside(str(f.get("path", "")), path)]:
                child = QTreeWidgetItem([_name(str(f["path"])), str(f.get("status", ""))])
                tip = str(f["path"]) + (f"\n{f['reason']}" if f.get("reason") else "")
                child.setToolTip(0, tip)
                child.setToolTip(1, tip)
                child.setData(0, Qt.ItemDataRole.UserRole, f["path"])
                item.addChild(child)
            self.library_tree.addTopLevelItem(item)
            item.setExpanded(True)
        if not library.get("folders"):
            self.library_tree.addTopLevelItem(QTreeWidgetItem(["(no folders your key may read)", ""]))

    def folder_paths(self) -> list[str]:
        """The library folders shown (for tests and the Add dialog)."""
        tree = self.library_tree
        return [p for i in range(tree.topLevelItemCount())
                if (p := tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole))]

    def add_server_folder(self) -> None:
        """Editors: ask the server to index one of its folders (a path on the server)."""
        path, ok = QInputDialog.getText(self, "Add folder on server",
                                        "Folder on the server (its own absolute path):")
        if ok and path.strip():
            self.requests.add_folder.emit(path.strip())

    def _job_queued(self, job: dict[str, Any]) -> None:
        self.statusBar().showMessage(f"The server is indexing {', '.join(job.get('paths') or [])}.", 8000)

    # --- asking -------------------------------------------------------------

    def history(self) -> list[list[str]]:
        """The conversation so far as the server takes it: answered turns only."""
        return [[t.question, t.answer] for t in self.turns if t.status == "done"]

    def ask(self) -> None:
        """Send the question in the box, or keep it there while not connected."""
        question = self.question_edit.toPlainText().strip()
        if not question or self._asking is not None:
            return
        if self.state != CONNECTED:
            self._show_notice("Not connected — your question is kept; Retry once the connection is back.",
                              retry=True)
            self.requests.poll.emit()  # look again now rather than at the next tick
            return
        self._show_notice("")
        self._ask_id += 1
        turn = Turn(question, ask_id=self._ask_id)
        self.turns.append(turn)
        self._asking = turn
        self.question_edit.clear()
        self.ask_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._render()
        self.requests.ask.emit(turn.ask_id, question, self.history())

    def stop(self) -> None:
        """Stop the answer being written; what came so far stays, marked stopped."""
        turn = self._asking
        if turn is None:
            return
        self.asker.stop(turn.ask_id)
        turn.status, turn.note = "stopped", "Stopped."
        self._finish_asking()
        self._render()

    def _finish_asking(self) -> None:
        self._asking = None
        self.ask_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _current(self, ask_id: int) -> Turn | None:
        turn = self._asking
        return turn if turn is not None and turn.ask_id == ask_id else None

    def _token(self, ask_id: int, piece: str) -> None:
        turn = self._current(ask_id)
        if turn is None:
            return
        turn.answer += piece
        # Appended where the streaming answer ends (the transcript's end),
        # not re-rendered: a long answer stays cheap to stream.
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)
        self.transcript.verticalScrollBar().setValue(self.transcript.verticalScrollBar().maximum())

    def _answered(self, ask_id: int, answer: dict[str, Any]) -> None:
        turn = self._current(ask_id)
        if turn is None:
            return
        turn.answer = str(answer.get("answer", turn.answer))
        turn.sources = [s for s in answer.get("sources") or [] if isinstance(s, dict)]
        turn.status = "done"
        if answer.get("declined"):
            turn.note = "No passage in the folders you may read answers this."
            nearest = [h for h in answer.get("nearest") or [] if isinstance(h, dict)]
            if nearest and not turn.sources:
                # What was found instead, to read for oneself (numbered by rank).
                turn.sources = [{**h, "n": h.get("rank", i + 1)} for i, h in enumerate(nearest)]
                turn.note += " The nearest passages found are listed as sources."
        self._finish_asking()
        self._render()
        self._show_sources(turn)

    def _ask_failed(self, ask_id: int, message: str, connection_lost: bool) -> None:
        turn = self._current(ask_id)
        if turn is None:
            return
        turn.status = "lost" if connection_lost else "failed"
        turn.note = message
        self._finish_asking()
        # The question goes back in the box (unless the user already typed
        # another), ready to be sent again.
        if not self.question_edit.toPlainText().strip():
            self.question_edit.setPlainText(turn.question)
        if connection_lost:
            self._show_notice("Connection lost — your question is kept; Retry.", retry=True)
            self.requests.poll.emit()
        else:
            self._show_notice(f"The server could not answer: {message}", retry=True)
        self._render()

    # --- the transcript -----------------------------------------------------

    def _render(self) -> None:
        parts = []
        for i, turn in enumerate(self.turns):
            parts.append(f"<p><b>You:</b> {html.escape(turn.question)}</p>")
            if turn.status == "asking":
                continue  # streamed after the rendered text (see _token)
            answer = html.escape(turn.answer).replace("\n", "<br>")
            colour = "" if turn.status == "done" else " style='color: gray'"
            parts.append(f"<p{colour}><b>Docent:</b> {answer}</p>")
            if turn.note:
                parts.append(f"<p style='color: #b06000'><i>{html.escape(turn.note)}</i></p>")
            if turn.sources:
                links = "<br>".join(f"<a href='source:{i}:{j}'>{html.escape(source_label(s))}</a>"
                                    for j, s in enumerate(turn.sources))
                parts.append(f"<p style='margin-left: 12px'>{links}</p>")
        asking = self._asking is not None and self.turns and self.turns[-1] is self._asking
        if asking:
            parts.append("<p><b>Docent:</b> ")
        self.transcript.setHtml("".join(parts))
        if asking:
            cursor = self.transcript.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(self._asking.answer if self._asking else "")
        self.transcript.verticalScrollBar().setValue(self.transcript.verticalScrollBar().maximum())

    def transcript_text(self) -> str:
        """The transcript as plain text (what the user reads)."""
        return self.transcript.toPlainText()

    # --- sources and the page viewer ----------------------------------------

    def _show_sources(self, turn: Turn) -> None:
        self.sources_list.clear()
        for source in turn.sources:
            item = QListWidgetItem(source_label(source))
            item.setToolTip(str(source.get("text", ""))[:500])
            item.setData(Qt.ItemDataRole.UserRole, source)
            self.sources_list.addItem(item)

    def _anchor_clicked(self, url: QUrl) -> None:
        kind, _, rest = url.toString().partition(":")
        if kind != "source":
            return
        turn_i, _, source_j = rest.partition(":")
        try:
            turn = self.turns[int(turn_i)]
            source = turn.sources[int(source_j)]
        except (ValueError, IndexError):
            return
        self._show_sources(turn)
        self.open_source(source)

    def _source_clicked(self, item: QListWidgetItem) -> None:
        source = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(source, dict):
            self.open_source(source)

    def open_source(self, source: dict[str, Any]) -> None:
        """Fetch the page ``source`` lies on from the server and show it, the passage highlighted."""
        self._page_seq += 1
        request = {**source, "_seq": self._page_seq}
        self._shown_source = request
        self.viewer_title.setText(f"{source_label(source)} — loading from the server…")
        self.requests.page.emit(request)

    def _page_loaded(self, request: dict[str, Any], page: dict[str, Any]) -> None:
        if self._shown_source is None or request.get("_seq") != self._shown_source.get("_seq"):
            return  # another source was clicked meanwhile
        text = str(page.get("text", ""))
        self.viewer.setPlainText(text)
        where = str(page.get("path", request.get("path", "")))
        if page.get("attachment"):
            where += f" › {page['attachment']}"
        if page.get("page") is not None:
            where += f" — page {page['page']}" + (f" of {page['pages']}" if page.get("pages") else "")
        span = passage_span(request, page)
        if span is None:
            self.viewer.setExtraSelections([])
            self.viewer_title.setText(f"{where} (the cited passage could not be placed on the page)")
            return
        self.viewer_title.setText(where)
        cursor = QTextCursor(self.viewer.document())
        cursor.setPosition(span[0])
        cursor.setPosition(span[1], QTextCursor.MoveMode.KeepAnchor)
        highlight = QTextEdit.ExtraSelection()
        fmt = QTextCharFormat()
        fmt.setBackground(_PASSAGE_TINT)
        highlight.format = fmt  # type: ignore[attr-defined]
        highlight.cursor = cursor  # type: ignore[attr-defined]
        self.viewer.setExtraSelections([highlight])
        # Scroll so the passage is in view (its start, then its end).
        shown = QTextCursor(self.viewer.document())
        shown.setPosition(span[1])
        self.viewer.setTextCursor(shown)
        shown.setPosition(span[0])
        self.viewer.setTextCursor(shown)
        self.viewer.ensureCursorVisible()

    def _page_failed(self, request: dict[str, Any], message: str) -> None:
        if self._shown_source is None or request.get("_seq") != self._shown_source.get("_seq"):
            return
        self.viewer.setExtraSelections([])
        self.viewer.setPlainText("")
        self.viewer_title.setText(f"{source_label(request)}: {message}")

    def highlighted_text(self) -> str:
        """The text highlighted in the page viewer (the cited passage), or ''."""
        selections = self.viewer.extraSelections()
        return selections[0].cursor.selectedText().replace("\u2029", "\n") if selections else ""

    # --- the audit tab ------------------------------------------------------

    def _tab_changed(self, index: int) -> None:
        if self.tabs.tabText(index) == "Audit":
            self.refresh_audit()

    def refresh_audit(self) -> None:
        """Fetch the user's own audit records from the server."""
        self.audit_label.setText("Loading your audit records from the server…")
        self.requests.audit.emit(AUDIT_SHOWN)

    def _audit_loaded(self, data: dict[str, Any]) -> None:
        records = [r for r in data.get("records") or [] if isinstance(r, dict)]
        rows = [AuditRow(line=i + 1, record=r, raw=json.dumps(r, ensure_ascii=False))
                for i, r in enumerate(records)]
        self.audit_model.reset(rows)
        self.audit_table.scrollToBottom()
        total = data.get("total", len(records))
        self.audit_label.setText(f"{total} audit record{'s' if total != 1 else ''} of {data.get('user') or 'all users'} "
                                 f"on {self.url}" + (f" (the last {len(records)} shown)" if total > len(records) else ""))

    # --- closing ------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the answer being written and let the workers' threads end."""
        if not self._closed:
            self._closed = True
            if self._asking is not None:
                self.asker.stop(self._asking.ask_id)
            self.requests.close_watch.emit()
            self.requests.close_asker.emit()
            self.watch_thread.quit()
            self.ask_thread.quit()
        super().closeEvent(event)


def connect_to_team(parent: QWidget | None = None) -> ConnectDialog:
    """File → Connect to team library…: the dialog, then (once connected) a team window."""
    dialog = ConnectDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def connected() -> None:
        if dialog.client is not None:
            window = TeamWindow(dialog.client, dialog.me, parent)
            window.show()

    dialog.accepted.connect(connected)
    dialog.open()
    return dialog
