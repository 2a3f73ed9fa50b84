"""Answers stream from the local model, cite file and page, and decline honestly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.core.answering import citations as cite
from app.core.answering.outcome import DECLINE_TEXT
from app.core.models.llm import Sampling


@contextmanager
def _recorded(model) -> Iterator[tuple[list[str], list[str]]]:  # noqa: ANN001 - a LocalModel
    """While inside: the prompts ``model`` is given and the pieces it writes, in order."""
    prompts: list[str] = []
    written: list[str] = []
    real_stream = model.stream

    def spy(prompt, sampling, **kw):  # noqa: ANN001, ANN202
        prompts.append(prompt)
        for piece in real_stream(prompt, sampling, **kw):
            written.append(piece)
            yield piece

    model.stream = spy
    try:
        yield prompts, written
    finally:
        del model.stream


@pytest.fixture()
def indexed(library, docs):
    library.indexer.ingest([docs["pdf"].parent])
    return library


def test_an_answer_streams_and_cites_the_pdf_page(indexed, docs) -> None:
    pieces: list[str] = []
    found: list[tuple[int, list[dict]]] = []
    answer = indexed.answerer.ask(
        "How many storm warnings did the lighthouse keepers record?",
        sampling=Sampling(max_tokens=60, temperature=0.0), on_token=pieces.append,
        on_sources=lambda items: found.append((len(pieces), items)),
    )
    assert len(pieces) > 1, "the answer arrives token by token"
    # What the model reads is handed over once, before its first word: the
    # retrieved passages in order, the top one with its best sentence.
    assert len(found) == 1
    before_words, items = found[0]
    assert before_words == 0
    ids = [i["chunk_id"] for i in items]
    assert ids and ids == [h.chunk.id for h in answer.retrieved if h.chunk.id in ids]
    assert {s.hit.chunk.id for s in answer.sources} <= set(ids)
    assert items[0]["quote"]["text"] in items[0]["text"]
    assert answer.timings_ms["retrieve"] <= answer.timings_ms["sources"] <= answer.timings_ms["first_token"]
    assert "".join(pieces).strip() == answer.answer.strip() or answer.answer in "".join(pieces)
    assert not answer.declined
    assert answer.sources and answer.sources[0].n == 1
    cited = {(Path(c.source.hit.chunk.path), c.source.hit.chunk.page) for c in answer.citations}
    assert (docs["pdf"], 3) in cited
    assert answer.timings_ms["first_token"] is not None
    assert answer.timings_ms["total"] >= answer.timings_ms["retrieve"]
    data = answer.to_json()
    assert set(data) == {"question", "answer", "declined", "sources", "citations", "model", "timings_ms",
                         "quotes", "unsupported", "wording_unsupported", "usage", "cached_from"}
    assert data["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_a_question_the_documents_do_not_answer_is_declined(indexed) -> None:
    answer = indexed.answerer.ask("What is the boiling point of mercury in kelvin?",
                                  sampling=Sampling(max_tokens=40))
    assert answer.declined
    assert answer.answer == DECLINE_TEXT
    assert answer.citations == []


def test_stop_halts_generation_and_the_library_keeps_answering(indexed) -> None:
    pieces: list[str] = []
    stop_after = 3
    answer = indexed.answerer.ask(
        "Describe the cooperative's finances and outlook in detail.",
        sampling=Sampling(max_tokens=200), on_token=pieces.append,
        should_stop=lambda: len(pieces) >= stop_after,
    )
    assert answer.stopped
    assert len(pieces) <= stop_after + 1, "Stop takes effect within one token"
    again = indexed.answerer.ask("What does the outlook plan to open?", sampling=Sampling(max_tokens=30))
    assert again.answer


def test_every_answer_is_audited_with_what_the_model_saw(indexed) -> None:
    answer = indexed.answerer.ask("What did the revenue grow to?", sampling=Sampling(max_tokens=30))
    records = indexed.audit.records()
    ask, done = records[-2], records[-1]
    assert ask["event"] == "ask" and done["event"] == "answer"
    data = done["data"]
    assert data["question"] == "What did the revenue grow to?"
    assert data["model"] == answer.model and data["sampling"]["max_tokens"] == 30
    assert len(data["prompt_hash"]) == 64 and len(data["answer_hash"]) == 64
    given = [r["chunk_id"] for r in data["retrieved"] if r["given"]]
    assert given == [s.hit.chunk.id for s in answer.sources]
    assert all({"score", "vector_score", "keyword_score", "text_hash"} <= set(r) for r in data["retrieved"])
    assert indexed.audit.verify().ok


def test_the_prompt_never_overflows_the_context(library, docs, tmp_path) -> None:
    from app.core.models.llm import LocalModel
    from app.config import bundled_chat_model

    small = LocalModel(bundled_chat_model(), n_ctx=512)
    library.use_model(small)
    folder = tmp_path / "long"
    folder.mkdir()
    for i in range(6):
        (folder / f"part{i}.txt").write_text(
            " ".join(f"The harbour ledger entry {i}-{j} records cargo of timber and salt." for j in range(60)),
            encoding="utf-8")
    library.indexer.ingest([folder])
    history = [("What is in the ledger?", "Cargo of timber and salt. " * 40)] * 4
    answer = library.answerer.ask("What cargo does the harbour ledger record?", k=6,
                                  history=history, sampling=Sampling(max_tokens=200))
    assert answer.answer  # no context overflow error
    assert 1 <= len(answer.sources) < 6, "lower-ranked sources gave way"


def test_markers_map_to_sources_and_dangling_ones_are_removed() -> None:
    marked = cite.markers("Revenue grew [2]. Storms [1, 2] and [7].", 3)
    assert marked.valid == [2, 1] and marked.dangling == [7]
    assert cite.strip_dangling("Fact [1]. Other [9]. Both [2, 8].", 2) == "Fact [1]. Other . Both [2]."


def test_citations_are_inferred_when_the_model_writes_no_markers(embedder) -> None:
    sources = [
        "The cooperative's revenue grew to 4.2 million euros in 2025, driven by the new ferry service.",
        "Honey bees forage up to five kilometres from the hive.",
    ]
    vecs = embedder.encode(sources)
    sents = cite.sentences("Revenue rose to 4.2 million euros because of the ferry service.")
    found = cite.infer(sents, embedder.encode(sents), sources, list(vecs))
    assert found == [1]


def test_a_follow_up_repeats_the_earlier_turn_verbatim_so_its_kv_cache_is_reused(indexed) -> None:
    with _recorded(indexed.model()) as (prompts, generated):
        first = indexed.answerer.ask("How many storm warnings did the lighthouse keepers record?",
                                     sampling=Sampling(max_tokens=40, temperature=0.0))
        assert not first.declined
        turn_one = prompts[0] + "".join(generated)
        indexed.answerer.ask("What else did the lighthouse keepers write in their report?",
                             history=[(first.question, first.answer)],
                             sampling=Sampling(max_tokens=20, temperature=0.0))
    # Everything the model read and wrote in the first turn is the start of
    # the second prompt: llama.cpp evaluates only the new sources and question.
    assert prompts[1].startswith(turn_one)
    assert len(prompts[1]) > len(turn_one) + 200


def test_a_follow_up_that_would_overflow_keeps_the_earlier_turn_and_its_best_new_passages(
        library, tmp_path) -> None:
    """When the conversation and every new passage do not fit, the follow-up's lower-ranked
    new passages give way first: the earlier turn stays as the model read it (its KV cache
    is reused) and the follow-up still quotes its best new passages in full."""
    from app.config import bundled_chat_model
    from app.core.answering.prompt import MIN_NEW_SOURCES, QUOTED_ABOVE
    from app.core.models.llm import LocalModel

    small = LocalModel(bundled_chat_model(), n_ctx=1536)
    library.use_model(small)
    folder = tmp_path / "harbour"
    folder.mkdir()
    topics = ["timber", "salt", "copper", "wool", "grain", "tea", "coal", "wine"]
    for t in topics:
        (folder / f"{t}.txt").write_text(
            " ".join(f"The harbour ledger for {t} lists shipment {j} of {t} from the northern quay." for j in range(14)),
            encoding="utf-8")
    library.indexer.ingest([folder])
    sampling = Sampling(max_tokens=40, temperature=0.0)
    with _recorded(small) as (prompts, generated):
        first = library.answerer.ask("What does the harbour ledger list for timber?", k=2, sampling=sampling,
                                     use_cache=False)
        turn_one = prompts[0] + "".join(generated)
        second = library.answerer.ask("And the ledger's shipments of copper, wool, grain, tea, coal and wine?",
                                      k=8, history=[(first.question, first.answer)], sampling=sampling,
                                      use_cache=False)

    earlier = {s.hit.chunk.id for s in first.sources}
    new_found = [h.chunk.id for h in second.retrieved if h.chunk.id not in earlier]
    new_quoted = [s.hit.chunk.id for s in second.sources if s.hit.chunk.id not in earlier]
    assert len(new_found) > MIN_NEW_SOURCES, "the follow-up found more new passages than fit"
    # The earlier turn is the start of the follow-up's prompt: only the new part is read.
    assert prompts[1].startswith(turn_one)
    # Its best new passages are quoted in full; the lower-ranked ones gave way.
    assert MIN_NEW_SOURCES <= len(new_quoted) < len(new_found)
    assert new_quoted == new_found[: len(new_quoted)]
    new_part = prompts[1][len(turn_one):]
    for s in second.sources:
        if s.hit.chunk.id in new_quoted:
            assert s.hit.chunk.text.strip()[:80] in new_part
        else:
            assert QUOTED_ABOVE in new_part
    assert small.count_tokens(prompts[1]) <= small.n_ctx - 40


def test_a_follow_up_keeps_source_numbers_and_names_passages_already_quoted(indexed) -> None:
    from app.core.answering.prompt import QUOTED_ABOVE

    with _recorded(indexed.model()) as (prompts, _written):
        first = indexed.answerer.ask("How many storm warnings did the lighthouse keepers record?",
                                     sampling=Sampling(max_tokens=40, temperature=0.0))
        second = indexed.answerer.ask("And what else did the lighthouse keepers' report say about storms?",
                                      history=[(first.question, first.answer)],
                                      sampling=Sampling(max_tokens=40, temperature=0.0))
    before = {s.hit.chunk.id: s.n for s in first.sources}
    after = {s.hit.chunk.id: s.n for s in second.sources}
    again = before.keys() & after.keys()
    assert again, "the follow-up finds some of the same passages"
    # The same passage has the same number in both answers; a new one takes a number not used before.
    assert all(after[cid] == before[cid] for cid in again)
    assert all(n > max(before.values()) for cid, n in after.items() if cid not in before)
    # The follow-up's message names the passages the first one quoted, without their text again.
    new_part = prompts[1][len(prompts[0]):]
    for source in second.sources:
        if source.hit.chunk.id in again:
            assert f"[{source.n}] " in new_part and QUOTED_ABOVE in new_part
            assert source.hit.chunk.text.strip() not in new_part
        else:
            assert source.hit.chunk.text.strip()[:80] in new_part
    # Its citations point at those numbers, as the window and the audit show them.
    assert {c.n for c in second.citations} <= set(after.values())
    assert {c["n"] for c in second.to_json()["citations"]} <= set(after.values())

def test_a_self_contained_question_is_searched_as_asked() -> None:
    from app.core.answering.answer import search_query

    history = [("What does the cooperative plan to open next year?", "A marine biology museum [1].")]
    question = "How many storm warnings did the lighthouse keepers record in winter?"
    assert search_query(question, history) == question
    assert search_query("and where will it be?", []) == "and where will it be?"


def test_a_follow_up_is_searched_with_the_conversation_it_refers_to(indexed, docs) -> None:
    from app.core.answering.answer import search_query

    first = ("What does the cooperative plan to open next year?",
             "It plans to open a marine biology museum [1].")
    follow_up = "and where will it be?"
    query = search_query(follow_up, [first])
    assert follow_up in query and first[0] in query and "marine biology museum" in query

    answer = indexed.answerer.ask(follow_up, history=[first], sampling=Sampling(max_tokens=40, temperature=0.0))
    assert not answer.declined
    top = answer.sources[0].hit.chunk
    assert Path(top.path) == docs["pdf"].resolve() and top.page == 4  # the Outlook page: the customs house
    asked = [r for r in indexed.audit.records() if r["event"] == "ask"][-1]
    assert asked["data"]["question"] == follow_up and asked["data"]["search_query"] == query
    done = indexed.audit.records()[-1]["data"]
    assert done["search_query"] == query


def test_a_marker_on_a_sentence_its_source_does_not_support_is_removed(embedder) -> None:
    sources = ["Finance. The cooperative's revenue grew to 4.2 million euros in 2025.",
               "Honey bees forage up to five kilometres from the hive."]
    vectors = list(embedder.encode(sources))
    text = "The cooperative's revenue grew to 4.2 million euros [2]. Honey bees forage five kilometres [2]."
    cleaned, removed = cite.drop_unsupported(text, sources, vectors, embedder.encode)
    assert removed == [2]
    assert cleaned == "The cooperative's revenue grew to 4.2 million euros. Honey bees forage five kilometres [2]."
    # A short fragment says too little to judge and keeps its marker.
    assert cite.drop_unsupported("UTF-8 [2].", sources, vectors, embedder.encode) == ("UTF-8 [2].", [])


def test_invented_and_unsupported_markers_never_reach_the_citations(indexed) -> None:
    """Fault injection: a model that cites a source number that does not exist
    and a source that says something else."""
    model = indexed.model()
    question = "What did the cooperative's revenue grow to?"
    hits = indexed.retriever.search(question, k=5).hits
    unrelated = next(i for i, h in enumerate(hits, 1) if "revenue" not in h.chunk.text)
    finance = next(i for i, h in enumerate(hits, 1) if "revenue" in h.chunk.text)
    scripted = f"The revenue grew to 4.2 million euros in 2025 [{unrelated}][{finance}]. Also see [9]."

    def wrong_citer(prompt, sampling, **kw):  # noqa: ANN001, ANN202
        yield scripted

    model.stream = wrong_citer
    try:
        answer = indexed.answerer.ask(question, sampling=Sampling(max_tokens=40))
    finally:
        del model.stream
    assert "[9]" not in answer.answer and f"[{unrelated}]" not in answer.answer
    assert [c.n for c in answer.citations] == [finance]
    assert "revenue" in answer.citations[0].source.hit.chunk.text
    assert any("[9]" in f and "no source" in f for f in answer.flags)
    assert any(f"[{unrelated}]" in f and "does not support" in f for f in answer.flags)
    assert answer.to_json()["flags"] == answer.flags


def test_keyword_mode_answers_from_the_documents_too(indexed, docs) -> None:
    answer = indexed.answerer.ask("How many storm warnings did the lighthouse keepers record?", mode="keyword",
                                  sampling=Sampling(max_tokens=30, temperature=0.0))
    assert not answer.declined
    assert all(s.hit.similarity is not None for s in answer.sources)
    assert Path(answer.sources[0].hit.chunk.path) == docs["pdf"].resolve()


def test_a_terse_question_about_a_chosen_file_is_answered_from_it(indexed, docs) -> None:
    # Too vague to pass the relevance threshold across the whole library…
    question = "What temperature and how long?"
    anywhere = indexed.answerer.ask(question, sampling=Sampling(max_tokens=30))
    assert anywhere.declined
    # …but "Ask about this file" says where the answer is.
    scoped = indexed.answerer.ask(question, scope=str(docs["md"]), sampling=Sampling(max_tokens=30))
    assert not scoped.declined
    assert scoped.sources and {s.hit.chunk.path for s in scoped.sources} == {str(docs["md"])}
