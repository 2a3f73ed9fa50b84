"""The workers of the team window: every request to the team server, off the GUI thread.

* :class:`TeamConnector` checks an address and key once (the Connect dialog).
* :class:`TeamWorker` watches the connection (``/health`` and ``/v1/library``
  every few seconds, saying connected / reconnecting / offline) and fetches
  pages, audit records and library changes on request.
* :class:`TeamAsker` streams answers. It has a thread of its own so a long
  answer never holds up the watch: the state stays live while a question runs.

Requests arrive as queued signals and results leave as signals, as the
local window's workers do; ``TeamAsker.stop`` is called from the GUI thread
and only records which question to drop, checked between streamed pieces.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.core.team_client import TeamClient, TeamError, TeamOffline
from app.errors import DocentError

CONNECTED = "connected"
RECONNECTING = "reconnecting"
OFFLINE = "offline"

#: Milliseconds between two looks at the server.
POLL_MS = 4000
#: Failed looks in a row after which "reconnecting" becomes "offline".
OFFLINE_AFTER = 3


def _sentence(exc: Exception) -> str:
    """What went wrong, for a person (never a traceback)."""
    if isinstance(exc, DocentError):
        return str(exc)
    return f"The team library's answer could not be read ({type(exc).__name__}: {exc})."


class TeamConnector(QObject):
    """Tries an address and key once: ``whoami`` answers, or the server's refusal."""

    succeeded = Signal(object, dict)  # the TeamClient, whoami's answer
    failed = Signal(str)  # the sentence to show in the dialog

    @Slot(str, str)
    def check(self, url: str, key: str) -> None:
        """Connect with ``key`` to ``url``; ``succeeded`` or ``failed`` follows."""
        client: TeamClient | None = None
        try:
            client = TeamClient(url, key)
            me = client.whoami()
        except Exception as exc:  # noqa: BLE001 - every failure is a sentence in the dialog
            if client is not None:
                client.close()
            self.failed.emit(_sentence(exc))
            return
        self.succeeded.emit(client, me)


class TeamWorker(QObject):
    """Watches one server and fetches what the window shows; lives on its own QThread."""

    state_changed = Signal(str, str)  # CONNECTED / RECONNECTING / OFFLINE, the reason (empty when connected)
    library_changed = Signal(dict)  # /v1/library's answer plus "files": every file the key may see
    page_loaded = Signal(object, dict)  # the request (a source), /v1/pages's answer
    page_failed = Signal(object, str)  # the request, the sentence
    audit_loaded = Signal(dict)  # /v1/audit's answer
    audit_failed = Signal(str)
    job_queued = Signal(dict)  # a library job the server accepted
    job_failed = Signal(str)

    def __init__(self, client: TeamClient, poll_ms: int = POLL_MS, offline_after: int = OFFLINE_AFTER) -> None:
        super().__init__()
        self.client = client
        self.poll_ms = poll_ms
        self.offline_after = offline_after
        self._timer: QTimer | None = None
        self._failures = 0
        self._state: tuple[str, str] | None = None
        self._library_seen: Any = None

    # --- the watch ----------------------------------------------------------

    @Slot()
    def start(self) -> None:
        """Look at the server now, then every ``poll_ms`` (the timer lives on this thread)."""
        self._timer = QTimer(self)
        self._timer.setInterval(self.poll_ms)
        self._timer.timeout.connect(self.poll)
        self._timer.start()
        self.poll()

    @Slot()
    def poll(self) -> None:
        """Check the server's health and library; the state follows."""
        try:
            self.client.health()
            library = self.client.library()
            # The files are fetched again only when the folders' counts move.
            seen = [(f.get("path"), f.get("files"), f.get("chunks")) for f in library.get("folders", [])]
            if seen != self._library_seen:
                library["files"] = self.client.files()
                self._library_seen = seen
                self.library_changed.emit(library)
        except TeamOffline as exc:
            self._failed(str(exc))
            return
        except TeamError as exc:
            if exc.status == 503:
                self._failed(f"The team library is starting or busy: {exc}")
            else:  # a refused key is not going to heal by waiting: offline at once
                self._failures = self.offline_after
                self._failed(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the watch must go on
            self._failed(_sentence(exc))
            return
        self._failures = 0
        self._set(CONNECTED, "")

    def _failed(self, reason: str) -> None:
        self._failures += 1
        # Fetch the files again on reconnecting: they may have changed meanwhile.
        self._library_seen = None
        self._set(RECONNECTING if self._failures < self.offline_after else OFFLINE, reason)

    def _set(self, state: str, reason: str) -> None:
        if (state, reason) != self._state:
            self._state = (state, reason)
            self.state_changed.emit(state, reason)

    # --- fetches ------------------------------------------------------------

    @Slot(object)
    def fetch_page(self, source: dict) -> None:
        """The page a source lies on (``path``, ``page``, ``part``), as the server indexed it."""
        try:
            page = self.client.page(str(source["path"]), source.get("page"), source.get("part"))
        except Exception as exc:  # noqa: BLE001 - shown in the viewer
            if isinstance(exc, TeamOffline):
                self.poll()
            self.page_failed.emit(source, _sentence(exc))
            return
        self.page_loaded.emit(source, page)

    @Slot(int)
    def fetch_audit(self, limit: int) -> None:
        """The user's own audit records (the last ``limit``)."""
        try:
            self.audit_loaded.emit(self.client.audit(limit))
        except Exception as exc:  # noqa: BLE001 - shown in the audit tab
            self.audit_failed.emit(_sentence(exc))

    @Slot(str)
    def add_folder(self, path: str) -> None:
        """Ask the server to index one of its folders (editors)."""
        try:
            job = self.client.add_folders([path])
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.job_failed.emit(_sentence(exc))
            return
        self.job_queued.emit(job)
        self.poll()

    @Slot()
    def close(self) -> None:
        """Stop watching and close the connections; called last, on this thread."""
        if self._timer is not None:
            self._timer.stop()
        self.client.close()


class TeamAsker(QObject):
    """Streams answers from the server, one question at a time; lives on its own QThread."""

    token = Signal(int, str)  # the question's number, a piece of the answer
    answered = Signal(int, dict)  # the question's number, the answer (ask --json shape)
    failed = Signal(int, str, bool)  # the question's number, the sentence, True when the connection dropped
    stopped = Signal(int)

    def __init__(self, client: TeamClient) -> None:
        super().__init__()
        self.client = client
        self._stop_upto = 0

    def stop(self, ask_id: int) -> None:
        """Drop question ``ask_id`` (and any before it); called from the GUI thread."""
        # A plain int write: the stream reads it between pieces.
        self._stop_upto = max(self._stop_upto, ask_id)

    @Slot(int, str, list)
    def ask(self, ask_id: int, question: str, history: list) -> None:
        """Ask ``question`` with the conversation so far (``[(question, answer), …]``)."""
        def should_stop() -> bool:
            return self._stop_upto >= ask_id

        if should_stop():
            self.stopped.emit(ask_id)
            return
        try:
            for item in self.client.ask_stream(question, [tuple(t) for t in history], should_stop):
                if isinstance(item, str):
                    self.token.emit(ask_id, item)
                else:
                    self.answered.emit(ask_id, item)
                    return
        except TeamOffline as exc:
            self.failed.emit(ask_id, str(exc), True)
            return
        except Exception as exc:  # noqa: BLE001 - the window shows it and keeps the question
            self.failed.emit(ask_id, _sentence(exc), False)
            return
        self.stopped.emit(ask_id)

    @Slot()
    def close(self) -> None:
        """Close the connections; called last, on this thread."""
        self.client.close()
