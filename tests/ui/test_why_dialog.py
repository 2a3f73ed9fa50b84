"""“Why this answer” shows every retrieved passage and how it was used."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from typing import Any  # noqa: E402

from app.ui.why_dialog import COL_CITED, COL_GIVEN, WhyDialog  # noqa: E402


def _record(**over: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "question": "How long is the warranty?",
        "answer": "Two years [1].",
        "declined": False,
        "sources": [
            {"n": 1, "path": "/docs/manual.pdf", "page": 4, "chunk_id": "c1", "score": 0.0328,
             "text": "The warranty lasts two years from purchase."},
            {"n": 2, "path": "/docs/faq.md", "page": None, "chunk_id": "c2", "score": 0.0161,
             "text": "Contact support for repairs."},
        ],
        "citations": [{"n": 1, "path": "/docs/manual.pdf", "page": 4, "chunk_id": "c1",
                       "text": "The warranty lasts two years from purchase.", "inferred": False}],
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "timings_ms": {"retrieve": 12.4, "first_token": 340.2, "total": 1204.9},
        "retrieved": [
            {"chunk_id": "c1", "path": "/docs/manual.pdf", "page": 4, "score": 0.0328,
             "vector_score": 0.61234, "keyword_score": 7.5, "similarity": 0.61234, "given": True,
             "text": "The warranty lasts two years from purchase."},
            {"chunk_id": "c2", "path": "/docs/faq.md", "page": None, "score": 0.0161,
             "vector_score": 0.4, "keyword_score": None, "similarity": 0.4, "given": True,
             "text": "Contact support for repairs."},
            {"chunk_id": "c3", "path": "/docs/old.txt", "page": None, "score": 0.0155,
             "vector_score": None, "keyword_score": 2.25, "similarity": None, "given": False,
             "text": "Warranty terms changed in 2019."},
        ],
    }
    record.update(over)
    return record


def test_every_retrieved_passage_is_listed_with_its_scores_and_use(qtbot) -> None:
    dialog = WhyDialog(_record())
    qtbot.addWidget(dialog)

    assert dialog.windowTitle() == "Why this answer"
    assert "How long is the warranty?" in dialog.question_label.text()
    assert dialog.table_rows() == [
        ["1", "manual.pdf", "4", "0.0328", "0.6123", "7.5000", "—", "0.6123", "✔", "✔"],
        ["2", "faq.md", "—", "0.0161", "0.4000", "—", "—", "0.4000", "✔", "—"],
        ["3", "old.txt", "—", "0.0155", "—", "2.2500", "—", "—", "—", "—"],
    ]


def test_selecting_a_passage_shows_all_of_its_text(qtbot) -> None:
    dialog = WhyDialog(_record())
    qtbot.addWidget(dialog)

    assert "The warranty lasts two years" in dialog.passage_text()  # first row selected
    dialog.table.selectRow(2)
    assert "Warranty terms changed in 2019." in dialog.passage_text()
    assert "old.txt" in dialog.passage_text()


def test_the_footer_names_the_model_and_the_timings(qtbot) -> None:
    dialog = WhyDialog(_record())
    qtbot.addWidget(dialog)

    footer = dialog.footer_text()
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in footer
    assert "retrieve 12 ms" in footer
    assert "first token 340 ms" in footer
    assert "total 1,205 ms" in footer
    assert "declined" not in footer


def test_a_declined_answer_says_why(qtbot) -> None:
    record = _record(declined=True, citations=[],
                     timings_ms={"retrieve": 9.0, "first_token": None, "total": 10.0})
    for r in record["retrieved"]:
        r["given"] = False
    dialog = WhyDialog(record)
    qtbot.addWidget(dialog)

    assert "declined: no passage was relevant enough" in dialog.footer_text()
    assert "first token —" in dialog.footer_text()
    assert all(row[COL_GIVEN] == "—" and row[COL_CITED] == "—" for row in dialog.table_rows())


def test_citations_known_only_by_number_still_mark_their_passage(qtbot) -> None:
    record = _record(citations=[{"n": 2, "inferred": True}])
    dialog = WhyDialog(record)
    qtbot.addWidget(dialog)

    assert [row[COL_CITED] for row in dialog.table_rows()] == ["—", "✔", "—"]
    assert "matched to this passage by meaning" in dialog.table.item(1, COL_CITED).toolTip()


def test_a_snapshot_without_retrieval_details_falls_back_to_the_sources(qtbot) -> None:
    record = _record()
    del record["retrieved"]
    dialog = WhyDialog(record)
    qtbot.addWidget(dialog)

    rows = dialog.table_rows()
    assert [r[1] for r in rows] == ["manual.pdf", "faq.md"]
    assert [r[COL_GIVEN] for r in rows] == ["✔", "✔"]
    assert [r[4] for r in rows] == ["—", "—"]


def test_vector_keyword_and_reranker_scores_have_their_own_explained_columns(qtbot) -> None:
    record = _record()
    # As a reranked answer stores them: the reranker's score orders the passages.
    for entry, rerank in zip(record["retrieved"], (0.91234, 0.25, None)):
        entry["rerank_score"] = rerank
        if rerank is not None:
            entry["score"] = rerank
    dialog = WhyDialog(record)
    qtbot.addWidget(dialog)

    headers = [dialog.table.horizontalHeaderItem(c).text() for c in range(dialog.table.columnCount())]
    columns = {name: headers.index(name) for name in ("Vector score", "Keyword (BM25)", "Reranker score")}
    rows = dialog.table_rows()
    assert [r[columns["Vector score"]] for r in rows] == ["0.6123", "0.4000", "—"]
    assert [r[columns["Keyword (BM25)"]] for r in rows] == ["7.5000", "—", "2.2500"]
    assert [r[columns["Reranker score"]] for r in rows] == ["0.9123", "0.2500", "—"]
    assert [r[headers.index("Score")] for r in rows] == ["0.9123", "0.2500", "0.0155"]
    tips = {name: dialog.table.horizontalHeaderItem(c).toolTip() for name, c in columns.items()}
    assert "vector search" in tips["Vector score"]
    assert "BM25" in tips["Keyword (BM25)"]
    assert "cross-encoder" in tips["Reranker score"] and "Settings → Answers → Reranker" in tips["Reranker score"]


def test_a_follow_up_shows_what_was_searched_for(qtbot) -> None:
    dialog = WhyDialog(_record(question="and where will it be?",
                               search_query="What will open next year? and where will it be?"))
    qtbot.addWidget(dialog)
    text = dialog.question_label.text()
    assert "Question: and where will it be?" in text
    assert "Searched for (with the conversation): What will open next year? and where will it be?" in text
    plain = WhyDialog(_record())
    qtbot.addWidget(plain)
    assert "Searched for" not in plain.question_label.text()


def test_the_sentence_check_is_summarised_with_the_sentences_not_found(qtbot) -> None:
    from app.ui.why_dialog import WhyDialog

    record = {"question": "What did revenue do?", "declined": False, "sources": [], "citations": [],
              "sentences": [{"text": "Revenue grew to 4.2 million euros.", "supported": True, "sources": [1]},
                            {"text": "The board bought a yacht.", "supported": False, "sources": []}],
              "wording_unsupported": False}
    dialog = WhyDialog(record)
    qtbot.addWidget(dialog)
    text = dialog.support_text()
    assert text.startswith("Sentence check: 1 of 2 sentences found in the cited passages.")
    assert "“The board bought a yacht.”" in text and "Revenue grew" not in text

    older = WhyDialog({"question": "q", "declined": False})
    qtbot.addWidget(older)
    assert older.support_text() == ""


def test_a_passage_of_an_e_mail_attachment_is_named_by_the_attachment(qtbot) -> None:
    record = _record()
    record["retrieved"][2] = {**record["retrieved"][2], "path": "/docs/papers.eml", "page": 2,
                              "attachment": "notes.pdf", "part": "1"}
    dialog = WhyDialog(record)
    qtbot.addWidget(dialog)
    assert dialog.table_rows()[2][:3] == ["3", "notes.pdf (attached to papers.eml)", "2"]
