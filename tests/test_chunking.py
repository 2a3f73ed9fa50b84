"""Chunks fit the embedder, stay on one page and point at their passage."""

from __future__ import annotations

from app.core.documents.chunking import chunk_pages
from app.core.documents.model import Page


def _long_page(n: int, words: int) -> Page:
    sentences = [f"Sentence {i} of page {n} talks about topic number {i} in some detail." for i in range(words)]
    return Page(n, " ".join(sentences), headings=((0, f"Chapter {n}"),))


def test_chunks_fit_the_embedders_sequence_length(embedder, hf_tokenizer) -> None:
    pages = [_long_page(1, 120), _long_page(2, 80)]
    chunks = chunk_pages(pages, embedder.token_spans, max_tokens=embedder.max_tokens, overlap=32)
    assert len(chunks) > 4
    for c in chunks:
        # Re-tokenised with special tokens, each chunk still fits the model.
        ids = hf_tokenizer(c.text)["input_ids"]
        assert len(ids) <= embedder.max_tokens + 2


def test_chunks_never_span_pages_and_keep_their_span(embedder) -> None:
    pages = [_long_page(1, 60), _long_page(2, 60), Page(3, "   "), _long_page(4, 5)]
    chunks = chunk_pages(pages, embedder.token_spans, max_tokens=64, overlap=16)
    by_page = {p.number: p for p in pages}
    assert {c.page for c in chunks} == {1, 2, 4}  # the blank page yields nothing
    for c in chunks:
        assert by_page[c.page].text[c.start : c.end] == c.text
        assert c.heading == f"Chapter {c.page}"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_overlap_and_cover_the_page(embedder) -> None:
    page = _long_page(1, 60)
    chunks = chunk_pages([page], embedder.token_spans, max_tokens=64, overlap=16)
    assert chunks[0].start == 0
    assert chunks[-1].end == len(page.text.rstrip())
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "neighbours share some text"
        assert b.start > a.start


def test_chunks_end_at_sentence_breaks_when_possible(embedder) -> None:
    page = _long_page(1, 60)
    chunks = chunk_pages([page], embedder.token_spans, max_tokens=64, overlap=8)
    assert all(c.text.endswith(".") for c in chunks)
