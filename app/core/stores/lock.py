"""One writer per data folder.

The window, ``docent watch`` and ``docent ingest`` all write the catalog, the
vector store and the audit log; two of them at once would corrupt the chain
and race on the index. Each takes :class:`WriterLock` first.

The lock is an OS file lock (``flock`` on POSIX, ``msvcrt.locking`` on
Windows) on ``DATA_DIR/writer.lock``. The OS drops it when the process dies,
however it dies, so a stale file never blocks anyone and no pid is ever
trusted to decide whether the folder is free. Who holds it (pid, purpose,
since) is written to ``DATA_DIR/writer.json`` purely to explain a refusal.
"""

from __future__ import annotations

import errno
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from app.durable import atomic_write_text
from app.errors import DataDirLocked, StoreError, storage_problem

LOCK_NAME = "writer.lock"
INFO_NAME = "writer.json"

# A holder() probe takes the lock for a few microseconds; a writer starting at
# that very moment retries briefly instead of refusing by mistake.
_ACQUIRE_TRIES = 5
_RETRY_PAUSE_S = 0.01

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int, *, shared: bool = False) -> bool:
        # msvcrt has no shared locks; a probe takes the same one-byte lock.
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _try_lock(fd: int, *, shared: bool = False) -> bool:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as err:
            # Some file systems answer EACCES/EAGAIN instead of EWOULDBLOCK.
            if err.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; only used to discard stale holder details."""
    if os.name != "posix":
        # os.kill(pid, 0) would terminate the process on Windows.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return True
    return True


def _read_info(data_dir: Path) -> dict[str, Any] | None:
    try:
        raw = (data_dir / INFO_NAME).read_text(encoding="utf-8")
        value = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    pid = value.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or not _pid_alive(pid):
        return None
    purpose = value.get("purpose")
    since = value.get("since")
    return {
        "pid": pid,
        "purpose": purpose if isinstance(purpose, str) else None,
        "since": since if isinstance(since, str) else None,
    }


def _real(data_dir: Path) -> Path:
    return Path(os.path.realpath(Path(data_dir).expanduser()))


class WriterLock:
    """Exclusive, non-blocking claim on a data folder for one writing process.

    Use as a context manager or call :meth:`acquire` / :meth:`release`. Two
    WriterLocks on the same folder exclude each other even inside one process.
    """

    def __init__(self, data_dir: Path, purpose: str) -> None:
        """Prepare a lock on ``data_dir``; ``purpose`` names the holder for
        others' messages, e.g. "docent ingest" or "the Docent window"."""
        self.data_dir = _real(data_dir)
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise DataDirLocked at once (it never waits for
        another writer). Creates the data folder if needed."""
        if self._fd is not None:
            raise RuntimeError("This WriterLock is already held.")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise storage_problem(err, self.data_dir) or StoreError(
                f"Cannot use the data folder {self.data_dir}: {err.strerror or err}."
            ) from err
        try:
            locked = False
            for attempt in range(_ACQUIRE_TRIES):
                if _try_lock(fd):
                    locked = True
                    break
                if attempt + 1 < _ACQUIRE_TRIES:
                    time.sleep(_RETRY_PAUSE_S)
        except OSError as err:
            os.close(fd)
            raise StoreError(
                f"Cannot lock the data folder {self.data_dir}: {err.strerror or err}."
            ) from err
        if not locked:
            os.close(fd)
            info = self.holder(self.data_dir)
            err = DataDirLocked(self._refusal(info))
            err.holder = info  # type: ignore[attr-defined]
            raise err
        self._fd = fd
        self._write_info()

    def release(self) -> None:
        """Give the folder up; harmless when not held."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        # The details go first: once unlocked, the next writer may already
        # have written its own, which must not be deleted.
        info = self.data_dir / INFO_NAME
        try:
            current = json.loads(info.read_text(encoding="utf-8"))
            if isinstance(current, dict) and current.get("pid") == os.getpid():
                info.unlink()
        except (OSError, ValueError):
            pass
        _unlock(fd)
        os.close(fd)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @staticmethod
    def holder(data_dir: Path) -> dict[str, Any] | None:
        """``{"pid", "purpose", "since"}`` of the writer holding ``data_dir``,
        or None when the folder is free. Values the holder has not written
        yet (it has just started) are None."""
        data_dir = _real(data_dir)
        try:
            fd = os.open(data_dir / LOCK_NAME, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError:
            # Cannot even look (permissions): report it held by an unknown
            # process rather than inviting a second writer.
            return {"pid": None, "purpose": None, "since": None}
        try:
            # A shared probe: it does not keep other probes out.
            if _try_lock(fd, shared=True):
                _unlock(fd)
                return None
        except OSError:
            pass
        finally:
            os.close(fd)
        # Held. The holder writes its details right after locking; give it a
        # moment if we caught it in between.
        for attempt in range(_ACQUIRE_TRIES):
            info = _read_info(data_dir)
            if info is not None:
                return info
            if attempt + 1 < _ACQUIRE_TRIES:
                time.sleep(_RETRY_PAUSE_S)
        return {"pid": None, "purpose": None, "since": None}

    # -- internals --------------------------------------------------------

    def _refusal(self, info: dict[str, Any] | None) -> str:
        who = "Another Docent process"
        if info is not None:
            parts = [p for p in (info.get("purpose"),) if p]
            if info.get("pid") is not None:
                parts.append(f"pid {info['pid']}")
            if parts:
                who += f" ({', '.join(parts)})"
        return (
            f"{who} is already using the data folder {self.data_dir}. Stop it first, "
            "or use a read-only command (status, search --mode keyword, audit verify)."
        )

    def _write_info(self) -> None:
        # Written beside the lock, not into it: on Windows the locked byte
        # range cannot be read by others. Renamed into place so a reader
        # never sees half of it. Best effort: it only explains refusals.
        info = {
            "pid": os.getpid(),
            "purpose": self.purpose,
            "since": datetime.now(timezone.utc)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        try:
            atomic_write_text(self.data_dir / INFO_NAME, json.dumps(info), sync_dir=False)
        except OSError:
            pass
