"""The document viewer opens a cited file at its passage and highlights it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from app.ui.viewer import (  # noqa: E402
    NOT_FOUND_NOTE,
    DocumentViewer,
    ViewerDialog,
    locate_passage,
    pdf_search_candidates,
)

PAGES = [
    "Chapter one. The orchard was planted in spring with forty apple trees along the river.",
    "Chapter two. Hailstorms in June damaged the young blossoms on the northern slope.",
    "Chapter three. The cider press in the old barn produced nine hundred litres in October.",
    "Chapter four. Next season the growers will add pear trees and a second beehive.",
]


def make_pdf(path: Path, pages: list[str] = PAGES) -> Path:
    """A real PDF with one distinct paragraph per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def show_text(viewer: DocumentViewer, qtbot, *args) -> None:
    """Show a text document's passage and wait until it is read (in the reader process)."""
    with qtbot.waitSignal(viewer.reading_done, timeout=60_000):
        viewer.show_passage(*args)
    assert not viewer.is_reading()


def test_pdf_jumps_to_the_cited_page_and_highlights_the_passage(viewer, qtbot, tmp_path):
    pdf = make_pdf(tmp_path / "orchard.pdf")
    passage = "The cider press in the old barn produced nine hundred litres in October."

    viewer.show_passage(str(pdf), 3, (14, 86), passage, label="iii")

    assert viewer.highlight_found()
    assert viewer.highlighted_text()
    assert viewer.highlighted_text() in " ".join(passage.split())
    assert viewer.current_page() == 3
    header = viewer.header.text()
    assert "orchard.pdf" in header and "page 3 of 4" in header and "printed page iii" in header
    # The passage is painted on page 3 (0-based 2).
    marks = viewer.pdf_view.marks()
    assert [m.page for m in marks] == [2] and marks[0].rects
    assert viewer.current_page() == 3
    assert viewer.note_text() == ""


def test_pdf_prefers_the_cited_page_when_the_words_recur(viewer, qtbot, tmp_path):
    pages = ["Boilerplate footer text repeated on every page of this report. " + p for p in PAGES]
    pdf = make_pdf(tmp_path / "repeated.pdf", pages)

    viewer.show_passage(str(pdf), 4, None, "Boilerplate footer text repeated on every page of this report.")

    assert viewer.highlight_found()
    assert [m.page for m in viewer.pdf_view.marks()] == [3]
    assert viewer.current_page() == 4


def test_pdf_passage_that_changed_is_reported_but_the_page_shown(viewer, tmp_path):
    pdf = make_pdf(tmp_path / "orchard.pdf")

    viewer.show_passage(str(pdf), 2, None, "Words that were never printed in this orchard chronicle anywhere.")

    assert not viewer.highlight_found()
    assert viewer.current_page() == 2
    assert "passage not found" in viewer.note_text()


def test_pdf_page_beyond_the_end_falls_back_to_the_first(viewer, tmp_path):
    pdf = make_pdf(tmp_path / "orchard.pdf")

    viewer.show_passage(str(pdf), 9, None, PAGES[0])

    assert viewer.current_page() == 1
    assert "beyond the end" in viewer.note_text()


def test_pdf_zoom_buttons(viewer, tmp_path):
    from PySide6.QtPdfWidgets import QPdfView

    viewer.show_passage(str(make_pdf(tmp_path / "orchard.pdf")), 1, None, PAGES[0])
    assert viewer.pdf_view.zoomMode() == QPdfView.ZoomMode.FitToWidth

    viewer.zoom_in_button.click()
    assert viewer.pdf_view.zoomMode() == QPdfView.ZoomMode.Custom
    bigger = viewer.pdf_view.zoomFactor()
    viewer.zoom_out_button.click()
    assert viewer.pdf_view.zoomFactor() < bigger
    viewer.fit_width_button.click()
    assert viewer.pdf_view.zoomMode() == QPdfView.ZoomMode.FitToWidth


