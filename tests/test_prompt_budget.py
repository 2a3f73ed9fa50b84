"""A prompt budget: the model reads the sentences that matter, the user still
sees (and is cited) the whole passage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.core.answering.excerpts import GAP, excerpts
from app.core.answering.outcome import Source
from app.core.answering.retrieval import Hit
from app.core.models.llm import Sampling
from app.core.stores.catalog import StoredChunk

FILLER = [
    "The cooperative was founded by fishing families in the spring of 1911.",
    "Its first office stood beside the ferry landing and sold tide tables.",
    "Membership dues were paid twice a year, in March and in September.",
    "The annual picnic moved to the northern beach after the storm of 1919.",
    "Volunteers repainted the tower every fifth summer with donated paint.",
    "A small museum now shows the original lens and the keepers' logbooks.",
    "The library lends charts of the coast to members free of charge.",
    "School visits take place on the first Monday of each month.",
]
ANSWER = "In 1923 the lighthouse keepers recorded 41 storm warnings."


def _source(n: int, text: str, start: int = 100) -> Source:
    chunk = StoredChunk(id=f"c{n}", ordinal=n, page=n, label=None, start=start, end=start + len(text),
                        heading=None, text=text, text_hash=f"h{n}", file_id=1, path="/docs/report.txt")
    return Source(n, Hit(chunk=chunk, score=1.0 / n))


def test_a_long_passage_is_quoted_by_the_sentences_that_answer_the_question(embedder, chat_model) -> None:
    long = " ".join(FILLER[:4] + [ANSWER] + FILLER[4:])
    short = "Storm warnings are raised with flags on the tower."
    sources = [_source(1, long), _source(2, short)]
    question = "How many storm warnings did the lighthouse keepers record?"
    whole = chat_model.count_tokens(long) + chat_model.count_tokens(short)
    budget = whole // 3

    cut = excerpts(question, sources, budget, chat_model.count_tokens, embedder.encode)

    assert set(cut) == {"c1"}, "the short passage fits its share and is quoted whole"
    excerpt = cut["c1"]
    assert ANSWER in excerpt.text
    assert chat_model.count_tokens(excerpt.text) < chat_model.count_tokens(long) / 2
    assert "…" in excerpt.text, "what was left out is marked"
    assert chat_model.count_tokens(excerpt.text) <= budget, "within the budget"
    # Each run the model reads is the passage's own text, at its place.
    for a, b in excerpt.runs:
        assert long[a:b] in excerpt.text
    assert any(ANSWER in long[a:b] for a, b in excerpt.runs)


def test_no_budget_or_passages_that_fit_change_nothing(embedder, chat_model) -> None:
    sources = [_source(1, " ".join(FILLER)), _source(2, ANSWER)]
    question = "How many storm warnings were recorded?"
    assert excerpts(question, sources, 0, chat_model.count_tokens, embedder.encode) == {}
    assert excerpts(question, sources, 10_000, chat_model.count_tokens, embedder.encode) == {}


def test_neighbouring_sentences_are_quoted_as_one_run(embedder, chat_model) -> None:
    text = " ".join(FILLER[:3] + [ANSWER, "The warnings were logged at dawn by the senior keeper."] + FILLER[3:])
    share = chat_model.count_tokens(ANSWER) + chat_model.count_tokens(
        "The warnings were logged at dawn by the senior keeper.") + 6
    cut = excerpts("When and how many storm warnings did the keepers log?", [_source(1, text)], share,
                   chat_model.count_tokens, embedder.encode)["c1"]
    assert f"{ANSWER} The warnings were logged at dawn" in cut.text
    assert GAP.strip() not in cut.text.strip("… "), "one run: no gap inside it"


@pytest.fixture()
def indexed(library, docs):
    library.indexer.ingest([docs["pdf"].parent])
    return library


def _asked(library, question: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, str]:
    """The answer and the prompt the model was given."""
    model = library.model()
    prompts: list[str] = []
    real = model.stream

    def spy(prompt: str, sampling: Sampling, **kw):  # noqa: ANN003, ANN202
        prompts.append(prompt)
        yield from real(prompt, sampling, **kw)

    monkeypatch.setattr(model, "stream", spy)
    answer = library.answerer.ask(question, sampling=Sampling(max_tokens=60, temperature=0.0), use_cache=False)
    monkeypatch.undo()
    return answer, prompts[0]


def test_with_a_budget_the_model_reads_less_and_the_answer_still_cites_the_page(
        indexed, docs, monkeypatch: pytest.MonkeyPatch) -> None:
    question = "How many storm warnings did the lighthouse keepers record?"
    whole_answer, whole_prompt = _asked(indexed, question, monkeypatch)
    model = indexed.model()
    passages = sum(model.count_tokens(s.hit.chunk.text.strip()) for s in whole_answer.sources)

    indexed.apply_settings(dataclasses.replace(indexed.settings, prompt_budget=passages // 3))
    answer, prompt = _asked(indexed, question, monkeypatch)

    assert model.count_tokens(prompt) < model.count_tokens(whole_prompt)
    assert "…" in prompt
    assert not answer.declined
    cited = {(Path(c.source.hit.chunk.path), c.source.hit.chunk.page) for c in answer.citations}
    assert (docs["pdf"], 3) in cited
    # The user is shown the whole passage, and quotes are exact text of it.
    shown = {s["chunk_id"]: s["text"] for s in answer.to_json()["sources"]}
    full = {s.hit.chunk.id: s.hit.chunk.text for s in whole_answer.sources}
    assert any(shown[cid] == full[cid] for cid in set(shown) & set(full))
    assert all(text not in prompt for cid, text in shown.items() if cid in {
        e["chunk_id"] for e in indexed.audit.records()[-1]["data"]["excerpts"]}), "only parts of those reached the model"
    by_n = {s.n: s for s in answer.sources}
    for quote in answer.quotes:
        assert quote.text in by_n[quote.n].hit.chunk.text
    # The audit says which parts of which passages the model was given.
    record = indexed.audit.records()[-1]["data"]
    assert record["excerpts"], record
    page_texts = {s.hit.chunk.id: s.hit.chunk for s in answer.sources}
    for item in record["excerpts"]:
        chunk = page_texts[item["chunk_id"]]
        for a, b in item["spans"]:
            assert chunk.start <= a < b <= chunk.end
            assert chunk.text[a - chunk.start:b - chunk.start] in prompt
