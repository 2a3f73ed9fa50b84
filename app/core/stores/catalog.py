"""The catalog: SQLite (WAL) record of library roots, files, chunks and the
FTS5 keyword index. It is the source of truth for what is indexed.

One ``Catalog`` object serialises its own use with a lock, so the desktop
app's workers may share it; other processes open their own (read-only)
connection, which WAL lets run beside the writer.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from app.core import textnorm
from app.core.stores.migrations import run_script
from app.core.stores.sqlite import SqliteStore
from app.durable import atomic_write_text

STATUSES = ("pending", "indexing", "indexed", "failed", "skipped", "unavailable")


@dataclass(frozen=True)
class Root:
    id: int
    path: str
    added_at: str


@dataclass(frozen=True)
class FileRow:
    id: int
    root_id: int | None
    path: str
    kind: str | None
    title: str | None
    size: int | None
    mtime_ns: int | None
    hash: str | None
    status: str
    reason: str | None
    chunks: int
    pages: int | None


@dataclass(frozen=True)
class ChunkRow:
    """A chunk as stored: ``id`` is shared with the vector store."""

    id: str
    ordinal: int
    page: int | None
    label: str | None
    start: int
    end: int
    heading: str | None
    text: str
    text_hash: str


@dataclass(frozen=True)
class StoredChunk(ChunkRow):
    """A stored chunk joined with its file, as search results need it."""

    file_id: int
    path: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- migrations: named functions, recorded as they are applied -------------


def _m001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE roots (
            id INTEGER PRIMARY KEY,
            path TEXT UNIQUE NOT NULL,
            added_at TEXT NOT NULL
        );
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            root_id INTEGER REFERENCES roots(id) ON DELETE SET NULL,
            path TEXT UNIQUE NOT NULL,
            kind TEXT,
            title TEXT,
            size INTEGER,
            mtime_ns INTEGER,
            hash TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            chunks INTEGER NOT NULL DEFAULT 0,
            pages INTEGER,
            updated_at TEXT
        );
        CREATE INDEX files_root ON files(root_id);
        CREATE INDEX files_status ON files(status);
        CREATE TABLE chunks (
            rid INTEGER PRIMARY KEY,
            id TEXT UNIQUE NOT NULL,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            page INTEGER,
            label TEXT,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            heading TEXT,
            text TEXT NOT NULL,
            text_hash TEXT NOT NULL
        );
        CREATE INDEX chunks_file ON chunks(file_id);
        CREATE INDEX chunks_text_hash ON chunks(text_hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            body, tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        """
    )


def _m002_cjk_bigrams(db: sqlite3.Connection) -> None:
    """Re-segment the keyword index: no-space scripts as bigrams, not single characters.

    Catalogs written before indexed Chinese, Japanese, Thai … one character
    per token (see ``textnorm``); their queries now look for bigrams, so each
    body holding such a script is written again from its chunk. Bodies of
    other text are unchanged by ``for_index`` and left alone, so a library in
    Latin script migrates with one read of its chunks and no writes.
    """
    # Streamed, not fetched whole: a large library's text need not fit in memory.
    for rid, heading, text in db.execute("SELECT rid, heading, text FROM chunks"):
        source = text if not heading else f"{heading}\n{text}"
        if not textnorm.has_no_space_script(source):
            continue
        db.execute("DELETE FROM chunks_fts WHERE rowid = ?", (rid,))
        db.execute("INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)", (rid, textnorm.for_index(source)))


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_initial, _m002_cjk_bigrams]
_SEGMENTED = _m002_cjk_bigrams.__name__  # the migration after which the index holds bigrams


