"""Docent's error hierarchy.

Every error carries a message written for a person: what went wrong, which
file, and what to do about it. The front ends (CLI, window) show ``str(err)``.
"""

from __future__ import annotations

from pathlib import Path


class DocentError(Exception):
    """Base of every error Docent raises on purpose."""

    exit_code: int = 1


class UsageError(DocentError):
    """The user asked for something that cannot work as asked."""

    exit_code = 2


class ParseError(DocentError):
    """A document could not be read; ``reason`` is short and human."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SkipFile(DocentError):
    """A file Docent deliberately does not index (unsupported type, ignored)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: skipped ({reason})")


#: What went wrong with a store, for code to act on (the message is for people).
DISK_FULL = "disk_full"  # the disk (or quota) holding the data folder is full
READ_ONLY = "read_only"  # the data folder cannot be written (read-only mount, permissions)
DAMAGED = "damaged"  # the store's files are not what they should be
MISMATCH = "mismatch"  # the store was built for other settings (another embedding model)
FAILED = "failed"  # anything else: the message says what


class StoreError(DocentError):
    """A store (catalog, vectors, conversations, audit log) cannot be read or written.

    ``kind`` says which of the cases above it is, so callers decide on it,
    never on the words of the message.
    """

    def __init__(self, message: str, *, kind: str = FAILED) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def cannot_write(self) -> bool:
        """True for a full disk or a read-only data folder: reading still works."""
        return self.kind in (DISK_FULL, READ_ONLY)


class ModelError(DocentError):
    """A model (embedding or chat) cannot be loaded or run."""


class RerankerError(ModelError):
    """The reranker folder in the settings holds no usable cross-encoder."""


class DataDirLocked(DocentError):
    """Another Docent process is the writer of this data folder."""

    exit_code = 3


class Cancelled(DocentError):
    """The user stopped the work; not a failure."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


def storage_problem(exc: BaseException, where: Path | str, file: Path | str | None = None) -> StoreError | None:
    """The StoreError for a full disk or a read-only data folder, else None.

    SQLite, Chroma and the OS each word these differently; the user needs the
    same facts whichever store hit it: what is wrong, which file, what to do,
    and that nothing is lost once it is fixed. ``where`` is the data folder,
    ``file`` the store that could not be written.
    """
    import errno

    import shutil

    text = str(exc).lower()
    err = getattr(exc, "errno", None)
    # SQLite's primary result code, where it gives one (SQLITE_FULL 13,
    # SQLITE_READONLY 8, SQLITE_IOERR 10); Chroma wraps SQLite and the OS in
    # its own exceptions and leaves only their words.
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    full = (err in (errno.ENOSPC, errno.EDQUOT) or primary == 13
            or "disk is full" in text or "no space left" in text)
    if not full and (primary == 10 or "i/o error" in text or "ioerr" in text):
        # SQLite reports a full disk while creating its journal as an I/O error.
        try:
            full = shutil.disk_usage(Path(where)).free < 1024 * 1024
        except OSError:
            pass
    what = f" ({file} could not be written)" if file is not None else ""
    if full:
        return StoreError(
            f"The disk holding Docent's data ({where}) is full{what}. Free some space and try "
            "again: nothing already saved is lost, nothing was marked indexed that is not, and "
            "indexing continues where it stopped.",
            kind=DISK_FULL,
        )
    if err == errno.EROFS or primary == 8 or "readonly database" in text or "read-only file system" in text:
        return StoreError(
            f"Docent cannot write to its data folder {where}: it is read-only{what}. Make it "
            "writable (or choose another data folder); questions about what is already "
            "indexed still work from the command line (status, search --mode keyword).",
            kind=READ_ONLY,
        )
    return None
