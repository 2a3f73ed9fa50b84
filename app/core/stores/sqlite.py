"""The SQLite base shared by the catalog and the conversation history.

One connection per store object, shared between threads behind one lock;
WAL, so readers in other processes run beside the writer; a busy timeout,
so a reader's short lock never fails a write; named migrations applied on
opening; write transactions that roll back on any error. A full disk or a
read-only folder reads the same whichever store hits it
(:func:`app.errors.storage_problem`), and every other SQLite error becomes a
:class:`~app.errors.StoreError` naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from app.core.stores import migrations
from app.errors import DAMAGED, StoreError, storage_problem

#: Seconds a statement waits for another connection's lock before failing.
BUSY_TIMEOUT_S = 30


def connect(path: Path, *, readonly: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A connection to ``path`` with Docent's settings.

    The writer's connection is in autocommit mode (transactions are explicit,
    see :meth:`SqliteStore._tx`), in WAL with ``synchronous=NORMAL``. A
    reader's is read-only; ``immutable`` reads the main file as it stands,
    without the WAL index (for a disk that cannot even hold that).
    """
    if readonly:
        uri = f"file:{path}?mode=ro" + ("&immutable=1" if immutable else "")
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    else:
        db = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_S,
                             isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys=ON")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    return db


def _cannot_set_up_wal(exc: sqlite3.OperationalError) -> bool:
    # SQLITE_IOERR (its extended codes) or SQLITE_CANTOPEN, from the -shm file.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (10, 14)


class SqliteStore:
    """One SQLite file: opened, migrated, locked and wrapped in transactions.

    Subclasses set :attr:`what` (how the file is named to the user),
    :attr:`MIGRATIONS` and :attr:`damaged_advice` (what to do when the file
    cannot be opened).

    Args:
        path: the database file (created with its folder when writable).
        readonly: open without writing; a missing file then reads as empty.
    """

    what = "database"
    MIGRATIONS: Sequence[migrations.Migration] = ()
    damaged_advice = "It may be damaged; move it aside."
    #: Whether reads of a closed (or not yet created, read-only) store return no rows.
    closed_reads_empty = False

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        try:
            if readonly:
                if self.path.exists():
                    self._db = connect(self.path, readonly=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = connect(self.path)
                migrations.apply(self._db, self.MIGRATIONS)
        except (sqlite3.DatabaseError, OSError) as exc:
            self.close()
            raise storage_problem(exc, self.path.parent, self.path) or StoreError(
                f"The {self.what} {self.path} cannot be opened ({exc}). {self.damaged_advice}",
                kind=DAMAGED,
            ) from exc

    def close(self) -> None:
        """Close the connection (idempotent).

        A writer first folds the WAL into the main file, so readers need
        nothing else (they fall back to it on a full disk).
        """
        with self._lock:
            if self._db is not None:
                if not self.readonly:
                    try:
                        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    except sqlite3.Error:
                        pass
                self._db.close()
                self._db = None

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"The {self.what} {self.path} is not open.")
        return self._db

    def _error(self, exc: sqlite3.Error) -> StoreError:
        """The StoreError for a failed statement: the shared sentence for a
        full disk or a read-only folder, else one naming the file."""
        return storage_problem(exc, self.path.parent, self.path) or StoreError(
            f"The {self.what} {self.path} could not be updated ({exc})."
        )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back on any error, SQLite's becoming StoreErrors."""
        with self._lock:
            db = self._require()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise self._error(exc) from exc

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Run a read; SQLite's errors propagate as they are (the caller judges them).

        A reader on a full or read-only disk cannot set up the WAL index; it
        then reads the main file as it stands (the writer folds the WAL into
        it when it closes). No file yet reads as no rows.
        """
        with self._lock:
            if self._db is None:
                if self.readonly or self.closed_reads_empty:
                    return []  # e.g. a read-only view of a store that does not exist yet
                self._require()
            assert self._db is not None
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if not (self.readonly and _cannot_set_up_wal(exc)):
                    raise
                self._db.close()
                self._db = connect(self.path, readonly=True, immutable=True)
                return self._db.execute(sql, params).fetchall()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Run a read; SQLite's errors become StoreErrors naming the file."""
        try:
            return self._rows(sql, params)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
