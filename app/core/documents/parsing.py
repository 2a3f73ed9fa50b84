"""Reading documents in a child process, so a hostile file cannot hurt Docent.

A parser that stops making progress (no page finished for a minute), crashes
the interpreter, or blows up memory fails that one file with a clear reason
and the queue goes on; the child is replaced. A long document that keeps
finishing pages is never cut off: the time limit is on silence, not length.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from app.core.documents.chunking import Chunk, chunk_pages
from app.core.documents.model import Document, LineBox
from app.errors import Cancelled, ParseError, SkipFile

DEFAULT_TARGET = "app.core.documents:load"


@dataclass(frozen=True)
class ParseLimits:
    """How much a parser may take before its file is given up on.

    Attributes:
        stall_s: the longest silence allowed: for PDFs, between two finished
            pages; for formats without pages, for the whole file plus
            ``per_mb_s`` for each megabyte of it.
        per_mb_s: extra time per megabyte for formats that report no pages.
        memory_bytes: the child's address-space cap (None: no cap).
    """

    stall_s: float = 60.0
    per_mb_s: float = 10.0
    memory_bytes: int | None = 3 * 1024**3


@dataclass(frozen=True)
class ChunkSpec:
    """How to cut a document into chunks, so the reader can do it too.

    Attributes:
        tokenizer: the embedding model's ``tokenizer.json``; its token spans
            must equal the embedder's own (the indexer checks this).
        max_tokens: the most tokens in one chunk.
        overlap: tokens shared by consecutive chunks of a page.
    """

    tokenizer: str
    max_tokens: int
    overlap: int


@dataclass(frozen=True)
class Parsed:
    """A read and chunked document, without its page texts (the chunks hold them)."""

    title: str | None
    pages: int
    numbered_pages: int
    chunks: list[Chunk]
    ocr_pages: int = 0
    #: Page number → where its OCR lines were drawn (pages read by OCR only),
    #: so the viewer can mark a cited passage on the page's picture.
    ocr_boxes: dict[int, tuple[LineBox, ...]] = field(default_factory=dict)
    #: The documents inside it (an e-mail's attachments), read or not.
    parts: list[Part] = field(default_factory=list)

    @classmethod
    def from_document(cls, doc: Document, chunks: list[Chunk]) -> Parsed:
        """A loaded document and its chunks, packed as the indexer keeps them."""
        return cls(
            title=doc.title,
            pages=len(doc.pages),
            # An attachment's pages are its own, not the file's.
            numbered_pages=sum(1 for p in doc.pages if p.number is not None and p.part is None),
            chunks=chunks,
            ocr_pages=doc.ocr_pages,
            ocr_boxes={p.number: p.boxes for p in doc.pages
                       if p.number is not None and p.boxes and p.part is None},
            parts=list(doc.parts),
        )


def tokenizer_spans(tokenizer_file: str | Path) -> Callable[[str], list[tuple[int, int]]]:
    """Token spans from a bare ``tokenizers`` tokenizer (no torch, no transformers).

    Light enough to load in every reader process; truncation and padding are
    switched off so a whole page is tokenised, as the embedder's own
    tokenizer does for chunking.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.no_truncation()
    tok.no_padding()

    def spans(text: str) -> list[tuple[int, int]]:
        return [(s, e) for s, e in tok.encode(text, add_special_tokens=False).offsets if e > s]

    return spans


def _set_memory_cap(limit: int | None) -> None:
    if limit is None:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on every platform
        pass


def _child(conn: Connection, target: str, memory: int | None) -> None:
    """The child's loop: read paths, send pages-done counts and the result."""
    # The parent decides about interruptions; a Ctrl+C in the terminal reaches
    # the whole process group and must not kill the child mid-reply.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_memory_cap(memory)
    try:
        # Reading runs beside embedding on the same cores: at a lower
        # priority it fills the gaps of the embedder's threads rather than
        # slowing them, and never competes with the window for a core.
        os.nice(10)
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        pass
    module, _, name = target.partition(":")
    load = getattr(importlib.import_module(module), name)
    spans_for: dict[str, Callable[[str], list[tuple[int, int]]]] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, spec = request
        try:
            try:
                doc = load(Path(path), on_page=lambda done, total: conn.send(("page", done, total)))
                if spec is None:
                    conn.send(("ok", doc))
                    continue
                # Chunking here keeps tokenising off the indexer's process, whose
                # GIL the window's thread shares, and overlaps it with embedding.
                if spec.tokenizer not in spans_for:
                    spans_for[spec.tokenizer] = tokenizer_spans(spec.tokenizer)
                chunks = chunk_pages(doc.pages, spans_for[spec.tokenizer],
                                     max_tokens=spec.max_tokens, overlap=spec.overlap)
                conn.send(("ok", Parsed.from_document(doc, chunks)))
            except SkipFile as exc:
                conn.send(("skip", exc.reason))
            except ParseError as exc:
                conn.send(("error", exc.reason))
            except MemoryError:
                conn.send(("error", "needs more memory than Docent allows a single file"))
            except BaseException as exc:  # noqa: BLE001 - report, never die silently
                conn.send(("error", f"could not be read ({type(exc).__name__}: {exc})"))
        except (BrokenPipeError, ConnectionResetError):
            return  # the parent is gone (stopped, or closed): nobody to answer


