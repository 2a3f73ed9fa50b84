"""Keeping the library equal to the folders on disk while Docent runs.

``FolderSync`` watches each library root with watchdog. Events only note
which paths changed; a path is handled once it has been quiet for the
debounce interval *and* its size and mtime have stopped changing, so a large
copy in progress is never indexed half-written. Then it is indexed, skipped
(by the ignore rules) or removed, exactly as a reconciliation would do it;
content hashes decide whether anything must be read again, and vectors are
reused by passage hash, so renames and moves re-embed nothing.

Folder-level events (a folder renamed, moved or deleted) and a periodic
rescan reconcile the whole root, which also catches events the OS dropped.
If the OS refuses more watches (inotify's limit), that root falls back to
polling and a warning says so. A root that disappears is marked unavailable
(never purged) and picked up again when it returns.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.core.ingest.ignore import IGNORE_FILE
from app.core.ingest.indexer import Indexer, IngestReport
from app.core.paths import is_inside


_MAX_REMOVAL_DELAY_S = 10.0


@dataclass
class SyncState:
    """What the window's status bar shows about live sync."""

    queued: int = 0
    current: str | None = None
    last_sync: float | None = None  # time.time() of the last completed pass
    warnings: list[str] = field(default_factory=list)
    polling: list[str] = field(default_factory=list)  # roots watched by polling
    unavailable: list[str] = field(default_factory=list)


