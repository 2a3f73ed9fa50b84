"""The server's one writer thread: live sync plus the folder changes users ask for.

``docent serve`` keeps its library's folders in sync, and editors add,
remove and re-index folders over the API. Both write the catalog, the vectors
and the keyword index; doing it all on one thread keeps the crash-safe ingest
protocol exactly as it is for the window and the command line (one writer, one
file at a time) without locks in the stores. A request to change the library
becomes a :class:`LibraryJob` that the caller can follow; sync work waits
between jobs, and a job waits at most for the file being indexed.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.ingest.maintenance import mark_for_reindex, remove_paths
from app.core.ingest.sync import FolderSync
from app.core.library import Library
from app.core.stores.audit import attributed
from app.errors import DocentError

log = logging.getLogger(__name__)

#: What a job may do.
KINDS = ("add", "remove", "reindex")
#: Finished jobs kept for ``GET /v1/library/jobs``.
_KEPT = 50


@dataclass
class LibraryJob:
    """One change to the library asked for over the API, as its caller follows it.

    Attributes:
        state: ``queued``, ``running``, ``done`` or ``failed``.
        result: the ingest or removal report (files, chunks, failures).
    """

    id: int
    kind: str
    paths: list[str]
    user: str
    state: str = "queued"
    queued_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    #: Who asked, as the audit log records it (key and address).
    client: dict[str, Any] | None = field(default=None, repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {"id": self.id, "kind": self.kind, "paths": list(self.paths), "user": self.user,
                "state": self.state, "queued_at": self.queued_at, "finished_at": self.finished_at,
                "result": self.result, "error": self.error, "progress": dict(self.progress)}


class LibraryKeeper:
    """Runs live sync and the API's library jobs on one thread.

    Args:
        library: the open writer library.
        say: where sync's notes go (the server's console).
    """

    def __init__(self, library: Library, *, say: Callable[[str], None] | None = None) -> None:
        self.library = library
        self._say = say
        self._jobs: queue.Queue[LibraryJob] = queue.Queue()
        self._all: dict[int, LibraryJob] = {}
        self._ids = itertools.count(1)
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sync: FolderSync | None = None

    # --- asked from request threads -----------------------------------------

    def submit(self, kind: str, paths: list[str], user: str, client: dict[str, Any] | None = None) -> LibraryJob:
        """Queue a change (``add``, ``remove`` or ``reindex`` of ``paths``) for ``user``."""
        if kind not in KINDS:
            raise ValueError(kind)
        job = LibraryJob(next(self._ids), kind, list(paths), user, client=client)
        with self._guard:
            self._all[job.id] = job
            finished = sorted((j for j in self._all.values() if j.finished_at), key=lambda j: j.id)
            for old in finished[:-_KEPT]:
                del self._all[old.id]
        self._jobs.put(job)
        self._wake.set()
        if self.sync is not None:
            self.sync.wake.set()
        return job

    def jobs(self) -> list[LibraryJob]:
        """Recent jobs, oldest first."""
        with self._guard:
            return sorted(self._all.values(), key=lambda j: j.id)

    def job(self, job_id: int) -> LibraryJob | None:
        with self._guard:
            return self._all.get(job_id)

    def sync_state(self) -> dict[str, Any]:
        """What live sync is doing (for the library view)."""
        if self.sync is None:
            return {"running": False}
        st = self.sync.state
        return {"running": True, "queued": self.sync.pending(), "current": st.current,
                "last_sync": st.last_sync, "unavailable": list(st.unavailable)}

    # --- the writer thread -----------------------------------------------------

    def start(self) -> threading.Thread:
        """Start the writer thread: reconcile the folders, then follow changes and jobs."""
        self._thread = threading.Thread(target=self._run, name="docent-library", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current unit of work (a file) and wait for the thread."""
        self._stop.set()
        self._wake.set()
        if self.sync is not None:
            self.sync.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _should_stop(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        lib = self.library
        try:
            self.sync = FolderSync(lib.indexer, poll=lib.settings.sync_poll,
                                   rescan_s=lib.settings.rescan_minutes * 60, log=self._say)
            if lib.catalog.roots():
                self.sync.reconcile(should_stop=self._should_stop)
            self.sync.start()
        except DocentError as exc:
            log.error("Live sync could not start: %s", exc)
            if self._say is not None:
                self._say(f"docent: live sync could not start: {exc}")
        try:
            while not self._stop.is_set():
                self._run_jobs()
                if self.sync is not None:
                    self.sync.wake.wait(timeout=0.2)
                    self.sync.wake.clear()
                    try:
                        self.sync.tick(self._should_stop)
                    except DocentError as exc:
                        log.error("Live sync: %s", exc)
                else:
                    self._wake.wait(timeout=0.2)
                    self._wake.clear()
        finally:
            if self.sync is not None:
                self.sync.stop()

    def _run_jobs(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            self._run_job(job)

    def _run_job(self, job: LibraryJob) -> None:
        job.state = "running"
        indexer = self.library.indexer

        def progress(p: Any) -> None:
            job.progress = {"files_done": p.files_done, "files_total": p.files_total,
                            "chunks_done": p.chunks_done, "current": p.current}

        try:
            # The job's records name the user who asked, as a request's do.
            with attributed(job.client or {"key": job.user}):
                if job.kind == "remove":
                    result = remove_paths(indexer, job.paths).to_json()
                else:
                    targets = job.paths
                    if job.kind == "reindex":
                        targets = mark_for_reindex(self.library.catalog, job.paths) or job.paths
                    for p in targets:
                        self.library.catalog.add_root(str(Path(p).expanduser().resolve()))
                    if self.sync is not None:
                        self.sync.refresh_roots()  # watch first: a change while indexing is not lost
                    result = indexer.ingest([Path(p) for p in targets], progress=progress,
                                            should_stop=self._should_stop).to_json()
                if self.sync is not None:
                    self.sync.refresh_roots()
            job.result, job.state = result, "done"
        except DocentError as exc:
            job.error, job.state = str(exc), "failed"
        except Exception as exc:  # noqa: BLE001 - one failed job must not end the writer thread
            log.exception("Library job %s failed", job.id)
            job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job.finished_at = time.time()
            job.done.set()
