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


class StoreError(DocentError):
    """The catalog or the vector store cannot be read or written."""


class ModelError(DocentError):
    """A model (embedding or chat) cannot be loaded or run."""


class DataDirLocked(DocentError):
    """Another Docent process is the writer of this data folder."""

    exit_code = 3


class Cancelled(DocentError):
    """The user stopped the work; not a failure."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)
