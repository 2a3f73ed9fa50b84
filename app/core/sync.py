"""Keeping the library in line with folders on disk while Docent runs.

``Watcher`` reconciles its roots first, then follows filesystem events with
watchdog. Events only mark a root as dirty; once the root has been quiet for
the debounce interval it is reconciled again, which is cheap (unchanged files
are recognised by size and mtime) and catches every kind of change the same
way: creations, edits, atomic saves, renames, moves and deletions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.core.indexer import Indexer, IngestReport


class Watcher:
    """Live sync of library roots until told to stop."""

    def __init__(
        self,
        indexer: Indexer,
        roots: list[Path],
        *,
        debounce_s: float = 1.0,
        rescan_s: float = 600.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.indexer = indexer
        self.roots = [Path(r) for r in roots]
        self.debounce_s = debounce_s
        self.rescan_s = rescan_s
        self._log = log or (lambda message: None)
        self._dirty: dict[Path, float] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self.last_sync: float | None = None

    def _root_of(self, path: str) -> Path | None:
        p = Path(path)
        for root in self.roots:
            if p == root or root in p.parents:
                return root
        return None

    def _touch(self, *paths: str) -> None:
        with self._guard:
            for path in paths:
                root = self._root_of(path)
                if root is not None:
                    self._dirty[root] = time.monotonic()
        self._wake.set()

    def sync(self, roots: list[Path]) -> IngestReport:
        """Reconcile ``roots`` now."""
        report = self.indexer.ingest(roots)
        self.last_sync = time.time()
        if report.indexed or report.removed or report.failed:
            self._log(
                f"synced: {report.indexed} indexed, {report.removed} removed, "
                f"{len(report.failed)} failed"
            )
        return report

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Reconcile, then follow changes until ``should_stop()`` is true."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                paths = [str(event.src_path)]
                dest = getattr(event, "dest_path", "")
                if dest:
                    paths.append(str(dest))
                watcher._touch(*paths)

        self._log(f"Watching {', '.join(str(r) for r in self.roots)} (Ctrl+C to stop)")
        self.sync(self.roots)
        observer = Observer()
        for root in self.roots:
            target = root if root.is_dir() else root.parent
            observer.schedule(Handler(), str(target), recursive=root.is_dir())
        observer.start()
        next_rescan = time.monotonic() + self.rescan_s
        try:
            while not should_stop():
                self._wake.wait(timeout=0.2)
                self._wake.clear()
                now = time.monotonic()
                with self._guard:
                    due = [r for r, t in self._dirty.items() if now - t >= self.debounce_s]
                    for r in due:
                        del self._dirty[r]
                if now >= next_rescan:
                    due = list(self.roots)
                    next_rescan = now + self.rescan_s
                if due:
                    self.sync(due)
        finally:
            observer.stop()
            observer.join(timeout=5)
        self._log("Stopped watching.")
