"""``--otlp URL``: spans and metrics reach a real OTLP/HTTP receiver (issue #16).

The receiver runs in the test, on loopback: an HTTP server that decodes each
request body with the OTLP protobuf definitions (``opentelemetry-proto``),
as a collector would.
"""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from app import telemetry
from app.cli import run
from app.telemetry import names
from tests import corpus

QUESTION = "How many storm warnings did the lighthouse keepers record?"
CHAT_SPAN = "chat SmolLM2-135M-Instruct.Q4_1.gguf"
EMBED_SPAN = "embeddings all-MiniLM-L6-v2"


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


@dataclass
class Span:
    """A span as the receiver decoded it."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    attributes: dict[str, Any]
    events: list[str]
    resource: dict[str, Any]
    start_ns: int
    end_ns: int


@dataclass
class Received:
    """Everything the receiver was sent."""

    spans: list[Span] = field(default_factory=list)
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> data points' attributes
    metric_resources: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_traces(self, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        with self.lock:
            for rs in request.resource_spans:
                resource = _attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(Span(
                            s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex() or None, s.name,
                            _attributes(s.attributes), [e.name for e in s.events], resource,
                            s.start_time_unix_nano, s.end_time_unix_nano))

    def take_metrics(self, body: bytes) -> None:
        request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
        with self.lock:
            for rm in request.resource_metrics:
                self.metric_resources.append(_attributes(rm.resource.attributes))
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        data = getattr(m, m.WhichOneof("data"))
                        points = self.metrics.setdefault(m.name, [])
                        for p in data.data_points:
                            point = {"attributes": _attributes(p.attributes)}
                            if hasattr(p, "count"):
                                point["count"], point["sum"] = p.count, p.sum
                            else:
                                point["value"] = p.as_int or p.as_double
                            points.append(point)


def _handler(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with received.lock:
                received.paths.append(self.path)
            if self.path == "/v1/traces":
                received.take_traces(body)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            elif self.path == "/v1/metrics":
                received.take_metrics(body)
                reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:  # quiet
            pass

    return Handler


@pytest.fixture()
def receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver on 127.0.0.1 (a free port); yields (url, what it got)."""
    received = Received()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(received))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def no_leftover_providers() -> Iterator[None]:
    telemetry.shutdown()
    yield
    telemetry.shutdown()


def docent(data: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run(["--data-dir", str(data), *args], out=out)
    return code, out.getvalue()


def _traces(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out


def _children(spans: list[Span]) -> tuple[Span, dict[str, list[str]]]:
    ids = {s.span_id: s for s in spans}
    roots = [s for s in spans if s.parent_id is None]
    assert len(roots) == 1, [s.name for s in roots]
    children: dict[str, list[str]] = {}
    for s in sorted(spans, key=lambda s: s.start_ns):
        if s.parent_id is not None:
            assert s.parent_id in ids, f"{s.name}'s parent never arrived"
            children.setdefault(ids[s.parent_id].name, []).append(s.name)
    return roots[0], children


def test_an_ingest_and_a_question_reach_an_otlp_receiver(receiver: tuple[str, Received], tmp_path: Path) -> None:
    url, received = receiver
    docs = tmp_path / "docs"
    corpus.make_library(docs)
    data = tmp_path / "data"

    code, _ = docent(data, "ingest", str(docs), "--otlp", url)
    assert code == 0
    ingested = list(received.spans)
    files = {}
    for members in _traces(ingested).values():
        root, children = _children(members)
        assert root.name == "index_file" and root.attributes[names.KIND] == "index"
        assert root.attributes[names.OUTCOME] == "ok" and root.attributes[names.CHUNKS] > 0
        assert children["index_file"][0] == "read"
        assert {EMBED_SPAN, "store"} <= set(children["index_file"])
        files[root.attributes[names.LABEL]] = root
    assert set(files) == {"lighthouse-report.pdf", "beekeeping.docx", "sourdough.md", "bicycle.txt",
                          "orchids.html"}
    assert received.metrics[names.M_INGEST_FILES]  # the command's metrics are sent when it ends

    received.spans.clear()
    received.metrics.clear()
    code, out = docent(data, "ask", QUESTION, "--max-tokens", "40", "--otlp", url + "/")
    assert code == 0 and "lighthouse-report.pdf" in out
    traces = _traces(received.spans)
    assert len(traces) == 1
    [spans] = traces.values()
    root, children = _children(spans)
    assert root.name == "answer" and root.attributes[names.KIND] == "answer"
    assert children["answer"] == ["retrieval", "relevance", "answer cache", "load model", "prompt", CHAT_SPAN,
                                  "citation", "answer cache", "audit"]
    assert children["retrieval"] == [EMBED_SPAN, "vector_search", "keyword_search", "fusion"]
    chat = next(s for s in spans if s.name == CHAT_SPAN)
    a = chat.attributes
    assert a[names.OPERATION] == "chat" and a[names.REQUEST_MODEL] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert a[names.MAX_TOKENS] == 40 and names.TEMPERATURE in a and names.TOP_P in a and names.TOP_K in a
    assert a[names.INPUT_TOKENS] > 50 and 0 < a[names.OUTPUT_TOKENS] <= 40
    assert a[names.FINISH_REASONS] in (["stop"], ["length"])
    assert chat.events == ["first_token"]
    assert next(s for s in spans if s.name == "retrieval").attributes[names.OPERATION] == "retrieval"
    for s in spans:
        assert s.resource["service.name"] == "docent"
        assert QUESTION not in repr(s.attributes)  # content recording is off by default

    # The GenAI metrics, sent when the command ends.
    assert {"service.name": "docent"}.items() <= received.metric_resources[-1].items()
    usage = received.metrics[names.M_TOKEN_USAGE]
    by_type = {p["attributes"][names.TOKEN_TYPE]: p for p in usage}
    assert by_type["input"]["sum"] == a[names.INPUT_TOKENS]
    assert by_type["output"]["sum"] == a[names.OUTPUT_TOKENS]
    assert by_type["output"]["attributes"][names.REQUEST_MODEL] == a[names.REQUEST_MODEL]
    [ttft] = received.metrics[names.M_TTFT]
    assert ttft["count"] == 1 and ttft["sum"] > 0
    assert set(received.paths) == {"/v1/traces", "/v1/metrics"}


def test_an_endpoint_that_is_not_a_url_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = docent(tmp_path / "data", "ask", "anything", "--otlp", "collector:4318")
    assert code == 2
    assert "collector:4318" in capsys.readouterr().err


def test_a_receiver_that_is_down_costs_the_spans_not_the_answer(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    docs = tmp_path / "docs"
    corpus.make_library(docs)
    data = tmp_path / "data"
    assert docent(data, "ingest", str(docs))[0] == 0
    code, out = docent(data, "ask", QUESTION, "--max-tokens", "20", "--otlp", f"http://127.0.0.1:{port}")
    assert code == 0 and "lighthouse-report.pdf" in out
