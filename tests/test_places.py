"""Each source once: the top results are five places, not one page five times,
and a question about something the library never mentions is declined with
the word it lacks and the nearest passages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# One long page about the lighthouse's lamp (several chunks of it match the
# question), between two short pages about other things.
LAMP = " ".join(
    f"Lamp note {i}: the lighthouse lamp was serviced in week {i}, its lens cleaned and its "
    f"mantle replaced; the keepers logged the lamp's oil use and the hours it burned each night."
    for i in range(1, 21)
)
PAGES = [
    "The harbour ferry timetable changed in spring; boats now leave every forty minutes.",
    LAMP,
    "The museum plans a new wing for marine biology, funded by the regional council.",
    "Keepers kept a separate logbook for the lighthouse lamp's spare parts and their suppliers.",
]


def make_pdf(path: Path, pages: list[str]) -> Path:
    """One paragraph per page, in small print so the long page stays one page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=7)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 3.5, text)
    pdf.output(str(path))
    return path


@pytest.fixture()
def lamp_library(library, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(folder / "keepers.pdf", PAGES)
    library.indexer.ingest([folder])
    return library, folder / "keepers.pdf"


def test_each_page_is_one_source_and_adjacent_passages_merge(lamp_library) -> None:
    library, pdf = lamp_library
    chunks_on_page_2 = [c for c in library.catalog.chunks(sorted(library.catalog.all_chunk_ids())).values()
                        if c.page == 2]
    assert len(chunks_on_page_2) >= 3  # the page is long enough to be several passages

    hits = library.retriever.search("How often was the lighthouse lamp serviced and its lens cleaned?", k=5).hits

    places = [(h.chunk.path, h.chunk.page) for h in hits]
    assert len(places) == len(set(places)), places  # no page twice
    lamp = next(h for h in hits if h.chunk.page == 2)
    # The page's matching passages became one wider passage, whose text is the
    # page's own text over its span (so the viewer can highlight all of it).
    assert lamp.merged
    assert len(lamp.chunk.text) > max(len(c.text) for c in chunks_on_page_2)
    page_text = LAMP
    assert lamp.chunk.text.split() == page_text[lamp.chunk.start:lamp.chunk.end].split()


def test_search_json_lists_each_page_once(lamp_library, docent) -> None:
    library, pdf = lamp_library
    library.close()
    result = docent("search", "lighthouse lamp lens mantle oil", "-k", "4", "--json")
    assert result.code == 0, result.err
    hits = json.loads(result.out)["hits"]
    pages = [(h["path"], h["page"]) for h in hits]
    assert len(pages) == len(set(pages))


def test_a_question_about_a_term_no_document_uses_is_declined_naming_it(lamp_library) -> None:
    library, _ = lamp_library
    answer = library.answerer.ask("How do I configure the debcargo lamp uploader for the lighthouse?")
    assert answer.declined
    assert "debcargo" in answer.answer
    assert answer.searched and "debcargo" in answer.searched["missing_terms"]
    data = answer.to_json()
    assert data["nearest"] and all(n["path"].endswith("keepers.pdf") for n in data["nearest"])


def test_an_ordinary_word_the_documents_lack_does_not_decline(lamp_library) -> None:
    library, _ = lamp_library
    # "daily" appears nowhere, but it is an ordinary English word, not a
    # name the documents should hold: the question is still answered.
    answer = library.answerer.ask("Was the lighthouse lamp serviced daily?")
    assert not answer.declined, answer.answer


def test_far_apart_passages_of_a_plain_text_file_stay_separate_sources(library, tmp_path) -> None:
    # A text file has neither pages nor headings: two matching passages far
    # apart in it are two places, not one.
    folder = tmp_path / "notes"
    folder.mkdir()
    filler = " ".join(f"Line {i} of the harbour log records tides, ferries and cargo." for i in range(120))
    (folder / "log.txt").write_text(
        "The lighthouse lamp was serviced in March and its lens cleaned.\n\n" + filler
        + "\n\nThe lighthouse lamp was serviced again in October and its mantle replaced.\n",
        encoding="utf-8")
    library.indexer.ingest([folder])
    hits = library.retriever.search("When was the lighthouse lamp serviced?", k=5).hits
    texts = [h.chunk.text for h in hits]
    assert any("March" in t for t in texts) and any("October" in t for t in texts)
    assert not any("March" in t and "October" in t for t in texts)
