"""Ingesting a folder of real documents, and keeping it in line with the disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import corpus


def _consistent(library) -> None:
    """The catalog's chunks and Chroma's vectors are the same set, no duplicates."""
    catalog_ids = library.catalog.all_chunk_ids()
    assert library.vectors.ids() == catalog_ids
    assert library.vectors.count() == len(catalog_ids)
    assert library.catalog.indexed_chunk_count() == sum(
        f.chunks for f in library.catalog.files(status="indexed")
    )


def test_a_folder_of_mixed_documents_is_indexed(library, docs) -> None:
    report = library.indexer.ingest([docs["pdf"].parent])
    assert report.indexed == 5 and not report.failed and not report.skipped
    status = library.status()
    assert status.files["indexed"] == 5
    pdf = library.catalog.file(str(docs["pdf"]))
    assert pdf.status == "indexed" and pdf.pages == 4
    # Every page of the PDF is findable and carries its page number.
    hit = library.retriever.search("storm warnings LED lighting", k=1).hits[0]
    assert (Path(hit.chunk.path), hit.chunk.page) == (docs["pdf"], 3)
    _consistent(library)


def test_running_ingest_again_changes_nothing(library, docs, monkeypatch) -> None:
    first = library.indexer.ingest([docs["pdf"].parent])
    calls: list[int] = []
    original = library.embedder.encode
    monkeypatch.setattr(library.embedder, "encode", lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw))
    again = library.indexer.ingest([docs["pdf"].parent])
    assert (again.indexed, again.unchanged, again.removed) == (0, 5, 0)
    assert calls == [], "nothing is embedded again"
    assert library.status().chunks == first.chunks
    _consistent(library)


def test_edits_deletions_and_renames_are_followed(library, docs, monkeypatch) -> None:
    folder = docs["pdf"].parent
    library.indexer.ingest([folder])
    docs["txt"].write_text("Bicycle log. The brake pads were replaced in October.\n", encoding="utf-8")
    docs["html"].unlink()
    renamed = folder / "sub" / "bees.docx"
    renamed.parent.mkdir()
    shutil.move(docs["docx"], renamed)
    embedded: list[str] = []
    original = library.embedder.encode
    monkeypatch.setattr(library.embedder, "encode", lambda texts, **kw: embedded.extend(texts) or original(texts, **kw))

    report = library.indexer.ingest([folder])

    assert report.removed == 2  # the deleted page and the old name of the moved file
    assert report.indexed == 2  # the edited text and the moved file under its new name
    assert library.catalog.file(str(docs["html"])) is None
    assert library.catalog.file(str(renamed)).status == "indexed"
    # The moved file's passages were reused, not embedded again.
    assert all("Honey bees" not in t for t in embedded)
    assert any("brake pads" in t for t in embedded)
    hits = library.keyword_retriever.search("brake pads", k=3, mode="keyword").hits
    assert [Path(h.chunk.path) for h in hits] == [docs["txt"]]
    assert library.keyword_retriever.search("chain lubricated wax", k=3, mode="keyword").hits == []
    _consistent(library)


def test_a_touched_but_unchanged_file_is_not_reindexed(library, docs) -> None:
    library.indexer.ingest([docs["md"]])
    st = docs["md"].stat()
    os.utime(docs["md"], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    report = library.indexer.ingest([docs["md"]])
    assert (report.indexed, report.unchanged) == (0, 1)


def test_identical_copies_never_collide(library, docs) -> None:
    copy = docs["md"].parent / "copy-of-sourdough.md"
    shutil.copy(docs["md"], copy)
    library.indexer.ingest([docs["md"].parent])
    a = library.catalog.chunk_ids(library.catalog.file(str(docs["md"])).id)
    b = library.catalog.chunk_ids(library.catalog.file(str(copy)).id)
    assert a and b and not set(a) & set(b)
    _consistent(library)
    # Search shows the passage once, not twice (near-duplicates collapse).
    hits = library.retriever.search("sourdough starter rye flour", k=5).hits
    assert sum("equal weights of rye flour" in h.chunk.text for h in hits) == 1


def test_broken_and_unsupported_files_fail_alone(library, docs) -> None:
    folder = docs["pdf"].parent
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(300))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(100))
    (folder / "model.blend").write_bytes(os.urandom(100))
    report = library.indexer.ingest([folder])
    assert report.indexed == 5
    failed = dict(report.failed)
    assert "not a valid PDF" in failed[str(folder / "broken.pdf")]
    assert "empty" in failed[str(folder / "empty.txt")]
    assert "not a picture Docent can read" in failed[str(folder / "photo.jpg")]
    assert "unsupported file type .blend" in dict(report.skipped)[str(folder / "model.blend")]
    status = library.status()
    assert status.files["failed"] == 3 and status.files["skipped"] == 1
    _consistent(library)


def test_an_interrupted_file_is_redone_without_duplicates(library, docs) -> None:
    folder = docs["pdf"].parent
    library.indexer.ingest([folder])
    before = library.vectors.count()
    # A crash between storing vectors and the catalog's final transaction
    # leaves the file pending with its vectors already written.
    row = library.catalog.file(str(docs["pdf"]))
    library.catalog.mark_file(row.path, "pending", root_id=row.root_id)
    report = library.indexer.ingest([folder])
    assert report.indexed == 1
    assert library.vectors.count() == before
    _consistent(library)


def test_a_missing_library_folder_makes_its_files_unavailable(library, docs, tmp_path) -> None:
    folder = docs["pdf"].parent
    library.indexer.ingest([folder])
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    report = library.indexer.ingest([folder])
    assert report.removed == 0
    assert library.status().files["unavailable"] == 5
    moved.rename(folder)
    library.indexer.ingest([folder])
    assert library.status().files["indexed"] == 5


def test_ingest_can_be_cancelled_and_resumed(library, tmp_path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        (folder / f"note-{i}.txt").write_text(f"Note {i}: the meeting about budget item {i}.", encoding="utf-8")
    seen: list[int] = []
    report = library.indexer.ingest(
        [folder], progress=lambda p: seen.append(p.files_done), should_stop=lambda: len(seen) >= 5
    )
    assert report.cancelled and 0 < report.indexed < 6
    resumed = library.indexer.ingest([folder])
    assert resumed.indexed == 6 - report.indexed
    assert library.status().files["indexed"] == 6


def test_vectors_of_another_embedding_model_are_never_mixed_in(library, docs, embedder) -> None:
    from app.errors import StoreError

    library.indexer.ingest([docs["md"]])
    library.catalog.set_meta("embedder", "some-other-model:768")
    with pytest.raises(StoreError, match="some-other-model"):
        library._check_embedder(embedder)


def test_a_long_pdf_reports_page_progress(library, tmp_path) -> None:
    pdf = corpus.make_pdf(tmp_path / "long.pdf", [f"Page {i} discusses item {i}." for i in range(1, 13)])
    pages: list[tuple[int, int]] = []
    library.indexer.ingest([pdf], progress=lambda p: pages.append((p.pages_done, p.pages_total)))
    assert (12, 12) in pages and (1, 12) in pages


def test_repair_drops_orphan_vectors_and_redoes_files_missing_theirs(library, docs) -> None:
    import numpy as np

    library.indexer.ingest([docs["pdf"].parent])
    # A crash left a vector no catalog chunk names...
    library.vectors.upsert(["orphan-00000"], np.ones((1, library.embedder.dim), dtype=np.float32),
                           [{"file_id": 999, "page": -1, "text_hash": "x"}])
    # ...and the vectors of an indexed file went missing.
    pdf = library.catalog.file(str(docs["pdf"]))
    library.vectors.delete(library.catalog.chunk_ids(pdf.id)[:1])
    result = library.indexer.repair()
    assert result["orphan_vectors"] == 1 and result["files_to_redo"] == 1
    assert library.catalog.file(str(docs["pdf"])).status == "pending"
    report = library.indexer.ingest([docs["pdf"].parent])
    assert report.indexed == 1
    _consistent(library)