class FolderSync:
    """Live sync of library roots.

    Call :meth:`start` once, then :meth:`tick` regularly from the thread that
    owns the indexer (the CLI's loop or the window's ingest worker).
    """

    def __init__(
        self,
        indexer: Indexer,
        *,
        debounce_s: float = 1.0,
        rescan_s: float = 600.0,
        poll: bool = False,
        poll_interval_s: float = 2.0,
        log: Callable[[str], None] | None = None,
        only: list[Path] | None = None,
    ) -> None:
        self.indexer = indexer
        self.only = [Path(p) for p in only] if only is not None else None
        self.debounce_s = debounce_s
        self.rescan_s = rescan_s
        self.poll = poll
        self.poll_interval_s = poll_interval_s
        self._log = log or (lambda message: None)
        self._guard = threading.Lock()
        self._changed: dict[Path, float] = {}  # path -> time of its last event
        self._stat_seen: dict[Path, tuple[int, int] | None] = {}
        self._dirty_roots: dict[Path, float] = {}
        self._observers: dict[Path, object] = {}
        self._next_rescan = time.monotonic() + rescan_s
        self._next_availability = 0.0
        self.state = SyncState()
        self.wake = threading.Event()
        self._missing: set[Path] = set()
        self._started = False

    # --- watching ------------------------------------------------------------

    def roots(self) -> list[Path]:
        """The roots this sync keeps in line (all library roots unless limited)."""
        if self.only is not None:
            return list(self.only)
        return [Path(r.path) for r in self.indexer.catalog.roots()]

    def start(self) -> None:
        """Watch every library root (reconcile them first with :meth:`reconcile`)."""
        self._started = True
        for root in self.roots():
            if root.exists():
                self._watch(root)
            else:
                self._missing.add(root)

    def stop(self) -> None:
        """Stop every observer."""
        self._started = False
        for observer in list(self._observers.values()):
            observer.stop()  # type: ignore[attr-defined]
        for observer in list(self._observers.values()):
            observer.join(timeout=5)  # type: ignore[attr-defined]
        self._observers.clear()

    def _watch(self, root: Path) -> None:
        if root in self._observers or not root.exists():
            return
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        target = root if root.is_dir() else root.parent
        handler = _Handler(self, root)
        use_polling = self.poll
        if not use_polling:
            observer = Observer()
            try:
                observer.schedule(handler, str(target), recursive=root.is_dir())
                observer.start()
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                    raise
                use_polling = True
                message = (f"The system's limit on watched folders was reached; {root} is checked "
                           "by polling instead (changes show up a few seconds later). On Linux, raise "
                           "fs.inotify.max_user_watches to watch it live.")
                self.state.warnings.append(message)
                self._log(message)
        if use_polling:
            observer = PollingObserver(timeout=self.poll_interval_s)
            observer.schedule(handler, str(target), recursive=root.is_dir())
            observer.start()
            self.state.polling.append(str(root))
        self._observers[root] = observer

    def _unwatch(self, root: Path) -> None:
        observer = self._observers.pop(root, None)
        if observer is not None:
            observer.stop()  # type: ignore[attr-defined]
            observer.join(timeout=5)  # type: ignore[attr-defined]
        if str(root) in self.state.polling:
            self.state.polling.remove(str(root))

    def note(self, root: Path, path: Path, *, is_dir: bool) -> None:
        """Record a change (called from watchdog's thread)."""
        now = time.monotonic()
        with self._guard:
            if is_dir or path == root or path.name == IGNORE_FILE:
                # Folder changes, and new ignore rules, can affect many files.
                self._dirty_roots[root] = now
            elif not self.indexer.rules(root).ignores_event_path(path):
                # Temp files of an atomic save come and go within the debounce
                # interval: by the time they are due they are gone, and the
                # rename onto the real name is an event of its own.
                self._changed[path] = now
        self.wake.set()

    # --- doing -----------------------------------------------------------------

    def reconcile(self, roots: list[Path] | None = None, **kwargs: object) -> IngestReport:
        """Bring whole roots in line (start-up, folder events, periodic rescans)."""
        roots = roots if roots is not None else self.roots()
        report = self.indexer.ingest(roots, **kwargs)  # type: ignore[arg-type]
        self.state.last_sync = time.time()
        self._say(report)
        return report

    def _say(self, report: IngestReport) -> None:
        if report.indexed or report.removed or report.failed:
            self._log(f"synced: {report.indexed} indexed, {report.removed} removed, "
                      f"{len(report.failed)} failed")

    def _stable(self, path: Path) -> bool:
        """True once the file's size and mtime are the same twice in a row."""
        try:
            st = path.stat()
            now: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = None  # gone: removal needs no waiting
        before = self._stat_seen.get(path, ("unseen",))  # type: ignore[arg-type]
        self._stat_seen[path] = now
        return before == now

    def pending(self) -> int:
        with self._guard:
            return len(self._changed) + len(self._dirty_roots)

    def tick(self, should_stop: Callable[[], bool] | None = None) -> int:
        """Handle what is due; returns how many paths were handled."""
        now = time.monotonic()
        self._check_availability(now)
        with self._guard:
            roots_due = [r for r, t in self._dirty_roots.items() if now - t >= self.debounce_s]
            for r in roots_due:
                del self._dirty_roots[r]
            quiet = [p for p, t in self._changed.items() if now - t >= self.debounce_s]
        if now >= self._next_rescan:
            roots_due = self.roots()
            self._next_rescan = now + self.rescan_s
        handled = 0
        if roots_due:
            self.reconcile(roots_due, should_stop=should_stop)
            handled += len(roots_due)
        stable = {p: self._stable(p) for p in quiet}
        due = [p for p in quiet if stable[p] and p.exists()]
        # Removals wait while new or changed files are still settling: a moved
        # file must find its old passages' vectors still stored (so nothing is
        # embedded again) before the old name is removed. They wait a bounded
        # time, so a file that never stops changing cannot hold them forever.
        with self._guard:
            settling = any(now - t < self.debounce_s for t in self._changed.values())
        settling = settling or any(not ok and p.exists() for p, ok in stable.items())
        for p in quiet:
            if stable[p] and not p.exists():
                with self._guard:
                    waited = now - self._changed.get(p, now)
                if not settling or waited > self.debounce_s + _MAX_REMOVAL_DELAY_S:
                    due.append(p)
        report = IngestReport()
        for path in due:
            if should_stop is not None and should_stop():
                break
            with self._guard:
                if self._changed.get(path, now + 1) > now:
                    continue  # changed again meanwhile: wait for it to settle
                del self._changed[path]
            self._stat_seen.pop(path, None)
            self.state.current = str(path)
            before = _stat(path)
            failures = len(report.failed)
            self.indexer.update_path(path, report)
            if len(report.failed) > failures and _stat(path) != before:
                # It failed while still being written: try again once it settles.
                report.failed.pop()
                with self._guard:
                    self._changed[path] = time.monotonic()
            handled += 1
        self.state.current = None
        if due:
            self.state.last_sync = time.time()
            self._say(report)
        self.state.queued = self.pending()
        return handled

    def refresh_roots(self) -> None:
        """Follow the library's roots now (call right after adding or removing one)."""
        self._next_availability = 0.0
        self._check_availability(time.monotonic())

    def _check_availability(self, now: float) -> None:
        """Watch new roots, drop removed ones, mark vanished roots unavailable
        and pick returning ones up again."""
        if now < self._next_availability:
            return
        self._next_availability = now + 2.0
        roots = self.roots()
        for gone in [r for r in self._observers if r not in roots]:
            self._unwatch(gone)  # removed from the library
        for root in roots:
            if root.exists() and self._started and root not in self._observers and root not in self._missing:
                self._watch(root)  # added to the library since start()
            if root.exists() and root in self._missing:
                self._missing.discard(root)
                if self._started:
                    self._watch(root)
                with self._guard:
                    self._dirty_roots[root] = 0.0  # back: reconcile it now
            elif not root.exists() and root not in self._missing:
                self._missing.add(root)
                self._unwatch(root)
                with self._guard:
                    self._dirty_roots[root] = 0.0  # gone: mark its files unavailable
        self.state.unavailable = sorted(str(r) for r in self._missing)

    def run(self, should_stop: Callable[[], bool], *, interval_s: float = 0.2) -> None:
        """Reconcile, then follow changes until ``should_stop()`` (the CLI's ``watch``)."""
        self.reconcile(should_stop=should_stop)
        self.start()
        try:
            while not should_stop():
                self.wake.wait(timeout=interval_s)
                self.wake.clear()
                self.tick(should_stop)
        finally:
            self.stop()


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return None


class _Handler:
    """watchdog handler: turns events into :meth:`FolderSync.note` calls."""

    def __init__(self, sync: FolderSync, root: Path) -> None:
        self.sync = sync
        self.root = root

    def dispatch(self, event: object) -> None:
        kind = getattr(event, "event_type", "")
        if kind in ("opened", "closed_no_write"):
            return
        is_dir = bool(getattr(event, "is_directory", False))
        if is_dir and kind == "modified":
            return  # a folder's listing changed: its files' own events say how
        for attr in ("src_path", "dest_path"):
            raw = getattr(event, attr, "")
            if raw:
                path = Path(raw.decode() if isinstance(raw, bytes) else raw)
                if is_inside(path, self.root):
                    self.sync.note(self.root, path, is_dir=is_dir)
