"""A passage cited in a picture (a scanned page saved as TIFF, PNG …) is shown on the picture, marked where OCR read it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from app.core.stores.catalog import Catalog  # noqa: E402
from app.ui.viewer import NOT_FOUND_NOTE, DocumentViewer  # noqa: E402
from tests import scans  # noqa: E402

DPI, FONT_PT = 150, 16


def _line_top(i: int) -> float:
    return scans.line_top(i, dpi=DPI, font_pt=FONT_PT)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Catalog, str]:
    """A two-frame TIFF (as an office scanner saves), read by OCR and indexed with its line boxes; page 2's text."""
    folder = tmp_path_factory.mktemp("pictures")
    tiff = folder / "harbour-report.tiff"
    first, second = (scans.page_image(lines, dpi=DPI, font_pt=FONT_PT) for lines in (scans.PAGE_ONE, scans.PAGE_TWO))
    first.save(tiff, save_all=True, append_images=[second], compression="tiff_deflate")
    catalog, doc = scans.index_with_boxes(tiff, folder / "catalog.sqlite3", kind="image")
    assert [p.number for p in doc.pages] == [1, 2]
    yield tiff, catalog, doc.pages[1].text
    catalog.close()


@pytest.fixture()
def viewer(make_viewer, scanned) -> DocumentViewer:
    return make_viewer(page_boxes=scanned[1].page_boxes, size=(700, 600))


def _tops(viewer: DocumentViewer, kind: str) -> list[float]:
    """The tops of a mark's rects, as fractions of the picture's height."""
    (mark,) = [m for m in viewer.image_view.marks() if m.kind == kind]
    assert mark.page == 1  # frame 2, 0-based
    return [r.top() / viewer.image_view.image().height() for r in mark.rects]


def test_the_cited_frame_is_shown_with_the_passage_marked_where_it_was_read(viewer, scanned) -> None:
    tiff, _, text = scanned
    start = text.index("rebuilt")
    last = text.rindex("\n") + 1  # the page's last line: the quote
    viewer.show_passage(str(tiff), 2, (start, len(text)), text[start:], quote=text[last:])

    # The picture itself, at once: nothing is read by OCR again to show it.
    assert not viewer.is_reading()
    assert viewer.message_text() == ""
    assert viewer.stack.currentWidget() is viewer.image_view
    assert viewer.current_page() == 2
    assert "page 2 of 2" in viewer.header.text()
    assert viewer.highlight_found() and viewer.note_text() == ""
    kinds = {h.kind: h for h in viewer.highlights()}
    assert kinds["passage"].lines == 2 and kinds["quote"].lines == 1
    for top, line in zip(_tops(viewer, "passage"), (1, 2), strict=True):
        assert abs(top - _line_top(line)) < 0.015, (top, line)
    (quote_top,) = _tops(viewer, "quote")
    assert abs(quote_top - _line_top(2)) < 0.015


def test_the_mark_is_painted_over_the_print(viewer, scanned) -> None:
    tiff, _, text = scanned
    start = text.index("rebuilt")
    viewer.show_passage(str(tiff), 2, (start, len(text)), text[start:])
    (mark,) = viewer.image_view.marks()
    shown = viewer.image_view.mark_to_view(mark.rects[0])
    canvas = viewer.image_view.widget()
    picture = canvas.grab().toImage()
    # Inside the mark, the paper is washed yellow (red high, blue low); beside it, the paper stays white.
    inside = picture.pixelColor(round(shown.left()) + 2, round(shown.top()) + 2)
    assert inside.red() > 200 and inside.blue() < 200, inside.name()
    outside = picture.pixelColor(round(shown.left()) + 2, round(shown.bottom()) + 40)
    assert outside.blue() > 240, outside.name()
    # The view is scrolled so the passage is on screen.
    top = canvas.mapTo(viewer.image_view.viewport(), shown.topLeft().toPoint()).y()
    assert 0 <= top < viewer.image_view.viewport().height()


