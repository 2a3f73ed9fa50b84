"""Cached answers (issue #17): the same question over the same passages and
settings is answered from the answer cache at once; anything else misses.

Real models and real stores, as everywhere; the traces are read from a real
span file and the hit ratio from the real activity store.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app import telemetry
from app.cli import run
from app.config import DataPaths, Settings
from app.core import stats
from app.core.models.llm import Sampling
from app.core.stores.activity import ActivityRecorder, ActivityStore

QUESTION = "How many storm warnings did the lighthouse keepers record?"
TYRES = "What tyre pressure does the touring bike use?"
SAMPLING = Sampling(max_tokens=40, temperature=0.0)


@pytest.fixture()
def traced(tmp_path: Path, data_dir: Path) -> Iterator[Path]:
    """Spans to a JSON-lines file and the data folder's activity store."""
    spans = tmp_path / "spans.jsonl"
    telemetry.configure(telemetry.TraceOptions(file=spans, recorder=ActivityRecorder(DataPaths(data_dir).activity)))
    yield spans
    telemetry.shutdown()


@pytest.fixture()
def indexed(library, docs):
    library.indexer.ingest([docs["pdf"].parent])
    return library


def spans_of(path: Path, trace_id: str | None) -> list[dict[str, Any]]:
    """The spans of one answer's trace, from the span file."""
    assert trace_id and telemetry.force_flush()
    spans = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [s for s in spans if s["context"]["trace_id"] == f"0x{trace_id}" or s["context"]["trace_id"] == trace_id]


def answer_records(library) -> list[dict[str, Any]]:
    return [r["data"] for r in library.audit.records() if r["event"] == "answer"]


def cache_count(cache: str, hit: bool) -> float:
    """``docent.cache.requests`` for one cache and outcome, as /metrics shows it."""
    total = 0.0
    for metric in telemetry.metrics_registry().collect():
        for sample in metric.samples:
            if (sample.name == "docent_cache_requests_total" and sample.labels.get("docent_cache") == cache
                    and sample.labels.get("docent_cache_hit") == str(hit).lower()):
                total += sample.value
    return total


def cited(answer) -> list[tuple[int, str, bool]]:
    return [(c.n, c.source.hit.chunk.id, c.inferred) for c in answer.citations]


def test_the_same_question_again_is_answered_at_once_from_the_cache(indexed, traced) -> None:
    first_pieces: list[str] = []
    first = indexed.answerer.ask(QUESTION, sampling=SAMPLING, on_token=first_pieces.append)
    assert first.cached_from is None and not first.declined and first.citations
    again_pieces: list[str] = []
    again = indexed.answerer.ask(QUESTION, sampling=SAMPLING, on_token=again_pieces.append)

    # What the user sees: the same answer and sources, marked as given before, all at once.
    assert again.cached_from is not None
    assert datetime.fromisoformat(again.cached_from)
    assert again.answer == first.answer
    assert again_pieces == [first.answer]
    assert cited(again) == cited(first)
    assert [(s.n, s.hit.chunk.id) for s in again.sources] == [(s.n, s.hit.chunk.id) for s in first.sources]
    assert again.quotes == first.quotes
    assert again.to_json()["cached_from"] == again.cached_from
    assert first.to_json()["cached_from"] is None
    assert again.usage is None  # the model wrote nothing

    # The audit trail says it was a cache hit, and from when.
    records = answer_records(indexed)
    assert "cache" not in records[-2]
    assert records[-1]["cache"] == {"hit": True, "from": again.cached_from}
    assert records[-1]["answer_hash"] == records[-2]["answer_hash"]
    assert records[-1]["prompt_hash"] is None  # no prompt was sent

    # The model was neither loaded nor asked: no chat span in the second trace.
    first_spans = spans_of(traced, first.trace_id)
    again_spans = spans_of(traced, again.trace_id)
    assert any(s["name"].startswith("chat ") for s in first_spans)
    assert not any(s["name"].startswith("chat ") or s["name"] in ("load model", "prompt") for s in again_spans)
    assert "answer cache" in {s["name"] for s in again_spans}
    root = next(s for s in again_spans if s["name"] == "answer")
    assert root["attributes"]["docent.cache.hit"] is True
    assert next(s for s in first_spans if s["name"] == "answer")["attributes"]["docent.cache.hit"] is False

    # And the hit ratio is in the metrics and in `docent stats`.
    assert (cache_count("answer", True), cache_count("answer", False)) == (1, 1)
    store = ActivityStore(indexed.paths.activity, readonly=True)
    try:
        figures = stats.summarise(store, Settings())
    finally:
        store.close()
    assert figures["answers"]["cache"] == {"lookups": 2, "hits": 1, "hit_ratio": 0.5}
    out = io.StringIO()
    assert run(["--data-dir", str(indexed.paths.root), "stats"], out=out) == 0
    assert "Answer cache       2  1 answered from the cache (50% hit ratio)" in out.getvalue()


