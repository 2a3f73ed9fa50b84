"""Answers already given, by everything that determined them (``DATA_DIR/answers.sqlite3``).

The same question over the same passages (their ids and text hashes), with
the same scope, model, sampling, prompt and defences, gets the same answer:
asking it again returns the stored one at once. The key is a hash of all of
that (see :func:`cache_key`), so any change to the library or the settings
misses by construction and nothing ever has to be invalidated.

The cache is an optimisation only: a damaged or unwritable file never stops
an answer. Any SQLite error is logged, the file is moved out of the way and
a fresh one is made at the next use; if even that fails the cache stays off
for the rest of the session.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.stores.migrations import run_script
from app.core.stores.sqlite import SqliteStore
from app.errors import StoreError

log = logging.getLogger(__name__)

#: Answers kept; the oldest go first (a few KB each).
LIMIT = 5000


def cache_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``parts`` (sorted keys, no spaces)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Cached:
    """A stored answer: its snapshot (``Answer.snapshot()``) and when it was first given."""

    record: dict[str, Any]
    created_at: str


def _m001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE answers (
            key TEXT PRIMARY KEY,
            record TEXT NOT NULL,
            created_at TEXT NOT NULL,
            seq INTEGER NOT NULL
        );
        CREATE INDEX answers_by_seq ON answers(seq);
        """
    )


class _Store(SqliteStore):
    what = "answer cache"
    MIGRATIONS = [_m001_initial]
    damaged_advice = "It is only a cache; it will be made again."


class AnswerCache:
    """Answers by key, at most ``limit`` of them, in one SQLite file.

    Safe to share between threads (the store's connection has one lock).
    ``get`` and ``put`` never raise for a storage problem: they log it and
    act as a miss / do nothing.

    Args:
        path: the ``answers.sqlite3`` file (created with its folder on first use).
        limit: how many answers to keep.
    """

    def __init__(self, path: Path, *, limit: int = LIMIT) -> None:
        self.path = Path(path)
        self.limit = limit
        self._guard = threading.Lock()
        self._store: _Store | None = None
        self._off = False  # set when the file could not even be made again

    def get(self, key: str) -> Cached | None:
        """The answer stored under ``key``, or None (also when the cache is unusable)."""
        rows = self._use(lambda s: s._rows("SELECT record, created_at FROM answers WHERE key = ?", (key,)))
        if not rows:
            return None
        try:
            record = json.loads(rows[0]["record"])
        except ValueError:
            record = None
        if not isinstance(record, dict):
            return None  # a damaged row is a miss; the next put replaces it
        return Cached(record, rows[0]["created_at"])

    def put(self, key: str, record: Mapping[str, Any]) -> str | None:
        """Store ``record`` under ``key`` (replacing any); returns its time, or None if not stored."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        text = json.dumps(record, ensure_ascii=False, default=str)

        def write(store: _Store) -> str:
            with store._tx() as db:
                db.execute(
                    "INSERT OR REPLACE INTO answers (key, record, created_at, seq) VALUES "
                    "(?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM answers))", (key, text, now))
                # Bounded: the oldest answers beyond the limit go.
                db.execute("DELETE FROM answers WHERE seq <= (SELECT MAX(seq) FROM answers) - ?", (self.limit,))
            return now

        return self._use(write)

    def __len__(self) -> int:
        rows = self._use(lambda s: s._rows("SELECT COUNT(*) AS n FROM answers"))
        return int(rows[0]["n"]) if rows else 0

    def close(self) -> None:
        """Close the file (it is opened again at the next use)."""
        with self._guard:
            if self._store is not None:
                self._store.close()
                self._store = None

    def _use(self, work: Callable[[_Store], Any]) -> Any:
        """Run ``work`` on the open store; on a storage error, start a fresh
        file and try once more, then give up quietly (None)."""
        with self._guard:
            for attempt in (1, 2):
                if self._off:
                    return None
                try:
                    if self._store is None:
                        self._store = _Store(self.path)
                    return work(self._store)
                except (sqlite3.Error, StoreError) as exc:
                    log.warning("The answer cache %s cannot be used (%s); %s", self.path, exc,
                                "starting a fresh one" if attempt == 1 else "answering without it")
                    self._discard()
                    if attempt == 2:
                        self._off = True
            return None

    def _discard(self) -> None:
        """Close the store and remove its files: it is only a cache."""
        if self._store is not None:
            try:
                self._store.close()
            except sqlite3.Error:
                pass
            self._store = None
        for suffix in ("", "-wal", "-shm"):
            try:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            except OSError as exc:
                log.warning("Cannot remove the damaged answer cache %s%s: %s", self.path, suffix, exc)