def _reap(proc: Any, conn: Connection) -> None:
    if proc.is_alive():
        proc.kill()
    conn.close()


class IsolatedParser:
    """Loads documents in a reusable child process with limits.

    Thread-safe: calls are serialised (one child, one file at a time).
    """

    def __init__(self, limits: ParseLimits = ParseLimits(), *, target: str = DEFAULT_TARGET) -> None:
        self.limits = limits
        self.target = target
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        # The loader the running child was started with: a new ``target``
        # (OCR switched on or off) takes effect from the next file.
        self._running_target: str | None = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_child, args=(child, self.target, self.limits.memory_bytes),
            name="docent-parser", daemon=True,
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self._running_target = self.target
        # A parser dropped without close() must not leave its child behind.
        weakref.finalize(self, _reap, proc, parent)

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        """End the child process."""
        with self._lock:
            if self._conn is not None and self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(None)
                    self._proc.join(timeout=2)
                except (OSError, ValueError):
                    pass
            self._kill()

    def twin(self) -> IsolatedParser:
        """Another parser with the same limits and loader (for a pool of readers)."""
        return IsolatedParser(self.limits, target=self.target)

    def load(
        self,
        path: Path,
        *,
        on_page: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Document:
        """Like :func:`app.core.documents.load`, in the child process."""
        return self._request(path, None, on_page, should_stop)  # type: ignore[no-any-return]

    def read(
        self,
        path: Path,
        spec: ChunkSpec,
        *,
        on_page: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Parsed:
        """Load and chunk ``path`` in the child process."""
        return self._request(path, spec, on_page, should_stop)  # type: ignore[no-any-return]

    def _request(
        self,
        path: Path,
        spec: ChunkSpec | None,
        on_page: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Document | Parsed:
        with self._lock:
            if self._proc is None or not self._proc.is_alive() or self._running_target != self.target:
                self._kill()
                self._start()
            assert self._conn is not None
            try:
                size_mb = Path(path).stat().st_size / 1e6
            except (OSError, ValueError):  # gone, or a request that is not a path (see reading)
                size_mb = 0.0
            self._conn.send((str(path), spec))
            return self._wait(Path(path), size_mb, on_page, should_stop)

    def _wait(
        self,
        path: Path,
        size_mb: float,
        on_page: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Document | Parsed:
        assert self._conn is not None and self._proc is not None
        limits = self.limits
        allowance = limits.stall_s + limits.per_mb_s * size_mb  # until the first page is done
        last = time.monotonic()
        while True:
            if should_stop is not None:
                asked = time.monotonic()
                if should_stop():
                    self._kill()
                    raise Cancelled()
                if time.monotonic() - asked > 0.5:
                    last = time.monotonic()  # a pause is not the parser's silence
            try:
                ready = self._conn.poll(0.2)
            except (OSError, EOFError):
                ready = False
            if ready:
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None:
                    kind = message[0]
                    if kind == "page":
                        last = time.monotonic()
                        allowance = limits.stall_s
                        if on_page is not None:
                            on_page(message[1], message[2])
                        continue
                    if kind == "ok":
                        return message[1]
                    if kind == "skip":
                        raise SkipFile(path, message[1])
                    raise ParseError(path, message[1])
            if not self._proc.is_alive():
                code = self._proc.exitcode
                self._kill()
                raise ParseError(path, self._death_reason(code))
            if time.monotonic() - last > allowance:
                self._kill()
                raise ParseError(
                    path,
                    f"the reader stopped making progress (nothing finished in {allowance:.0f} s); "
                    "the file may be damaged or built to hang readers",
                )

    def _death_reason(self, code: int | None) -> str:
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            if -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
                cap = self.limits.memory_bytes
                hint = f" or needed more than {cap // 1024**3} GB of memory" if cap else ""
                return f"the reader crashed on this file ({name}){hint}; the file may be damaged"
            return f"the reader was stopped ({name})"
        return f"the reader crashed on this file (exit code {code}); the file may be damaged"


class Parser(Protocol):
    """What the indexer needs to read a document."""

    def load(
        self,
        path: Path,
        *,
        on_page: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Document: ...

    def close(self) -> None: ...


class InProcessParser:
    """The plain loader, for callers that do not want a child process."""

    def load(self, path: Path, **kwargs: Any) -> Document:
        from app.core import documents

        return documents.load(path, **kwargs)

    def twin(self) -> InProcessParser:
        return InProcessParser()

    def close(self) -> None:
        pass

