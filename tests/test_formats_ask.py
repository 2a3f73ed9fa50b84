"""Questions answered from slides, a spreadsheet and an e-mail, cited by slide, sheet and rows,
message, and an e-mail's attached PDF by its own page."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from app.core.documents.model import citation_place


def _deck(path: Path) -> Path:
    from pptx import Presentation

    deck = Presentation()
    for title, body in (("Quarterly review", "Agenda for the board."),
                        ("Ferry timetable", "The winter ferry to Scilly sails on Tuesdays and Saturdays "
                                            "at 09:15 from Penzance quay."),
                        ("Questions", "Any other business.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.save(str(path))
    return path


def _workbook(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Sales"
    sheet.append(["Region", "Quarter", "Boats sold"])
    for row in (["North", "Q1", 12], ["South", "Q1", 9], ["North", "Q2", 15], ["West", "Q3", 4417]):
        sheet.append(row)
    book.save(str(path))
    return path


def _notes_pdf() -> bytes:
    """Two pages of harbour notes; the lock gates are on the second."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in ("Harbour notes. Visitors moor on the west wall and pay at the office.",
                 "The inner harbour lock gates open two hours before high water and close at high water."):
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def _mail(path: Path) -> Path:
    message = EmailMessage()
    message["From"] = "Harbour Master <master@porthleven.example>"
    message["To"] = "crew@porthleven.example"
    message["Subject"] = "Slipway closure"
    message["Date"] = "Tue, 03 Mar 2026 09:00:00 +0000"
    message.set_content("The slipway will be closed for resurfacing from 14 to 18 April; "
                        "boats should use the north quay meanwhile. The harbour notes are attached.")
    message.add_attachment(_notes_pdf(), maintype="application", subtype="pdf", filename="harbour-notes.pdf")
    path.write_bytes(bytes(message))
    return path


@pytest.fixture()
def office(library, tmp_path: Path):
    folder = tmp_path / "office"
    folder.mkdir()
    _deck(folder / "review.pptx")
    _workbook(folder / "sales.xlsx")
    _mail(folder / "closure.eml")
    report = library.indexer.ingest([folder])
    assert report.indexed == 3, (report.failed, report.skipped)
    return library


@pytest.mark.parametrize(("question", "file", "place"), [
    ("On which days does the winter ferry to Scilly sail?", "review.pptx", "review.pptx, slide 2"),
    ("How many boats were sold in the West region in Q3?", "sales.xlsx", 'sales.xlsx, section "Sales, rows 2–5"'),
    ("When will the slipway be closed for resurfacing?", "closure.eml", 'closure.eml, section "Slipway closure"'),
    # An attachment is a document of its own: cited at its own page, linked to its message.
    ("When do the inner harbour lock gates open?", "closure.eml",
     "harbour-notes.pdf, page 2 (attached to closure.eml)"),
])
def test_a_question_is_answered_from_each_format_and_cited_where_it_is(office, question, file, place) -> None:
    answer = office.answerer.ask(question)
    assert not answer.declined, answer.answer
    cited = [s.hit.chunk for s in answer.sources]
    assert cited, answer.answer
    top = cited[0]
    assert Path(top.path).name == file
    where = citation_place({"path": top.path, "page": top.page, "label": top.label, "heading": top.heading,
                            "attachment": top.attachment})
    assert where == place
    # The audit record says which document the passage was in, an attachment by name.
    record = [r for r in office.audit.records() if r["event"] == "answer"][-1]["data"]
    audited = {r["chunk_id"]: r for r in record["retrieved"]}
    assert audited[top.id]["attachment"] == top.attachment
