"""File → Connect to team library…: the server's address and the user's key.

The check (``GET /v1/whoami``) runs on a worker thread; a refusal shows the
server's own sentence here (a wrong key: the server's 401 message), so the
user can correct the address or key without starting again. The key lives in
memory only, for as long as the team window is open: it is never written to
disk.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.team_client import TeamClient
from app.workers.team_worker import TeamConnector

# Threads whose worker may still be inside a request when its window goes:
# held here until they end, so Qt never destroys a running thread.
_LIVE_THREADS: set[QThread] = set()


def start_thread(worker: QObject, name: str) -> QThread:
    """Run ``worker`` on a new QThread that outlives its window until its last request ends.

    Stop it with ``thread.quit()``; it is released once finished.
    """
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    _LIVE_THREADS.add(thread)

    def finished() -> None:
        _LIVE_THREADS.discard(thread)
        worker.deleteLater()
        thread.deleteLater()

    thread.finished.connect(finished)
    app = QCoreApplication.instance()
    if app is not None and not app.property("docentTeamThreadsHooked"):
        # Python must not exit under a running QThread (Qt aborts): at quit,
        # give each still-running request a moment to end.
        app.setProperty("docentTeamThreadsHooked", True)
        app.aboutToQuit.connect(_end_threads)
    thread.start()
    return thread


def _end_threads() -> None:
    for thread in list(_LIVE_THREADS):
        thread.quit()
    for thread in list(_LIVE_THREADS):
        thread.wait(3000)


class _Requests(QObject):
    check = Signal(str, str)


class ConnectDialog(QDialog):
    """Asks for a team library's address and key and checks them.

    After ``accepted``: :attr:`client` is connected and :attr:`me` is
    ``whoami``'s answer (user, role, scopes, can_edit …).
    """

    def __init__(self, parent: QWidget | None = None, url: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to team library")
        self.setMinimumWidth(460)
        self.client: TeamClient | None = None
        self.me: dict[str, Any] = {}

        self.url_edit = QLineEdit(url, self)
        self.url_edit.setPlaceholderText("http://server:8731")
        self.key_edit = QLineEdit(self)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("the key your library's admin gave you")
        form = QFormLayout()
        form.addRow("Server address:", self.url_edit)
        form.addRow("Key:", self.key_edit)

        note = QLabel("The key is kept only while the team window is open; Docent does not store it on "
                      "disk. Answers come from the server's documents, within the folders your key may read.",
                      self)
        note.setWordWrap(True)
        note.setEnabled(False)  # the palette's muted text
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setObjectName("connectMessage")

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.connect_button = self.buttons.addButton("Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.connect_button.setDefault(True)
        self.buttons.accepted.connect(self.try_connect)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

        self._requests = _Requests()
        self._connector = TeamConnector()
        self._requests.check.connect(self._connector.check)
        self._connector.succeeded.connect(self._succeeded)
        self._connector.failed.connect(self._failed)
        self._thread = start_thread(self._connector, "docent-team-connect")
        self.finished.connect(lambda _result: self._thread.quit())

    def try_connect(self) -> None:
        """Check the address and key on the worker thread (the dialog stays responsive)."""
        self.connect_button.setEnabled(False)
        self.message.setStyleSheet("")
        self.message.setText(f"Connecting to {self.url_edit.text().strip()}…")
        self._requests.check.emit(self.url_edit.text(), self.key_edit.text())

    def _succeeded(self, client: TeamClient, me: dict) -> None:
        if self.result() or not self.isVisible():
            client.close()  # the dialog was cancelled meanwhile
            return
        self.client, self.me = client, me
        self.accept()

    def _failed(self, message: str) -> None:
        self.connect_button.setEnabled(True)
        self.message.setStyleSheet("color: #d9534f;")
        self.message.setText(message)
