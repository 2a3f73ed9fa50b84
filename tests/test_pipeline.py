"""The ingest pipeline: files are read in reader processes while others embed."""

from __future__ import annotations

import threading
from pathlib import Path

from app.core.documents.chunking import chunk_pages
from app.core.documents import load
from app.core.ingest.indexer import Indexer
from app.core.documents.parsing import InProcessParser
from tests import corpus


def _chunks(library) -> dict[str, list[tuple[int | None, str]]]:
    out: dict[str, list[tuple[int | None, str]]] = {}
    stored = library.catalog.chunks(sorted(library.catalog.all_chunk_ids()))
    for c in sorted(stored.values(), key=lambda c: (c.path, c.ordinal)):
        out.setdefault(c.path, []).append((c.page, c.text))
    return out


def test_readers_chunk_exactly_as_the_embedders_tokenizer_does(library, docs, embedder) -> None:
    library.indexer.ingest([docs["pdf"].parent])
    assert library.indexer.readers.chunk_spec() is not None  # the readers chunk
    stored = _chunks(library)
    for path in docs.values():
        expected = chunk_pages(load(path).pages, embedder.token_spans,
                               max_tokens=library.indexer.chunk_tokens,
                               overlap=library.indexer.chunk_overlap)
        assert stored[str(path)] == [(c.page, c.text) for c in expected], path.name


def test_the_next_file_is_read_while_the_current_one_embeds(library, tmp_path: Path, embedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    first = corpus.make_text(folder / "a-first.txt")
    second = corpus.make_markdown(folder / "b-second.md")
    indexer = library.indexer
    reader = indexer.readers.pool()[0]
    reading_second = threading.Event()
    real_read = reader.read

    def spy_read(path, spec, **kw):  # noqa: ANN001, ANN202
        if Path(path) == second:
            reading_second.set()
        return real_read(path, spec, **kw)

    reader.read = spy_read
    overlapped: list[bool] = []
    real_encode = embedder.encode

    class Watching:
        """The real embedder; while embedding the first file it notes whether the second is being read."""

        name, dim, max_tokens = embedder.name, embedder.dim, embedder.max_tokens
        token_spans = staticmethod(embedder.token_spans)

        def encode(self, texts, **kw):  # noqa: ANN001, ANN201
            if not overlapped:
                # A sequential indexer would never start the second file here.
                overlapped.append(reading_second.wait(timeout=30))
            return real_encode(texts, **kw)

    indexer.embedder = Watching()
    try:
        report = indexer.ingest([folder])
    finally:
        indexer.embedder = embedder
        del reader.read
    assert overlapped == [True]
    assert report.indexed == 2
    assert library.catalog.file(str(first)).status == "indexed"
    assert library.catalog.file(str(second)).status == "indexed"


def test_cancelling_leaves_files_read_ahead_pending_and_the_next_run_finishes_them(
        library, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    files = [corpus.make_text(folder / f"note-{i}.txt") for i in range(5)]
    for i, f in enumerate(files):
        f.write_text(f"Note {i}: the harbour board met on day {i} to review the ledger.\n")
    done: list[int] = []
    report = library.indexer.ingest([folder], progress=lambda p: done.append(p.files_done),
                                    should_stop=lambda: max(done, default=0) >= 2)
    assert report.cancelled
    statuses = [library.catalog.file(str(f)) for f in files]
    assert sum(1 for s in statuses if s is not None and s.status == "indexed") == report.indexed < 5
    again = library.indexer.ingest([folder])
    assert not again.cancelled
    assert all(library.catalog.file(str(f)).status == "indexed" for f in files)
    assert library.vectors.ids() == library.catalog.all_chunk_ids()


def test_a_parser_without_reader_processes_still_indexes(library, docs, embedder) -> None:
    """Fault-injection parsers and the in-process loader go through the same pipeline."""
    indexer = Indexer(library.catalog, library.vectors, embedder, library.audit, parser=InProcessParser())
    report = indexer.ingest([docs["pdf"].parent])
    assert report.indexed == 5 and not report.failed
    assert library.vectors.ids() == library.catalog.all_chunk_ids()
