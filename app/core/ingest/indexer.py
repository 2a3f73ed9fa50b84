"""Ingestion: bring library roots in line with the files on disk.

Follows the crash-safe protocol of DESIGN.md for each file:

1. mark it ``pending`` (committed);
2. parse, chunk, embed (reusing stored vectors of identical passages);
3. delete the file's old vectors (by file, so crash orphans go too), upsert
   the new ones;
4. swap the catalog's chunks and mark it ``indexed`` in one transaction.

A crash anywhere leaves the file ``pending`` (redone next time) or
``indexed`` with matching vectors; deterministic chunk ids make the redo
idempotent.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from app import config
from app.core import documents
from app.core import textnorm
from app.core.documents.chunking import chunk_pages
from app.core.documents.model import Document, ocr_note
from app.core.documents.parsing import IsolatedParser, Parsed, Parser
from app.core.ingest.ignore import IgnoreRules, Limits, walk
from app.core.ingest.reading import Outcome, Readers, ReadJob, default_readers
from app.core.ingest.report import IngestReport, Progress
from app.core.models.embedder import Embedder
from app.core.paths import is_inside
from app.core.stores.audit import AuditLog
from app.core.stores.catalog import Catalog, ChunkRow, FileRow
from app.core.stores.vectors import VectorStore
from app.errors import Cancelled, ParseError, SkipFile
from app.telemetry import instruments, names, past_span, span

__all__ = ["Indexer", "IngestReport", "Progress", "chunk_id", "file_hash"]


def _reading_target(ocr: bool) -> str:
    return documents.LOAD_TARGET if ocr else documents.LOAD_WITHOUT_OCR


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chunk_id(path: str, content_hash: str, ordinal: int) -> str:
    """Deterministic id of a chunk of one version of one file.

    The path is part of it so two copies of a file never share ids; the
    content hash makes a re-run of the same version produce the same ids.
    """
    version = hashlib.sha256(f"{path}\0{content_hash}".encode()).hexdigest()[:20]
    return f"{version}-{ordinal:05d}"


class Indexer:
    """Parses, chunks, embeds and stores files; one instance per data folder writer."""

    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorStore,
        embedder: Embedder,
        audit: AuditLog,
        *,
        chunk_tokens: int = config.CHUNK_TOKENS,
        chunk_overlap: int = config.CHUNK_OVERLAP,
        limits: Limits = Limits(),
        parser: Parser | None = None,
        tokenizer_file: Path | None = None,
        readers: int | None = None,
        ocr: bool = True,
    ) -> None:
        """
        Args:
            parser: reads documents (default: an :class:`IsolatedParser`).
            ocr: read scanned pages and pictures by OCR (see :meth:`set_ocr`).
            tokenizer_file: the embedder's ``tokenizer.json``; with it, reader
                processes chunk as well as parse.
            readers: how many files are read at once (default: one per spare core).
        """
        self.limits = limits
        # Documents are read in a child process unless told otherwise.
        self.parser: Parser = parser or IsolatedParser(target=_reading_target(ocr))
        self.ocr = ocr
        self._rules: dict[Path, IgnoreRules] = {}
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.audit = audit
        self.chunk_tokens = min(chunk_tokens, embedder.max_tokens)
        self.chunk_overlap = chunk_overlap
        self.readers = Readers(self.parser, readers or default_readers(), tokenizer_file=tokenizer_file,
                               embedder=embedder, chunk_tokens=self.chunk_tokens,
                               chunk_overlap=self.chunk_overlap)

    def set_ocr(self, on: bool) -> None:
        """Read (or stop reading) scanned pages and pictures by OCR from the next file on.

        Files that failed or were skipped because OCR was off are read again
        by the next ingest once it is on.
        """
        self.ocr = on
        for reader in self.readers.pool() if self.readers.started else [self.parser]:
            if isinstance(reader, IsolatedParser):
                reader.target = _reading_target(on)

    def rules(self, root: Path) -> IgnoreRules:
        """The ignore rules of one library root (cached)."""
        root = Path(root)
        if root not in self._rules:
            self._rules[root] = IgnoreRules(root, self.limits)
        return self._rules[root]

    def root_of(self, path: Path) -> tuple[int, Path] | None:
        """The library root holding ``path`` (the deepest one), as (id, path)."""
        best: tuple[int, Path] | None = None
        for root in self.catalog.roots():
            rp = Path(root.path)
            if is_inside(path, rp) and (best is None or len(str(rp)) > len(str(best[1]))):
                best = (root.id, rp)
        return best

    def update_path(self, path: Path, report: IngestReport | None = None) -> IngestReport:
        """Bring one path in line after a change on disk: index, skip or remove it."""
        report = report or IngestReport()
        found = self.root_of(path)
        if found is None:
            return report
        root_id, root = found
        rules = self.rules(root)
        if not path.exists() and not path.is_symlink():
            row = self.catalog.file(str(path))
            if row is not None:
                self.remove_file(row, report)
            return report
        if path.is_dir():
            return report
        # A file inside an ignored folder is not part of the library at all.
        for parent in path.parents:
            if parent == root or not is_inside(parent, root):
                break
            if rules.dir_reason(parent):
                return report
        try:
            size = path.lstat().st_size
        except OSError:
            size = None
        reason = rules.file_reason(path, size)
        if path.is_symlink() and not self.limits.follow_symlinks:
            reason = "symbolic link (not followed; see the settings)"
        self.ingest_file(path, root_id, report, skip=reason)
        return report

    # --- whole roots ------------------------------------------------------

    def ingest(
        self,
        paths: list[Path],
        *,
        progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> IngestReport:
        """Add ``paths`` as library roots and bring each in line with the disk."""
        report = IngestReport()
        plan: list[tuple[int, Path, str | None]] = []
        vanished: list[FileRow] = []
        for raw in paths:
            root = Path(raw).expanduser().resolve()
            root_row = self.catalog.add_root(str(root))
            if not root.exists():
                rows = self.catalog.files(root_id=root_row.id)
                if root.parent.is_dir() and [r.path for r in rows] == [str(root)]:
                    vanished += rows  # a single-file root whose file was deleted
                else:
                    self._mark_unavailable(root_row.id, report)
                continue
            seen: set[str] = set()
            for path, reason in walk(root, self.rules(root)):
                seen.add(str(path))
                plan.append((root_row.id, path, reason))
            vanished += [r for r in self.catalog.files(root_id=root_row.id) if r.path not in seen]
        try:
            self._run_plan(plan, report, progress, should_stop)
        finally:
            # Removed last, so a file that was moved or renamed within the
            # library finds its passages' vectors still there to reuse.
            for row in vanished:
                self.remove_file(row, report)
        return report

    def _run_plan(
        self,
        plan: list[tuple[int, Path, str | None]],
        report: IngestReport,
        progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        """Index the planned files, the readers working ahead (see :mod:`.reading`)."""

        def prepare(item: tuple[int, Path, str | None]) -> ReadJob | None:
            root_id, path, reason = item
            return self._prepare(path, root_id, report, skip=reason)

        def embedded(done: int, total: int) -> None:
            state.embedding(done, total)
            if progress is not None:
                progress(state)

        def store(job: ReadJob, outcome: Outcome) -> int:
            before = report.chunks
            job.on_embedded = embedded
            self._store_read_file(job, outcome, report, should_stop)
            return report.chunks - before

        state = Progress(0, len(plan), 0, None, time.monotonic())
        try:
            self.readers.read_ahead(plan, prepare, store, progress, should_stop, state)
        except Cancelled:
            report.cancelled = True

    def close(self) -> None:
        """End the reader processes."""
        self.readers.close()

    def _mark_unavailable(self, root_id: int, report: IngestReport) -> None:
        for row in self.catalog.files(root_id=root_id):
            self.catalog.mark_file(row.path, "unavailable", root_id=root_id,
                                   reason="its library folder is missing or not mounted")

    # --- one file ---------------------------------------------------------

    def ingest_file(
        self,
        path: Path,
        root_id: int | None,
        report: IngestReport,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_page: Callable[[int, int], None] | None = None,
        skip: str | None = None,
    ) -> None:
        """Bring one file in line; its outcome is added to ``report``.

        Args:
            skip: the ignore rule that applies to the file, if any: it is then
                listed as skipped with that reason and not read.
        """
        job = self._prepare(path, root_id, report, skip=skip)
        if job is None:
            return
        job.on_page = on_page
        self.readers.chunk_spec()
        self._store_read_file(job, self.readers.read(job, should_stop=should_stop), report, should_stop)

    def _prepare(self, path: Path, root_id: int | None, report: IngestReport, *,
                 skip: str | None) -> ReadJob | None:
        """Settle a file that needs no reading, or mark it pending and say what to read."""
        key = str(path)
        row = self.catalog.file(key)
        if skip is not None:
            if not (row is not None and row.status == "skipped" and row.reason == skip):
                self._settle(key, root_id, "skipped", skip)
            report.skipped.append((key, skip))
            return None
        try:
            st = path.stat()
        except FileNotFoundError:
            if row is not None:  # deleted since the folder was listed
                self.remove_file(row, report)
            return None
        except OSError as exc:
            reason = f"cannot be read: {exc.strerror or exc}"
            self._settle(key, root_id, "failed", reason)
            report.failed.append((key, reason))
            return None
        if row is not None and row.size == st.st_size and row.mtime_ns == st.st_mtime_ns:
            if row.status in ("indexed", "skipped", "failed") and not self._ocr_now_reads(row):
                self._count_unchanged(row, report)
                return None
        kind = documents.kind_for(path)
        if kind is None:
            reason = documents.skip_reason(path)
            self._settle(key, root_id, "skipped", reason, size=st.st_size, mtime_ns=st.st_mtime_ns)
            report.skipped.append((key, reason))
            return None
        try:
            digest = file_hash(path)
        except OSError as exc:
            reason = f"cannot be read: {exc.strerror or exc}"
            self._settle(key, root_id, "failed", reason)
            report.failed.append((key, reason))
            return None
        if row is not None and row.hash == digest and row.status == "indexed":
            # Touched but not changed: remember the new mtime, read nothing.
            self.catalog.mark_file(key, "indexed", root_id=root_id, size=st.st_size, mtime_ns=st.st_mtime_ns)
            report.unchanged += 1
            return None
        file_id = self.catalog.mark_file(key, "pending", root_id=root_id, kind=kind)
        return ReadJob(path=path, key=key, root_id=root_id, file_id=file_id, size=st.st_size,
                    mtime_ns=st.st_mtime_ns, digest=digest, kind=kind)

    def _store_read_file(self, job: ReadJob, outcome: Outcome, report: IngestReport,
                         should_stop: Callable[[], bool] | None) -> None:
        """Chunk (if the reader did not), embed and store a read file, or record
        why it could not be read or is skipped; a file gone meanwhile is removed.

        One trace per file: its reading (in a reader process, timed there),
        chunking, embedding and storing.
        """
        before = (report.indexed, len(report.failed), len(report.skipped), report.chunks)
        attrs = {names.KIND: "index", names.LABEL: job.path.name, "docent.file.path": job.key,
                 "docent.file.kind": job.kind, "docent.file.size_bytes": job.size}
        started = time.perf_counter()
        with span("index_file", attrs, start_ns=job.read_start_ns) as op:
            if job.read_start_ns is not None and job.read_end_ns is not None:
                read_attrs: dict[str, bool | int] = {"docent.read.chunked": job.chunked_by_reader}
                pages = getattr(outcome, "pages", None)
                if isinstance(pages, int):
                    read_attrs[names.PAGES] = pages
                past_span("read", job.read_start_ns, job.read_end_ns, read_attrs,
                          error=str(outcome) if isinstance(outcome, Exception) else None)
            try:
                self._store_read(job, outcome, report, should_stop)
            except Cancelled:
                op.set_attribute(names.OUTCOME, "cancelled")  # stopped by the user: not an error
                raise
            except Exception:
                instruments().ingest_files.add(1, {names.OUTCOME: "error"})
                raise
            chunks = report.chunks - before[3]
            if report.indexed > before[0]:
                result = "ok"
            elif len(report.failed) > before[1]:
                result = "failed"  # the file's problem (corrupt, protected, no text), said in its status
            elif len(report.skipped) > before[2]:
                result = "skipped"
            else:
                result = "removed"
            op.set_attribute(names.OUTCOME, result)
            op.set_attribute(names.CHUNKS, chunks)
        m = instruments()
        m.ingest_files.add(1, {names.OUTCOME: result})
        if chunks:
            m.ingest_chunks.add(chunks)
        m.ingest_duration.record(time.perf_counter() - started)

    def _store_read(self, job: ReadJob, outcome: Outcome, report: IngestReport,
                    should_stop: Callable[[], bool] | None) -> None:
        """:meth:`_store_read_file`'s work, inside the file's span."""
        key, root_id, path = job.key, job.root_id, job.path
        fields = {"size": job.size, "mtime_ns": job.mtime_ns, "hash": job.digest}
        if not path.exists():
            # Deleted while it was read or waited its turn: no longer part of the library.
            gone = self.catalog.file(key)
            if gone is not None:
                self.remove_file(gone, report)
            return
        try:
            if isinstance(outcome, Exception):
                raise outcome
            if isinstance(outcome, Document):
                with span("chunk"):
                    outcome = Parsed.from_document(outcome, chunk_pages(
                        outcome.pages, self.embedder.token_spans,
                        max_tokens=self.chunk_tokens, overlap=self.chunk_overlap,
                    ))
            if not outcome.chunks:
                raise ParseError(path, "no extractable text")
            rows = [
                ChunkRow(
                    id=chunk_id(key, job.digest, c.ordinal), ordinal=c.ordinal, page=c.page,
                    label=c.label, start=c.start, end=c.end, heading=c.heading,
                    text=c.text, text_hash=textnorm.text_hash(c.text), part=c.part,
                )
                for c in outcome.chunks
            ]
            with span(f"embeddings {_model_name(self.embedder)}", {names.OPERATION: "embeddings",
                                                          names.REQUEST_MODEL: _model_name(self.embedder),
                                                          names.CHUNKS: len(rows)}) as step:
                vectors = self._vectors_for(rows, should_stop, step, job.on_embedded)
        except SkipFile as exc:
            self._settle(key, root_id, "skipped", exc.reason, **fields)
            report.skipped.append((key, exc.reason))
            return
        except ParseError as exc:
            if not path.exists():
                # Deleted while being read: it is no longer part of the library.
                gone = self.catalog.file(key)
                if gone is not None:
                    self.remove_file(gone, report)
                return
            self._settle(key, root_id, "failed", exc.reason, **fields)
            report.failed.append((key, exc.reason))
            self.audit.append("ingest", {"path": key, "status": "failed", "reason": exc.reason, "hash": job.digest})
            return
        with span("store", {names.CHUNKS: len(rows)}):
            self.vectors.delete_file(job.file_id)
            self.vectors.upsert(
                [r.id for r in rows],
                vectors,
                [{"file_id": job.file_id, "page": r.page if r.page is not None else -1, "text_hash": r.text_hash}
                 for r in rows],
            )
            count = self.catalog.replace_chunks(
                job.file_id, rows, size=job.size, mtime_ns=job.mtime_ns, hash=job.digest,
                kind=job.kind, title=outcome.title, pages=outcome.numbered_pages or None,
                note=ocr_note(outcome.ocr_pages, outcome.pages),
                boxes=outcome.ocr_boxes, parts=outcome.parts,
            )
            report.indexed += 1
            report.chunks += count
            self.audit.append("ingest", {
                "path": key, "status": "indexed", "hash": job.digest, "chunks": count,
                "pages": outcome.pages, "kind": job.kind, "ocr_pages": outcome.ocr_pages,
            })

    def _ocr_now_reads(self, row: FileRow) -> bool:
        """True for a file left unread because OCR was off, now that it is on."""
        return self.ocr and row.status != "indexed" and documents.OCR_OFF_WORDS in (row.reason or "")

    def _count_unchanged(self, row: FileRow, report: IngestReport) -> None:
        report.unchanged += 1
        if row.status == "failed":
            report.failed.append((row.path, row.reason or "failed"))
        elif row.status == "skipped":
            report.skipped.append((row.path, row.reason or "skipped"))

    def _settle(self, key: str, root_id: int | None, status: str, reason: str, **fields: object) -> None:
        """Record a file that will not be indexed, dropping any old chunks it had."""
        file_id = self.catalog.mark_file(key, "pending", root_id=root_id)
        self.vectors.delete_file(file_id)
        self.catalog.drop_chunks(file_id, status, reason, **fields)

    def _vectors_for(self, rows: list[ChunkRow], should_stop: Callable[[], bool] | None,  # noqa: ANN202
                     current: object = None, on_embedded: Callable[[int, int], None] | None = None):
        """Vectors for ``rows``: stored ones reused by text hash, the rest embedded
        (how many were reused goes on ``current``, the embedding span, and in the
        cache metric; ``on_embedded(done, total)`` as the rest are embedded)."""
        import numpy as np

        known = self.catalog.chunk_ids_by_text_hash(r.text_hash for r in rows)
        stored = self.vectors.get(list(known.values())) if known else {}
        out = np.zeros((len(rows), self.embedder.dim), dtype=np.float32)
        missing: list[int] = []
        for i, r in enumerate(rows):
            vec = stored.get(known.get(r.text_hash, ""))
            if vec is not None:
                out[i] = vec
            else:
                missing.append(i)
        reused = len(rows) - len(missing)
        if current is not None:
            current.set_attribute(names.REUSED, reused)  # type: ignore[attr-defined]
        cache = instruments().cache
        if reused:
            cache.add(reused, {names.CACHE: "passage_vectors", names.CACHE_HIT: True})
        if missing:
            cache.add(len(missing), {names.CACHE: "passage_vectors", names.CACHE_HIT: False})
            # Repeated passages (headers, boilerplate pages) are embedded once.
            unique = list(dict.fromkeys(rows[i].text for i in missing))
            vecs = self.embedder.encode(unique, should_stop=should_stop, on_progress=on_embedded)
            where = {text: n for n, text in enumerate(unique)}
            for i in missing:
                out[i] = vecs[where[rows[i].text]]
        return out

    def repair(self) -> dict[str, int]:
        """Make the catalog and the vector store agree again after a crash.

        Vectors that no catalog chunk names (a crash between the two stores)
        are deleted; files marked indexed whose vectors are missing are set
        back to pending so the next ingest redoes them. Files left pending
        are redone by the next ingest anyway.
        """
        catalog_ids = self.catalog.all_chunk_ids()
        vector_ids = self.vectors.ids()
        orphans = sorted(vector_ids - catalog_ids)
        if orphans:
            self.vectors.delete(orphans)
        missing = catalog_ids - vector_ids
        redo = 0
        if missing:
            for row in self.catalog.files(status="indexed"):
                if any(cid in missing for cid in self.catalog.chunk_ids(row.id)):
                    self.catalog.mark_file(row.path, "pending", root_id=row.root_id)
                    redo += 1
        pending = len(self.catalog.files(status="pending"))
        if orphans or redo:
            self.audit.append("repair", {"orphan_vectors": len(orphans), "files_to_redo": redo,
                                         "pending": pending})
        return {"orphan_vectors": len(orphans), "files_to_redo": redo, "pending": pending}

    def remove_file(self, row: FileRow, report: IngestReport | None = None) -> None:
        """Forget a file that left the library: its chunks, vectors and row."""
        self.vectors.delete_file(row.id)
        self.catalog.delete_file(row.id)
        if report is not None:
            report.removed += 1
        self.audit.append("remove", {"path": row.path, "hash": row.hash, "chunks": row.chunks})


def _model_name(embedder: Embedder) -> str:
    """The embedding model's name for spans (the bundled one's as its makers call it)."""
    return getattr(embedder, "display_name", None) or embedder.name
