"""The Local API inside the window: the server it runs, and its settings page.

With the "Local API" setting on, the window serves the same OpenAI-compatible
API as ``docent serve`` from this process, over the window's own open library:
one chat model, one embedder, one index, shared by the window and the API.
The server listens on the loopback address only, and every request needs a
key (created on the settings page; the secret is shown once, only its hash
is stored).

Nothing slow runs on the GUI thread: the service loads its models in its own
thread (they are usually loaded already, for the window), and a server is
stopped in a background thread, except when the window closes, which must
wait for it before the library closes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import config
from app.config import Settings
from app.core.library import Library
from app.core.stores.keys import ApiKey, KeyStore
from app.errors import DocentError

if TYPE_CHECKING:  # the server's libraries load only when the API is turned on
    from app.service.engine import Service
    from app.service.runner import ServerThread

_log = logging.getLogger("docent")

HOST = config.API_HOST
# Settings the running service took when it loaded (its answerer's prompt and
# relevance, the retriever, the model's name): a change restarts it.
_SERVICE_FIELDS = (
    "model_path", "n_ctx", "n_threads", "n_gpu_layers", "min_relevance", "system_prompt",
    "reranker_path", "rerank_candidates",
)
WHOLE_LIBRARY = "The whole library"


def needs_restart(old: Settings, new: Settings) -> bool:
    """Whether a running API must be restarted to follow the change from ``old`` to ``new``."""
    return any(getattr(old, f) != getattr(new, f) for f in _SERVICE_FIELDS)


# --- the server ---------------------------------------------------------------


class LocalApi(QObject):
    """Runs the local API over the window's library while the setting is on.

    Signals:
        status_changed(text): what the status bar shows ("" when the API is off).
        problem(text, details): a failure to show in the window's banner.
    """

    status_changed = Signal(str)
    problem = Signal(str, str)
    _stopped = Signal()  # from the thread that stopped a server, to the GUI thread

    def __init__(self, library: Library, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._library = library
        self._service: Service | None = None
        self._server: ServerThread | None = None
        self._loader: threading.Thread | None = None
        self._stopper: threading.Thread | None = None
        self._wanted: tuple[bool, int] = (False, config.API_PORT)
        self._port: int | None = None  # the port asked for (0: any), while running
        self._closed = False
        #: The last reason the API could not start, or None.
        self.error: str | None = None
        self.status = ""
        # Polls the service's state while it loads; stopped once it is ready or failed.
        self._poll = QTimer(self, interval=200)
        self._poll.timeout.connect(self._show_state)
        self._stopped.connect(self._after_stop, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        """Whether a server is listening."""
        return self._server is not None

    @property
    def url(self) -> str | None:
        """The OpenAI-compatible base address, e.g. ``http://127.0.0.1:8731/v1``."""
        return None if self._server is None else self._server.url + "/v1"

    def apply(self, enabled: bool, port: int, *, restart: bool = False) -> None:
        """Serve on ``port`` when ``enabled``, stop otherwise; a new port (or
        ``restart``) stops the running server and starts another."""
        if self._closed:
            return
        self._wanted = (enabled, port)
        if self._server is not None and (not enabled or port != self._port or restart):
            self._stop_in_background()
            return
        if self._stopper is not None:
            return  # _after_stop starts the wanted one once the port is free
        if enabled and self._server is None:
            self._start(port)
        elif not enabled:
            self.error = None
            self._set_status("")

    def close(self) -> None:
        """Stop serving and wait for it (the window is closing: the library goes next)."""
        self._closed = True
        self._poll.stop()
        if self._stopper is not None:
            self._stopper.join(30)
        server, service = self._server, self._service
        self._server = self._service = None
        if server is not None and service is not None:
            self._stop(server, service)
        if self._loader is not None:
            # Models still loading would outlive the library they read.
            self._loader.join(30)

    # -- starting and stopping ---------------------------------------------

    def _start(self, port: int) -> None:
        from app.service.engine import Service
        from app.service.runner import ServerThread

        service = Service(self._library, auth=True)
        try:
            server = ServerThread(service, HOST, port).start()
        except DocentError as exc:
            service.close()
            self.error = str(exc)
            _log.warning("Local API not started: %s", exc)
            self._set_status("API: not running")
            self.problem.emit(str(exc), "")
            return
        self.error = None
        self._service, self._server, self._port = service, server, port
        self._loader = service.start_loading()
        _log.info("Local API listening on %s", server.url)
        self._show_state()
        self._poll.start()

    def _stop_in_background(self) -> None:
        server, service = self._server, self._service
        self._server = self._service = self._port = None
        self._poll.stop()
        self._set_status("API: stopping…")
        assert server is not None and service is not None

        def stop() -> None:
            self._stop(server, service)
            self._stopped.emit()

        self._stopper = threading.Thread(target=stop, name="docent-api-stop", daemon=True)
        self._stopper.start()

    @staticmethod
    def _stop(server: ServerThread, service: Service) -> None:
        # The queue first: a generation in progress ends at its next token,
        # so the server is not kept waiting for it.
        service.close()
        server.stop()
        _log.info("Local API on %s stopped", server.url)

    @Slot()
    def _after_stop(self) -> None:
        self._stopper = None
        if self._closed:
            return
        enabled, port = self._wanted
        if enabled:
            self._start(port)
        else:
            self._set_status("")

    # -- status ------------------------------------------------------------

    @Slot()
    def _show_state(self) -> None:
        service = self._service
        if service is None:
            self._poll.stop()
            return
        if service.state == "loading":
            self._set_status("API: loading…")
            return
        self._poll.stop()
        if service.state == "ready":
            self._set_status(f"API: {self.url}")
        else:
            self.error = service.problem
            self._set_status("API: cannot answer")
            self.problem.emit("The local API cannot answer questions.", service.problem or "")

    def _set_status(self, text: str) -> None:
        if text != self.status:
            self.status = text
            self.status_changed.emit(text)


