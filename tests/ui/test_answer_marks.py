"""How the transcript marks an answer's unsupported sentences and shows its quotes,
whatever Markdown, markers and characters the model wrote."""

from __future__ import annotations

import os

from app.ui.answer_support import UNSUPPORTED_TIP, WORDING_NOTICE, mark_sentences
from app.ui.chat_panel import ChatPanel, TurnView

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_SOURCE = {"n": 1, "path": "/docs/report.pdf", "page": 2, "chunk_id": "c1", "span": [0, 40],
           "text": "Revenue grew to 4.2 million euros in 2025."}


def record(sentences: list[tuple[str, bool]], **extra) -> dict:
    """A snapshot as the answer step writes it: each checked sentence, plain (no markers)."""
    return {"declined": False, "sources": [dict(_SOURCE)], "citations": [dict(_SOURCE, inferred=False)],
            "sentences": [{"text": t, "supported": ok, "sources": [1] if ok else []} for t, ok in sentences],
            "quotes": [], "wording_unsupported": False, **extra}


def panel_with(qtbot, answer: str, rec: dict) -> ChatPanel:
    panel = ChatPanel()
    qtbot.addWidget(panel)
    panel.set_turns([TurnView(7, "What did revenue do?", answer, rec)])
    return panel


def marked_runs(panel: ChatPanel) -> list[str]:
    """Runs of transcript text carrying the "not found" tooltip and a wavy underline."""
    runs, current = [], ""
    block = panel.transcript.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.toolTip() == UNSUPPORTED_TIP and fmt.underlineStyle() == fmt.UnderlineStyle.WaveUnderline:
                current += it.fragment().text()
            elif current:
                runs.append(" ".join(current.split()))
                current = ""
            it += 1
        if current:  # a mark never runs over a paragraph's end
            runs.append(" ".join(current.split()))
            current = ""
        block = block.next()
    return runs


def test_an_unsupported_sentence_is_marked_across_bold_and_markers(qtbot) -> None:
    answer = "Revenue grew to **4.2 million** euros [1]. The board also bought a *yacht* for the harbour [1]."
    panel = panel_with(qtbot, answer, record([("Revenue grew to 4.2 million euros.", True),
                                              ("The board also bought a yacht for the harbour.", False)]))
    assert marked_runs(panel) == ["The board also bought a yacht for the harbour"]


def test_a_repeated_unsupported_sentence_is_marked_each_time(qtbot) -> None:
    bullet = "The ferry runs every hour on Sundays."
    answer = "\n".join(f"- {bullet}" for _ in range(3))
    panel = panel_with(qtbot, answer, record([(bullet, False)] * 3))
    assert marked_runs(panel) == [bullet.rstrip(".")] * 3


def test_escaped_characters_are_matched_and_kept(qtbot) -> None:
    answer = "Profits & losses were <b>balanced</b> in Q1 & Q2."
    panel = panel_with(qtbot, answer, record([("Profits & losses were <b>balanced</b> in Q1 & Q2.", False)]))
    assert marked_runs(panel) == ["Profits & losses were <b>balanced</b> in Q1 & Q2"]
    assert "<b>balanced</b>" in panel.transcript.toPlainText(), "the model's markup stays text"


def test_a_sentence_that_cannot_be_found_marks_nothing() -> None:
    html = "<p>Revenue grew.</p>"
    assert mark_sentences(html, ["Something the answer never said at all."]) == html


def test_when_the_wording_is_unsupported_the_quote_leads_with_a_notice(qtbot) -> None:
    quote = {"n": 1, "text": "Revenue grew to 4.2 million euros in 2025.", "path": "/docs/report.pdf",
             "page": 2, "span": [0, 42]}
    answer = "The company is doing wonderfully and everyone is happy."
    panel = panel_with(qtbot, answer, record([(answer, False)], quotes=[quote], wording_unsupported=True))
    text = " ".join(panel.transcript.toPlainText().split())
    notice, place, said = (text.index(WORDING_NOTICE), text.index("[1] report.pdf, p. 2"),
                           text.index(answer.rstrip(".")))
    assert notice < place < said, "notice, then the quote, then the model's words"
    assert "“Revenue grew to 4.2 million euros in 2025.”" in text
    assert marked_runs(panel) == [answer.rstrip(".")]


def test_an_ordinary_answer_shows_its_quote_after_it_and_links_it(qtbot) -> None:
    quote = {"n": 1, "text": "Revenue grew to 4.2 million euros in 2025.", "path": "/docs/report.pdf",
             "page": 2, "span": [0, 42]}
    answer = "Revenue grew to 4.2 million euros [1]."
    panel = panel_with(qtbot, answer, record([("Revenue grew to 4.2 million euros.", True)], quotes=[quote]))
    text = " ".join(panel.transcript.toPlainText().split())
    assert WORDING_NOTICE not in text
    assert text.index(answer.rstrip(".")) < text.index("[1] report.pdf, p. 2")
    assert marked_runs(panel) == []
    clicked = []
    panel.quote_clicked.connect(lambda turn, i: clicked.append((turn, i)))
    from PySide6.QtCore import QUrl

    panel.transcript.anchorClicked.emit(QUrl("quote:7:0"))
    assert clicked == [(7, 0)]