def test_zoom_enlarges_the_picture_and_its_marks_together(viewer, scanned) -> None:
    tiff, _, text = scanned
    viewer.show_passage(str(tiff), 2, (0, len(text)), text)
    view = viewer.image_view
    assert viewer.fit_width_button.isVisible() and viewer.fit_width_button.isChecked()
    width = view.widget().width()
    assert width <= view.viewport().width()
    mark = view.mark_to_view(view.marks()[0].rects[0])
    viewer.zoom_in()
    assert view.widget().width() > width and not viewer.fit_width_button.isChecked()
    bigger = view.mark_to_view(view.marks()[0].rects[0])
    assert bigger.width() / mark.width() == pytest.approx(view.widget().width() / width, rel=0.02)
    viewer.fit_width()
    assert view.widget().width() == width and viewer.fit_width_button.isChecked()


def test_a_passage_not_on_its_frame_says_so(viewer, scanned) -> None:
    tiff, _, text = scanned
    # Page 1's boxes hold nothing at page 2's span beyond page 1's text.
    viewer.show_passage(str(tiff), 1, (10_000, 10_050), "words that are not there")
    assert viewer.stack.currentWidget() is viewer.image_view
    assert viewer.current_page() == 1
    assert not viewer.highlight_found()
    assert viewer.note_text() == NOT_FOUND_NOTE


def test_without_boxes_the_picture_is_shown_as_its_text(qtbot, scanned) -> None:
    """A picture the catalog has no boxes for (not indexed, or changed since) is read and shown as text."""
    tiff, _, text = scanned
    widget = DocumentViewer()
    qtbot.addWidget(widget)
    start = text.index("rebuilt")
    with qtbot.waitSignal(widget.reading_done, timeout=120_000):
        widget.show_passage(str(tiff), 2, (start, len(text)), text[start:])
        assert widget.is_reading()
    assert widget.stack.currentWidget() is widget.text_view
    assert widget.highlight_found()
    assert "rebuilt" in widget.highlighted_text()


def test_the_other_pages_of_a_picture_can_be_turned_to_and_back(viewer, scanned) -> None:
    tiff, _, text = scanned
    start = text.index("rebuilt")
    viewer.show_passage(str(tiff), 2, (start, len(text)), text[start:])
    assert viewer.next_page_button.isVisible() and not viewer.next_page_button.isEnabled()
    assert viewer.previous_page_button.isEnabled()

    viewer.previous_page_button.click()
    assert viewer.current_page() == 1
    assert "page 1 of 2 (cited: page 2)" in viewer.header.text()
    assert viewer.image_view.marks() == [] and viewer.highlights() == []
    assert not viewer.previous_page_button.isEnabled()

    viewer.next_page_button.click()
    assert viewer.current_page() == 2 and "page 2 of 2 ·" in viewer.header.text()
    assert [h.kind for h in viewer.highlights()] == ["passage"]


def test_a_one_page_picture_has_no_page_buttons(qtbot, make_viewer, tmp_path) -> None:
    png = tmp_path / "note.png"
    scans.page_image(scans.PAGE_TWO, dpi=DPI, font_pt=FONT_PT).save(png)
    catalog, doc = scans.index_with_boxes(png, tmp_path / "catalog.sqlite3", kind="image")
    try:
        widget = make_viewer(page_boxes=catalog.page_boxes)
        text = doc.pages[0].text
        widget.show_passage(str(png), 1, (0, len(text)), text)
        assert widget.stack.currentWidget() is widget.image_view and widget.highlight_found()
        assert "page" not in widget.header.text()
        assert not widget.previous_page_button.isVisible() and not widget.next_page_button.isVisible()
        # Another kind of document hides the picture's controls too.
        widget.clear()
        assert not widget.next_page_button.isVisible()
    finally:
        catalog.close()
