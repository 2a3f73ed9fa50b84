"""Where OCR read each line is kept, so a cited passage can be marked on the page's picture."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.core import documents
from app.core.documents.model import Page
from app.core.documents.ocr import OcrLine, OcrPage
from app.core.documents.parsing import Parsed
from app.core.documents.pdf import normalise_text, ocr_text
from app.core.stores.catalog import Catalog, ChunkRow, _m001_initial, _m002_cjk_bigrams, _m003_keyword_log
from app.core.stores.migrations import apply
from tests import scans

DPI, FONT_PT = 150, 16
PAGE_TWO = scans.PAGE_TWO


def _line_top(i: int) -> float:
    return scans.line_top(i, dpi=DPI, font_pt=FONT_PT)


def _scan(path: Path) -> Path:
    return scans.harbour_report(path, dpi=DPI, font_pt=FONT_PT)


def test_line_spans_survive_normalising() -> None:
    # A ligature grows by a letter and a control character goes: later spans must move with them.
    first, second, third = "Le \ufb01l\x01 rouge", "second line", "new paragraph"
    raw = OcrPage(f"{first}\n{second}\n\n{third}", (
        OcrLine(first, 0, len(first), (0.1, 0.1, 0.5, 0.12), 0.9),
        OcrLine(second, len(first) + 1, len(first) + 1 + len(second), (0.1, 0.13, 0.4, 0.15), 0.9),
        OcrLine(third, len(first) + len(second) + 3, len(first) + len(second) + 3 + len(third),
                (0.1, 0.2, 0.45, 0.22), 0.9),
    ))
    text, boxes = ocr_text(raw)
    assert text == normalise_text(raw.text) == "Le fil rouge\nsecond line\n\nnew paragraph"
    assert [text[s:e] for s, e, *_ in boxes] == ["Le fil rouge", "second line", "new paragraph"]
    assert boxes[2][2:] == (0.1, 0.2, 0.45, 0.22)


def test_a_scanned_pdf_page_keeps_its_line_boxes(tmp_path: Path) -> None:
    doc = documents.load(_scan(tmp_path / "scan.pdf"))
    page = doc.pages[1]
    assert len(page.boxes) == len(PAGE_TWO)
    for i, (start, end, left, top, right, bottom) in enumerate(page.boxes):
        assert page.text[start:end].lower().split()[-1] == PAGE_TWO[i].lower().split()[-1]
        assert abs(top - _line_top(i)) < 0.012, (i, top, _line_top(i))
        assert 0.0 <= left < right <= 1.0 and top < bottom
    parsed = Parsed.from_document(doc, [])
    assert set(parsed.ocr_boxes) == {1, 2}
    # A page read from a text layer has none.
    assert Page(1, "text").boxes == ()


def test_ingest_stores_the_boxes_of_a_scanned_page(library, tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    path = _scan(folder / "harbour-report.pdf")
    report = library.indexer.ingest([folder])
    assert report.indexed == 1, report.failed
    row = library.catalog.file(str(path.resolve()))
    boxes = library.catalog.page_boxes(str(path.resolve()), 2)
    assert len(boxes) == len(PAGE_TWO)
    assert library.catalog.page_boxes(row.id, 2) == boxes
    # The boxes under a chunk's span are where its text was drawn.
    chunk = next(c for c in library.catalog.chunks_covering(row.id, 2, 0, 10**6) if "larch" in c.text)
    under = [b for b in boxes if b[0] < chunk.end and b[1] > chunk.start]
    line = next(i for i, text in enumerate(PAGE_TWO) if "larch" in text)
    larch = chunk.start + chunk.text.index("larch")
    (hit,) = [b for b in under if b[0] <= larch < b[1]]
    assert abs(hit[3] - _line_top(line)) < 0.012
    # Dropping the file's chunks drops its boxes.
    library.catalog.drop_chunks(row.id, "failed", "gone")
    assert library.catalog.page_boxes(row.id, 2) == []


def _row(i: int) -> ChunkRow:
    return ChunkRow(id=f"c{i}", ordinal=i, page=1, label=None, start=0, end=4, heading=None, text="text",
                    text_hash=f"h{i}")


def test_replacing_chunks_replaces_the_boxes(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    fid = cat.mark_file("/lib/a.pdf", "pending", root_id=None)
    fields = {"size": 1, "mtime_ns": 1, "hash": "h", "kind": "pdf", "title": None, "pages": 1}
    cat.replace_chunks(fid, [_row(0)], boxes={1: [(0, 4, 0.1, 0.2, 0.3, 0.25)]}, **fields)
    assert cat.page_boxes("/lib/a.pdf", 1) == [(0, 4, 0.1, 0.2, 0.3, 0.25)]
    assert cat.page_boxes("/lib/a.pdf", 2) == []
    cat.replace_chunks(fid, [_row(1)], **fields)  # read again from a text layer
    assert cat.page_boxes("/lib/a.pdf", 1) == []
    cat.replace_chunks(fid, [_row(2)], boxes={1: [(0, 4, 0.1, 0.2, 0.3, 0.25)]}, **fields)
    cat.delete_file(fid)
    assert cat.page_boxes(fid, 1) == []
    cat.close()


def test_an_older_catalog_gets_the_boxes_table(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    apply(db, [_m001_initial, _m002_cjk_bigrams, _m003_keyword_log])
    db.execute("INSERT INTO files (path, status) VALUES ('/lib/a.pdf', 'indexed')")
    db.close()
    # A reader of the old catalog sees no boxes rather than an error.
    reader = Catalog(path, readonly=True)
    assert reader.page_boxes("/lib/a.pdf", 1) == []
    reader.close()
    cat = Catalog(path)
    names = [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM migrations ORDER BY name")]
    assert "_m004_page_boxes" in names
    assert cat.file("/lib/a.pdf") is not None and cat.page_boxes("/lib/a.pdf", 1) == []
    cat.close()
