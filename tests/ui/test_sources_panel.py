"""The sources panel shows an answer's citations as cards that open the passage."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from app.ui.sources_panel import (  # noqa: E402
    EMPTY_TEXT,
    UNCITED_NOTE,
    SourcesPanel,
    highlight_terms,
    query_terms,
)

QUESTION = "How many storm warnings did the lighthouse keepers record?"


def citation(n: int, **extra) -> dict:
    item = {
        "n": n,
        "path": f"/library/report-{n}.pdf",
        "page": 3,
        "chunk_id": f"chunk-{n}",
        "text": "Safety. The lighthouse keepers recorded 17 storm warnings during the winter.",
        "label": "iii",
        "heading": None,
        "span": [0, 76],
        "inferred": False,
    }
    item.update(extra)
    return item


@pytest.fixture()
def panel(qtbot) -> SourcesPanel:
    widget = SourcesPanel()
    qtbot.addWidget(widget)
    widget.resize(420, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_empty_state(panel):
    assert panel.cards() == []
    assert panel.empty_text() == EMPTY_TEXT


def test_cards_show_file_page_label_and_inferred(panel):
    cits = [
        citation(1),
        citation(2, path="/library/notes.md", page=None, label=None, heading="Baking", inferred=True,
                 text="Bake at 240 degrees."),
    ]
    panel.show_answer(QUESTION, cits, cits)

    assert panel.cards() == cits
    assert panel.empty_text() == ""
    assert panel.note_text() == ""
    first = panel.card_widget(0).header.text()
    assert "[1]" in first and "report-1.pdf" in first and "page 3 (printed iii)" in first
    assert "(inferred)" not in first
    second = panel.card_widget(1).header.text()
    assert "notes.md" in second and "section &quot;Baking&quot;" in second
    assert "(inferred)" in second


def test_a_card_of_an_attachment_names_it_first_then_its_message(panel):
    cits = [citation(1, path="/library/mail/papers.eml", page=2, label=None, attachment="notes.pdf", part="1"),
            citation(2, path="/library/mail/papers.eml", page=None, label=None, heading="Harbour papers")]
    panel.show_answer(QUESTION, cits, cits)
    first = panel.card_widget(0).header.text()
    assert first.startswith("<b>[1]</b> notes.pdf · page 2 · attached to papers.eml")
    assert panel.card_widget(1).header.text().startswith("<b>[2]</b> papers.eml · section")


def test_query_terms_are_bold_in_the_passage(panel):
    panel.show_answer(QUESTION, [citation(1, text="Keepers & <crew> logged storm warnings; the lighthouse stood.")], [])

    html = panel.card_widget(0).passage_html
    assert "<b>storm</b>" in html and "<b>warnings</b>" in html and "<b>lighthouse</b>" in html
    assert "<b>Keepers</b>" in html  # case-insensitive
    assert "&lt;crew&gt;" in html and "&amp;" in html  # the passage is escaped
    assert "<b>the</b>" not in html and "<b>how</b>" not in html.lower()


def test_click_emits_open_requested_with_the_dict(panel, qtbot):
    cits = [citation(1), citation(2, page=4)]
    panel.show_answer(QUESTION, cits, cits)

    with qtbot.waitSignal(panel.open_requested) as blocker:
        qtbot.mouseClick(panel.card_widget(1), Qt.MouseButton.LeftButton)
    assert blocker.args == [cits[1]]

    with qtbot.waitSignal(panel.open_requested) as blocker:
        panel.click_card(0)
    assert blocker.args == [cits[0]]


def test_enter_on_a_focused_card_opens_it(panel, qtbot):
    cits = [citation(1), citation(2)]
    panel.show_answer(QUESTION, cits, cits)
    card = panel.card_widget(0)
    card.setFocus()
    qtbot.waitUntil(card.hasFocus)

    qtbot.keyClick(card, Qt.Key.Key_Down)
    qtbot.waitUntil(panel.card_widget(1).hasFocus)
    with qtbot.waitSignal(panel.open_requested) as blocker:
        qtbot.keyClick(panel.card_widget(1), Qt.Key.Key_Return)
    assert blocker.args == [cits[1]]


def test_external_and_folder_buttons_emit_the_path(panel, qtbot):
    panel.show_answer(QUESTION, [citation(1)], [])
    card = panel.card_widget(0)

    with qtbot.waitSignal(panel.open_external_requested) as blocker:
        card.external_button.click()
    assert blocker.args == ["/library/report-1.pdf"]
    with qtbot.waitSignal(panel.show_in_folder_requested) as blocker:
        card.folder_button.click()
    assert blocker.args == ["/library/report-1.pdf"]


def test_no_citations_shows_the_sources_under_a_note(panel):
    sources = [citation(1), citation(2)]
    panel.show_answer(QUESTION, [], sources)

    assert panel.note_text() == UNCITED_NOTE
    assert panel.cards() == sources


def test_no_question_and_nothing_to_show_is_the_empty_state(panel):
    panel.show_answer(QUESTION, [citation(1)], [])
    panel.show_answer("", [], [])
    assert panel.cards() == []
    assert panel.empty_text() == EMPTY_TEXT


def test_declined_answer_says_no_passages(panel):
    panel.show_answer(QUESTION, [], [])
    assert panel.cards() == []
    assert "No passages" in panel.empty_text()


def test_new_answer_replaces_cards_and_clear_returns_to_empty(panel):
    panel.show_answer(QUESTION, [citation(1), citation(2)], [])
    panel.show_answer("Another question", [citation(5)], [])
    assert [c["n"] for c in panel.cards()] == [5]

    panel.clear()
    assert panel.cards() == []
    assert panel.empty_text() == EMPTY_TEXT


def test_query_terms_helper():
    assert query_terms("What is the Lighthouse's budget for 2025, and who runs it?") == [
        "lighthouse", "budget", "runs",
    ]
    assert highlight_terms("a & b", []) == "a &amp; b"
    # A term never matches inside an HTML entity.
    assert highlight_terms("salt & pepper", ["amp"]) == "salt &amp; pepper"
