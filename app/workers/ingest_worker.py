"""The worker that owns ingestion (parse → chunk → embed → store).

Requests arrive as queued signals; progress and results leave as signals.
``cancel``, ``pause`` and ``resume`` are called from the GUI thread directly
and only flip events that the ingest loop checks between units of work.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.core.ingest.report import Progress
from app.core.ingest.maintenance import mark_for_reindex, remove_root
from app.core.ingest.sync import FolderSync
from app.core.library import Library
from app.errors import DocentError


class IngestWorker(QObject):
    """Indexes paths, removes roots, re-indexes; cancellable and pausable."""

    started = Signal(str, bool)  # what is being done, in words; True when the window did not ask for it
    progress = Signal(dict)  # files_done, files_total, chunks_done, current, eta_s, pages_done, pages_total,
    # embedded, to_embed, detail (the current file's step in words: "message 4,220/10,000")
    finished = Signal(dict)  # the ingest report (ingest --json shape) + "cancelled"
    failed = Signal(str)
    library_changed = Signal()
    ready = Signal()  # the embedder and vector store are open
    sync_state = Signal(dict)  # queued, current, last_sync, warnings, polling, unavailable

    def __init__(self, library: Library) -> None:
        super().__init__()
        self.library = library
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.sync: FolderSync | None = None
        self._last_state: dict | None = None
        self._timer: QTimer | None = None

    # --- called from the GUI thread --------------------------------------

    def cancel(self) -> None:
        """Stop after the current unit of work."""
        self._cancel.set()
        self._running.set()  # a paused run must wake up to notice

    def pause(self) -> None:
        """Hold before the next unit of work until ``resume``."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _should_stop(self) -> bool:
        self._running.wait()
        return self._cancel.is_set()

    # --- slots (run on the worker thread) ---------------------------------

    @Slot()
    def warm_up(self) -> None:
        """Open the stores, bring the library in line with the disk, then watch it.

        Start-up reconciliation finds what changed, appeared or vanished
        while Docent was closed (by size and mtime; contents are read only
        when those differ), then live sync takes over.
        """
        try:
            self.library.recover()  # after a crash: catalog and vectors agree again first
            indexer = self.library.indexer
        except DocentError as exc:
            self.failed.emit(str(exc))
            return
        self.ready.emit()
        s = self.library.settings
        self.sync = FolderSync(indexer, rescan_s=s.rescan_minutes * 60, poll=s.sync_poll)
        if self.library.catalog.roots():
            self._run("Checking your library for changes", lambda stop, report: self.sync.reconcile(
                should_stop=stop, progress=report), own=True)
        try:
            self.sync.start()
        except OSError as exc:
            self.failed.emit(f"Live sync could not start: {exc}. Folders are re-checked every "
                             f"{s.rescan_minutes:g} minutes instead.")
        self._emit_sync_state()
        # The timer lives on this worker's thread, so ticks run here, between requests.
        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        if self.paused or self.sync is None:
            return
        try:
            handled = self.sync.tick()
        except DocentError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a sync error must not end the worker
            self.failed.emit(f"Live sync hit an error: {exc}")
            return
        if handled:
            self.library_changed.emit()
        self._emit_sync_state()

    def _emit_sync_state(self) -> None:
        if self.sync is None:
            return
        st = self.sync.state
        state = {"queued": self.sync.pending(), "current": st.current, "last_sync": st.last_sync,
                 "warnings": list(st.warnings), "polling": list(st.polling),
                 "unavailable": list(st.unavailable)}
        if state != self._last_state:
            self._last_state = state
            self.sync_state.emit(state)

    @Slot(list)
    def ingest(self, paths: list[str]) -> None:
        """Add ``paths`` to the library and bring them in line."""
        if self.sync is not None:
            # Watch first, then read: a change made while the folder is being
            # indexed is then an event in the queue, never lost.
            for p in paths:
                self.library.catalog.add_root(str(Path(p).expanduser().resolve()))
            self.sync.refresh_roots()
        self._run(f"Indexing {len(paths)} item(s)", lambda stop, report: self.library.indexer.ingest(
            [Path(p) for p in paths], progress=report, should_stop=stop))

    def _run(self, what: str, work, *, own: bool = False) -> None:  # noqa: ANN001
        """Run one ingest-like job with progress, pause and cancel."""
        self._cancel.clear()
        self.started.emit(what, own)

        def report(p: Progress) -> None:
            self.progress.emit({
                "files_done": p.files_done, "files_total": p.files_total, "chunks_done": p.chunks_done,
                "current": p.current, "eta_s": p.eta_s, "pages_done": p.pages_done, "pages_total": p.pages_total,
                "embedded": p.embedded, "to_embed": p.to_embed, "detail": p.detail(),
            })

        try:
            result = work(self._should_stop, report)
        except DocentError as exc:
            self.failed.emit(str(exc))
            self.library_changed.emit()
            return
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(f"Indexing failed unexpectedly: {exc}")
            self.library_changed.emit()
            return
        out = result.to_json()
        out["cancelled"] = result.cancelled
        self.library_changed.emit()
        self.finished.emit(out)

    @Slot(list)
    def reindex(self, paths: list[str]) -> None:
        """Read files again even if they look unchanged (e.g. after a parser update)."""
        targets = mark_for_reindex(self.library.catalog, paths)
        self.ingest(targets or paths)

    @Slot()
    def halt(self) -> None:
        """Stop the sync timer; must run on the worker's own thread (Qt's rule for timers)."""
        if self._timer is not None:
            self._timer.stop()

    def stop_sync(self) -> None:
        """Stop watching (thread-safe: watchdog observers stop from any thread)."""
        if self.sync is not None:
            self.sync.stop()

    @Slot(str)
    def remove_root(self, path: str) -> None:
        """Take a folder (or file) out of the library: its chunks and vectors go."""
        try:
            report = remove_root(self.library.indexer, path)
            if report.removed and self.sync is not None:
                self.sync.refresh_roots()
        except DocentError as exc:
            self.failed.emit(str(exc))
        self.library_changed.emit()