def test_a_damaged_pdf_shows_a_message(viewer, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")

    viewer.show_passage(str(broken), 1, None, "anything")

    assert "cannot display broken.pdf" in viewer.message_text()
    assert viewer.current_page() is None
    assert not viewer.highlight_found()


def test_text_file_highlights_the_passage_and_scrolls_to_it(viewer, qtbot, tmp_path):
    filler = "\n".join(f"Line {i}: notes about nothing in particular." for i in range(120))
    passage = (
        "Bake at 240 degrees Celsius in a cast iron pot, lid on for the first twenty minutes."
    )
    # The file wraps the passage differently from the extracted passage text.
    text = (
        f"# Sourdough\n\n{filler}\n\n## Baking\n\n"
        "Bake at 240 degrees Celsius in a cast iron pot,\nlid on for the first twenty minutes.\n\n"
        f"{filler}\n"
    )
    md = tmp_path / "sourdough.md"
    md.write_text(text, encoding="utf-8")

    show_text(viewer, qtbot, str(md), None, None, passage)

    assert viewer.highlight_found()
    assert " ".join(viewer.highlighted_text().split()) == passage
    selections = viewer.text_view.extraSelections()
    assert len(selections) == 1 and selections[0].cursor.hasSelection()
    assert viewer.current_page() is None
    assert "sourdough.md" in viewer.header.text()
    scrollbar = viewer.text_view.verticalScrollBar()
    qtbot.waitUntil(lambda: scrollbar.value() > 0)
    # The highlight's first line is inside the viewport.
    top = viewer.text_view.cursorForPosition(viewer.text_view.viewport().rect().topLeft()).blockNumber()
    bottom = viewer.text_view.cursorForPosition(viewer.text_view.viewport().rect().bottomLeft()).blockNumber()
    start_block = selections[0].cursor.document().findBlock(selections[0].cursor.selectionStart()).blockNumber()
    assert top <= start_block <= bottom, (top, start_block, bottom)


def test_text_file_uses_the_span_when_it_still_fits(viewer, qtbot, tmp_path):
    text = "Alpha note.\nRepeated sentence here.\nMiddle.\nRepeated sentence here.\nEnd.\n"
    path = tmp_path / "repeat.txt"
    path.write_text(text, encoding="utf-8")
    second = text.rindex("Repeated")

    show_text(viewer, qtbot, str(path), None, (second, second + 23), "Repeated sentence here.")

    assert viewer.highlight_found()
    selections = viewer.text_view.extraSelections()
    assert selections[0].cursor.selectionStart() == second


def test_html_shows_the_visible_text_and_finds_the_passage(viewer, qtbot, tmp_path):
    page = tmp_path / "orchids.html"
    page.write_text(
        "<html><head><title>Orchids</title><script>var x = 1;</script></head><body>"
        "<h1>Care</h1><p>Water <b>Phalaenopsis</b> orchids once a week.</p></body></html>",
        encoding="utf-8",
    )

    show_text(viewer, qtbot, str(page), None, None, "Water Phalaenopsis orchids once a week.")

    assert viewer.highlight_found()
    assert "<p>" not in viewer.text_view.toPlainText()
    assert "var x" not in viewer.text_view.toPlainText()


def test_text_passage_not_found_shows_the_top_and_a_note(viewer, qtbot, tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("Bicycle maintenance log.\nChain waxed on 3 March.\n", encoding="utf-8")

    show_text(viewer, qtbot, str(path), None, (0, 10), "Tyre pressure for the touring bike is 4.5 bar.")

    assert not viewer.highlight_found()
    assert viewer.note_text() == NOT_FOUND_NOTE
    assert viewer.text_view.verticalScrollBar().value() == 0
    assert viewer.text_view.extraSelections() == []
    assert "Bicycle" in viewer.text_view.toPlainText()


def test_missing_file_shows_a_message(viewer, tmp_path):
    missing = tmp_path / "gone.pdf"

    viewer.show_passage(str(missing), 2, None, "whatever")

    assert "no longer at" in viewer.message_text()
    assert str(missing) in viewer.message_text()
    assert not viewer.highlight_found()
    assert viewer.current_page() is None


def test_non_utf8_and_odd_characters_do_not_break_the_highlight(viewer, qtbot, tmp_path):
    path = tmp_path / "emoji.txt"
    path.write_text("🙂🙂 intro line\nThe key phrase sits here.\n", encoding="utf-8")

    show_text(viewer, qtbot, str(path), None, None, "The key phrase sits here.")

    selections = viewer.text_view.extraSelections()
    assert selections[0].cursor.selectedText() == "The key phrase sits here."
    assert viewer.highlighted_text() == "The key phrase sits here."


def test_viewer_dialog_is_non_modal_and_titled(qtbot, tmp_path):
    dialog = ViewerDialog()
    qtbot.addWidget(dialog)
    pdf = make_pdf(tmp_path / "orchard.pdf")

    dialog.show_passage(str(pdf), 2, None, PAGES[1])
    dialog.show()
    qtbot.waitExposed(dialog)

    assert not dialog.isModal()
    assert "orchard.pdf" in dialog.windowTitle() and "page 2" in dialog.windowTitle()
    assert dialog.viewer.current_page() == 2


def test_locate_passage_ignores_spacing_case_and_markup():
    text = "Intro.\n\nFeed the **starter** with equal\nweights of rye flour and water.\n"
    found = locate_passage(text, "feed the starter with equal weights of rye flour and water.")
    assert found is not None
    assert text[found[0] : found[1]].startswith("Feed the **starter**")
    assert text[found[0] : found[1]].endswith("water.")
    assert locate_passage(text, "not in there at all, sorry") is None


def test_pdf_search_candidates_start_with_the_passage_opening():
    candidates = pdf_search_candidates("one two three four five six seven eight nine ten eleven twelve")
    assert candidates[0] == "one two three four five six seven eight nine ten"
    assert all(len(c) >= 12 for c in candidates)
    assert pdf_search_candidates("   ") == []


# --------------------------------------------------------------------------- reading in the reader process


def test_a_word_document_is_read_in_the_reader_process_and_shown_at_its_passage(viewer, qtbot, tmp_path):
    from tests import corpus

    docx = corpus.make_docx(tmp_path / "beekeeping.docx")

    viewer.show_passage(str(docx), None, None, "A healthy colony in summer holds about fifty thousand worker bees.")
    # The call returns at once; the window says what it is doing meanwhile.
    assert viewer.is_reading() and viewer.message_text() == "Reading beekeeping.docx…"
    qtbot.waitUntil(lambda: not viewer.is_reading(), timeout=60_000)

    assert viewer.highlight_found()
    assert " ".join(viewer.highlighted_text().split()) == (
        "A healthy colony in summer holds about fifty thousand worker bees.")
    assert "Beekeeping handbook" in viewer.text_view.toPlainText()
    assert "beekeeping.docx" in viewer.header.text() and viewer.message_text() == ""


def test_a_damaged_word_document_shows_a_message_naming_it(viewer, qtbot, tmp_path):
    broken = tmp_path / "minutes.docx"
    broken.write_bytes(b"PK\x03\x04 not really a zip archive")

    show_text(viewer, qtbot, str(broken), None, None, "anything")

    assert viewer.message_text() == (
        "minutes.docx could not be read: it is not a valid Word document (damaged, or not a .docx file).")
    assert not viewer.highlight_found()


@pytest.fixture()
def hanging_viewer(qtbot) -> DocumentViewer:
    """A viewer whose reader process hangs on files named *hang* (tests.faults), given 1 s of silence."""
    from app.core.documents.parsing import ParseLimits
    from app.core.documents.reading import reader
    from app.workers.reading_worker import DocumentReader

    faulty = DocumentReader(lambda: reader(ParseLimits(stall_s=1.0, per_mb_s=0), target="tests.faults:hang"))
    widget = DocumentViewer(reader=faulty)
    qtbot.addWidget(widget)
    widget.resize(700, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_a_file_that_hangs_its_parser_leaves_the_window_responsive(hanging_viewer, qtbot, tmp_path):
    from PySide6.QtCore import QTimer

    viewer = hanging_viewer
    trap = tmp_path / "hang-trap.html"
    trap.write_text("<html><body><p>Never read.</p></body></html>", encoding="utf-8")
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)

    viewer.show_passage(str(trap), None, None, "Never read.")

    assert viewer.message_text() == "Reading hang-trap.html…"
    with qtbot.waitSignal(viewer.reading_done, timeout=60_000):
        pass
    timer.stop()
    # The GUI thread went on painting and handling events while the parser hung.
    assert len(ticks) >= 5
    message = viewer.message_text()
    assert message.startswith("hang-trap.html could not be read: the reader stopped making progress"), message
    assert not viewer.highlight_found()

    # The reader process was replaced: the next file reads normally.
    page = tmp_path / "orchids.html"
    page.write_text("<html><body><p>Water Phalaenopsis orchids once a week.</p></body></html>", encoding="utf-8")
    show_text(viewer, qtbot, str(page), None, None, "Water Phalaenopsis orchids once a week.")
    assert viewer.highlight_found()


def test_a_new_citation_replaces_a_read_that_hangs(hanging_viewer, qtbot, tmp_path):
    viewer = hanging_viewer
    trap = tmp_path / "hang.txt"
    trap.write_text("Never read.\n", encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("Intro.\nThe ferry leaves at nine from the north pier.\n", encoding="utf-8")

    viewer.show_passage(str(trap), None, None, "Never read.")
    show_text(viewer, qtbot, str(notes), None, None, "The ferry leaves at nine from the north pier.")

    assert viewer.highlight_found() and "notes.txt" in viewer.header.text()
    assert viewer.highlighted_text() == "The ferry leaves at nine from the north pier."
