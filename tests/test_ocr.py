"""Scanned PDFs and pictures are read by OCR, offline, with their page numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core import documents
from app.core.documents import pdf as pdf_loader
from app.core.documents.model import status_label
from app.errors import Cancelled, ParseError, SkipFile
from tests import scans

PAGE_ONE, PAGE_TWO = scans.PAGE_ONE, scans.PAGE_TWO


def _words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()}


def test_a_scanned_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    path = scans.harbour_report(tmp_path / "scan.pdf")
    seen: list[tuple[int, int]] = []
    doc = documents.load(path, on_page=lambda done, total: seen.append((done, total)))
    assert [p.number for p in doc.pages] == [1, 2]
    assert doc.ocr_pages == 2
    assert {"porthleven", "pilot", "boats"} <= _words(doc.pages[0].text)
    assert {"morwenna", "larch", "hull", "oak"} <= _words(doc.pages[1].text)
    assert "morwenna" not in _words(doc.pages[0].text)
    assert seen == [(1, 2), (2, 2)]


def test_with_ocr_off_a_scanned_pdf_fails_saying_how_to_read_it(tmp_path: Path) -> None:
    path = scans.image_pdf(tmp_path / "scan.pdf", [scans.page_image(PAGE_ONE, dpi=100, font_pt=16)])
    with pytest.raises(ParseError) as failed:
        documents.load(path, ocr=False)
    assert failed.value.reason == pdf_loader.NO_TEXT_OCR_OFF
    assert documents.OCR_OFF_WORDS in failed.value.reason


def test_a_picture_is_one_page_and_a_tiff_one_page_per_frame(tmp_path: Path) -> None:
    png = tmp_path / "note.png"
    scans.page_image(PAGE_TWO, dpi=120, font_pt=14).save(png)
    doc = documents.load(png)
    assert doc.kind == "image" and [p.number for p in doc.pages] == [1]
    assert {"morwenna", "larch"} <= _words(doc.pages[0].text)

    tiff = tmp_path / "fax.tiff"
    first, second = scans.page_image(PAGE_ONE, dpi=120, font_pt=14), scans.page_image(PAGE_TWO, dpi=120, font_pt=14)
    first.save(tiff, save_all=True, append_images=[second], compression="tiff_deflate")
    doc = documents.load(tiff)
    assert [p.number for p in doc.pages] == [1, 2]
    assert "porthleven" in _words(doc.pages[0].text) and "morwenna" in _words(doc.pages[1].text)


def test_pictures_are_skipped_with_a_reason_when_ocr_is_off(tmp_path: Path) -> None:
    png = tmp_path / "note.png"
    scans.page_image(PAGE_TWO, dpi=72).save(png)
    with pytest.raises(SkipFile) as skipped:
        documents.load(png, ocr=False)
    assert "OCR is turned off in Settings" in skipped.value.reason


def test_a_huge_or_broken_picture_fails_alone_with_a_reason(tmp_path: Path) -> None:
    huge = scans.png_header(tmp_path / "huge.png", 20_000, 20_000)
    with pytest.raises(ParseError) as failed:
        documents.load(huge)
    assert "20,000 × 20,000 pixels" in failed.value.reason and "lower resolution" in failed.value.reason

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with pytest.raises(ParseError) as failed:
        documents.load(broken)
    assert "not a picture" in failed.value.reason or "damaged" in failed.value.reason

    blank = tmp_path / "blank.png"
    scans.page_image([], dpi=72).save(blank)
    with pytest.raises(ParseError) as failed:
        documents.load(blank)
    assert failed.value.reason.startswith("no text found by OCR")


def test_reading_a_multipage_tiff_can_be_stopped(tmp_path: Path) -> None:
    tiff = tmp_path / "long.tiff"
    pages = [scans.page_image([f"Page {n} of the ledger"], dpi=72) for n in range(4)]
    pages[0].save(tiff, save_all=True, append_images=pages[1:])
    done: list[int] = []
    with pytest.raises(Cancelled):
        documents.load(tiff, on_page=lambda d, t: done.append(d), should_stop=lambda: len(done) >= 2)
    assert done == [1, 2]


def test_the_answer_only_in_a_scanned_page_is_found_and_cited(library, tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    scans.harbour_report(folder / "harbour-report.pdf")
    report = library.indexer.ingest([folder])
    assert report.indexed == 1, report.failed
    row = library.catalog.files()[0]
    assert status_label(row.status, row.reason) == "indexed (OCR)"
    assert row.reason == "OCR: 2 of 2 pages read from images"

    answer = library.answerer.ask("What was the pilot cutter Morwenna rebuilt with?")
    assert not answer.declined, answer.answer
    cited = {(Path(s.hit.chunk.path).name, s.hit.chunk.page) for s in answer.sources}
    assert ("harbour-report.pdf", 2) in cited
    assert "larch" in answer.answer.lower() or "oak" in answer.answer.lower()


def test_turning_ocr_on_reads_the_scans_it_had_left(library, tmp_path: Path) -> None:
    from app.config import Settings
    from dataclasses import replace

    folder = tmp_path / "archive"
    folder.mkdir()
    scans.image_pdf(folder / "scan.pdf", [scans.page_image(PAGE_TWO, dpi=120, font_pt=16)])
    library.apply_settings(replace(library.settings, ocr=False))
    report = library.indexer.ingest([folder])
    assert report.failed and documents.OCR_OFF_WORDS in report.failed[0][1]

    library.apply_settings(replace(library.settings, ocr=True))
    report = library.indexer.ingest([folder])
    assert report.indexed == 1 and not report.failed
    hits = library.retriever.search("cutter rebuilt with a larch hull", k=1).hits
    assert hits and hits[0].chunk.page == 1
