"""The worker that owns ingestion (parse → chunk → embed → store).

Requests arrive as queued signals; progress and results leave as signals.
``cancel``, ``pause`` and ``resume`` are called from the GUI thread directly
and only flip events that the ingest loop checks between units of work.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.core.indexer import Progress
from app.core.library import Library
from app.errors import DocentError


class IngestWorker(QObject):
    """Indexes paths, removes roots, re-indexes; cancellable and pausable."""

    started = Signal(str)  # what is being done, in words
    progress = Signal(dict)  # files_done, files_total, chunks_done, current, eta_s, pages_done, pages_total
    finished = Signal(dict)  # the ingest report (ingest --json shape) + "cancelled"
    failed = Signal(str)
    library_changed = Signal()
    ready = Signal()  # the embedder and vector store are open

    def __init__(self, library: Library) -> None:
        super().__init__()
        self.library = library
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

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
        """Open the vector store and embedder before the first request needs them."""
        try:
            self.library.indexer  # noqa: B018
        except DocentError as exc:
            self.failed.emit(str(exc))
            return
        self.ready.emit()

    @Slot(list)
    def ingest(self, paths: list[str]) -> None:
        """Add ``paths`` to the library and bring them in line."""
        self._cancel.clear()
        self.started.emit(f"Indexing {len(paths)} item(s)")

        def report(p: Progress) -> None:
            self.progress.emit({
                "files_done": p.files_done, "files_total": p.files_total, "chunks_done": p.chunks_done,
                "current": p.current, "eta_s": p.eta_s, "pages_done": p.pages_done, "pages_total": p.pages_total,
            })

        try:
            result = self.library.indexer.ingest(
                [Path(p) for p in paths], progress=report, should_stop=self._should_stop
            )
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
        catalog = self.library.catalog
        for path in paths:
            prefix = path.rstrip("/") + "/"
            for f in catalog.files():
                if f.path == path or f.path.startswith(prefix):
                    catalog.mark_file(f.path, "pending", root_id=f.root_id)
        roots = [r.path for r in catalog.roots() if any(p == r.path or p.startswith(r.path.rstrip("/") + "/") for p in paths)]
        self.ingest(roots or paths)

    @Slot(str)
    def remove_root(self, path: str) -> None:
        """Take a folder (or file) out of the library: its chunks and vectors go."""
        try:
            root = self.library.catalog.root(path)
            if root is None:
                return
            files = self.library.catalog.files(root_id=root.id)
            for f in files:
                self.library.indexer.remove_file(f)
            self.library.catalog.remove_root(root.id)
            self.library.audit.append("remove_root", {"path": path, "files": len(files)})
        except DocentError as exc:
            self.failed.emit(str(exc))
        self.library_changed.emit()
