"""What backs an answer up: the passage's own sentence quoted at its place on
the page, the answer's sentences no cited passage says, a decline that says
what was searched, and a generation cut where it starts repeating itself."""

from __future__ import annotations

import time

import pytest

from app.core.answering import support
from app.core.answering.generation import generate
from app.core.answering.outcome import Answer, Citation, Source
from app.core.answering.retrieval import Hit
from app.core.documents.pdf import load_pdf
from app.core.models.llm import Sampling
from app.core.stores.catalog import StoredChunk
from app.core.textnorm import text_hash
from tests import corpus

GREEDY = Sampling(max_tokens=60, temperature=0.0)
STORM = "How many storm warnings did the lighthouse keepers record?"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder, chat_model):
    """The test corpus, indexed once for this module."""
    from app.core.library import Library

    root = tmp_path_factory.mktemp("support")
    docs = corpus.make_library(root / "docs")
    lib = Library(root / "data", purpose="tests")
    lib.use_embedder(embedder)
    lib.use_model(chat_model)
    lib.indexer.ingest([docs["pdf"].parent])
    yield lib, docs
    lib.close()


@pytest.fixture(scope="module")
def storm(indexed) -> Answer:
    """One real answer about the PDF's page 3, shared by the tests that read it."""
    lib, _ = indexed
    return lib.answerer.ask(STORM, sampling=GREEDY)


def _page3_source(answer: Answer) -> Source:
    return next(s for s in answer.sources if s.hit.chunk.page == 3)


def test_the_quote_is_the_cited_passages_own_sentence_at_its_place_on_the_page(indexed, storm) -> None:
    _, docs = indexed
    assert not storm.declined and storm.quotes
    pages = load_pdf(docs["pdf"]).pages
    by_n = {s.n: s for s in storm.sources}
    for quote in storm.quotes:
        chunk = by_n[quote.n].hit.chunk
        assert quote.text in chunk.text, "a quote is the passage's own words"
        assert pages[chunk.page - 1].text[quote.start:quote.end] == quote.text, "its span points at it on the page"
        assert chunk.start <= quote.start < quote.end <= chunk.end
    first = storm.quotes[0]
    assert "17 storm warnings" in first.text
    shown = storm.to_json()["quotes"][0]
    assert shown == {"n": first.n, "text": first.text, "path": str(docs["pdf"]), "page": 3,
                     "span": [first.start, first.end]}
    record = indexed[0].audit.records()[-1]["data"]
    assert record["quotes"][0] == {"n": first.n, "chunk_id": by_n[first.n].hit.chunk.id,
                                   "span": [first.start, first.end]}


def test_a_quote_from_the_middle_of_a_page_is_placed_on_the_page_and_follows_identifiers(embedder) -> None:
    page = ("Introduction. This guide explains how the server is started and stopped.\n\n"
            "Running the server. The server reads its settings from server.toml at start-up. "
            "It listens on port 8080 unless the --port option names another one. "
            "Logs are written to the journal.\n\nStopping. Press Ctrl+C to stop it.")
    start = page.index("Running")
    end = page.index("Stopping") - 2
    chunk = StoredChunk(id="c1", ordinal=1, page=None, label=None, start=start, end=end, heading=None,
                        text=page[start:end], text_hash=text_hash(page[start:end]), file_id=1, path="/docs/guide.md")
    source = Source(1, Hit(chunk, 1.0, vector=embedder.encode([chunk.text])[0]))
    quotes = support.supporting_quotes("Which option changes the port?", "Use --port [1].",
                                       [Citation(1, source, False)], embedder.encode)
    assert len(quotes) == 1
    quote = quotes[0]
    assert "--port option" in quote.text
    assert page[quote.start:quote.end] == quote.text
    # No citations: the top source is quoted.
    assert support.supporting_quotes("Where are the settings read from?", "From a file.", [], embedder.encode,
                                     sources=[source])[0].text.startswith("The server reads its settings")


def test_a_sentence_the_sources_do_not_say_is_listed_unsupported(storm, embedder) -> None:
    n = _page3_source(storm).n
    checks = support.check_sentences(
        f"The lighthouse keepers recorded 17 storm warnings during the winter [{n}]. "
        f"The cooperative sold its lighthouse to a private airline in 1990 [{n}].\n"
        "- During the winter the keepers logged seventeen storm warnings.",
        storm.sources, embedder.encode)
    assert [c.supported for c in checks] == [True, False, True]
    assert checks[0].sources == (n,) and checks[1].sources == ()
    assert checks[1].text == "The cooperative sold its lighthouse to a private airline in 1990."
    assert checks[2].text == "During the winter the keepers logged seventeen storm warnings.", "bullets are unmarked"


