"""Docent's main window: library, chat, sources and audit, over three workers.

The GUI thread only paints and routes: the model worker owns llama.cpp, the
ingest worker owns parsing/embedding/storing, the chat writer owns the writes
to the conversation history, each on its own QThread. The window reads the
history through its own connection to paint it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QThread, QTimer, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__, telemetry
from app.applog import setup_logging
from app.config import APP_NAME, default_data_dir
from app.core.documents.model import LineBox
from app.core.stores.catalog import Catalog
from app.core.stores.chats import ChatStore
from app.core import observability
from app.core.library import Library
from app.errors import DataDirLocked, DocentError
from app.progress import format_eta
from app.telemetry.setup import options as trace_options
from app.resources import app_icon
from app.ui.activity_panel import ActivityPanel
from app.ui.audit_panel import AuditPanel
from app.ui.banner import Banner
from app.ui.chat_panel import ChatPanel, ChatsList, chat_splitter
from app.ui.conversations import ConversationsMixin
from app.ui.crash import install_excepthook
from app.ui.document_actions import DocumentActions
from app.ui.library_pane import LibraryPane
from app.ui.local_api import LocalApi, needs_restart
from app.ui.sources_panel import SourcesPanel
from app.ui.team_window import connect_to_team
from app.ui.theme import apply_system_theme
from app.workers.chat_worker import ChatWriter
from app.workers.ingest_worker import IngestWorker
from app.workers.model_worker import ModelWorker


_log = logging.getLogger("docent")
BUDGET_CHECK_MS = 60_000
# Settings whose change reconfigures tracing (where spans go, what they hold).
_TRACING_FIELDS = ("trace_export", "otlp_url", "trace_content")


class _Requests(QObject):
    """Signals that carry requests to the workers' threads (queued connections)."""

    ingest = Signal(list)
    reindex = Signal(list)
    remove_root = Signal(str)
    warm_up = Signal()
    load_model = Signal()
    ask = Signal(object)
    halt_ingest = Signal()
    chat_write = Signal(object)
    close_chats = Signal()


