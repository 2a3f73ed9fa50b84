"""Tracing: what ``docent ingest/ask --trace FILE`` writes, and what the
activity store keeps (issue #16).

One ingest and one question are run once for the module (real models, a
small real library with a corrupt PDF in it) through the real command line;
the tests then read the span file and the activity store as a user (or their
collector) would.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app import telemetry
from app.cli import run
from app.config import DataPaths, Settings
from app.core.stores.activity import ActivityStore
from app.telemetry import names
from tests import corpus

QUESTION = "How many storm warnings did the lighthouse keepers record?"
CHAT_SPAN = "chat SmolLM2-135M-Instruct.Q4_1.gguf"
EMBED_SPAN = "embeddings all-MiniLM-L6-v2"


@pytest.fixture(autouse=True)
def no_leftover_providers() -> Iterator[None]:
    """Each test starts and ends with tracing off (no provider leaks between tests)."""
    telemetry.shutdown()
    yield
    telemetry.shutdown()


@dataclass
class Traced:
    """What the module's commands left behind."""

    data: Path
    docs: Path
    ingest_file: Path
    ask_file: Path
    answer_text: str

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.data)


def docent(data: Path, *args: str) -> tuple[int, str]:
    """Run one ``docent`` command in this process; (exit code, what it printed)."""
    out = io.StringIO()
    code = run(["--data-dir", str(data), *args], out=out)
    return code, out.getvalue()


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Every span of a JSON-lines span file (OpenTelemetry's JSON form)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def by_trace(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        traces.setdefault(s["context"]["trace_id"], []).append(s)
    return traces


def tree(spans: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The trace's root span, and each span's children's names (in start
    order) by parent name; every span's parent must be in the same trace."""
    ids = {s["context"]["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert len(roots) == 1, [s["name"] for s in roots]
    children: dict[str, list[str]] = {}
    for s in sorted(spans, key=lambda s: s["start_time"]):  # ISO times, all UTC: they sort as text
        if s["parent_id"] is not None:
            assert s["parent_id"] in ids, f"{s['name']}'s parent is not in its trace"
            children.setdefault(ids[s["parent_id"]]["name"], []).append(s["name"])
    return roots[0], children


def named(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, (name, [s["name"] for s in spans])
    return found[0]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    root = tmp_path_factory.mktemp("traced")
    docs = root / "docs"
    corpus.make_library(docs)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 2)
    data = root / "data"
    ingest_file, ask_file = root / "ingest.jsonl", root / "ask.jsonl"
    code, out = docent(data, "ingest", str(docs), "--json", "--trace", str(ingest_file))
    report = json.loads(out)
    assert code == 0 and report["indexed"] == 5  # broken.pdf failed; the others are indexed
    assert [f["path"] for f in report["failed"]] == [str(docs / "broken.pdf")]
    assert not telemetry.is_configured()  # the command stopped its tracing when it ended
    code, out = docent(data, "ask", QUESTION, "--max-tokens", "40", "--trace", str(ask_file))
    assert code == 0 and "lighthouse-report.pdf" in out
    yield Traced(data, docs, ingest_file, ask_file, out)
    telemetry.shutdown()


def test_a_question_is_one_trace_nested_as_described(traced: Traced) -> None:
    spans = read_spans(traced.ask_file)
    traces = by_trace(spans)
    assert len(traces) == 1
    root, children = tree(spans)
    assert root["name"] == "answer"
    assert root["attributes"][names.KIND] == "answer" and root["attributes"][names.OUTCOME] == "ok"
    assert children["answer"] == ["retrieval", "relevance", "answer cache", "load model", "prompt", CHAT_SPAN,
                                  "citation", "answer cache", "audit"]
    assert children["retrieval"] == [EMBED_SPAN, "vector_search", "keyword_search", "fusion"]  # no reranker set
    # Leaves ("answer cache": looked up, missed; then the new answer stored).
    assert not ({"relevance", "answer cache", "prompt", CHAT_SPAN, "citation", "audit", EMBED_SPAN} & set(children))
    # Children start after, and end before, their parent.
    ids = {s["context"]["span_id"]: s for s in spans}
    for s in spans:
        if s["parent_id"]:
            parent = ids[s["parent_id"]]
            assert parent["start_time"] <= s["start_time"] <= s["end_time"] <= parent["end_time"], s["name"]
    assert all(s["resource"]["attributes"]["service.name"] == "docent" for s in spans)


def test_the_model_call_carries_the_genai_attributes(traced: Traced) -> None:
    spans = read_spans(traced.ask_file)
    chat = named(spans, CHAT_SPAN)
    a = chat["attributes"]
    assert a[names.OPERATION] == "chat"
    assert a[names.REQUEST_MODEL] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert a[names.SYSTEM] == "llama.cpp"
    settings = Settings()
    assert a[names.TEMPERATURE] == settings.temperature and a[names.TOP_P] == settings.top_p
    assert a[names.TOP_K] == settings.top_k and a[names.MAX_TOKENS] == 40
    assert a[names.INPUT_TOKENS] > 50 and 0 < a[names.OUTPUT_TOKENS] <= 40
    assert a[names.FINISH_REASONS] in (["stop"], ["length"])
    [event] = chat["events"]
    assert event["name"] == "first_token" and event["attributes"][names.TTFT_MS] > 0
    assert chat["start_time"] <= event["timestamp"] <= chat["end_time"]
    retrieval = named(spans, "retrieval")
    assert retrieval["attributes"][names.OPERATION] == "retrieval"
    embed = named(spans, EMBED_SPAN)
    assert embed["attributes"][names.OPERATION] == "embeddings"
    assert embed["attributes"][names.REQUEST_MODEL] == "all-MiniLM-L6-v2"
    answer = named(spans, "answer")["attributes"]
    # The operation's summary (the Activity panel's figures) agrees with the model call.
    assert answer[names.INPUT_TOKENS] == a[names.INPUT_TOKENS]
    assert answer[names.OUTPUT_TOKENS] == a[names.OUTPUT_TOKENS]
    assert answer[names.TTFT_MS] > 0 and answer[names.RETRIEVAL_MS] > 0


def _words_of_the_answer(printed: str) -> str:
    """The answer's first line as printed (the model's own words)."""
    return printed.strip().splitlines()[0].strip()


def test_no_question_or_answer_text_is_recorded_by_default(traced: Traced) -> None:
    text = traced.ask_file.read_text(encoding="utf-8")
    assert QUESTION not in text and "storm warnings" not in text
    assert _words_of_the_answer(traced.answer_text) not in text
    for key in (names.QUESTION, names.PROMPT, names.COMPLETION):
        assert key not in text
    # The activity store (the Activity panel) holds no more than the file.
    with closing(ActivityStore(traced.paths.activity, readonly=True)) as store:
        [op] = store.operations(kind="answer")
        stored = json.dumps([r.attributes for r in store.spans(op.trace_id)]) + json.dumps(op.attributes)
    assert "storm" not in stored and op.label == "question"


def test_content_recording_puts_the_question_prompt_and_answer_on_spans(traced: Traced, tmp_path: Path) -> None:
    paths = traced.paths
    before = paths.settings.read_text(encoding="utf-8") if paths.settings.exists() else None
    settings = Settings.load(paths.settings)
    settings.trace_content = True
    settings.save(paths.settings)
    try:
        out_file = tmp_path / "content.jsonl"
        # --no-cache: the module asked this question already, and the model's spans are the point.
        code, out = docent(traced.data, "ask", QUESTION, "--max-tokens", "40", "--no-cache",
                           "--trace", str(out_file))
        assert code == 0
    finally:
        if before is None:
            paths.settings.unlink()
        else:
            paths.settings.write_text(before, encoding="utf-8")
    spans = read_spans(out_file)
    assert named(spans, "answer")["attributes"][names.QUESTION] == QUESTION
    chat = named(spans, CHAT_SPAN)["attributes"]
    assert QUESTION in chat[names.PROMPT]
    assert chat[names.COMPLETION].strip()
    assert chat[names.COMPLETION].split()[0] in out


def test_each_indexed_file_is_one_trace_and_a_corrupt_pdf_fails_alone(traced: Traced) -> None:
    spans = read_spans(traced.ingest_file)
    traces = by_trace(spans)
    files: dict[str, dict[str, Any]] = {}
    for members in traces.values():
        root, children = tree(members)
        assert root["name"] == "index_file" and root["attributes"][names.KIND] == "index"
        files[root["attributes"][names.LABEL]] = {"root": root, "children": children.get("index_file", []),
                                                  "spans": members}
    assert set(files) == {"lighthouse-report.pdf", "beekeeping.docx", "sourdough.md", "bicycle.txt",
                          "orchids.html", "broken.pdf"}
    for name, f in files.items():
        a = f["root"]["attributes"]
        if name == "broken.pdf":
            continue
        assert a[names.OUTCOME] == "ok", name
        assert f["children"][0] == "read", name
        assert EMBED_SPAN in f["children"] and "store" in f["children"], name
        # "chunk" appears only when the reader did not chunk the file itself.
        assert set(f["children"]) <= {"read", "chunk", EMBED_SPAN, "store"}, name
        store_span = named(f["spans"], "store")
        embed = named(f["spans"], EMBED_SPAN)
        assert a[names.CHUNKS] > 0
        assert store_span["attributes"][names.CHUNKS] == embed["attributes"][names.CHUNKS] == a[names.CHUNKS]
    assert files["lighthouse-report.pdf"]["root"]["attributes"][names.CHUNKS] == 4  # one per page
    read = named(files["lighthouse-report.pdf"]["spans"], "read")
    assert read["attributes"][names.PAGES] == 4
    broken = files["broken.pdf"]
    assert broken["root"]["attributes"][names.OUTCOME] == "failed"
    assert broken["root"]["attributes"][names.CHUNKS] == 0
    assert broken["children"] == ["read"]
    assert named(broken["spans"], "read")["status"]["status_code"] == "ERROR"


def test_the_activity_store_lists_the_operations_with_their_waterfalls(traced: Traced) -> None:
    with closing(ActivityStore(traced.paths.activity, readonly=True)) as store:
        indexed = store.operations(kind="index")
        answers = store.operations(kind="answer")
        assert {op.label: op.outcome for op in indexed} == {
            "lighthouse-report.pdf": "ok", "beekeeping.docx": "ok", "sourdough.md": "ok", "bicycle.txt": "ok",
            "orchids.html": "ok", "broken.pdf": "failed"}
        assert sum(op.chunks or 0 for op in indexed) == 8
        # The ask of the module (the content test may add one more).
        asked_trace = read_spans(traced.ask_file)[0]["context"]["trace_id"].removeprefix("0x")
        asked = [op for op in answers if op.trace_id == asked_trace]
        assert len(asked) == 1
        op = asked[0]
        assert op.outcome == "ok" and op.ttft_ms and op.ttft_ms > 0 and op.retrieval_ms and op.tokens_per_s
        assert op.duration_ms >= op.ttft_ms
        waterfall = store.spans(op.trace_id)
        assert store.operation(op.trace_id) == op
    file_spans = read_spans(traced.ask_file)
    assert sorted(r.name for r in waterfall) == sorted(s["name"] for s in file_spans)
    assert waterfall[0].name == "answer" and waterfall[0].parent_id is None
    ids = {r.span_id: r for r in waterfall}
    assert {ids[r.parent_id].name for r in waterfall if r.parent_id} == {"answer", "retrieval"}
    chat = next(r for r in waterfall if r.name == CHAT_SPAN)
    assert chat.attributes[names.OUTPUT_TOKENS] > 0 and [e["name"] for e in chat.events] == ["first_token"]
    assert [r.start_ns for r in waterfall] == sorted(r.start_ns for r in waterfall)


def test_the_span_file_rotates_at_its_size_and_keeps_a_few(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from app.telemetry.jsonl import JsonLinesExporter

    path = tmp_path / "traces" / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(path, max_bytes=4000, keep=2)))
    tracer = provider.get_tracer("test")
    for i in range(60):
        with tracer.start_as_current_span(f"step {i}"):
            pass
    provider.shutdown()
    rotated = sorted(p.name for p in path.parent.iterdir())
    assert rotated == ["spans.jsonl", "spans.jsonl.1", "spans.jsonl.2"]
    lines = {p.name: read_spans(p) for p in path.parent.iterdir()}
    largest_line = max(len(json.dumps(s)) + 1 for spans in lines.values() for s in spans)
    for name, spans in lines.items():
        assert (path.parent / name).stat().st_size < 4000 + largest_line + 64, name
    # Newest in spans.jsonl, older in .1, oldest kept in .2; the rest are gone.
    order = [int(s["name"].split()[1]) for name in ("spans.jsonl.2", "spans.jsonl.1", "spans.jsonl")
             for s in lines[name]]
    assert order == sorted(order) and order[-1] == 59 and order[0] > 0
    assert order == list(range(order[0], 60))
