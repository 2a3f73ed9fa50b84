"""Search finds the right page, in every mode, and fuses them."""

from __future__ import annotations

from pathlib import Path

import pytest

QUESTIONS = [
    ("How much did revenue grow thanks to the ferry?", 2),
    ("storm warnings and LED lamps", 3),
    ("plans for a marine biology museum", 4),
]


@pytest.fixture()
def indexed(library, docs):
    library.indexer.ingest([docs["pdf"].parent])
    return library


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_each_mode_puts_the_right_pdf_page_first(indexed, docs, mode) -> None:
    for question, page in QUESTIONS:
        hits = indexed.retriever.search(question, k=5, mode=mode).hits
        assert hits, question
        top = hits[0]
        assert (Path(top.chunk.path), top.chunk.page) == (docs["pdf"], page), question
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_hybrid_hits_carry_both_scores(indexed) -> None:
    hits = indexed.retriever.search("cooperative revenue ferry", k=3).hits
    top = hits[0]
    assert top.vector_score is not None and top.keyword_score is not None
    assert all(h.similarity is not None for h in hits)


def test_search_can_be_scoped_to_one_file(indexed, docs) -> None:
    hits = indexed.retriever.search("water", k=5, scope=str(docs["html"])).hits
    assert hits and {Path(h.chunk.path) for h in hits} == {docs["html"]}


def test_an_exact_identifier_is_found_by_keyword_even_when_meaning_is_vague(library, tmp_path) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "settings.md").write_text(
        "# Options\n\nSet XQ_FLUSH_INTERVAL_MS to change how often buffers are written.\n", encoding="utf-8")
    (folder / "other.md").write_text("# Notes\n\nBuffers are written to disk periodically.\n", encoding="utf-8")
    library.indexer.ingest([folder])
    hits = library.retriever.search("XQ_FLUSH_INTERVAL_MS", k=2).hits
    assert Path(hits[0].chunk.path).name == "settings.md"


def test_unknown_mode_is_a_usage_error(indexed) -> None:
    from app.errors import UsageError

    with pytest.raises(UsageError):
        indexed.retriever.search("x", mode="fuzzy")