# --- the settings page --------------------------------------------------------


def _created(key: ApiKey) -> str:
    try:
        return datetime.fromisoformat(key.created).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return key.created


class NewKeyDialog(QDialog):
    """Asks a new key's name and what it may read."""

    def __init__(self, folders: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Create an API key")
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("e.g. open-webui or my-script")
        self.scope_combo = QComboBox(self)
        self.scope_combo.addItem(WHOLE_LIBRARY, "")
        for folder in folders:
            self.scope_combo.addItem(folder, folder)
        self.problem_label = QLabel(self)
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: rgb(218, 54, 51); font-weight: bold;")
        self.problem_label.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("&Name:", self.name_edit)
        form.addRow("&Can read:", self.scope_combo)
        form.addRow("", self.problem_label)
        form.addRow(buttons)

    def name(self) -> str:
        """The name typed."""
        return self.name_edit.text().strip()

    def scopes(self) -> tuple[str, ...]:
        """The folders the key may read; empty for the whole library."""
        folder = self.scope_combo.currentData()
        return (str(folder),) if folder else ()

    def show_problem(self, text: str) -> None:
        """Say why the key could not be made (the dialog is shown again)."""
        self.problem_label.setText(text)
        self.problem_label.show()


class SecretDialog(QDialog):
    """Shows a new key's secret, the only time it is ever shown."""

    def __init__(self, key: ApiKey, secret: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"API key {key.name}")
        self.message = QLabel(
            f"This is the key <b>{key.name}</b>. Copy it now: Docent keeps only a fingerprint of it "
            "and will not show it again. Anyone who has it can read your documents through the "
            "local API, so keep it like a password; if it gets lost, revoke it and create another.", self)
        self.message.setWordWrap(True)
        self.secret_edit = QLineEdit(secret, self)
        self.secret_edit.setReadOnly(True)
        self.secret_edit.setMinimumWidth(460)
        self.secret_edit.selectAll()
        self.copy_button = QPushButton("&Copy", self)
        self.copy_button.clicked.connect(self.copy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.secret_edit, 1)
        row.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(row)
        layout.addWidget(buttons)

    def text(self) -> str:
        """Everything the dialog says, the secret included."""
        return self.message.text() + "\n" + self.secret_edit.text()

    @Slot()
    def copy(self) -> None:
        """Put the secret on the clipboard."""
        QApplication.clipboard().setText(self.secret_edit.text())
        self.copy_button.setText("Copied")


class LocalApiPage(QWidget):
    """The settings page: on/off, the port, and the keys.

    The switch and the port are settings (saved with the dialog's OK); keys
    are made and revoked at once, since a secret is shown only when it is made.

    Args:
        keys: the data folder's keys; None hides the key list (nowhere to keep them).
        folders: the library's folders, offered as what a key may read.
    """

    def __init__(self, keys: KeyStore | None, folders: Sequence[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keys = keys
        self._folders = list(folders)
        self.enabled_check = QCheckBox("Serve an OpenAI-compatible API on this computer", self)
        self.port_spin = QSpinBox(self)
        self.port_spin.setRange(1024, 65535)
        self.port_spin.setMinimumWidth(110)
        self.port_spin.setToolTip("The port programs connect to. Choose another if a program says "
                                  f"{config.API_PORT} is in use.")
        self.explanation = QLabel(self)
        self.explanation.setWordWrap(True)
        self.explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.keys_view = QTreeWidget(self)
        self.keys_view.setHeaderLabels(["Name", "Key", "Can read", "Created"])
        self.keys_view.setRootIsDecorated(False)
        self.keys_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.keys_view.setMinimumHeight(140)
        header = self.keys_view.header()
        header.setStretchLastSection(False)
        for column in (0, 1, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.keys_note = QLabel(
            "A key is made or revoked at once, without OK. Its secret is shown only when it is made; "
            "here you see its first characters, to tell keys apart.", self)
        self.keys_note.setWordWrap(True)
        self.no_keys_label = QLabel("No keys yet: create one for each program that should use the API.", self)
        self.create_button = QPushButton("Create key…", self)
        self.revoke_button = QPushButton("Revoke", self)
        self.revoke_button.setEnabled(False)

        self.port_spin.valueChanged.connect(self._explain)
        self.create_button.clicked.connect(self.create_key)
        self.revoke_button.clicked.connect(self.revoke_selected)
        self.keys_view.itemSelectionChanged.connect(
            lambda: self.revoke_button.setEnabled(bool(self.keys_view.selectedItems())))
        self._lay_out()
        self.refresh_keys()

    def _lay_out(self) -> None:
        port_row = QHBoxLayout()
        port_row.addWidget(QLabel("&Port:", self, buddy=self.port_spin))
        port_row.addWidget(self.port_spin)
        port_row.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.revoke_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.explanation)
        layout.addWidget(self.enabled_check)
        layout.addLayout(port_row)
        layout.addSpacing(8)
        keys_title = QLabel("<b>Keys</b>", self)
        layout.addWidget(keys_title)
        layout.addWidget(self.keys_note)
        layout.addWidget(self.keys_view, 1)
        layout.addWidget(self.no_keys_label)
        layout.addLayout(buttons)
        for widget in (keys_title, self.keys_note, self.keys_view, self.no_keys_label, self.create_button,
                       self.revoke_button):
            widget.setVisible(self._keys is not None)

    # -- values ------------------------------------------------------------

    def load(self, settings: Settings) -> None:
        """Show ``settings``' switch and port."""
        self.enabled_check.setChecked(settings.api_enabled)
        self.port_spin.setValue(settings.api_port)
        self._explain()

    def values(self) -> dict[str, object]:
        """The settings this page edits, for ``dataclasses.replace``."""
        return {"api_enabled": self.enabled_check.isChecked(), "api_port": self.port_spin.value()}

    @Slot()
    def _explain(self) -> None:
        self.explanation.setText(
            "Other programs on this computer — a chat front end such as Open WebUI, a script, an editor "
            "plug-in — can ask your documents through Docent while this window is open, at "
            f"<b>http://{HOST}:{self.port_spin.value()}/v1</b>, with the same model and library. "
            "Each program needs a key of its own. Only this computer can reach the address."
        )

    # -- keys ----------------------------------------------------------------

    def refresh_keys(self) -> None:
        """List the keys (names, hints, what they read; never a secret)."""
        self.keys_view.clear()
        if self._keys is None:
            return
        try:
            keys = self._keys.list()
        except DocentError as exc:
            self.no_keys_label.setText(str(exc))
            self.no_keys_label.show()
            return
        for key in keys:
            scopes = ", ".join(key.scopes) if key.scopes else WHOLE_LIBRARY
            item = QTreeWidgetItem([key.name, key.hint + "…", scopes, _created(key)])
            item.setData(0, Qt.ItemDataRole.UserRole, key.name)
            item.setToolTip(2, scopes)
            self.keys_view.addTopLevelItem(item)
        self.no_keys_label.setText("No keys yet: create one for each program that should use the API.")
        self.no_keys_label.setVisible(not keys)
        self.revoke_button.setEnabled(bool(self.keys_view.selectedItems()))

    def key_names(self) -> list[str]:
        """The names listed, in order."""
        return [self.keys_view.topLevelItem(i).text(0) for i in range(self.keys_view.topLevelItemCount())]

    @Slot()
    def create_key(self) -> None:
        """Ask a name and a scope, make the key, and show its secret once."""
        assert self._keys is not None
        dialog = NewKeyDialog(self._folders, self)
        while dialog.exec():
            try:
                key, secret = self._keys.create(dialog.name(), scopes=dialog.scopes())
            except DocentError as exc:
                dialog.show_problem(str(exc))
                continue
            self.refresh_keys()
            SecretDialog(key, secret, self).exec()
            return

    @Slot()
    def revoke_selected(self) -> None:
        """Revoke the selected key, after asking."""
        items = self.keys_view.selectedItems()
        if not items or self._keys is None:
            return
        name = str(items[0].data(0, Qt.ItemDataRole.UserRole))
        answer = QMessageBox.question(
            self, "Revoke key",
            f"Revoke the key {name}?\n\nPrograms that use it are refused from their next request. "
            "This cannot be undone; you can create a new key instead.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            self._keys.revoke(name)
        except DocentError as exc:
            QMessageBox.warning(self, "Revoke key", str(exc))
        self.refresh_keys()

