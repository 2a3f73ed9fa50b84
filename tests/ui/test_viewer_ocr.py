"""A passage cited on a scanned PDF page is marked on the page's picture, where OCR read it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

from app.core.stores.catalog import Catalog  # noqa: E402
from app.ui.viewer import NOT_FOUND_NOTE, DocumentViewer, ViewerDialog  # noqa: E402
from tests import scans  # noqa: E402

DPI, FONT_PT = 150, 16
PAGE_TWO = scans.PAGE_TWO


def _line_top(i: int) -> float:
    return scans.line_top(i, dpi=DPI, font_pt=FONT_PT)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Catalog, str]:
    """A two-page scan, read by OCR and indexed with its line boxes; and page 2's text."""
    folder = tmp_path_factory.mktemp("scans")
    pdf = scans.harbour_report(folder / "harbour-report.pdf", dpi=DPI, font_pt=FONT_PT)
    catalog, doc = scans.index_with_boxes(pdf, folder / "catalog.sqlite3", kind="pdf")
    yield pdf, catalog, doc.pages[1].text
    catalog.close()


@pytest.fixture()
def viewer(make_viewer, scanned) -> DocumentViewer:
    return make_viewer(page_boxes=scanned[1].page_boxes, size=(700, 600))


def _tops(viewer: DocumentViewer, kind: str) -> list[float]:
    """The tops of a mark's rects, as fractions of its page's height."""
    (mark,) = [m for m in viewer.pdf_view.marks() if m.kind == kind]
    assert mark.page == 1  # page 2, 0-based
    height = viewer.pdf_document.pagePointSize(mark.page).height()
    return [r.top() / height for r in mark.rects]


def test_a_passage_on_a_scanned_page_is_marked_where_it_was_drawn(viewer, scanned) -> None:
    pdf, _, text = scanned
    start = text.index("rebuilt")
    passage = text[start:]
    last = text.rindex("\n") + 1  # the page's last line: the quote
    viewer.show_passage(str(pdf), 2, (start, len(text)), passage, quote=text[last:])

    assert viewer.highlight_found()
    assert NOT_FOUND_NOTE not in viewer.note_text()
    assert viewer.current_page() == 2
    kinds = {h.kind: h for h in viewer.highlights()}
    assert kinds["passage"].lines == 2 and kinds["quote"].lines == 1
    for top, line in zip(_tops(viewer, "passage"), (1, 2), strict=True):
        assert abs(top - _line_top(line)) < 0.015, (top, line)
    (quote_top,) = _tops(viewer, "quote")
    assert abs(quote_top - _line_top(2)) < 0.015


def test_part_of_a_line_is_marked_in_proportion(viewer, scanned) -> None:
    pdf, _, text = scanned
    start = text.index("larch")
    viewer.show_passage(str(pdf), 2, (start, len(text)), text[start:])
    (mark,) = viewer.pdf_view.marks()
    (rect,) = mark.rects
    width = viewer.pdf_document.pagePointSize(1).width()
    # "larch" starts some way into its line, which starts at 0.9 in from the left edge.
    assert rect.left() / width > 0.9 / scans.A4_INCHES[0] + 0.05


def test_without_boxes_a_scanned_passage_is_not_found(qtbot, scanned) -> None:
    pdf, _, text = scanned
    widget = DocumentViewer()
    qtbot.addWidget(widget)
    widget.show_passage(str(pdf), 2, (0, len(text)), text)
    assert not widget.highlight_found()
    assert widget.note_text() == NOT_FOUND_NOTE


def test_the_dialog_marks_the_passage_with_the_windows_boxes(qtbot, scanned) -> None:
    from PySide6.QtWidgets import QWidget

    from app.ui.main_window import MainWindow

    pdf, catalog, text = scanned

    class Window(QWidget):
        def page_boxes(self, path: str, page: int) -> list:
            # The main window's own check: boxes only for the file as it was indexed.
            return MainWindow.page_boxes(SimpleNamespace(reader=catalog), path, page)

    window = Window()
    qtbot.addWidget(window)
    dialog = ViewerDialog(window, page_boxes=window.page_boxes)
    dialog.show_passage(str(pdf), 2, (0, len(text)), text)
    assert dialog.viewer.highlight_found()
    assert MainWindow.page_boxes(SimpleNamespace(reader=catalog), str(pdf), 1)
    assert MainWindow.page_boxes(SimpleNamespace(reader=catalog), str(pdf.parent / "other.pdf"), 2) == []
    # A file changed since it was indexed: its boxes would point at text it may no longer have.
    stat = pdf.stat()
    os.utime(pdf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert MainWindow.page_boxes(SimpleNamespace(reader=catalog), str(pdf), 2) == []
    finally:
        os.utime(pdf, ns=(stat.st_atime_ns, stat.st_mtime_ns))
