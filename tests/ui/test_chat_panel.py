"""What the transcript tells a reader about how well an answer is grounded."""

from __future__ import annotations

import os

from app.ui.chat_panel import ChatPanel, TurnView

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_CITATION = {"n": 1, "path": "/docs/report.pdf", "page": 2, "chunk_id": "c1", "text": "Revenue grew.",
             "inferred": False}


def shown(qtbot, record: dict, answer: str) -> str:
    panel = ChatPanel()
    qtbot.addWidget(panel)
    panel.set_turns([TurnView(1, "What did revenue do?", answer, record)])
    return panel.transcript.toPlainText()


def test_an_answer_that_cites_nothing_is_marked(qtbot) -> None:
    text = shown(qtbot, {"declined": False, "sources": [dict(_CITATION)], "citations": []},
                 "Revenue probably grew a lot.")
    assert "cites none of your documents" in text


def test_a_cited_answer_carries_no_warning_and_names_its_page(qtbot) -> None:
    text = shown(qtbot, {"declined": False, "sources": [dict(_CITATION)], "citations": [dict(_CITATION)]},
                 "Revenue grew [1].")
    assert "cites none" not in text
    assert "report.pdf, page 2" in text


def test_a_declined_answer_says_not_found_rather_than_uncited(qtbot) -> None:
    text = shown(qtbot, {"declined": True, "sources": [], "citations": []},
                 "I could not find this in your documents.")
    assert "not found in your documents" in text and "cites none" not in text


def test_markers_the_checks_removed_are_listed(qtbot) -> None:
    record = {"declined": False, "sources": [dict(_CITATION)], "citations": [dict(_CITATION)],
              "flags": ["removed [7]: no source has that number"]}
    text = shown(qtbot, record, "Revenue grew [1].")
    assert "removed [7]: no source has that number" in text
