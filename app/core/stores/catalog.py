"""The catalog: SQLite (WAL) record of library roots, files and chunks. It is
the source of truth for what is indexed; the keyword index (tantivy, see
``keywords``) is derived from it through its change log.

One ``Catalog`` object serialises its own use with a lock, so the desktop
app's workers may share it; other processes open their own (read-only)
connection, which WAL lets run beside the writer.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from app.core import textnorm
from app.core.documents.model import LineBox, Part
from app.core.stores import keywords as keywords_module
from app.core.stores.keywords import KeywordIndex, Passage
from app.core.stores.migrations import run_script
from app.core.stores.sqlite import SqliteStore
from app.durable import atomic_write_text
from app.errors import StoreError

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
    #: The attachment it is in (a :class:`~app.core.documents.model.Part`'s
    #: locator); ``None`` for the file's own text.
    part: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class StoredChunk(ChunkRow):
    """A stored chunk joined with its file, as search results need it."""

    file_id: int
    path: str
    #: The attachment's file name ("report.pdf") where ``part`` is set.
    attachment: str | None = field(default=None, kw_only=True)


def _stored(r: sqlite3.Row) -> StoredChunk:
    """A ``chunks`` row joined with its file's path (and attachment's name, where selected)."""
    keys = r.keys()
    return StoredChunk(
        id=r["id"], ordinal=r["ordinal"], page=r["page"], label=r["label"], start=r["start"],
        end=r["end"], heading=r["heading"], text=r["text"], text_hash=r["text_hash"],
        file_id=r["file_id"], path=r["path"],
        # A reader of a catalog its writer has not migrated yet has neither.
        part=r["part"] if "part" in keys else None,
        attachment=r["attachment"] if "attachment" in keys else None,
    )


def _passage(row: sqlite3.Row) -> Passage:
    """A chunk row as the keyword index holds it: heading and text, segmented."""
    rid, file_id, heading, text = row[0], row[1], row[2], row[3]
    return Passage(rid, file_id, textnorm.for_index(text if not heading else f"{heading}\n{text}"))


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


def _m003_keyword_log(db: sqlite3.Connection) -> None:
    """Move keyword search to tantivy: a change log replaces the FTS5 table.

    Triggers log every chunk row written or removed, in the same transaction,
    so the derived index can always tell what it is missing (see
    ``keywords``). The catalog gets an id, so an index is never applied to a
    catalog it was not built from (a restored backup, a rebuilt catalog).
    """
    db.execute("CREATE TABLE keyword_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, rid INTEGER NOT NULL)")
    # One statement each: run_script splits at semicolons, which triggers contain.
    for name, event, row in (("insert", "INSERT", "new"), ("delete", "DELETE", "old"),
                             ("update", "UPDATE OF heading, text, file_id", "new")):
        db.execute(f"""CREATE TRIGGER chunks_logged_{name} AFTER {event} ON chunks
                       BEGIN INSERT INTO keyword_log (rid) VALUES ({row}.rid); END""")
    db.execute("DROP TABLE chunks_fts")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('catalog_id', lower(hex(randomblob(16))))")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('keyword_pruned_to', '0')")


def _m004_page_boxes(db: sqlite3.Connection) -> None:
    """Keep where OCR read each line of a scanned page, for the viewer to mark a passage on it.

    A page read from its picture has no text layer to search; its lines'
    boxes, with their spans of the page text the chunks point into, show
    where a cited span was drawn. Files indexed before have none until read again.
    """
    run_script(
        db,
        """
        CREATE TABLE page_boxes (
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            page INTEGER NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            left REAL NOT NULL,
            top REAL NOT NULL,
            right REAL NOT NULL,
            bottom REAL NOT NULL
        );
        CREATE INDEX page_boxes_page ON page_boxes(file_id, page);
        """
    )


def _m005_parts(db: sqlite3.Connection) -> None:
    """Documents inside a file: an e-mail's attachments, each with its own pages.

    A chunk of an attachment names it (``part``, its locator); ``parts``
    lists every attachment of a file, read or not (with the reason), for the
    library to show under its message. Both go with their file.

    Mail indexed before held its attachments as pages of the message; its
    files are marked to be read again (their size and time forgotten, as for
    a changed file), so the next ingest or sync makes each attachment a
    document of its own. Until then they are searched as they were.
    """
    db.execute("ALTER TABLE chunks ADD COLUMN part TEXT")
    run_script(
        db,
        """
        CREATE TABLE parts (
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            locator TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT,
            pages INTEGER,
            reason TEXT,
            message TEXT,
            PRIMARY KEY (file_id, locator)
        );
        """
    )
    db.execute("""UPDATE files SET size = NULL, mtime_ns = NULL, hash = NULL
                  WHERE kind IN ('email', 'mbox', 'msg') AND status = 'indexed'""")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_initial, _m002_cjk_bigrams, _m003_keyword_log, _m004_page_boxes, _m005_parts,
]


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

    def __init__(
        self,
        path: Path,
        *,
        readonly: bool = False,
        roots_file: Path | None = None,
        keywords_dir: Path | None = None,
    ) -> None:
        self.roots_file = Path(roots_file) if roots_file is not None else None
        #: Where the keyword index lives (default: ``keywords/`` beside the catalog).
        self.keywords_dir = Path(keywords_dir) if keywords_dir is not None else Path(path).parent / "keywords"
        self._keywords: KeywordIndex | None = None
        self._keywords_closed = False
        self._keyword_log_seen = False
        super().__init__(path, readonly=readonly)

    def close(self) -> None:
        """Commit the keyword index (so the next start has nothing to catch up), then close."""
        keywords, self._keywords = self._keywords, None
        self._keywords_closed = True
        if keywords is not None:
            keywords.close()
        super().close()

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
            db.execute("DELETE FROM files WHERE root_id = ?", (root_id,))
            db.execute("DELETE FROM roots WHERE id = ?", (root_id,))
        self._keywords_changed()
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
        note: str | None = None,
        boxes: Mapping[int, Sequence[LineBox]] | None = None,
        parts: Sequence[Part] = (),
    ) -> int:
        """Swap a file's chunks for new ones and mark it indexed, atomically.

        ``note`` is kept as the indexed file's reason (e.g. "OCR: 3 of 5 pages
        read from images"), for status to show how it was read. ``boxes``
        (page → its OCR lines' boxes) replace the file's old ones in the same
        transaction, so they always describe the text the chunks point into;
        so do ``parts`` (the file's attachments, read or not).
        """
        with self._tx() as db:
            db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM parts WHERE file_id = ?", (file_id,))
            db.executemany(
                "INSERT OR REPLACE INTO parts (file_id, locator, name, kind, pages, reason, message)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(file_id, p.locator, p.name, p.kind, p.pages, p.reason, p.message) for p in parts],
            )
            db.execute("DELETE FROM page_boxes WHERE file_id = ?", (file_id,))
            db.executemany(
                """INSERT INTO page_boxes (file_id, page, start, "end", left, top, right, bottom)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [(file_id, page, *box) for page, page_boxes in (boxes or {}).items() for box in page_boxes],
            )
            count = 0
            for c in chunks:
                db.execute(
                    """INSERT INTO chunks (id, file_id, ordinal, page, label, start, "end", heading, text,
                                          text_hash, part)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (c.id, file_id, c.ordinal, c.page, c.label, c.start, c.end, c.heading, c.text,
                     c.text_hash, c.part),
                )
                count += 1
            db.execute(
                """UPDATE files SET status = 'indexed', reason = ?, chunks = ?, size = ?, mtime_ns = ?,
                   hash = ?, kind = ?, title = ?, pages = ?, updated_at = ? WHERE id = ?""",
                (note, count, size, mtime_ns, hash, kind, title, pages, _now(), file_id),
            )
        self._keywords_changed()
        return count

    def drop_chunks(self, file_id: int, status: str, reason: str | None, **fields: object) -> list[str]:
        """Remove a file's chunks and set its status (failed/skipped/...)."""
        allowed = {"size", "mtime_ns", "hash", "kind"}
        sets = "".join(f", {k} = ?" for k in fields if k in allowed)
        values = [v for k, v in fields.items() if k in allowed]
        with self._tx() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE file_id = ?", (file_id,))]
            db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM page_boxes WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM parts WHERE file_id = ?", (file_id,))
            db.execute(
                f"UPDATE files SET status = ?, reason = ?, chunks = 0, updated_at = ?{sets} WHERE id = ?",
                (status, reason, _now(), *values, file_id),
            )
        self._keywords_changed()
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
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM page_boxes")
            db.execute("DELETE FROM parts")
            cur = db.execute(
                """UPDATE files SET chunks = 0, size = NULL, mtime_ns = NULL, hash = NULL,
                   status = CASE WHEN status = 'unavailable' THEN 'unavailable' ELSE 'pending' END,
                   reason = CASE WHEN status = 'unavailable' THEN reason ELSE NULL END,
                   updated_at = ? WHERE status NOT IN ('failed', 'skipped')""",
                (_now(),),
            )
            count = int(cur.rowcount)
        self._keywords_changed()
        return count

    def delete_file(self, file_id: int) -> list[str]:
        """Forget a file; returns its chunk ids for the vector store."""
        with self._tx() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE file_id = ?", (file_id,))]
            db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self._keywords_changed()
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
                f"""SELECT c.*, f.path, {self._attachment_name} AS attachment
                    FROM chunks c JOIN files f ON f.id = c.file_id
                    WHERE c.id IN ({marks}) AND +f.status = 'indexed'""",
                part,
            ):
                out[r["id"]] = _stored(r)
        return out

    def chunks_covering(self, file_id: int, page: int | None, start: int, end: int,
                        part: str | None = None) -> list[StoredChunk]:
        """The chunks of one indexed file's ``page`` (None: a file without pages)
        that overlap the characters ``start``..``end`` of it, in order: what a
        passage widened to that span is made of. ``part`` names the attachment
        the page is of (None: the file's own page)."""
        # An attachment's pages are numbered on their own: the page is the
        # attachment's page, or the file's own where ``part`` is None.
        in_part = "AND c.part IS ?" if self._has_parts() else ""
        args: tuple[object, ...] = (file_id, page, start, end) + ((part,) if in_part else ())
        return [
            _stored(r)
            for r in self._query(
                f"""SELECT c.*, f.path, {self._attachment_name} AS attachment
                   FROM chunks c JOIN files f ON f.id = c.file_id
                   WHERE c.file_id = ? AND c.page IS ? AND c."end" > ? AND c.start < ?
                     AND f.status = 'indexed' {in_part}
                   ORDER BY c.start""",
                args,
            )
        ]

    def _has_parts(self) -> bool:
        """Whether this catalog has been migrated to know attachments (a reader may precede its writer)."""
        if not getattr(self, "_parts_known", False):
            try:
                self._parts_known = bool(self._rows("SELECT 1 FROM sqlite_master WHERE name = 'parts'", ()))
            except sqlite3.Error:
                return False
        return self._parts_known

    @property
    def _attachment_name(self) -> str:
        """SQL for a chunk's attachment's name (NULL for the file's own text)."""
        if not self._has_parts():
            return "NULL"
        return "(SELECT p.name FROM parts p WHERE p.file_id = c.file_id AND p.locator = c.part)"

    def parts(self, file_id: int) -> list[Part]:
        """The attachments of a file (read or not), in the order of their message(s)."""
        if not self._has_parts():
            return []
        rows = self._rows(
            "SELECT locator, name, kind, pages, reason, message FROM parts WHERE file_id = ? ORDER BY rowid",
            (file_id,),
        )
        return [Part(r[0], r[1], kind=r[2], pages=r[3], reason=r[4], message=r[5]) for r in rows]

    def page_boxes(self, file: str | int, page: int) -> list[LineBox]:
        """Where OCR read each line of an indexed file's ``page`` (a path or a file id),
        in reading order; empty for a page read from its text layer."""
        where = "f.id = ?" if isinstance(file, int) else "f.path = ?"
        try:
            rows = self._rows(
                f"""SELECT b.start, b."end", b.left, b.top, b.right, b.bottom
                    FROM page_boxes b JOIN files f ON f.id = b.file_id
                    WHERE {where} AND b.page = ? AND f.status = 'indexed'
                    ORDER BY b.start""",
                (file, page),
            )
        except sqlite3.OperationalError as exc:
            # A reader of a catalog the writer has not migrated yet: no boxes.
            if "no such table" in str(exc):
                return []
            raise self._error(exc) from exc
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

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

        The index ranks on its own (top-k, see ``keywords``) and only those
        few rows are joined to their chunk and file. Chunks of files that are
        not indexed (being re-read, unavailable) are skipped afterwards; when
        that leaves fewer than ``k`` and the index has more, it asks again
        for four times as many.

        Args:
            scope: a file or folder path (or several: an API key's folders);
                only chunks of files under it count, filtered before ranking
                since a small folder's chunks may all rank below the rest.
        """
        if k < 1:
            return []
        file_ids = self._scope_file_ids(scope) if scope else None
        want = k
        while True:
            hits = self._keyword_hits(query, want, file_ids)
            found = self._indexed_chunk_ids([rid for rid, _ in hits])
            out = [(found[rid], score) for rid, score in hits if rid in found]
            if len(out) >= k or len(hits) < want:
                return out[:k]
            want *= 4

    def has_term(self, term: str) -> bool:
        """Whether any passage in the keyword index holds ``term`` (a word, or
        the phrase its tokens make); used to tell a question about something
        the library never mentions."""
        keywords = self.keywords
        if keywords is None:
            return False
        try:
            return keywords.has_phrase(term)
        except (OSError, ValueError) as exc:
            if not self._recover_keywords(exc):
                return True  # cannot tell: assume it is there rather than decline for it
            return keywords.has_phrase(term)

    def _keyword_hits(self, query: str, k: int, file_ids: list[int] | None) -> list[tuple[int, float]]:
        keywords = self.keywords
        if keywords is None:
            return []
        try:
            return keywords.search(query, k, file_ids=file_ids)
        except (OSError, ValueError) as exc:
            if not self._recover_keywords(exc):
                raise StoreError(
                    f"The keyword index {keywords.directory} cannot be read ({exc}). "
                    "Close Docent and delete that folder; it is rebuilt from the catalog."
                ) from exc
            return keywords.search(query, k, file_ids=file_ids)

    def _recover_keywords(self, exc: Exception) -> bool:
        """A damaged keyword index: rebuild it from the catalog (writer only)."""
        keywords = self._keywords
        if keywords is None or self.readonly:
            return False
        logging.getLogger(__name__).warning("The keyword index failed (%s); rebuilding it from the catalog.", exc)
        keywords.reset()  # not under the catalog's lock: the index takes it to read
        return True

    def _scope_file_ids(self, scope: str | tuple[str, ...]) -> list[int]:
        """Ids of the indexed files at or under each scope path."""
        scopes = (scope,) if isinstance(scope, str) else tuple(scope)
        where: list[str] = []
        params: list[object] = []
        for one in scopes:
            prefix = one.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("path = ? OR path LIKE ? ESCAPE '\\'")
            params += [one, prefix + "/%"]
        rows = self._query(
            f"SELECT id FROM files WHERE status = 'indexed' AND ({' OR '.join(where)})", params
        )
        return [r[0] for r in rows]

    def _indexed_chunk_ids(self, rids: Sequence[int]) -> dict[int, str]:
        """Chunk id by rowid, for the rows that exist and belong to indexed files."""
        out: dict[int, str] = {}
        for lo in range(0, len(rids), 500):
            part = list(rids[lo : lo + 500])
            marks = ",".join("?" * len(part))
            for r in self._query(
                f"""SELECT c.rid, c.id FROM chunks c JOIN files f ON f.id = c.file_id
                    WHERE c.rid IN ({marks}) AND +f.status = 'indexed'""",
                part,
            ):
                out[r[0]] = r[1]
        return out

    # --- the keyword index's source (see keywords.PassageSource) -------------

    @property
    def keywords(self) -> KeywordIndex | None:
        """The keyword index, opened on first use (None: closed, or nothing to index)."""
        with self._lock:
            if self._keywords is None and not self._keywords_closed:
                if self.readonly and not self._has_keyword_log():
                    if self._db is None:
                        return None  # no catalog yet: nothing to search
                    # A catalog no writer of this version has opened yet: its
                    # passages are indexed in memory, for this reader alone.
                    directory = None
                else:
                    directory = self.keywords_dir
                self._keywords = KeywordIndex(
                    directory, self, writable=not self.readonly, on_synced=self._prune_keyword_log,
                )
            return self._keywords

    def _has_keyword_log(self) -> bool:
        if self._keyword_log_seen:
            return True  # a table once there stays (asked before every search otherwise)
        try:
            self._keyword_log_seen = bool(self._rows("SELECT 1 FROM sqlite_master WHERE name = 'keyword_log'"))
        except sqlite3.Error:
            return False
        return self._keyword_log_seen

    def keyword_identity(self) -> str | None:
        return self.get_meta("catalog_id") if self._has_keyword_log() else None

    def keyword_head(self) -> int:
        if not self._has_keyword_log():
            return 0
        rows = self._query("SELECT seq FROM sqlite_sequence WHERE name = 'keyword_log'")
        return int(rows[0][0]) if rows else 0

    def keyword_pruned_to(self) -> int:
        value = self.get_meta("keyword_pruned_to") if self._has_keyword_log() else None
        return int(value) if value else 0

    def keyword_changes(self, after: int, upto: int) -> list[int]:
        return [r[0] for r in self._query(
            "SELECT DISTINCT rid FROM keyword_log WHERE seq > ? AND seq <= ? ORDER BY rid", (after, upto)
        )]

    def keyword_passages(self, rids: Sequence[int]) -> list[Passage]:
        out: list[Passage] = []
        for lo in range(0, len(rids), 500):
            part = list(rids[lo : lo + 500])
            marks = ",".join("?" * len(part))
            out.extend(
                _passage(r) for r in self._query(
                    f"SELECT rid, file_id, heading, text FROM chunks WHERE rid IN ({marks})", part
                )
            )
        return out

    def keyword_all(self) -> Iterator[list[Passage]]:
        last = 0
        while True:
            rows = self._query(
                "SELECT rid, file_id, heading, text FROM chunks WHERE rid > ? ORDER BY rid LIMIT ?",
                (last, keywords_module.BATCH),
            )
            if not rows:
                return
            yield [_passage(r) for r in rows]
            last = rows[-1][0]

    def _prune_keyword_log(self, upto: int) -> None:
        """Drop log entries the index holds (the writer's, after each catch-up)."""
        if self.readonly or upto <= self.keyword_pruned_to():
            return
        with self._tx() as db:
            db.execute("DELETE FROM keyword_log WHERE seq <= ?", (upto,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('keyword_pruned_to', ?)", (str(upto),))

    def _keywords_changed(self) -> None:
        """After a write: let the keyword index commit (at most every few seconds)."""
        try:
            keywords = self.keywords
            if keywords is None:
                return
            keywords.note_change()
        except (OSError, ValueError) as exc:
            # Derived data: a failure here is caught up (or rebuilt) on the next search.
            logging.getLogger(__name__).warning("The keyword index could not be updated: %s", exc)

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT id FROM chunks")}

    def chunk_count(self) -> int:
        """Every stored chunk, whatever its file's status (as many as the vector store should hold)."""
        rows = self._query("SELECT COUNT(*) FROM chunks")
        return int(rows[0][0]) if rows else 0

    # --- status -------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Files per status (every status present, zero when none)."""
        counts = {s: 0 for s in STATUSES}
        for r in self._query("SELECT status, COUNT(*) FROM files GROUP BY status"):
            counts[r[0]] = r[1]
        return counts

    def root_counts(self, root_id: int) -> tuple[dict[str, int], int]:
        """One folder's files per status (only statuses present) and its indexed files' chunks,
        counted by SQLite rather than by reading every file row."""
        counts: dict[str, int] = {}
        chunks = 0
        for status, n, c in self._query(
            "SELECT status, COUNT(*), SUM(chunks) FROM files WHERE root_id = ? GROUP BY status", (root_id,)
        ):
            counts[status] = n
            if status == "indexed":
                chunks = int(c or 0)
        return counts, chunks

    def indexed_chunk_count(self) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.status = 'indexed'"
        )
        return int(rows[0][0]) if rows else 0