def test_an_answer_mostly_not_in_the_documents_leads_with_the_quote(storm, embedder) -> None:
    source = _page3_source(storm)
    wrong = Answer(STORM, f"The keepers painted every tower bright green [{source.n}]. "
                          f"Visitors may climb the stairs on Sundays after noon [{source.n}].",
                   False, storm.sources, [Citation(source.n, source, False)], "m", {})
    support.back_up(wrong, embedder.encode)
    assert wrong.wording_unsupported
    assert len(wrong.unsupported) == 2
    assert "17 storm warnings" in wrong.quotes[0].text
    data = wrong.snapshot()
    assert data["wording_unsupported"] is True and data["unsupported"] == wrong.unsupported
    assert [s["supported"] for s in data["sentences"]] == [False, False]
    right = Answer(STORM, f"The keepers recorded 17 storm warnings during the winter [{source.n}].",
                   False, storm.sources, [Citation(source.n, source, False)], "m", {})
    support.back_up(right, embedder.encode)
    assert not right.wording_unsupported and right.unsupported == [] and right.quotes


def test_a_decline_says_what_was_searched_and_shows_the_nearest_passages(indexed) -> None:
    lib, _ = indexed
    question = "What is the boiling point of mercury in kelvin?"
    answer = lib.answerer.ask(question, sampling=GREEDY)
    assert answer.declined
    data = answer.to_json()
    searched = data["searched"]
    assert (searched["query"], searched["mode"], searched["scope"]) == (question, "hybrid", None)
    assert 1 <= len(data["nearest"]) <= 3
    assert all({"path", "page", "text", "score"} <= set(h) for h in data["nearest"])
    assert data["quotes"] == [] and data["unsupported"] == []
    record = lib.audit.records()[-1]["data"]
    assert record["declined"] and record["searched"] == data["searched"]


@pytest.mark.parametrize("text, kept", [
    ("The port is 8080 [1]. It can be changed.\n\n- Use the --port option to set it\n"
     "- Use the --port option to set it\n- Use the --port option to set it",
     "The port is 8080 [1]. It can be changed.\n\n- Use the --port option to set it"),
    ("1. Keep the lamp clean and bright.\n2. Keep the lamp clean and bright.",
     "1. Keep the lamp clean and bright."),
    ("It starts the daemon and then " * 4,
     "It starts the daemon and then"),
    ("The lamp is bright. The lamp is bright [2]. More.", "The lamp is bright."),
])
def test_a_repeating_text_is_cut_before_the_repeat(text: str, kept: str) -> None:
    assert support.cut_repetition(text) == kept


def test_a_text_without_repeats_is_left_alone() -> None:
    assert support.cut_repetition("Set the port. Then set the host.\n```\nrun()\nrun()\nrun()\n```") is None
    assert support.cut_repetition("Yes.\nYes.\nYes.") is None, "too short to be a loop"


def test_a_generation_that_repeats_a_line_is_cut(chat_model) -> None:
    # Greedy, without a repeat penalty, the bundled model writes a list whose
    # last bullet comes back again and again.
    prompt = chat_model.render([{"role": "user", "content": "List the rules of the lighthouse as bullet points."}])
    shown: list[str] = []
    out = generate(chat_model, prompt, Sampling(max_tokens=120, temperature=0.0, repeat_penalty=1.0),
                   started=time.perf_counter(), on_token=shown.append)
    streamed = "".join(shown).strip()
    assert out.repeated and support.cut_repetition(streamed) == out.text
    kept = [support._unit_key(line) for line in out.text.splitlines() if line.strip()]
    assert len(kept) >= 2 and len(set(kept)) == len(kept), "the answer keeps each line once"
    extra = [support._unit_key(line) for line in streamed[len(out.text):].splitlines() if line.strip()]
    assert extra == [kept[-1]], "generation stopped as soon as a line came back"
    assert out.raw.strip() == out.text, "a follow-up's prompt holds no repeat either"
