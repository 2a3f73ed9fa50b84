"""Durable file operations: a write, a rename or a move that survives a crash.

One place for the few rules every store and the settings follow: write to a
temporary file beside the target, flush and fsync it, rename it over the
target, then fsync the folder so the rename itself is on disk. A crash
leaves either the old file or the new one, never half of one.

This module imports nothing of Docent, so ``app.config`` (below the core)
and the stores can both use it.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (POSIX; a no-op on Windows,
    which cannot open a folder this way and does not need it)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace(src: Path, dst: Path) -> None:
    """``os.replace``, retried briefly on Windows, where a reader holding ``dst``
    open makes the rename fail for a moment (POSIX renames never wait on readers)."""
    for attempt in range(5):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 4:
                raise
            time.sleep(0.01)


def atomic_write_bytes(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` atomically and durably.

    Raises:
        OSError: it could not be written; the temporary file is removed and
            the old ``path`` (if any) is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    if sync_dir:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, sync_dir: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"), sync_dir=sync_dir)


def durable_move(src: Path, dst: Path) -> None:
    """Move a file or folder, also across file systems, without ever losing the source.

    A rename where it can (atomic); across file systems (a folder on a mount
    of its own) ``shutil.move`` copies and then removes. Both folders are
    synced afterwards.
    """
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(str(src), str(dst))
    fsync_dir(Path(dst).parent)
    fsync_dir(Path(src).parent)
