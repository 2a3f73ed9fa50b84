"""StoreError carries a kind, so code decides on it and never on the words."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from app.errors import DISK_FULL, FAILED, READ_ONLY, StoreError, storage_problem


def test_a_full_disk_and_a_read_only_folder_have_their_kind_and_one_sentence(tmp_path: Path) -> None:
    file = tmp_path / "chats.sqlite3"
    full_os = storage_problem(OSError(errno.ENOSPC, "No space left on device"), tmp_path, file)
    full_sqlite = sqlite3.OperationalError("database or disk is full")
    full_sqlite.sqlite_errorcode = 13  # type: ignore[attr-defined]
    full_db = storage_problem(full_sqlite, tmp_path, file)
    assert full_os is not None and full_db is not None
    assert full_os.kind == full_db.kind == DISK_FULL and full_os.cannot_write
    assert str(full_os) == str(full_db)
    assert str(file) in str(full_os) and "Free some space" in str(full_os)

    read_only = storage_problem(OSError(errno.EROFS, "Read-only file system"), tmp_path, file)
    assert read_only is not None and read_only.kind == READ_ONLY and read_only.cannot_write
    assert "read-only" in str(read_only) and str(file) in str(read_only)


def test_other_errors_are_no_storage_problem(tmp_path: Path) -> None:
    assert storage_problem(OSError(errno.EACCES, "Permission denied"), tmp_path) is None
    assert storage_problem(sqlite3.DatabaseError("database disk image is malformed"), tmp_path) is None
    plain = StoreError("The catalog could not be updated.")
    assert plain.kind == FAILED and not plain.cannot_write