def test_changed_settings_scope_or_k_miss_and_the_original_still_hits(indexed, docs) -> None:
    base = indexed.answerer.ask(QUESTION, sampling=SAMPLING)
    assert base.cached_from is None
    other_sampling = indexed.answerer.ask(QUESTION, sampling=Sampling(max_tokens=40, temperature=0.7))
    other_length = indexed.answerer.ask(QUESTION, sampling=Sampling(max_tokens=41, temperature=0.0))
    other_k = indexed.answerer.ask(QUESTION, sampling=SAMPLING, k=2)
    other_scope = indexed.answerer.ask(QUESTION, sampling=SAMPLING, scope=str(docs["pdf"]))
    other_mode = indexed.answerer.ask(QUESTION, sampling=SAMPLING, mode="vector")
    for answer in (other_sampling, other_length, other_k, other_scope, other_mode):
        assert answer.cached_from is None
    again = indexed.answerer.ask(QUESTION, sampling=SAMPLING)
    assert again.cached_from is not None and again.answer == base.answer


def test_a_changed_document_misses(indexed, docs) -> None:
    before = indexed.answerer.ask(TYRES, sampling=SAMPLING)
    assert not before.declined and before.cached_from is None
    assert indexed.answerer.ask(TYRES, sampling=SAMPLING).cached_from is not None
    docs["txt"].write_text(
        "Bicycle maintenance log.\nThe chain was cleaned and lubricated with wax on 3 March. "
        "Tyre pressure for the touring bike is 4.2 bar at the front and 5 bar at the rear.\n",
        encoding="utf-8",
    )
    indexed.indexer.ingest([docs["txt"].parent])
    after = indexed.answerer.ask(TYRES, sampling=SAMPLING)
    assert after.cached_from is None
    assert any("4.2 bar" in s.hit.chunk.text for s in after.sources)


def test_regenerate_writes_the_answer_again_and_keeps_the_new_one(indexed) -> None:
    indexed.answerer.ask(QUESTION, sampling=SAMPLING)
    pieces: list[str] = []
    fresh = indexed.answerer.ask(QUESTION, sampling=SAMPLING, on_token=pieces.append, use_cache=False)
    assert fresh.cached_from is None
    assert fresh.usage is not None and fresh.usage["completion_tokens"] > 0  # the model wrote it
    assert "cache" not in answer_records(indexed)[-1]
    again = indexed.answerer.ask(QUESTION, sampling=SAMPLING)
    assert again.cached_from is not None and again.answer == fresh.answer


def test_a_stopped_answer_is_not_kept(indexed) -> None:
    pieces: list[str] = []
    stopped = indexed.answerer.ask(QUESTION, sampling=SAMPLING, on_token=pieces.append,
                                   should_stop=lambda: bool(pieces))
    assert stopped.stopped
    whole = indexed.answerer.ask(QUESTION, sampling=SAMPLING)
    assert whole.cached_from is None and not whole.stopped


def test_a_damaged_cache_file_never_stops_an_answer(indexed) -> None:
    first = indexed.answerer.ask(QUESTION, sampling=SAMPLING)
    cache = indexed.answer_cache
    assert cache is not None and len(cache) == 1
    cache.close()
    indexed.paths.answer_cache.write_bytes(b"this is not a database\x00" * 512)
    answer = indexed.answerer.ask(QUESTION, sampling=SAMPLING)
    assert answer.cached_from is None and answer.answer == first.answer and answer.citations
    # The cache made itself again, with this answer in it.
    assert indexed.answerer.ask(QUESTION, sampling=SAMPLING).cached_from is not None


def test_a_repeated_query_is_embedded_once(indexed, traced) -> None:
    retriever = indexed.retriever
    first = retriever.search("lighthouse storm warnings", k=3)
    again = retriever.search("lighthouse storm warnings", k=3)
    assert [h.chunk.id for h in again.hits] == [h.chunk.id for h in first.hits]
    assert [h.similarity for h in again.hits] == [h.similarity for h in first.hits]
    assert (cache_count("query_embedding", True), cache_count("query_embedding", False)) == (1, 1)


def test_ask_no_cache_and_cached_from_on_the_command_line(docent, docs) -> None:
    assert docent("ingest", str(docs["pdf"].parent)).code == 0
    args = ("ask", QUESTION, "--json", "--max-tokens", "30")
    first = docent(*args)
    assert first.code == 0, first.err
    assert first.json()["cached_from"] is None
    again = docent(*args)
    assert again.code == 0, again.err
    data = again.json()
    assert data["cached_from"] is not None and data["answer"] == first.json()["answer"]
    assert [c["chunk_id"] for c in data["citations"]] == [c["chunk_id"] for c in first.json()["citations"]]
    fresh = docent(*args, "--no-cache")
    assert fresh.code == 0, fresh.err
    assert fresh.json()["cached_from"] is None and "usage" in fresh.json()
    plain = docent("ask", QUESTION, "--max-tokens", "30")
    assert plain.code == 0 and "(Cached, from " in plain.out
