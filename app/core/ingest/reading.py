"""Reading files for the indexer: reader processes that work ahead of embedding.

Reader processes parse (and, when their bare tokenizer cuts exactly as the
embedder's does, chunk) the next files while the indexing thread embeds and
stores the current one. Files are still finished one at a time, in plan
order, by the indexing thread, so the crash-safe protocol is unchanged.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from app.core.documents.model import Document
from app.core.documents.parsing import ChunkSpec, Parsed, Parser, tokenizer_spans
from app.core.ingest.report import Progress
from app.core.models.embedder import Embedder
from app.errors import Cancelled, ParseError, SkipFile

Outcome = Parsed | Document | Exception
"""What reading a file gave: the document (chunked or not), or why it could not be read."""

_Planned = TypeVar("_Planned")

# Texts on which the reader's bare tokenizer must split exactly as the embedder does.
_TOKENIZER_PROBES = (
    "Docent indexes PDFs, Word files and notes: 42 pages, naïve café, x² ≥ 1.",
    "def f(x):\n    return x_ref['key'] + 3.14  # ﬁnal — “quoted”",
    "中文文本没有空格。日本語のテキスト。한국어 텍스트.",
)


def default_readers() -> int:
    """How many reader processes run beside embedding: one per spare core, one
    at least and two at most (reading costs about a tenth of embedding, and
    each reader may hold a large document in memory)."""
    return max(1, min(2, (os.cpu_count() or 2) - 1))


@dataclass
class ReadJob:
    """A file marked pending, waiting to be read and then embedded and stored."""

    path: Path
    key: str
    root_id: int | None
    file_id: int
    size: int
    mtime_ns: int
    digest: str
    kind: str
    # Page progress from the reader thread, for the indexing thread to report.
    pages: deque[tuple[int, int]] = field(default_factory=deque)
    changed: threading.Event = field(default_factory=threading.Event)
    on_page: Callable[[int, int], None] | None = None
    # Passages embedded so far of how many (on the indexing thread, as it embeds).
    on_embedded: Callable[[int, int], None] | None = None
    # When its reading began and ended (epoch ns), for the file's trace;
    # whether the reader also chunked it.
    read_start_ns: int | None = None
    read_end_ns: int | None = None
    chunked_by_reader: bool = False


@dataclass(eq=False)
class Readers:
    """The indexer's reader pool: its parser plus twins, one per spare core.

    Attributes:
        count: how many files are read at once.
        tokenizer_file: the embedder's ``tokenizer.json``; with it, reader
            processes chunk as well as parse.
    """

    parser: Parser
    count: int
    tokenizer_file: Path | None
    embedder: Embedder
    chunk_tokens: int
    chunk_overlap: int
    _pool: list[Parser] | None = field(default=None, init=False)
    _spec: ChunkSpec | bool | None = field(default=None, init=False)

    @property
    def started(self) -> bool:
        """True once the reader parsers exist."""
        return self._pool is not None

    def pool(self) -> list[Parser]:
        """The reader parsers, started on first use."""
        if self._pool is None:
            self._pool = [self.parser]
            twin = getattr(self.parser, "twin", None)
            if twin is not None:
                self._pool += [twin() for _ in range(self.count - 1)]
        return self._pool

    def close(self) -> None:
        """End the reader processes."""
        for reader in self._pool or [self.parser]:
            reader.close()
        self._pool = None

    def chunk_spec(self) -> ChunkSpec | None:
        """What a reader process needs to chunk as the indexer would, if it can.

        Only when the bare tokenizer file gives exactly the embedder's token
        spans (checked once on a sample); otherwise chunking stays in the
        indexing process. Decided on the indexing thread, before any reading.
        """
        if self._spec is None:
            self._spec = False
            if self.tokenizer_file is not None and Path(self.tokenizer_file).is_file():
                try:
                    spans = tokenizer_spans(self.tokenizer_file)
                    if all(spans(t) == list(self.embedder.token_spans(t)) for t in _TOKENIZER_PROBES):
                        self._spec = ChunkSpec(str(self.tokenizer_file), self.chunk_tokens, self.chunk_overlap)
                except Exception:  # noqa: BLE001 - any doubt: chunk in this process
                    self._spec = False
        return self._spec or None

    def read(self, job: ReadJob, reader: Parser | None = None,
             should_stop: Callable[[], bool] | None = None) -> Outcome:
        """Read (and, in a reader process, chunk) one file; a file that cannot
        be read gives its :class:`ParseError` or :class:`SkipFile`.

        May run on a reader thread: it must not touch the catalog, and it
        leaves chunking with the embedder's own tokenizer to the indexing
        thread (a Rust tokenizer refuses to be used from two threads at once).
        """
        reader = reader or self.parser

        def on_page(done: int, total: int) -> None:
            job.pages.append((done, total))
            job.changed.set()
            if job.on_page is not None:
                job.on_page(done, total)

        read = getattr(reader, "read", None)
        spec = self._spec or None  # decided by chunk_spec(), before any reading
        job.read_start_ns = time.time_ns()
        try:
            if read is not None and isinstance(spec, ChunkSpec):
                job.chunked_by_reader = True
                parsed: Parsed = read(job.path, spec, on_page=on_page, should_stop=should_stop)
                return parsed
            return reader.load(job.path, on_page=on_page, should_stop=should_stop)
        except (SkipFile, ParseError) as exc:
            return exc
        finally:
            job.read_end_ns = time.time_ns()

    def read_ahead(
        self,
        plan: Iterable[_Planned],
        prepare: Callable[[_Planned], ReadJob | None],
        store: Callable[[ReadJob, Outcome], int],
        progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
        state: Progress,
    ) -> None:
        """Read the planned files ahead while ``store`` embeds and stores each in turn.

        Args:
            prepare: on this thread, settles an item that needs no reading
                (returns None) or marks it pending and says what to read.
            store: on this thread, in plan order: embeds and stores a read
                file (or records why it could not be read); returns the
                chunks it added.
            state: counted on and sent to ``progress`` after each step.

        Raises:
            Cancelled: when ``should_stop`` says so; files read ahead stay
                pending for next time.
        """
        self.chunk_spec()
        halt = threading.Event()

        def stop() -> bool:
            return halt.is_set() or (should_stop is not None and should_stop())

        idle: queue.SimpleQueue[Parser] = queue.SimpleQueue()
        for reader in self.pool():
            idle.put(reader)

        def read(job: ReadJob) -> Outcome:
            reader = idle.get()
            try:
                return self.read(job, reader, stop)
            finally:
                idle.put(reader)

        def report() -> None:
            if progress:
                progress(state)

        pending: deque[tuple[ReadJob, Future[Outcome]]] = deque()
        todo = iter(plan)
        ahead = len(self.pool()) + 1
        pool = ThreadPoolExecutor(max_workers=len(self.pool()), thread_name_prefix="docent-read")
        try:
            while True:
                while len(pending) < ahead:
                    item = next(todo, None)
                    if item is None:
                        break
                    if should_stop is not None and should_stop():
                        raise Cancelled()
                    job = prepare(item)
                    if job is None:  # settled without reading: unchanged, skipped, gone
                        state.files_done += 1
                        report()
                        continue
                    pending.append((job, pool.submit(read, job)))
                if not pending:
                    break
                job, future = pending.popleft()
                state.next_file(job.key)
                report()
                # Wait for the reader, passing on its page progress as it comes.
                future.add_done_callback(lambda _f, job=job: job.changed.set())
                while True:
                    job.changed.clear()  # before looking, so no wake-up is missed
                    done = future.done()
                    while job.pages:
                        state.pages_done, state.pages_total = job.pages.popleft()
                        report()
                    if done:
                        break
                    job.changed.wait(0.5)
                state.chunks_done += store(job, future.result())
                state.files_done += 1
                report()
        finally:
            # Readers still working on files ahead see the halt within a
            # fraction of a second; those files stay pending for next time.
            halt.set()
            pool.shutdown(wait=True, cancel_futures=True)
