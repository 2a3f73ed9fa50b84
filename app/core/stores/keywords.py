"""The keyword index: BM25 over the catalog's passages, kept by tantivy.

SQLite's FTS5 ranks every row that matches a query before it can return the
best few, which at 100,000 passages put a common word's search at 50+ ms
(bench/search.py). tantivy (Rust, block-max WAND) skips the blocks that
cannot reach the top k, so search time grows with k, not with the library.

The index is *derived data*: the catalog stays the source of truth. Every
insert, update and delete of a chunk row appends its rowid to the catalog's
``keyword_log`` (SQLite triggers, so in the same transaction as the change);
the index records, in ``watermark.json`` beside its segments, the last log
entry it holds. Catching up re-reads the rows logged since then: each is
deleted from the index and, if it still exists, added again from the
catalog, so replaying an entry twice does no harm and the watermark may
safely lag the index (a crash between tantivy's commit and the watermark's
write costs a replay, never a lost passage). An index that is missing,
damaged, of another format or another catalog, or behind a log that has
been pruned past its watermark, is rebuilt from the catalog.

Only one process writes (tantivy's own lock file guards it); a read-only
reader whose index is missing and cannot be written builds one in memory.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import tantivy

from app.core import textnorm
from app.durable import atomic_write_text

log = logging.getLogger(__name__)

#: What the index holds and how it is tokenised; an index of another format is rebuilt.
FORMAT = f"tantivy-1/{textnorm.SEGMENTATION}"
WATERMARK = "watermark.json"
TOKENIZER = "docent"
#: The writer's indexing memory: a rebuild of a million passages commits
#: about every 60,000 passages with this, and one thread (the reader
#: processes and the embedder want the other core).
WRITER_HEAP = 96_000_000
#: Passages read from the catalog (and added) at a time when catching up.
BATCH = 2_000


@dataclass(frozen=True)
class Passage:
    """What the index holds of one chunk row."""

    rid: int
    file_id: int
    body: str  # heading and text, as ``textnorm.for_index`` segments them


class PassageSource(Protocol):
    """What the index needs of the catalog (its change log and passages)."""

    def keyword_identity(self) -> str | None:
        """An id of this catalog (None: the catalog keeps no change log)."""

    def keyword_head(self) -> int:
        """The last change-log entry (0: none yet)."""

    def keyword_pruned_to(self) -> int:
        """Entries up to this one have been pruned from the log."""

    def keyword_changes(self, after: int, upto: int) -> list[int]:
        """Row ids logged in ``after`` < entry <= ``upto``."""

    def keyword_passages(self, rids: Sequence[int]) -> list[Passage]:
        """The passages of those rows that still exist."""

    def keyword_all(self) -> Iterator[list[Passage]]:
        """Every passage, in batches."""


def _analyzer() -> tantivy.TextAnalyzer:
    """Words split at anything not a letter or digit (``read_csv`` → read csv,
    as FTS5's unicode61 did), lower-cased, accents folded (é → e)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(80))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("rid", stored=False, indexed=True, fast=True)
    builder.add_unsigned_field("file_id", stored=False, indexed=True, fast=True)
    builder.add_text_field("body", stored=False, tokenizer_name=TOKENIZER, index_option="position")
    return builder.build()


class KeywordIndex:
    """The tantivy index of one catalog.

    Args:
        directory: where the index lives (None: in memory, for a reader that
            cannot write one).
        source: the catalog it derives from.
        writable: whether this process may write the catalog (and so prune
            its log); the index itself is written by whoever gets its lock.
        sync_every_s: writes are committed at most this often (``note_change``);
            a search always sees every committed catalog change first.
    """

    def __init__(
        self,
        directory: Path | None,
        source: PassageSource,
        *,
        writable: bool,
        on_synced: Callable[[int], None] | None = None,
        sync_every_s: float = 2.0,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.source = source
        self.writable = writable
        self.on_synced = on_synced
        self.sync_every_s = sync_every_s
        self._schema = _schema()
        self._analyzer = _analyzer()
        self._index: tantivy.Index | None = None
        self._writer: tantivy.IndexWriter | None = None
        self._mark: int | None = None  # the watermark this process last read or wrote
        self._last_sync = 0.0
        self._lock = threading.RLock()
        #: The commit still owed for changes made since the last one (see ``note_change``).
        self._pending: threading.Timer | None = None
        self._pending_lock = threading.Lock()
        self._closed = False
        #: How many times this process rebuilt the index from the catalog (tests, doctor).
        self.rebuilds = 0

    # --- opening ------------------------------------------------------------

    def _open(self) -> tantivy.Index:
        if self._index is not None:
            return self._index
        index: tantivy.Index | None = None
        if self.directory is not None:
            mark = self._read_mark_file()
            if mark is not None and mark.get("format") != FORMAT and self.writable:
                self._reset_directory()  # written by another version: start afresh
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                index = tantivy.Index(self._schema, path=str(self.directory), reuse=True)
            except (OSError, ValueError) as exc:
                if self.writable:
                    log.warning("The keyword index %s could not be opened (%s); rebuilding it.",
                                self.directory, exc)
                    self._reset_directory()
                    index = tantivy.Index(self._schema, path=str(self.directory), reuse=True)
                else:
                    # A reader must not delete what the writer may be using: it
                    # builds its own copy in memory instead.
                    log.info("Keyword index %s unreadable here (%s); using one in memory.", self.directory, exc)
                    self.directory = None
        if index is None:
            index = tantivy.Index(self._schema)
        index.register_tokenizer(TOKENIZER, self._analyzer)
        self._index = index
        return index

    def _reset_directory(self) -> None:
        assert self.directory is not None
        self._close_writer()
        self._index = None
        self._mark = None
        if self.directory.exists():
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _read_mark_file(self) -> dict[str, object] | None:
        if self.directory is None:
            return None
        try:
            data = json.loads((self.directory / WATERMARK).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _watermark(self) -> int | None:
        """The last log entry the index holds, or None when it must be rebuilt."""
        if self.directory is None:
            return self._mark
        data = self._read_mark_file()
        if (
            data is None
            or data.get("format") != FORMAT
            or data.get("catalog") != self.source.keyword_identity()
            or not isinstance(data.get("seq"), int)
        ):
            return None
        return int(data["seq"])  # type: ignore[arg-type]

    def _write_mark(self, seq: int) -> None:
        self._mark = seq
        if self.directory is None:
            return
        data = {"format": FORMAT, "catalog": self.source.keyword_identity(), "seq": seq}
        atomic_write_text(self.directory / WATERMARK, json.dumps(data))

    def reset(self) -> None:
        """Throw the index away; the next search rebuilds it from the catalog."""
        with self._lock:
            self._close_writer(rollback=True)
            self._index = None
            self._mark = None
            if self.directory is not None:
                self._reset_directory()

    # --- catching up ----------------------------------------------------------

    def note_change(self) -> None:
        """The catalog changed: commit now if the last commit is old enough, else soon.

        Called after each catalog write; committing every file would cost a
        tantivy commit (and a segment) per file during a bulk ingest. The
        last changes of a burst are committed ``sync_every_s`` later by a
        timer, so another process (``docent search`` beside a running
        ``watch``) sees them without waiting for the next write.
        """
        if self._closed:
            return
        wait = self.sync_every_s - (time.monotonic() - self._last_sync)
        if wait <= 0:
            self.sync()
        else:
            self._commit_later(wait)

    def _commit_later(self, wait: float) -> None:
        with self._pending_lock:
            if self._pending is not None or self._closed:
                return  # one pending commit covers every change before it runs
            timer = threading.Timer(wait, self._commit_pending)
            timer.daemon = True
            timer.name = "keyword-index-commit"
            self._pending = timer
            timer.start()

    def _commit_pending(self) -> None:
        with self._pending_lock:
            self._pending = None
        try:
            with self._lock:
                if self._closed:
                    return  # closed meanwhile: close() committed everything
                self.sync()
        except Exception as exc:  # derived data: the next write or search catches up
            log.warning("Could not update the keyword index: %s", exc)

    def _cancel_pending(self) -> None:
        with self._pending_lock:
            timer, self._pending = self._pending, None
        if timer is not None:
            timer.cancel()

    def sync(self) -> int:
        """Bring the index up to the catalog's change log; returns the passages written.

        Cheap when nothing changed (one catalog query). When another process
        holds the index's writer lock, the index is searched as it is.
        """
        with self._lock:
            self._last_sync = time.monotonic()
            head = self.source.keyword_head()
            if self._index is not None and self._mark is not None and self._mark >= head:
                return 0
            self._open()
            mark = self._watermark()
            if mark is not None and mark >= head:
                self._mark = mark
                self._reload()
                return 0
            writer = self._take_writer()
            if writer is None:
                self._reload()  # another process is writing it: read what it committed
                return 0
            try:
                written = self._catch_up(writer)
            except BaseException:
                self._close_writer(rollback=True)
                raise
            if not self.writable:
                self._close_writer()  # a reader lets the writer in as soon as it is done
            return written

    def _take_writer(self) -> tantivy.IndexWriter | None:
        if self._writer is None:
            try:
                self._writer = self._open().writer(WRITER_HEAP, 1)
            except (ValueError, OSError) as exc:  # LockBusy (another process holds it), a read-only disk
                log.debug("Keyword index busy: %s", exc)
                return None
        return self._writer

    def _catch_up(self, writer: tantivy.IndexWriter) -> int:
        """Apply the log past the watermark (or rebuild); under the writer lock."""
        # Read again under the lock: another process may have caught up meanwhile.
        head = self.source.keyword_head()
        mark = self._watermark()
        written = 0
        if mark is not None and mark >= head:
            self._mark = mark
        elif mark is None or mark < self.source.keyword_pruned_to():
            if self._read_mark_file() is not None:
                log.info("Rebuilding the keyword index %s from the catalog.", self.directory)
            writer.delete_all_documents()
            for batch in self.source.keyword_all():
                written += self._add(writer, batch)
            self.rebuilds += 1
        else:
            rids = self.source.keyword_changes(mark, head)
            for lo in range(0, len(rids), BATCH):
                part = rids[lo : lo + BATCH]
                # By query, typed by the schema: a bare int would be a signed term and match nothing.
                writer.delete_documents_by_query(tantivy.Query.term_set_query(self._schema, "rid", part))
                written += self._add(writer, self.source.keyword_passages(part))
        if mark is None or mark < head:
            writer.commit()
            self._write_mark(head)
        self._reload()
        if self.on_synced is not None and self.writable:
            self.on_synced(head)
        return written

    def _add(self, writer: tantivy.IndexWriter, passages: Iterable[Passage]) -> int:
        n = 0
        for p in passages:
            doc = tantivy.Document()
            doc.add_unsigned("rid", p.rid)  # explicit: keyword arguments would make them signed
            doc.add_unsigned("file_id", p.file_id)
            doc.add_text("body", p.body)
            writer.add_document(doc)
            n += 1
        return n

    def _reload(self) -> None:
        if self._index is not None:
            self._index.reload()

    # --- searching ------------------------------------------------------------

    def query(self, text: str) -> tantivy.Query | None:
        """The tantivy query for a user's ``text`` (see ``textnorm.keyword_clauses``)."""
        parts: list[tuple[tantivy.Occur, tantivy.Query]] = []
        for clause in textnorm.keyword_clauses(text):
            words = [t for w in clause.words for t in self._analyzer.analyze(w)]
            if not words:
                continue
            if clause.prefix:
                q = tantivy.Query.regex_query(self._schema, "body", _regex_literal(words[0]) + ".*")
            elif len(words) == 1:
                q = tantivy.Query.term_query(self._schema, "body", words[0])
            else:
                q = tantivy.Query.phrase_query(self._schema, "body", words)
            parts.append((tantivy.Occur.Should, q))
        if not parts:
            return None
        return parts[0][1] if len(parts) == 1 else tantivy.Query.boolean_query(parts)

    def search(
        self, text: str, k: int, *, file_ids: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best passages for ``text``: ``(rowid, BM25 score)``, best first.

        Args:
            file_ids: only passages of these files (a scope); filtered inside
                the index, before ranking.
        """
        if k < 1:
            return []
        query = self.query(text)
        if query is None:
            return []
        with self._lock:  # not while a catch-up swaps the index
            return self._search(query, k, file_ids)

    def _search(self, query: tantivy.Query, k: int, file_ids: Collection[int] | None) -> list[tuple[int, float]]:
        self.sync()
        if file_ids is not None:
            if not file_ids:
                return []
            scope = tantivy.Query.term_set_query(self._schema, "file_id", sorted(file_ids))
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, tantivy.Query.const_score_query(scope, 0.0))]
            )
        searcher = self._open().searcher()
        hits = searcher.search(query, k, count=False).hits
        if not hits:
            return []
        rids = searcher.fast_field_values("rid", [addr for _, addr in hits])
        return [(int(rid), float(score)) for (score, _), rid in zip(hits, rids) if rid is not None]

    def has_phrase(self, term: str) -> bool:
        """Whether any passage holds ``term``'s words, together and in order."""
        words = self._analyzer.analyze(textnorm.for_index(term))
        if not words:
            return False
        if len(words) == 1:
            q = tantivy.Query.term_query(self._schema, "body", words[0])
        else:
            q = tantivy.Query.phrase_query(self._schema, "body", words)
        with self._lock:
            self.sync()
            return bool(self._open().searcher().search(q, 1, count=False).hits)

    def rids(self) -> list[int]:
        """Every row id the index holds, once per entry (duplicates would show)."""
        searcher = self._open().searcher()
        n = searcher.num_docs
        if n == 0:
            return []
        hits = searcher.search(tantivy.Query.all_query(), n, count=False).hits
        return [int(r) for r in searcher.fast_field_values("rid", [a for _, a in hits]) if r is not None]

    def stats(self) -> dict[str, int]:
        """Passages and segments in the index, and its size on disk in bytes."""
        searcher = self._open().searcher()
        size = 0
        if self.directory is not None and self.directory.exists():
            size = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
        return {"passages": searcher.num_docs, "segments": searcher.num_segments, "bytes": size}

    # --- closing ----------------------------------------------------------------

    def _close_writer(self, *, rollback: bool = False) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            if rollback:
                writer.rollback()
            writer.wait_merging_threads()  # also releases the lock
        except (ValueError, RuntimeError) as exc:
            log.debug("Keyword index writer: %s", exc)

    def close(self) -> None:
        """Commit what the catalog has (the next start needs no catching up) and let go."""
        with self._pending_lock:
            self._closed = True
        self._cancel_pending()
        with self._lock:
            if self._writer is not None:
                try:
                    self.sync()
                except Exception as exc:  # the index is derived: the next start catches up
                    log.warning("Could not update the keyword index on closing: %s", exc)
            self._close_writer()
            self._index = None


def _regex_literal(word: str) -> str:
    """``word`` as a literal in tantivy's regex syntax."""
    return "".join("\\" + c if c in r".^$*+?()[]{}|\\-&~#@<>\"" else c for c in word)
