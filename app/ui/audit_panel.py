"""The audit log, live: every record in a table, its JSON, and the chain's state.

The panel follows ``DATA_DIR/audit/audit.jsonl`` while the app (or another
Docent process) appends to it. It reads only the bytes added since its last
read, so a long log costs nothing per change; it starts over only when the
file shrank or was rewritten. Verifying the hash chain reads the whole log,
so that runs at most every few seconds, and on a worker thread once the log
is large.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import (
    QElapsedTimer,
    QFileSystemWatcher,
    QItemSelection,
    QObject,
    QThreadPool,
    QTimer,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.stores.audit import ANCHOR_NAME, LOG_NAME, AuditLog, VerifyResult
from app.core.stores.audit_tail import AuditRow, LogTail, parse_row
# Imported from here by callers that describe records as the panel does.
from app.core.stores.audit_tail import local_time, summarize  # noqa: F401
from app.durable import atomic_write_bytes
from app.errors import StoreError
from app.ui.audit_table import AuditTableModel

# --------------------------------------------------------------------------
# Verification off the GUI thread


class _VerifySignals(QObject):
    # object: a VerifyResult, or the exception verify() raised.
    done = Signal(int, object)


def _verify(folder: Path) -> VerifyResult | Exception:
    try:
        return AuditLog(folder, writable=False).verify()
    except Exception as err:  # noqa: BLE001 - shown in the status line, never lost
        return err


# --------------------------------------------------------------------------


class AuditPanel(QWidget):
    """A live view of the audit log with its chain status and an export.

    Args:
        folder: the audit folder (``DATA_DIR/audit``). It need not exist yet;
            the panel picks the log up when it appears.
    """

    #: How often the log is polled, as a fallback for a file watcher that
    #: misses changes (network drives, some editors replacing files).
    poll_interval_ms = 2000
    #: The least time between two chain verifications.
    verify_interval_ms = 3000
    #: Logs at least this big are verified on a worker thread.
    async_verify_bytes = 256 * 1024

    def __init__(self, folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = Path(folder)
        self.log_path = self.folder / LOG_NAME
        self._tail = LogTail(self.log_path)
        self._model = AuditTableModel(self)
        self._anchor_sig: tuple[int, int] | None = None
        self._last_result: VerifyResult | Exception | None = None

        self._verify_token = 0
        self._shown_token = 0
        self._verify_running = False
        self._verify_again = False
        self._since_verify = QElapsedTimer()
        self._pool = QThreadPool(self)  # its destructor waits for a running check
        self._pool.setMaxThreadCount(1)
        # Not parented: a check still running while the panel is destroyed
        # emits through it safely; the queued delivery is simply dropped.
        self._verify_signals = _VerifySignals()
        self._verify_signals.done.connect(self._on_verified)
        self._verify_timer = QTimer(self, singleShot=True)
        self._verify_timer.timeout.connect(self._request_verify)

        self._build_ui()

        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._schedule_refresh)
        self._watcher.directoryChanged.connect(self._schedule_refresh)
        # One append touches the log, the anchor and its temporary file;
        # gather those notifications into one refresh.
        self._refresh_timer = QTimer(self, singleShot=True, interval=100)
        self._refresh_timer.timeout.connect(self._refresh)
        self._poll = QTimer(self, interval=self.poll_interval_ms)
        self._poll.timeout.connect(self._refresh)
        self._poll.start()

        self._refresh()

    # -- public API -------------------------------------------------------

    def row_count(self) -> int:
        """How many log lines the table shows."""
        return self._model.rowCount()

    def status_text(self) -> str:
        """The chain status line, as shown."""
        return self.status_label.text()

    def refresh_now(self) -> None:
        """Read new records and verify the chain, synchronously."""
        self._refresh(verify=False)
        self._verify_timer.stop()
        self._verify_again = False
        self._start_verify(sync=True)

    def select_row(self, i: int) -> None:
        """Select row ``i`` (0 = the oldest record) and show it in the details."""
        self.table.selectRow(i)
        self.table.scrollTo(self._model.index(i, 0))

    def details_text(self) -> str:
        """What the details pane shows."""
        return self.details.toPlainText()

    def export_to(self, path: Path) -> int:
        """Write the log's records to ``path`` as JSON Lines; return how many.

        The lines are copied byte for byte (so each record's hash still
        verifies); a torn last line and lines that are not records are left
        out. Raises StoreError when the log or the target cannot be used.
        """
        target = Path(path)
        try:
            buf = self.log_path.read_bytes()
        except FileNotFoundError:
            buf = b""
        except OSError as err:
            raise StoreError(f"Cannot read the audit log {self.log_path}: {err.strerror or err}.") from err
        end = buf.rfind(b"\n") + 1
        lines = [line for line in buf[:end].split(b"\n")[:-1] if parse_row(0, line).record is not None]
        try:
            atomic_write_bytes(target, b"".join(line + b"\n" for line in lines))
        except OSError as err:
            raise StoreError(f"Cannot write {target}: {err.strerror or err}.") from err
        return len(lines)

    # -- building ---------------------------------------------------------

    def _build_ui(self) -> None:
        self.status_label = QLabel(self)
        self.status_label.setObjectName("AuditStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export JSONL…", self)
        self.export_button.setToolTip("Save a copy of every record, one JSON object per line.")
        self.export_button.clicked.connect(self._export_clicked)

        top = QHBoxLayout()
        top.addWidget(self.status_label, 1)
        top.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignTop)

        self.table = QTableView(self)
        self.table.setModel(self._model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        # Sizing columns to their contents looks at this many rows at most, so
        # a log of many thousand records does not make each append slower.
        header.setResizeContentsPrecision(500)
        for col in (0, 1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setPlaceholderText("Select a record to see all of it.")

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        self._set_status(None)

    # -- refreshing -------------------------------------------------------

    @Slot()
    def _schedule_refresh(self) -> None:
        self._refresh_timer.start()

    def _watch(self) -> None:
        # A path disappears from the watcher when its file is replaced or
        # removed, and a missing folder cannot be watched: re-add as they come.
        watched = set(self._watcher.files()) | set(self._watcher.directories())
        for path in (self.folder, self.log_path):
            if str(path) not in watched and path.exists():
                self._watcher.addPath(str(path))

    @Slot()
    def _refresh(self, verify: bool = True) -> None:
        self._watch()
        try:
            touched, restarted, rows = self._tail.read()
        except OSError as err:
            self._set_status(StoreError(f"Cannot read the audit log {self.log_path}: {err.strerror or err}."))
            return
        anchor = self._anchor_signature()
        changed = touched or anchor != self._anchor_sig
        self._anchor_sig = anchor
        if restarted:
            self._reload(rows)
        elif rows:
            self._append_rows(rows)
        if verify and (changed or self._last_result is None):
            self._request_verify()

    def _anchor_signature(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.folder / ANCHOR_NAME)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def _append_rows(self, rows: list[AuditRow]) -> None:
        bar = self.table.verticalScrollBar()
        # Follow new records only while the user is at the end: someone
        # reading an older record must not have it yanked away.
        follow = bar.value() >= bar.maximum() - 2
        self._model.extend(rows)
        if follow:
            self.table.scrollToBottom()

    def _reload(self, rows: list[AuditRow]) -> None:
        """Show the log from scratch, keeping the selected line where it still exists."""
        selected = self._selected_line()
        self._model.reset(rows)
        self.details.clear()
        if selected is not None:
            i = self._model.row_of_line(selected)
            if i is not None:
                self.select_row(i)
                return
        self.table.scrollToBottom()

    def _full_reload(self) -> None:
        self._tail = LogTail(self.log_path)
        try:
            _touched, _restarted, rows = self._tail.read()
        except OSError:
            return
        self._reload(rows)

    # -- verifying --------------------------------------------------------

    @Slot()
    def _request_verify(self) -> None:
        if self._verify_running:
            self._verify_again = True
            return
        wait = 0
        if self._since_verify.isValid():
            wait = self.verify_interval_ms - self._since_verify.elapsed()
        if wait <= 0:
            self._start_verify(sync=False)
        elif not self._verify_timer.isActive():
            self._verify_timer.start(int(wait))

    def _start_verify(self, *, sync: bool) -> None:
        self._verify_token += 1
        token = self._verify_token
        self._since_verify.start()
        try:
            size = self.log_path.stat().st_size
        except OSError:
            size = 0
        if sync or size < self.async_verify_bytes:
            self._on_verified(token, _verify(self.folder))
            return
        self._verify_running = True
        folder, signals = self.folder, self._verify_signals

        def job() -> None:
            signals.done.emit(token, _verify(folder))

        self._pool.start(job)

    @Slot(int, object)
    def _on_verified(self, token: int, result: object) -> None:
        if token == self._verify_token:
            self._verify_running = False
        # Results can arrive out of order (refresh_now checks synchronously
        # while a worker may still be busy): never show an older verdict.
        if token > self._shown_token:
            self._shown_token = token
            self._show_result(result)  # type: ignore[arg-type]
        if not self._verify_running and self._verify_again:
            self._verify_again = False
            self._request_verify()

    def _show_result(self, result: VerifyResult | Exception) -> None:
        previous = self._last_result
        self._last_result = result
        self._set_status(result)
        broken = result.broken_at if isinstance(result, VerifyResult) and not result.ok else None
        self._model.set_broken(broken)
        # A record edited in place (same length, nothing appended) slips past
        # the incremental reader; when the chain's verdict changes, show the
        # file as it is now.
        if isinstance(result, VerifyResult) and isinstance(previous, VerifyResult):
            if (result.ok, result.broken_at) != (previous.ok, previous.broken_at):
                self._full_reload()

    def _set_status(self, result: VerifyResult | Exception | None) -> None:
        label = self.status_label
        if result is None:
            label.setText("Checking the audit chain…")
            state, tip = "pending", ""
        elif isinstance(result, Exception):
            label.setText(f"✖ Cannot verify the audit log: {result}")
            state, tip = "broken", ""
        elif result.ok:
            n = result.records
            label.setText(f"✔ Verified — {n} record{'' if n == 1 else 's'}")
            state, tip = "ok", result.reason or ""
        else:
            label.setText(f"✖ Broken at record {result.broken_at}: {result.reason}")
            state, tip = "broken", ""
        label.setProperty("state", state)
        label.setStyleSheet(_STATUS_STYLE[state])
        label.setToolTip(tip or self._status_help)

    _status_help = (
        "Each record carries a fingerprint of itself and of the record before it, so "
        "editing, removing or reordering any record breaks the chain from that point on."
    )

    # -- selection and export ---------------------------------------------

    def _selected_line(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self._model.row(rows[0].row()).line if rows else None

    @Slot(QItemSelection, QItemSelection)
    def _selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            self.details.clear()
            return
        row = self._model.row(rows[0].row())
        if row.record is None:
            self.details.setPlainText(f"Line {row.line} is not a valid JSON record:\n\n{row.raw}")
        else:
            self.details.setPlainText(json.dumps(row.record, indent=2, ensure_ascii=False))

    @Slot()
    def _export_clicked(self) -> None:
        name, _filter = QFileDialog.getSaveFileName(
            self, "Export the audit log", str(Path.home() / "docent-audit.jsonl"),
            "JSON Lines (*.jsonl);;All files (*)",
        )
        if not name:
            return
        try:
            count = self.export_to(Path(name))
        except StoreError as err:
            QMessageBox.warning(self, "Export failed", str(err))
            return
        QMessageBox.information(
            self, "Audit log exported", f"{count} record{'' if count == 1 else 's'} written to {name}."
        )


# Tinted backgrounds with the palette's own text colour read well in light and
# dark themes alike; the coloured edge carries the state for a quick glance.
_STATUS_STYLE = {
    "ok": "QLabel#AuditStatus { background-color: rgba(46, 160, 67, 40); border-left: 4px solid "
    "rgb(46, 160, 67); padding: 6px; }",
    "broken": "QLabel#AuditStatus { background-color: rgba(218, 54, 51, 45); border-left: 4px solid "
    "rgb(218, 54, 51); padding: 6px; font-weight: bold; }",
    "pending": "QLabel#AuditStatus { background-color: rgba(128, 128, 128, 30); border-left: 4px solid "
    "rgb(128, 128, 128); padding: 6px; }",
}
