"""The viewer highlights every line of a cited passage, and the supporting quote more strongly."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from app.ui.viewer import DocumentViewer  # noqa: E402

PASSAGE = (
    "The cider press in the old barn produced nine hundred litres in October. "
    "Apples were washed in cold spring water and milled the same morning. "
    "The pomace was stacked in cloths and pressed slowly for six hours. "
    "Juice ran into oak barrels where it fermented until the first frost."
)
QUOTE = "The pomace was stacked in cloths and pressed slowly for six hours."


def make_pdf(path: Path) -> Path:
    """Two pages; the passage is a paragraph that wraps over several lines of page 2."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Chapter one. The orchard was planted in spring with forty apple trees.")
    pdf.add_page()
    pdf.multi_cell(0, 8, "Chapter three. Intro about the barn and its long history in the valley.")
    pdf.ln(4)
    pdf.multi_cell(0, 8, PASSAGE)
    pdf.ln(4)
    pdf.multi_cell(0, 8, "Chapter four. Next season the growers will add pear trees.")
    pdf.output(str(path))
    return path


@pytest.fixture()
def viewer(qtbot) -> DocumentViewer:
    widget = DocumentViewer()
    qtbot.addWidget(widget)
    widget.resize(700, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def by_kind(viewer: DocumentViewer) -> dict:
    return {h.kind: h for h in viewer.highlights()}


def test_every_line_of_a_pdf_passage_is_highlighted_and_the_quote_more_strongly(viewer, tmp_path):
    pdf = make_pdf(tmp_path / "cider.pdf")

    viewer.show_passage(str(pdf), 2, None, PASSAGE, quote=QUOTE)

    assert viewer.current_page() == 2
    marks = {m.kind: m for m in viewer.pdf_view.marks()}
    passage, quote = marks["passage"], marks["quote"]
    assert passage.page == quote.page == 1
    # The whole passage, as the page lays it out: one box per line, every line.
    assert " ".join(passage.text.split()) == PASSAGE
    lines = [line for line in passage.text.splitlines() if line.strip()]
    assert len(lines) >= 3, "the passage wraps over several lines"
    assert len(passage.rects) == len(lines)
    tops = [r.top() for r in passage.rects]
    assert tops == sorted(tops) and len(set(tops)) == len(tops), "one box per line, top to bottom"
    # The quote: inside the passage's lines, painted in a stronger colour.
    assert " ".join(quote.text.split()) == QUOTE
    assert quote.rects and all(any(p.intersects(q) for p in passage.rects) for q in quote.rects)
    assert quote.color.lightness() < passage.color.lightness()
    shown = by_kind(viewer)
    assert shown["passage"].lines == len(lines) and shown["quote"].lines == len(quote.rects)
    # Each box lands on the viewport where the page is painted.
    for rect in passage.rects:
        on_screen = viewer.pdf_view.mark_to_view(1, rect)
        assert on_screen is not None and on_screen.width() > 0


def test_a_pdf_passage_without_a_quote_has_one_highlight(viewer, tmp_path):
    pdf = make_pdf(tmp_path / "cider.pdf")

    viewer.show_passage(str(pdf), 2, None, PASSAGE)

    assert [h.kind for h in viewer.highlights()] == ["passage"]
    assert viewer.highlight_found()


def test_every_line_of_a_text_passage_is_highlighted_and_the_quote_more_strongly(viewer, qtbot, tmp_path):
    filler = "\n".join(f"Line {i}: notes about nothing in particular." for i in range(60))
    wrapped = PASSAGE.replace(" Apples", "\nApples").replace(" The pomace", "\nThe pomace").replace(
        " Juice", "\nJuice")
    text = f"# Cider\n\n{filler}\n\n{wrapped}\n\n{filler}\n"
    path = tmp_path / "cider.md"
    path.write_text(text, encoding="utf-8")
    start = text.index("The cider press")
    end = start + len(wrapped)
    quote_start = text.index(QUOTE)

    with qtbot.waitSignal(viewer.reading_done, timeout=60_000):
        viewer.show_passage(str(path), None, (start, end), wrapped, None, QUOTE,
                            (quote_start, quote_start + len(QUOTE)))

    shown = by_kind(viewer)
    assert shown["passage"].text == wrapped
    assert shown["passage"].lines == wrapped.count("\n") + 1 == 4
    assert shown["quote"].text == QUOTE and shown["quote"].lines == 1
    assert shown["quote"].color.lightness() < shown["passage"].color.lightness()
    # The widget's own selections: the passage from its first to its last
    # line, the quote over it in the stronger colour.
    passage_sel, quote_sel = viewer.text_view.extraSelections()
    document = viewer.text_view.document()
    first = document.findBlock(passage_sel.cursor.selectionStart()).blockNumber()
    last = document.findBlock(passage_sel.cursor.selectionEnd()).blockNumber()
    assert last - first + 1 == 4
    assert passage_sel.cursor.selectionStart() <= quote_sel.cursor.selectionStart()
    assert quote_sel.cursor.selectionEnd() <= passage_sel.cursor.selectionEnd()
    assert quote_sel.cursor.selectedText() == QUOTE
    assert quote_sel.format.background().color() == shown["quote"].color
    assert passage_sel.format.background().color() == shown["passage"].color


def test_a_quote_found_only_elsewhere_in_the_file_is_not_marked(viewer, qtbot, tmp_path):
    text = f"{QUOTE}\n\nIntro.\n\n{PASSAGE.replace(QUOTE, 'Nothing else happened.')}\n"
    path = tmp_path / "cider.txt"
    path.write_text(text, encoding="utf-8")
    passage = PASSAGE.replace(QUOTE, "Nothing else happened.")

    with qtbot.waitSignal(viewer.reading_done, timeout=60_000):
        viewer.show_passage(str(path), None, None, passage, None, QUOTE)

    assert [h.kind for h in viewer.highlights()] == ["passage"]
