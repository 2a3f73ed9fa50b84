"""A folder of broken and hostile files beside good ones: the good ones answer
questions, each broken one ends failed or skipped with a readable reason, and
nothing crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import corpus, hostile

EXPECTED = {
    "bad_zero": ("failed", "empty"),
    "bad_truncated": ("failed", "not a valid PDF"),
    "bad_random": ("failed", "not a valid PDF"),
    "bad_locked": ("failed", "encrypted"),
    "bad_bomb": ("failed", "decompression bomb"),
    "bad_drawing": ("failed", "no text found, not even by OCR"),
    "bad_bomb_docx": ("failed", "zip bomb"),
    "bad_bomb_pptx": ("failed", "zip bomb"),
    "bad_protected_xlsx": ("failed", "protected: remove the password or export to PDF"),
    "bad_huge_png": ("failed", "20,000 × 20,000 pixels"),
    "bad_huge": ("skipped", "MB limit"),
    "bad_loop": ("skipped", "symbolic link"),
}


def test_a_mixed_folder_indexes_the_good_and_explains_the_bad(docent, tmp_path: Path) -> None:
    files = hostile.make_mixed_folder(tmp_path / "mixed")
    result = docent("ingest", str(tmp_path / "mixed"), "--json")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err

    status = docent("status", "--files", "--json").json()
    by_path = {d["path"]: d for d in status["documents"]}
    for key, (state, words) in EXPECTED.items():
        doc = by_path[str(files[key])]
        assert doc["status"] == state, (key, doc)
        assert words in doc["reason"], (key, doc["reason"])
    for key, path in files.items():
        if key.startswith("good_"):
            assert by_path[str(path)]["status"] == "indexed", (key, by_path[str(path)])
    # The human status names each failure and why.
    human = docent("status").out
    assert "locked.pdf" in human and "encrypted" in human
    # The scan was read by OCR, and status says so.
    files_out = docent("status", "--files").out
    assert any("indexed (OCR)" in line and line.endswith("scanned.pdf — OCR: 1 of 1 page read from images")
               for line in files_out.splitlines()), files_out
    invoice = docent("search", "scanned invoice 4711", "--mode", "keyword", "--json").json()
    assert invoice["hits"] and invoice["hits"][0]["path"] == str(files["good_scanned"])

    answer = docent("ask", "How many storm warnings did the keepers record?", "--json", "--max-tokens", "40")
    data = answer.json()
    assert not data["declined"]
    assert any(c["path"].endswith("lighthouse-report.pdf") and c["page"] == 3 for c in data["citations"])
    legacy = docent("search", "crème brûlée", "--mode", "keyword", "--json").json()
    assert legacy["hits"] and legacy["hits"][0]["path"] == str(files["good_legacy"])


def test_a_5000_page_pdf_indexes_with_page_progress(library, tmp_path: Path) -> None:
    (tmp_path / "long").mkdir()
    pdf = hostile.many_pages_pdf(tmp_path / "long" / "regulations.pdf")
    progress: list[tuple[int, int]] = []
    report = library.indexer.ingest([pdf], progress=lambda p: progress.append((p.pages_done, p.pages_total)))
    assert report.indexed == 1 and not report.failed
    assert (5000, 5000) in progress
    row = library.catalog.file(str(pdf))
    assert row.pages == 5000 and row.chunks == 5000
    hit = library.retriever.search("maritime regulations", k=1).hits[0]
    assert hit.chunk.path == str(pdf) and 1 <= hit.chunk.page <= 5000


def test_a_5000_page_pdf_can_be_cancelled_and_resumed(library, tmp_path: Path) -> None:
    (tmp_path / "long").mkdir()
    pdf = hostile.many_pages_pdf(tmp_path / "long" / "regulations.pdf")
    pages: list[int] = []
    report = library.indexer.ingest(
        [pdf], progress=lambda p: pages.append(p.pages_done), should_stop=lambda: max(pages, default=0) >= 200)
    assert report.cancelled and report.indexed == 0
    assert library.catalog.file(str(pdf)).status == "pending"
    assert library.catalog.indexed_chunk_count() == 0
    again = library.indexer.ingest([pdf])
    assert again.indexed == 1 and library.catalog.file(str(pdf)).status == "indexed"


def test_a_file_deleted_while_being_read_leaves_no_trace(library, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    corpus.make_library(folder)
    victim = folder / "sourdough.md"

    def delete_when_reached(progress) -> None:  # noqa: ANN001
        if progress.current == str(victim) and victim.exists():
            victim.unlink()

    report = library.indexer.ingest([folder], progress=delete_when_reached)
    assert report.indexed == 4 and not report.failed
    assert library.catalog.file(str(victim)) is None


def test_an_unreadable_file_fails_alone(library, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "docs"
    files = corpus.make_library(folder)
    real_open = open

    def guarded_open(file, *args, **kwargs):  # noqa: ANN001
        if str(file) == str(files["txt"]):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    # Root reads everything, so the refusal is injected where Docent opens the file.
    monkeypatch.setattr("builtins.open", guarded_open)
    report = library.indexer.ingest([folder])
    monkeypatch.undo()
    assert report.indexed == 4
    assert "Permission denied" in dict(report.failed)[str(files["txt"])]
    # Readable again: it indexes.
    files["txt"].touch()
    assert library.indexer.ingest([folder]).indexed == 1