class MainWindow(ConversationsMixin, DocumentActions, QMainWindow):
    """The desktop window."""

    def __init__(self, library: Library) -> None:
        super().__init__()
        self.library = library
        self.setWindowTitle(APP_NAME)
        self.resize(1440, 880)
        self.setAcceptDrops(True)
        # Reads for painting use their own connection: WAL lets them run
        # beside the ingest worker's writes without waiting.
        self.reader = Catalog(library.paths.catalog, readonly=True)
        # Reads to paint the conversations; every write goes to the chat writer's thread.
        self.chats = ChatStore(library.paths.chats)
        self.conversation_id: int | None = None
        self._request_ids = itertools.count(1)
        self._pending: tuple[int, str, int | None] | None = None  # request id, question, turn to replace
        self.model_state = "loading"
        self._logged_model_state: str | None = None  # the last state written to docent.log
        self.ingesting = False
        self._jobs = 0
        self.last_report: dict | None = None
        self.sync_info: dict = {}
        self._warned: set[str] = set()

        self._alerting: set[str] = set()  # objectives whose fast-burn banner is up
        # Before the workers start: their answers and ingests are traced from the first.
        self._start_tracing()
        self._build_widgets()
        self._build_menu()
        self._start_workers()
        self._watch_budgets()
        self._start_local_api()
        self._load_conversations()
        if library.repair is not None:
            self.banner.show_message(library.repair.headline, details=library.repair.message,
                                     level="warning")

    # --- layout -------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.banner = Banner()
        self.library_pane = LibraryPane(self.reader)
        self.chats_list = ChatsList()
        self.chat = ChatPanel()
        self.sources = SourcesPanel()
        self.audit_panel = AuditPanel(self.library.paths.audit)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.sources, "Sources")
        self.tabs.addTab(self.audit_panel, "Audit")
        self.activity_panel = ActivityPanel(self.library.paths, lambda: self.library.settings)
        self.tabs.addTab(self.activity_panel, "Activity")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.library_pane)
        split.addWidget(chat_splitter(self.chats_list, self.chat))
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([320, 720, 400])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(split, 1)
        self.setCentralWidget(central)

        # Status bar: model state on the left, ingest progress on the right.
        self.model_label = QLabel("Model: starting…")
        self.message_label = QLabel()
        self._message_timer = QTimer(self, singleShot=True)
        self._message_timer.timeout.connect(self.message_label.clear)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v/%m files")
        self.progress_label = QLabel()
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._toggle_pause)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel_ingest)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.progress_label, self.progress, self.pause_button, self.cancel_button):
            row.addWidget(w)
        self.sync_label = QLabel("Sync: starting…")
        # The local API's address while it serves (Settings → Local API).
        self.api_label = QLabel()
        self.api_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.api_label.hide()
        self.statusBar().addWidget(self.model_label)
        self.statusBar().addWidget(self.sync_label)
        self.statusBar().addWidget(self.message_label, 1)
        self.statusBar().addPermanentWidget(box)
        self.statusBar().addPermanentWidget(self.api_label)
        self._show_progress(False)

        # Wiring.
        self.library_pane.add_folder_requested.connect(self.add_folder)
        self.library_pane.add_files_requested.connect(self.add_files)
        self.library_pane.remove_requested.connect(self.remove_root)
        self.library_pane.reindex_requested.connect(lambda p: self._start_ingest([p], reindex=True))
        self.library_pane.open_folder_requested.connect(self._open_folder)
        self.library_pane.ask_about_requested.connect(self._ask_about)
        self.chats_list.new_requested.connect(self.new_chat)
        self.chats_list.rename_requested.connect(self.rename_chat)
        self.chats_list.delete_requested.connect(self.delete_chat)
        self.chats_list.chosen.connect(self.open_chat)
        self.chat.send_requested.connect(self.ask)
        self.chat.stop_requested.connect(self.stop)
        self.chat.select_turn_requested.connect(self.show_sources)
        self.chat.why_requested.connect(self.show_why)
        self.chat.copy_requested.connect(self.copy_answer)
        self.chat.regenerate_requested.connect(self.regenerate)
        self.chat.citation_clicked.connect(self.open_citation)
        self.chat.quote_clicked.connect(self.open_quote)
        self.chat.nearest_clicked.connect(self.open_nearest)
        self.sources.open_requested.connect(self.open_passage)
        self.sources.open_external_requested.connect(self.open_external)
        self.sources.show_in_folder_requested.connect(self.show_in_folder)

        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.stop)
        QShortcut(QKeySequence.StandardKey.New, self, activated=self.new_chat)

        # The library view follows ingestion without repainting per event.
        self._refresh_timer = QTimer(self, singleShot=True, interval=400)
        self._refresh_timer.timeout.connect(self._refresh_library)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, slot, key in (
            ("Add folder…", self.add_folder, "Ctrl+O"),
            ("Add files…", self.add_files, "Ctrl+Shift+O"),
            ("Connect to team library…", lambda: connect_to_team(self), None),
            ("New chat", self.new_chat, None),
            ("Export conversation…", self.export_chat, "Ctrl+E"),
            ("Settings…", self.open_settings, "Ctrl+,"),
            ("Quit", self.close, "Ctrl+Q"),
        ):
            action = QAction(text, self)
            action.triggered.connect(slot)
            if key:
                action.setShortcut(QKeySequence(key))
            file_menu.addAction(action)
        view_menu = self.menuBar().addMenu("&View")
        activity = QAction("Activity", self)
        activity.setShortcut(QKeySequence("Ctrl+Shift+A"))
        activity.triggered.connect(self.show_activity)
        view_menu.addAction(activity)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("About Docent", self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, "About Docent",
            "Docent — ask your documents, offline.\n\nEvery answer names its sources; "
            "nothing leaves this computer.\n\nData folder: " + str(self.library.paths.root)))
        help_menu.addAction(about)

    # --- workers ------------------------------------------------------------

    def _start_workers(self) -> None:
        self.requests = _Requests()
        self.model_thread = QThread(self)
        self.model_thread.setObjectName("docent-model")
        self.model_worker = ModelWorker(self.library)
        self.model_worker.moveToThread(self.model_thread)
        self.ingest_thread = QThread(self)
        self.ingest_thread.setObjectName("docent-ingest")
        self.ingest_worker = IngestWorker(self.library)
        self.ingest_worker.moveToThread(self.ingest_thread)

        self.requests.load_model.connect(self.model_worker.load)
        self.requests.ask.connect(self.model_worker.ask)
        self.requests.warm_up.connect(self.ingest_worker.warm_up)
        self.requests.ingest.connect(self.ingest_worker.ingest)
        self.requests.reindex.connect(self.ingest_worker.reindex)
        self.requests.remove_root.connect(self.ingest_worker.remove_root)
        # Blocking: the timer must be stopped on its own thread before that thread ends.
        self.requests.halt_ingest.connect(self.ingest_worker.halt, Qt.ConnectionType.BlockingQueuedConnection)

        self.model_worker.state_changed.connect(self._model_state)
        self.model_worker.token.connect(self._token)
        self.model_worker.answered.connect(self._answered)
        self.model_worker.sources_found.connect(self._sources_found)
        self.model_worker.failed.connect(self._answer_failed)
        self.model_worker.progress.connect(self._answer_progress)
        self.ingest_worker.started.connect(self._ingest_started)
        self.ingest_worker.sync_state.connect(self._sync_state)
        self.ingest_worker.progress.connect(self._ingest_progress)
        self.ingest_worker.finished.connect(self._ingest_finished)
        self.ingest_worker.failed.connect(self._ingest_failed)
        self.ingest_worker.library_changed.connect(self._refresh_library)

        self.chats_thread = QThread(self)
        self.chats_thread.setObjectName("docent-chats")
        self.chat_writer = ChatWriter(ChatStore(self.library.paths.chats))
        self.chat_writer.moveToThread(self.chats_thread)
        self.requests.chat_write.connect(self.chat_writer.write)
        # Blocking: every write sent before it is in when the window goes.
        self.requests.close_chats.connect(self.chat_writer.close, Qt.ConnectionType.BlockingQueuedConnection)
        self.chat_writer.done.connect(self._chat_written)
        self.chat_writer.failed.connect(self._chat_write_failed)
        # An operation ended: the budgets (and the panel, when shown) may have moved.
        for signal in (self.model_worker.answered, self.model_worker.failed,
                       self.ingest_worker.finished, self.ingest_worker.failed):
            signal.connect(self._operation_ended)

        self.model_thread.start()
        self.ingest_thread.start()
        self.chats_thread.start()
        # Models load in the background: the window is usable at once.
        self.requests.warm_up.emit()
        self.requests.load_model.emit()

    def _start_local_api(self) -> None:
        """Serve the local API when the setting is on (once the window is up)."""
        self.local_api = LocalApi(self.library, self)
        self.local_api.status_changed.connect(self._api_status)
        self.local_api.problem.connect(
            lambda text, details: self.banner.show_message(text, details=details or None, level="warning"))
        s = self.library.settings
        if s.api_enabled:
            QTimer.singleShot(0, self, lambda: self.local_api.apply(True, s.api_port))

    def _api_status(self, text: str) -> None:
        self.api_label.setText(text)
        self.api_label.setVisible(bool(text))
        if self.local_api.error:
            self.api_label.setToolTip(self.local_api.error)
        else:
            self.api_label.setToolTip("Other programs on this computer can ask your documents at this "
                                      "address with an API key (Settings → Local API).")

    def shutdown(self) -> None:
        """Stop work, end the worker threads and release the data folder."""
        # First: API requests use the same model and stores as the window.
        self.local_api.close()
        self.model_worker.stop()
        self.ingest_worker.cancel()
        if self.ingest_thread.isRunning():
            self.requests.halt_ingest.emit()
        for thread in (self.model_thread, self.ingest_thread):
            thread.quit()
            thread.wait(30_000)
        self.chats_closed = True
        if self.chats_thread.isRunning():
            self.requests.close_chats.emit()
        self.chats_thread.quit()
        self.chats_thread.wait(30_000)
        self.ingest_worker.stop_sync()
        self._budget_timer.stop()
        self._stop_tracing()
        self.chats.close()
        self.reader.close()
        self.library.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def flash(self, text: str, ms: int = 8000) -> None:
        """A short-lived note in the status bar."""
        self.message_label.setText("  ·  " + text)
        self._message_timer.start(ms)

    # --- library ------------------------------------------------------------

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library")
        if folder:
            self._start_ingest([folder])

    def add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add documents to the library")
        if files:
            self._start_ingest(files)

    def remove_root(self, path: str) -> None:
        answer = QMessageBox.question(
            self, "Remove from library",
            f"Remove {path} from the library?\n\nThe files stay on disk; only Docent's index of them is removed.")
        if answer == QMessageBox.StandardButton.Yes:
            self.requests.remove_root.emit(path)

    def _start_ingest(self, paths: list[str], *, reindex: bool = False) -> None:
        paths = [str(Path(p).resolve()) for p in paths]
        self._jobs += 1
        self.ingesting = True
        self._show_progress(True)
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self.progress_label.setText("Scanning…")
        (self.requests.reindex if reindex else self.requests.ingest).emit(paths)

    def _ingest_progress(self, p: dict) -> None:
        total = max(1, p["files_total"])
        # In hundredths of a file, so the bar moves while one large file (a
        # mailbox of ten thousand messages) is embedded, not only between files.
        within = 0
        if p.get("to_embed", 0) > 0 and p["files_done"] < total:
            within = min(99, 100 * p.get("embedded", 0) // p["to_embed"])
        self.progress.setRange(0, total * 100)
        self.progress.setValue(p["files_done"] * 100 + within)
        self.progress.setFormat(f"{p['files_done']}/{p['files_total']} files")
        name = Path(p["current"]).name if p["current"] else ""
        if p.get("detail"):
            name += f" ({p['detail']})"
        self.progress_label.setText(
            f"{p['files_done']}/{p['files_total']} files · {p['chunks_done']} chunks · "
            f"ETA {format_eta(p['eta_s'])} · {name}")
        self.library_pane.indexing_path = p["current"]
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _ingest_started(self, what: str, own: bool) -> None:
        if own:  # work the worker began by itself (the start-up check)
            self._jobs += 1
        self.ingesting = True
        self._show_progress(True)
        self.progress.setRange(0, 0)
        self.progress_label.setText(what + "…")

    def _ingest_finished(self, report: dict) -> None:
        self._jobs = max(0, self._jobs - 1)
        self.ingesting = self._jobs > 0
        self.last_report = report
        self.library_pane.indexing_path = None
        self._show_progress(self.ingesting)
        self.ingest_worker.resume()
        self.pause_button.setText("Pause")
        self._refresh_library()
        summary = (f"Indexed {report['indexed']} file(s), {report['unchanged']} unchanged, "
                   f"{report['removed']} removed")
        if report.get("cancelled"):
            summary = "Indexing cancelled — " + summary + ". Add the folder again to finish."
        self.flash(summary, 10_000)
        if report["failed"]:
            details = "\n".join(f"{f['path']}: {f['reason']}" for f in report["failed"])
            self.banner.show_message(f"{len(report['failed'])} file(s) could not be indexed.",
                                     details=details, level="warning")

    def _ingest_failed(self, message: str) -> None:
        self._jobs = max(0, self._jobs - 1)
        self.ingesting = self._jobs > 0
        self._show_progress(self.ingesting)
        self.banner.show_message("Indexing stopped with an error.", details=message, level="error")

    def _sync_state(self, state: dict) -> None:
        """Live sync in the status bar: queue, current file, last sync, warnings."""
        import time as _time

        self.sync_info = state
        if state["current"]:
            text = f"Sync: indexing {Path(state['current']).name}"
            if state["queued"]:
                text += f" · {state['queued']} queued"
        elif state["queued"]:
            text = f"Sync: {state['queued']} change(s) queued"
        elif state["last_sync"]:
            text = "Sync: up to date · last sync " + _time.strftime("%H:%M:%S", _time.localtime(state["last_sync"]))
        else:
            text = "Sync: watching"
        if state["unavailable"]:
            text += f" · {len(state['unavailable'])} folder(s) unavailable"
        if state["polling"]:
            text += " · polling"
        self.sync_label.setText(text)
        self.sync_label.setToolTip("\n".join(state["warnings"] + [f"Unavailable: {p}" for p in state["unavailable"]]))
        for warning in state["warnings"]:
            if warning not in self._warned:
                self._warned.add(warning)
                self.banner.show_message("Live sync is limited.", details=warning, level="warning")

    def _show_progress(self, visible: bool) -> None:
        for w in (self.progress, self.progress_label, self.pause_button, self.cancel_button):
            w.setVisible(visible)

    def _toggle_pause(self) -> None:
        if self.ingest_worker.paused:
            self.ingest_worker.resume()
            self.pause_button.setText("Pause")
        else:
            self.ingest_worker.pause()
            self.pause_button.setText("Resume")
            self.progress_label.setText(self.progress_label.text() + " — paused")

    def _cancel_ingest(self) -> None:
        self.ingest_worker.cancel()
        self.progress_label.setText("Cancelling…")

    def _refresh_library(self) -> None:
        self.library_pane.refresh()
        scopes: list[tuple[str, str]] = []
        for root in self.reader.roots():
            scopes.append((f"📁 {Path(root.path).name}", root.path))
        for f in self.reader.files(status="indexed"):
            scopes.append((f"    {Path(f.path).name}", f.path))
        self.chat.set_scopes(scopes)

    def _ask_about(self, path: str) -> None:
        self.chat.set_scope(path)
        self.chat.question.setFocus()

    def page_boxes(self, path: str, page: int) -> list[LineBox]:
        """Where OCR read each line of ``page`` of an indexed file, for the viewer
        (:class:`app.ui.viewer.ViewerDialog` asks its parent); none for a file
        changed since it was indexed, whose boxes would point at old text."""
        row = self.reader.file(path)
        try:
            stat = os.stat(path)
        except OSError:
            return []
        if row is None or row.size != stat.st_size or row.mtime_ns != stat.st_mtime_ns:
            return []
        return self.reader.page_boxes(row.id, page)

    # --- drag and drop --------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802, ANN001
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        paths = [p for p in paths if os.path.exists(p)]
        if paths:
            event.acceptProposedAction()
            self._start_ingest(paths)

    def _model_state(self, state: str, detail: str) -> None:
        self.model_state = state
        text = {
            "loading": f"Model: {detail}",
            "ready": f"Model: {detail} — ready",
            "answering": "Model: answering…",
            "error": "Model: not available",
        }.get(state, detail)
        self.model_label.setText(text)
        if state in ("ready", "error") and state != self._logged_model_state:
            # The log tells a bug report (and the start-up benchmark) when the model was usable.
            self._logged_model_state = state
            _log.log(logging.INFO if state == "ready" else logging.ERROR, "Model %s: %s", state, detail)
        if state == "error":
            self.banner.show_message("The model could not be loaded.", details=detail, level="error")

    # --- settings -------------------------------------------------------------

    def open_settings(self) -> None:
        from app.core.models.model_files import find_models

        found = [(f"{m.name} ({m.source})", str(m.path)) for m in find_models(data_models=self.library.paths.models)]
        dialog = self.settings_dialog(found)
        if dialog.exec():
            self.apply_settings(dialog.settings())

    def settings_dialog(self, found_models: list[tuple[str, str]] | None = None):  # noqa: ANN201 - SettingsDialog
        """The settings dialog over this window's settings, API keys and library folders."""
        from app.core.stores.keys import KeyStore
        from app.ui.settings_dialog import SettingsDialog

        folders = [r.path for r in self.reader.roots() if os.path.isdir(r.path)]
        return SettingsDialog(self.library.settings, found_models or [], self,
                              keys=KeyStore(self.library.paths.keys), folders=folders,
                              traces=self.library.paths.traces,
                              reranker_cache=self.library.paths.reranker_cache)

    def apply_settings(self, settings) -> None:  # noqa: ANN001 - app.config.Settings
        """Save and apply; the model reloads in the background when needed, and
        the local API starts, stops or restarts to follow its setting."""
        old = self.library.settings
        if self.library.apply_settings(settings):
            self.requests.load_model.emit()
        self.local_api.apply(settings.api_enabled, settings.api_port, restart=needs_restart(old, settings))
        if any(getattr(old, f) != getattr(settings, f) for f in _TRACING_FIELDS):
            self._start_tracing()  # export changes take effect now, without a restart
        self._operation_ended()  # new objectives: new budgets

    # --- activity -------------------------------------------------------------

    def _start_tracing(self) -> None:
        """Trace this window's work into its data folder (and export it where the settings say)."""
        try:
            observability.start(self.library.paths, self.library.settings)
        except DocentError as exc:
            # A bad endpoint costs the export, never the local record.
            observability.start(self.library.paths, dataclasses.replace(self.library.settings, trace_export="off"))
            QTimer.singleShot(0, self, lambda: self.banner.show_message(
                "Traces are not exported.", details=str(exc), level="warning"))

    def _stop_tracing(self) -> None:
        """Flush and stop tracing, unless another window traces now (tests open several)."""
        recorder = trace_options().recorder
        if getattr(recorder, "path", None) == self.library.paths.activity:
            telemetry.shutdown()

    def _watch_budgets(self) -> None:
        self._budget_timer = QTimer(self, interval=BUDGET_CHECK_MS)
        self._budget_timer.timeout.connect(self.check_budgets)
        self._budget_timer.start()
        self.activity_panel.budgets_changed.connect(self._budgets_read)
        self.activity_panel.reader.budgets.connect(self._budgets_read)
        QTimer.singleShot(0, self, self.check_budgets)

    def check_budgets(self) -> None:
        """Read the error budgets in the background; a fast burn raises a banner."""
        self.activity_panel.reader.check_budgets(self.library.settings)

    def _operation_ended(self, *_args: object) -> None:
        if self.activity_panel.isVisible():
            self.activity_panel.refresh()  # its read carries the budgets too
        else:
            self.check_budgets()

    def _budgets_read(self, budgets: list) -> None:
        burning = {b.objective.name: b for b in budgets if b.alert == "fast"}
        for name, b in burning.items():
            if name not in self._alerting:
                self.banner.show_message(b.message, level="warning", action=("Show activity", self.show_activity))
        # An objective that stops burning may alert again next time.
        self._alerting = set(burning)

    def show_activity(self) -> None:
        """Bring the Activity panel forward."""
        self.tabs.setCurrentWidget(self.activity_panel)
        self.activity_panel.refresh()


def launch(argv: list[str] | None = None, *, data_dir: Path | None = None) -> int:
    """Open the window on ``data_dir`` (default: the user's data folder); returns the exit code."""
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        sys.stderr.write(
            "Docent needs a screen to open its window, and none was found (no DISPLAY).\n"
            "Run it from a desktop session, or on a headless machine with `xvfb-run make run`; "
            "the command line works anywhere (docent --help).\n"
        )
        return 1
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    apply_system_theme(app)
    if app.windowIcon().isNull():
        try:
            app.setWindowIcon(QIcon(str(app_icon())))
        except FileNotFoundError:
            pass  # an incomplete install still opens, without its icon
    folder = data_dir or default_data_dir()
    log_file = setup_logging(folder)
    _log.info("Docent %s starting on %s (data folder %s)", __version__, sys.platform, folder)
    install_excepthook(log_file, parent=QApplication.activeWindow)
    try:
        library = Library(folder, purpose="the Docent window")
    except DataDirLocked as exc:
        QMessageBox.warning(None, APP_NAME, str(exc))
        return exc.exit_code
    except DocentError as exc:
        QMessageBox.critical(None, APP_NAME, str(exc))
        return exc.exit_code
    window = MainWindow(library)
    window.show()
    return app.exec()