class Catalog(SqliteStore):
    """SQLite catalog of the library.

    Args:
        path: the ``catalog.sqlite3`` file.
        readonly: open without writing (for ``status``/``search`` beside a
            running writer). A missing file reads as an empty library.
        roots_file: a JSON file rewritten whenever the roots change, so the
            library folders survive a damaged catalog (see ``recovery``).
    """

    what = "catalog"
    # The window's panes may still read while the library closes: nothing, not an error.
    closed_reads_empty = True
    MIGRATIONS = MIGRATIONS
    damaged_advice = "It may be damaged; move it aside and run `docent ingest` again to rebuild it."

    def __init__(self, path: Path, *, readonly: bool = False, roots_file: Path | None = None) -> None:
        self.roots_file = Path(roots_file) if roots_file is not None else None
        super().__init__(path, readonly=readonly)

    # --- meta ---------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- roots --------------------------------------------------------------

    def add_root(self, path: str) -> Root:
        """Add a library root (idempotent)."""
        with self._tx() as db:
            added = db.execute(
                "INSERT OR IGNORE INTO roots (path, added_at) VALUES (?, ?)", (path, _now())
            ).rowcount
        # Every ingest re-adds its roots; rewrite the copy only when it changed.
        if added or (self.roots_file is not None and not self.roots_file.exists()):
            self.write_roots_file()
        return self.root(path)  # type: ignore[return-value]

    def root(self, path: str) -> Root | None:
        rows = self._query("SELECT * FROM roots WHERE path = ?", (path,))
        return Root(rows[0]["id"], rows[0]["path"], rows[0]["added_at"]) if rows else None

    def roots(self) -> list[Root]:
        return [Root(r["id"], r["path"], r["added_at"]) for r in self._query("SELECT * FROM roots ORDER BY path")]

    def remove_root(self, root_id: int) -> list[str]:
        """Forget a root and its files; returns the chunk ids to drop from the vector store."""
        with self._tx() as db:
            ids = [r[0] for r in db.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.root_id = ?",
                (root_id,),
            )]
            self._delete_fts(db, "SELECT c.rid FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.root_id = ?", (root_id,))
            db.execute("DELETE FROM files WHERE root_id = ?", (root_id,))
            db.execute("DELETE FROM roots WHERE id = ?", (root_id,))
        self.write_roots_file()
        return ids

    def write_roots_file(self) -> None:
        """Write the roots to ``roots_file`` (when set), atomically.

        The copy lives outside the catalog so a damaged catalog can be rebuilt
        from the same folders; temp file + rename, so a crash never leaves
        half of it. Best effort: the catalog stays the source of truth, so a
        copy that cannot be written (a full disk) is logged, not raised.
        """
        if self.roots_file is None or self.readonly:
            return
        data = {"roots": [r.path for r in self.roots()], "updated_at": _now()}
        try:
            atomic_write_text(self.roots_file, json.dumps(data, indent=2, ensure_ascii=False))
        except OSError as exc:
            logging.getLogger(__name__).warning(
                "Could not save the library folders to %s: %s", self.roots_file, exc
            )

    # --- files --------------------------------------------------------------

    @staticmethod
    def _file(row: sqlite3.Row) -> FileRow:
        return FileRow(
            row["id"], row["root_id"], row["path"], row["kind"], row["title"], row["size"],
            row["mtime_ns"], row["hash"], row["status"], row["reason"], row["chunks"], row["pages"],
        )

    def file(self, path: str) -> FileRow | None:
        rows = self._query("SELECT * FROM files WHERE path = ?", (path,))
        return self._file(rows[0]) if rows else None

    def file_by_id(self, file_id: int) -> FileRow | None:
        rows = self._query("SELECT * FROM files WHERE id = ?", (file_id,))
        return self._file(rows[0]) if rows else None

    def files(self, *, root_id: int | None = None, status: str | None = None) -> list[FileRow]:
        sql, params = "SELECT * FROM files WHERE 1=1", []
        if root_id is not None:
            sql += " AND root_id = ?"
            params.append(root_id)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return [self._file(r) for r in self._query(sql + " ORDER BY path", params)]

    def mark_file(
        self,
        path: str,
        status: str,
        *,
        root_id: int | None,
        reason: str | None = None,
        kind: str | None = None,
        size: int | None = None,
        mtime_ns: int | None = None,
        hash: str | None = None,
    ) -> int:
        """Create or update a file's row with ``status``; returns its id.

        ``None`` arguments keep what is stored, except ``reason``, which is
        always replaced (a stale reason would mislead).
        """
        if status not in STATUSES:
            raise ValueError(status)
        with self._tx() as db:
            db.execute(
                """INSERT INTO files (root_id, path, kind, size, mtime_ns, hash, status, reason, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET
                     root_id = COALESCE(excluded.root_id, root_id),
                     kind = COALESCE(excluded.kind, kind),
                     size = COALESCE(excluded.size, size),
                     mtime_ns = COALESCE(excluded.mtime_ns, mtime_ns),
                     hash = COALESCE(excluded.hash, hash),
                     status = excluded.status,
                     reason = excluded.reason,
                     updated_at = excluded.updated_at""",
                (root_id, path, kind, size, mtime_ns, hash, status, reason, _now()),
            )
            return int(db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()[0])

    def chunk_ids(self, file_id: int) -> list[str]:
        return [r[0] for r in self._query("SELECT id FROM chunks WHERE file_id = ? ORDER BY ordinal", (file_id,))]

    @staticmethod
    def _delete_fts(db: sqlite3.Connection, rid_sql: str, params: Sequence[object]) -> None:
        db.execute(f"DELETE FROM chunks_fts WHERE rowid IN ({rid_sql})", params)

    def replace_chunks(
        self,
        file_id: int,
        chunks: Iterable[ChunkRow],
        *,
        size: int,
        mtime_ns: int,
        hash: str,
        kind: str | None,
        title: str | None,
        pages: int | None,
    ) -> int:
        """Swap a file's chunks for new ones and mark it indexed, atomically."""
        with self._tx() as db:
            self._delete_fts(db, "SELECT rid FROM chunks WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
            count = 0
            for c in chunks:
                cur = db.execute(
                    """INSERT INTO chunks (id, file_id, ordinal, page, label, start, "end", heading, text, text_hash)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (c.id, file_id, c.ordinal, c.page, c.label, c.start, c.end, c.heading, c.text, c.text_hash),
                )
                body = textnorm.for_index(c.text if not c.heading else f"{c.heading}\n{c.text}")
                db.execute("INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)", (cur.lastrowid, body))
                count += 1
            db.execute(
                """UPDATE files SET status = 'indexed', reason = NULL, chunks = ?, size = ?, mtime_ns = ?,
                   hash = ?, kind = ?, title = ?, pages = ?, updated_at = ? WHERE id = ?""",
                (count, size, mtime_ns, hash, kind, title, pages, _now(), file_id),
            )
        return count

    def drop_chunks(self, file_id: int, status: str, reason: str | None, **fields: object) -> list[str]:
        """Remove a file's chunks and set its status (failed/skipped/...)."""
        allowed = {"size", "mtime_ns", "hash", "kind"}
        sets = "".join(f", {k} = ?" for k in fields if k in allowed)
        values = [v for k, v in fields.items() if k in allowed]
        with self._tx() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE file_id = ?", (file_id,))]
            self._delete_fts(db, "SELECT rid FROM chunks WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
            db.execute(
                f"UPDATE files SET status = ?, reason = ?, chunks = 0, updated_at = ?{sets} WHERE id = ?",
                (status, reason, _now(), *values, file_id),
            )
        return ids

    def invalidate_all(self) -> int:
        """Forget every chunk and make each file's next ingest read and embed it again.

        For a vector store that was lost: the chunks' vectors are gone, so the
        chunks (and their FTS rows) go too, and size/mtime/hash are cleared so
        no file looks unchanged. Failed and skipped files have no chunks and
        keep their status; unavailable ones stay unavailable until their
        folder returns. Returns the number of files that will be re-read.
        """
        with self._tx() as db:
            db.execute("DELETE FROM chunks_fts")
            db.execute("DELETE FROM chunks")
            cur = db.execute(
                """UPDATE files SET chunks = 0, size = NULL, mtime_ns = NULL, hash = NULL,
                   status = CASE WHEN status = 'unavailable' THEN 'unavailable' ELSE 'pending' END,
                   reason = CASE WHEN status = 'unavailable' THEN reason ELSE NULL END,
                   updated_at = ? WHERE status NOT IN ('failed', 'skipped')""",
                (_now(),),
            )
            return int(cur.rowcount)

    def delete_file(self, file_id: int) -> list[str]:
        """Forget a file; returns its chunk ids for the vector store."""
        with self._tx() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE file_id = ?", (file_id,))]
            self._delete_fts(db, "SELECT rid FROM chunks WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return ids

    # --- chunks -------------------------------------------------------------

    def chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Chunks of indexed files by id (ids of other files are left out)."""
        out: dict[str, StoredChunk] = {}
        for lo in range(0, len(ids), 500):
            part = list(ids[lo : lo + 500])
            marks = ",".join("?" * len(part))
            # "+f.status": without it SQLite (no ANALYZE statistics) picks the
            # status index, walks every indexed file's chunks and only then
            # checks the ids -- ~60 ms at 100k chunks instead of ~0.2 ms by id.
            for r in self._query(
                f"""SELECT c.*, f.path FROM chunks c JOIN files f ON f.id = c.file_id
                    WHERE c.id IN ({marks}) AND +f.status = 'indexed'""",
                part,
            ):
                out[r["id"]] = StoredChunk(
                    id=r["id"], ordinal=r["ordinal"], page=r["page"], label=r["label"], start=r["start"],
                    end=r["end"], heading=r["heading"], text=r["text"], text_hash=r["text_hash"],
                    file_id=r["file_id"], path=r["path"],
                )
        return out

    def chunks_covering(self, file_id: int, page: int | None, start: int, end: int) -> list[StoredChunk]:
        """The chunks of one indexed file's ``page`` (None: a file without pages)
        that overlap the characters ``start``..``end`` of it, in order: what a
        passage widened to that span is made of."""
        return [
            StoredChunk(
                id=r["id"], ordinal=r["ordinal"], page=r["page"], label=r["label"], start=r["start"],
                end=r["end"], heading=r["heading"], text=r["text"], text_hash=r["text_hash"],
                file_id=r["file_id"], path=r["path"],
            )
            for r in self._query(
                """SELECT c.*, f.path FROM chunks c JOIN files f ON f.id = c.file_id
                   WHERE c.file_id = ? AND c.page IS ? AND c."end" > ? AND c.start < ?
                     AND f.status = 'indexed'
                   ORDER BY c.start""",
                (file_id, page, start, end),
            )
        ]

    def chunk_ids_by_text_hash(self, hashes: Iterable[str]) -> dict[str, str]:
        """One stored chunk id per known text hash (for reusing embeddings)."""
        hashes = list(dict.fromkeys(hashes))
        out: dict[str, str] = {}
        for lo in range(0, len(hashes), 500):
            part = hashes[lo : lo + 500]
            marks = ",".join("?" * len(part))
            for r in self._query(
                f"SELECT text_hash, MIN(id) FROM chunks WHERE text_hash IN ({marks}) GROUP BY text_hash",
                part,
            ):
                out[r[0]] = r[1]
        return out

    def keyword_search(
        self, query: str, k: int, *, scope: str | tuple[str, ...] | None = None
    ) -> list[tuple[str, float]]:
        """BM25 keyword search: ``(chunk id, score)`` best first (higher is better).

        Args:
            scope: a file or folder path (or several: an API key's folders);
                only chunks of files under it count.
        """
        match = textnorm.fts_query(query, segmentation=self._segmentation())
        if match is None or k < 1:
            return []
        try:
            rows = self._keyword_scoped(match, k, scope) if scope else self._keyword_top(match, k)
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse finds nothing rather than failing
        # bm25() is lower-is-better and negative; flip it so higher is better.
        return [(cid, -float(rank)) for cid, rank in rows]

    def has_term(self, term: str) -> bool:
        """Whether any passage in the keyword index holds ``term`` (a word, or
        the phrase its tokens make); used to tell a question about something
        the library never mentions."""
        match = '"' + textnorm.for_index(term).replace('"', "").strip() + '"'
        if match == '""':
            return False
        try:
            return bool(self._rows("SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", (match,)))
        except sqlite3.OperationalError:
            return True  # a term FTS5 cannot parse: assume it is there rather than decline for it

    def _segmentation(self) -> str:
        """How this catalog's keyword index segments no-space scripts.

        A read-only reader (``docent search --mode keyword``) may open a
        catalog that no writer of this version has migrated yet; it must then
        ask in the old, one-token-per-character form. Checked per query (one
        primary-key lookup) since a writer may migrate it meanwhile.
        """
        if not self.readonly:
            return textnorm.SEGMENTATION  # a writer migrated on opening
        try:
            done = self._rows("SELECT 1 FROM migrations WHERE name = ?", (_SEGMENTED,))
        except sqlite3.OperationalError:
            done = []
        return textnorm.SEGMENTATION if done else "char"

    def _keyword_top(self, match: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` best indexed chunks for an FTS5 ``match``, ranked in the index.

        FTS5 rows are ranked on their own first (bm25 with ``LIMIT``) and only
        those few are joined to their chunk and file: joining every match
        before sorting costs two lookups per matching row, which for a common
        word in a large library is tens of thousands. (``ORDER BY bm25()``,
        not FTS5's ``rank`` column: the same order, and measurably faster
        with SQLite 3.40 at 100k chunks.) Chunks of
        files that are not indexed (being re-read, unavailable) are skipped
        afterwards; when that leaves fewer than ``k`` and the index has more,
        it asks again for four times as many.
        """
        want = k
        while True:
            rows = self._rows(
                """SELECT c.id, t.score, f.status FROM
                     (SELECT rowid, bm25(chunks_fts) AS score FROM chunks_fts
                      WHERE chunks_fts MATCH ? ORDER BY score LIMIT ?) AS t
                   LEFT JOIN chunks c ON c.rid = t.rowid
                   LEFT JOIN files f ON f.id = c.file_id
                   ORDER BY t.score""",
                (match, want),
            )
            found = [(r[0], r[1]) for r in rows if r[2] == "indexed"]
            if len(found) >= k or len(rows) < want:
                return found[:k]
            want *= 4

    def _keyword_scoped(self, match: str, k: int, scope: str | tuple[str, ...]) -> list[tuple[str, float]]:
        """The ``k`` best chunks under ``scope``: filtered before ranking, since
        a small folder's chunks may all rank below the rest of the library."""
        scopes = (scope,) if isinstance(scope, str) else tuple(scope)
        where: list[str] = []
        params: list[object] = [match]
        for one in scopes:
            prefix = one.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("f.path = ? OR f.path LIKE ? ESCAPE '\\'")
            params += [one, prefix + "/%"]
        rows = self._rows(
            f"""SELECT c.id, bm25(chunks_fts) AS rank FROM chunks_fts
               JOIN chunks c ON c.rid = chunks_fts.rowid
               JOIN files f ON f.id = c.file_id
               WHERE chunks_fts MATCH ? AND f.status = 'indexed'
                 AND ({' OR '.join(where)})
               ORDER BY rank LIMIT ?""",
            (*params, k),
        )
        return [(r[0], r[1]) for r in rows]

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT id FROM chunks")}

    # --- status -------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Files per status (every status present, zero when none)."""
        counts = {s: 0 for s in STATUSES}
        for r in self._query("SELECT status, COUNT(*) FROM files GROUP BY status"):
            counts[r[0]] = r[1]
        return counts

    def indexed_chunk_count(self) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.status = 'indexed'"
        )
        return int(rows[0][0]) if rows else 0
