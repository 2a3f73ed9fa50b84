"""The local API over real HTTP: the official OpenAI client and plain requests
against a real server on a free loopback port, over a real library with the
bundled models."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from app.core.library import Library
from app.core.stores.audit import AuditLog
from app.service.engine import Service
from app.service.runner import ServerThread
from tests import corpus

QUESTION = "How many storm warnings did the lighthouse keepers record?"


@dataclass
class Served:
    service: Service
    server: ServerThread
    secret: str
    docs: dict[str, Path]
    other: Path
    lib: Library

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, secret: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret or self.secret}"}

    def client(self, secret: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=secret or self.secret, max_retries=0, timeout=300)

    def post(self, path: str, body: object, secret: str | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers(secret), timeout=300)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder, chat_model) -> Iterator[Served]:
    """One server over a library of the test documents plus a second folder
    of notes (for a key that may read only that folder)."""
    root = tmp_path_factory.mktemp("service")
    docs = corpus.make_library(root / "docs")
    other = root / "notes"
    other.mkdir()
    (other / "garden.md").write_text(
        "# Garden notes\n\nThe tomatoes in the greenhouse ripened in late July. "
        "We planted twelve apple trees along the southern wall.\n", encoding="utf-8")
    lib = Library(root / "data", purpose="tests")
    lib.use_embedder(embedder)
    lib.use_model(chat_model)
    lib.indexer.ingest([root / "docs", other])
    service = Service(lib)
    _, secret = service.keys.create("alice")
    service.load()
    assert service.state == "ready", service.problem
    server = ServerThread(service).start()
    yield Served(service, server, secret, docs, other, lib)
    server.stop()
    service.close()
    lib.close()


def _audit(served: Served, event: str) -> list[dict]:
    return [r for r in served.lib.audit.records() if r["event"] == event]


# --- OpenAI-compatible routes, with the official client -------------------------------


def test_the_openai_client_gets_an_answer_from_the_library_with_its_sources(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model="docent", messages=[{"role": "user", "content": QUESTION}], max_tokens=40, temperature=0)
    text = reply.choices[0].message.content
    assert "17" in text
    assert reply.choices[0].finish_reason == "stop"
    # The extension field the client exposes: the sources, and which page each citation is on.
    extra = reply.model_extra["docent"]
    assert extra["answer"] == text and not extra["declined"]
    assert {"n", "path", "page", "text", "score", "chunk_id"} <= set(extra["sources"][0])
    cited = {(c["path"], c["page"]) for c in extra["citations"]}
    assert (str(served.docs["pdf"]), 3) in cited
    assert all("inferred" in c for c in extra["citations"])
    assert reply.usage.completion_tokens >= 1 and reply.usage.prompt_tokens > 50


def test_a_streamed_answer_sends_its_sources_in_the_last_chunk(served: Served) -> None:
    stream = served.client().chat.completions.create(
        model="docent", messages=[{"role": "user", "content": "What did the cooperative's revenue grow to?"}],
        max_tokens=40, temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "4.2" in streamed
    last = [c for c in chunks if c.choices][-1]
    assert last.choices[0].finish_reason == "stop"
    sources = last.model_extra["docent"]["sources"]
    assert any(s["path"] == str(served.docs["pdf"]) and s["page"] == 2 for s in sources)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    # Only the last chunk carries them: the others are plain OpenAI chunks.
    assert all("docent" not in (c.model_extra or {}) for c in chunks if c is not last)


def test_earlier_messages_are_the_conversation_a_follow_up_is_searched_with(served: Served) -> None:
    follow_up = "And what did they convert it to?"
    served.client().chat.completions.create(model="docent", max_tokens=20, messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "They recorded 17 storm warnings [1]."},
        {"role": "user", "content": follow_up}])
    asked = [r["data"] for r in _audit(served, "ask") if r["data"]["question"] == follow_up][-1]
    assert QUESTION in asked["search_query"]


def test_ask_streams_its_tokens_then_the_answer(served: Served) -> None:
    with httpx.stream("POST", served.url + "/v1/ask", headers=served.headers(), timeout=300,
                      json={"question": QUESTION, "max_tokens": 30, "temperature": 0, "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert lines[-1] == "data: [DONE]"
    assert [e for e in events if "token" in e] and "17" in events[-1]["answer"]
    assert events[-1]["sources"][0]["path"] == str(served.docs["pdf"])


def test_another_model_name_is_plain_chat_without_documents(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=served.service.chat_model_name, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert reply.choices[0].message.content.strip()
    assert "docent" not in (reply.model_extra or {})
    record = _audit(served, "generate")[-1]["data"]
    assert record["kind"] == "chat" and record["client"]["key"] == "alice"


def test_an_unknown_model_is_refused_in_the_openai_error_shape(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        served.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    error = caught.value.body
    assert error["code"] == "model_not_found" and "'docent'" in error["message"]


def test_models_lists_the_library_the_chat_model_and_the_embedder(served: Served) -> None:
    ids = [m.id for m in served.client().models.list().data]
    assert ids == ["docent", served.service.chat_model_name, "all-MiniLM-L6-v2"]


def test_embeddings_equal_encoding_in_process(served: Served, embedder) -> None:
    texts = ["The lighthouse keepers recorded storm warnings.", "Revenue grew to 4.2 million euros.", "é ü 漢字"]
    # The official client asks for base64 and decodes it itself.
    reply = served.client().embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    local = embedder.encode(texts)
    for row, want in zip(reply.data, local):
        got = np.asarray(row.embedding, dtype=np.float32)
        assert float(np.dot(got, want) / (np.linalg.norm(got) * np.linalg.norm(want))) >= 0.9999
    assert reply.usage.prompt_tokens == sum(len(embedder.token_spans(t)) for t in texts)
    # Floats, asked for plainly, are the same vectors as base64.
    plain = served.post("/v1/embeddings", {"input": texts[0], "encoding_format": "float"}).json()
    packed = served.post("/v1/embeddings", {"input": texts[0], "encoding_format": "base64"}).json()
    unpacked = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(unpacked, np.asarray(plain["data"][0]["embedding"]), atol=1e-7)


def test_sampling_settings_and_stop_strings_are_honoured(served: Served) -> None:
    reply = served.client().completions.create(
        model=served.service.chat_model_name, prompt="Monday, Tuesday, Wednesday,", max_tokens=12,
        temperature=0, extra_body={"top_k": 1})
    # Greedy decoding continues the same way each time; a stop string cuts it short.
    unstopped = reply.choices[0].text
    word = unstopped.split()[1]
    stopped = served.client().completions.create(
        model=served.service.chat_model_name, prompt="Monday, Tuesday, Wednesday,", max_tokens=12,
        temperature=0, stop=[word], extra_body={"top_k": 1}).choices[0]
    assert stopped.text == unstopped[:unstopped.index(word)] and stopped.finish_reason == "stop"
    sampling = _audit(served, "generate")[-1]["data"]["sampling"]
    assert sampling["top_k"] == 1 and sampling["temperature"] == 0 and sampling["stop"] == [word]
    capped = served.client().completions.create(
        model=served.service.chat_model_name, prompt="1, 2, 3, 4, 5,", max_tokens=3, temperature=0)
    assert capped.usage.completion_tokens == 3 and capped.choices[0].finish_reason == "length"


# --- Docent's simple routes ---------------------------------------------------------


def test_generate_and_embed_for_scripts(served: Served, embedder) -> None:
    done = served.post("/generate", {"prompt": "The sea is", "max_tokens": 5, "temperature": 0}).json()
    assert done["text"] and done["tokens"]["completion"] <= 5 and done["model"] == served.service.chat_model_name
    with httpx.stream("POST", served.url + "/generate", headers=served.headers(), timeout=300,
                      json={"prompt": "The sea is", "max_tokens": 5, "temperature": 0, "stream": True}) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert "".join(e["token"] for e in events if "token" in e) == events[-1]["text"] == done["text"]
    vectors = served.post("/embed", {"texts": ["storm warnings", "ferry service"]}).json()
    assert vectors["dim"] == 384
    assert np.allclose(np.asarray(vectors["vectors"]), embedder.encode(["storm warnings", "ferry service"]),
                       atol=1e-5)


def test_search_returns_what_docent_search_json_returns(served: Served) -> None:
    got = served.post("/v1/search", {"query": "storm warnings", "k": 3}).json()
    want = served.service.answerer.retriever.search("storm warnings", k=3).to_json()
    assert set(got) == {"query", "mode", "hits", "timings_ms"}
    assert [h["chunk_id"] for h in got["hits"]] == [h["chunk_id"] for h in want["hits"]]
    assert got["hits"][0]["path"] == str(served.docs["pdf"]) and got["hits"][0]["page"] == 3


def test_ask_returns_what_docent_ask_json_returns(served: Served) -> None:
    got = served.post("/v1/ask", {"question": QUESTION, "max_tokens": 40, "temperature": 0}).json()
    assert {"question", "answer", "declined", "sources", "citations", "model", "timings_ms"} <= set(got)
    assert got["question"] == QUESTION and "17" in got["answer"]
    declined = served.post("/v1/ask", {"question": "What is the boiling point of mercury in kelvin?"}).json()
    assert declined["declined"] and declined["nearest"]


# --- health and metrics -----------------------------------------------------------


def test_health_says_loading_until_the_models_are_ready(served: Served) -> None:
    service = Service(served.lib)
    _, secret = service.keys.create("health-check")
    server = ServerThread(service).start()
    try:
        loading = httpx.get(server.url + "/health")
        assert loading.status_code == 503 and loading.json() == {"status": "loading"}
        assert int(loading.headers["Retry-After"]) >= 1
        refused = httpx.post(server.url + "/v1/search", json={"query": "storm"},
                             headers={"Authorization": f"Bearer {secret}"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_loading"
        service.load()
        ready = httpx.get(server.url + "/health")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ok" and body["model"] == served.service.chat_model_name
        assert body["library"]["files"]["indexed"] == 6 and body["library"]["chunks"] > 0
        assert body["queue"] == {"depth": 0, "capacity": service.queue.capacity, "running": False}
    finally:
        server.stop()
        service.close()
        served.service.keys.revoke("health-check")


def test_metrics_are_prometheus_text(served: Served) -> None:
    served.client().embeddings.create(model="all-MiniLM-L6-v2", input="one sentence")
    served.post("/generate", {"prompt": "Hello", "max_tokens": 3})
    assert httpx.get(served.url + "/metrics").status_code == 401
    text = httpx.get(served.url + "/metrics", headers=served.headers()).text
    assert 'docent_requests_total{route="/v1/embeddings",status="200"}' in text
    for name in ("docent_request_seconds_bucket", "docent_time_to_first_token_seconds_count",
                 "docent_generation_tokens_per_second_count", "docent_queue_depth",
                 "docent_embedding_batch_size_bucket", "docent_ready 1.0"):
        assert name in text, name


# --- keys, scopes, limits -----------------------------------------------------------


def test_requests_without_a_valid_key_are_refused(served: Served) -> None:
    missing = httpx.get(served.url + "/v1/models")
    assert missing.status_code == 401 and "docent keys create" in missing.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        served.client("dk-not-a-key").models.list()
    _, secret = served.service.keys.create("temporary")
    assert httpx.get(served.url + "/v1/models", headers=served.headers(secret)).status_code == 200
    served.service.keys.revoke("temporary")
    revoked = httpx.get(served.url + "/v1/models", headers=served.headers(secret))
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(served.url + "/health").status_code == 200  # no key needed


def test_a_scoped_key_reads_only_its_folders(served: Served) -> None:
    _, secret = served.service.keys.create("gardener", scopes=(str(served.other),))
    hits = served.post("/v1/search", {"query": "storm warnings lighthouse"}, secret).json()["hits"]
    assert hits and all(h["path"].startswith(str(served.other)) for h in hits)
    outside = served.post("/v1/search", {"query": "storm", "scope": str(served.docs["pdf"].parent)}, secret)
    assert outside.status_code == 403 and str(served.other) in outside.json()["error"]["message"]
    with pytest.raises(openai.PermissionDeniedError):
        served.client(secret).chat.completions.create(
            model="docent", messages=[{"role": "user", "content": "Summarise lighthouse-report.pdf"}])
    answer = served.post("/v1/ask", {"question": "What did we plant along the southern wall?",
                                     "max_tokens": 30}, secret).json()
    assert all(s["path"].startswith(str(served.other)) for s in answer["sources"])
    served.service.keys.revoke("gardener")


def test_a_key_over_its_rate_limit_is_told_when_to_retry(served: Served) -> None:
    now = [0.0]
    service = Service(served.lib, clock=lambda: now[0])
    service.load()
    _, secret = service.keys.create("slow", rpm=2, tpm=60)
    server = ServerThread(service).start()
    try:
        def search() -> httpx.Response:
            return httpx.post(server.url + "/v1/search", json={"query": "ferry"},
                              headers={"Authorization": f"Bearer {secret}"})

        assert [search().status_code, search().status_code] == [200, 200]
        limited = search()
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(limited.headers["Retry-After"]) <= 30
        now[0] += 30.0  # half a minute later one request is allowed again
        assert search().status_code == 200
        too_big = httpx.post(server.url + "/embed", json={"texts": ["word " * 70]},
                             headers={"Authorization": f"Bearer {secret}"})
        assert too_big.status_code == 429 and "60 tokens per minute" in too_big.json()["error"]["message"]
        assert 'docent_rate_limited_requests_total{key="slow"} 2.0' in service.metrics.render().decode()
    finally:
        server.stop()
        service.close()
        served.service.keys.revoke("slow")


def test_a_full_queue_answers_503_with_retry_after(served: Served) -> None:
    service = Service(served.lib, queue_capacity=1)
    service.load()
    server = ServerThread(service).start()
    gate, running = threading.Event(), threading.Event()

    def hold(should_stop) -> None:
        running.set()
        gate.wait(120)

    try:
        service.queue.submit("someone", hold)
        assert running.wait(60)
        service.queue.submit("someone", lambda should_stop: None)  # the one place in the queue
        busy = httpx.post(server.url + "/generate", json={"prompt": "Hi", "max_tokens": 2},
                          headers={"Authorization": f"Bearer {served.secret}"})
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "queue_full"
        assert int(busy.headers["Retry-After"]) >= 1
        gate.set()
        done = httpx.post(server.url + "/generate", json={"prompt": "Hi", "max_tokens": 2},
                          headers={"Authorization": f"Bearer {served.secret}"}, timeout=300)
        assert done.status_code == 200
    finally:
        gate.set()
        server.stop()
        service.close()


def test_too_many_searches_at_once_are_told_when_to_retry(served: Served) -> None:
    service = Service(served.lib, max_pending=1)
    service.load()
    server = ServerThread(service).start()
    try:
        with service.gate.enter():  # one search in progress: the only place
            busy = httpx.post(server.url + "/v1/search", json={"query": "ferry"}, headers=served.headers())
            embed = httpx.post(server.url + "/embed", json={"texts": ["ferry"]}, headers=served.headers())
            health = httpx.get(server.url + "/health")
        assert busy.status_code == embed.status_code == 503
        assert busy.json()["error"]["code"] == "overloaded" and int(busy.headers["Retry-After"]) >= 1
        assert health.status_code == 200  # health checks never wait behind them
        assert httpx.post(server.url + "/v1/search", json={"query": "ferry"},
                          headers=served.headers()).status_code == 200
    finally:
        server.stop()
        service.close()


# --- bad requests ----------------------------------------------------------------


def test_bad_requests_get_a_sentence_in_the_openai_error_shape(served: Served) -> None:
    h = served.headers()
    cases = [
        # curl -d sends a form content type; the body is still read as JSON.
        (httpx.post(served.url + "/v1/chat/completions", content=b"{bad json", headers=h), 400, "not valid JSON"),
        (httpx.post(served.url + "/v1/chat/completions", json=[1, 2], headers=h), 400, "JSON object"),
        (served.post("/v1/chat/completions", {"model": "docent"}), 400, "'messages' is required"),
        (served.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                              "temperature": 7}), 400, "temperature"),
        (served.post("/v1/embeddings", {"input": ["x"] * 300}), 400, "the limit is 256"),
        (served.post("/v1/embeddings", {"input": "word " * 400}), 400, "Input 0 is"),
        (served.post("/v1/embeddings", {"input": [101, 2023]}), 400, "not token ids"),
        (served.post("/v1/embeddings", {"input": "x", "model": "text-embedding-3-small"}), 404, "all-MiniLM-L6-v2"),
        (httpx.get(served.url + "/v2/nothing", headers=h), 404, "/v2/nothing"),
        (httpx.get(served.url + "/v1/chat/completions", headers=h), 405, "GET is not allowed"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert words in error["message"], error
        assert set(error) >= {"message", "type", "code"}
        assert "Traceback" not in response.text


# --- many clients, and clients that leave -------------------------------------------


def test_32_concurrent_clients_are_answered_or_told_when_to_retry(served: Served) -> None:
    def one(i: int) -> tuple[str, int, str | None]:
        with httpx.Client(base_url=served.url, headers=served.headers(), timeout=600) as c:
            route = ("/v1/embeddings", "/v1/search", "/health", "/generate")[i % 4]
            body = {"/v1/embeddings": {"input": f"sentence number {i}"}, "/v1/search": {"query": f"ferry {i}"},
                    "/generate": {"prompt": f"Count to {i}:", "max_tokens": 4}}.get(route)
            r = c.get(route) if body is None else c.post(route, json=body)
            return route, r.status_code, r.headers.get("Retry-After")

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(32)))
    for route, status, retry in results:
        assert status == 200 or (status in (429, 503) and retry is not None), (route, status)
    answered = {route for route, status, _ in results if status == 200}
    assert answered == {"/v1/embeddings", "/v1/search", "/health", "/generate"}
    assert httpx.get(served.url + "/health").status_code == 200


def _cancelled_generation(served: Served, max_tokens: int) -> dict:
    records = [r["data"] for r in _audit(served, "generate") if r["data"]["sampling"]["max_tokens"] == max_tokens]
    assert records, "the cancelled generation was not recorded"
    return records[-1]


def test_a_client_that_disconnects_mid_stream_frees_the_model(served: Served) -> None:
    long = 1500
    with httpx.stream("POST", served.url + "/generate", headers=served.headers(), timeout=300,
                      json={"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": long, "temperature": 0,
                            "stream": True}) as r:
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
    # The stream is closed; the next request gets the model (it is not stuck behind 1,500 tokens).
    after = served.post("/generate", {"prompt": "Hello", "max_tokens": 2})
    assert after.status_code == 200
    record = _cancelled_generation(served, long)
    assert record["finish_reason"] == "cancelled" and record["completion_tokens"] < long // 2


def test_a_client_that_disconnects_while_waiting_frees_the_model(served: Served) -> None:
    long = 1400
    body = json.dumps({"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": long, "temperature": 0}).encode()
    with socket.create_connection(("127.0.0.1", served.server.port)) as sock:
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + served.secret.encode() + b"\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        # Wait until the model is working on it, then hang up.
        assert _wait_for(lambda: served.service.queue.running is not None)
    assert served.post("/generate", {"prompt": "Hello", "max_tokens": 2}).status_code == 200
    record = _cancelled_generation(served, long)
    assert record["finish_reason"] == "cancelled" and record["completion_tokens"] < long // 2


def _wait_for(condition, timeout: float = 60) -> bool:
    """Until ``condition()`` holds (True) or ``timeout`` seconds pass (False)."""
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            if condition():
                return True
            done.wait(0.01)
        return condition()
    finally:
        deadline.cancel()


# --- the record ---------------------------------------------------------------------


def test_api_requests_are_audited_with_the_key_name_never_the_secret(served: Served) -> None:
    served.client().embeddings.create(model="all-MiniLM-L6-v2", input="a private sentence about salaries")
    served.post("/v1/ask", {"question": QUESTION, "max_tokens": 20})
    records = served.lib.audit.records()
    embed = [r for r in records if r["event"] == "embed"][-1]["data"]
    assert embed["client"] == {"key": "alice", "address": "127.0.0.1"}
    assert embed["count"] == 1 and embed["text_hashes"] == [AuditLog.hash_text("a private sentence about salaries")]
    asked = [r["data"] for r in records if r["event"] in ("ask", "answer") and r["data"]["question"] == QUESTION]
    assert asked and all(d["client"]["key"] == "alice" for d in asked)
    log_text = served.lib.audit.path.read_text(encoding="utf-8")
    assert "salaries" not in log_text and served.secret not in log_text
    assert served.secret not in served.lib.paths.keys.read_text(encoding="utf-8")
    assert served.lib.audit.verify().ok


def test_each_request_is_one_trace_whose_server_span_parents_the_answer(served: Served, tmp_path: Path) -> None:
    from app import telemetry

    spans_file = tmp_path / "spans.jsonl"
    telemetry.configure(telemetry.TraceOptions(file=spans_file))
    try:
        # Not from the answer cache (an earlier test asked it): the model's spans are the point.
        asked = served.post("/v1/ask", {"question": QUESTION, "max_tokens": 20, "docent": {"cache": False}})
        embedded = served.post("/v1/embeddings", {"input": ["one", "two"]})
        assert served.post("/v1/ask", {"question": "x"}, secret="wrong").status_code == 401
        httpx.get(f"{served.url}/health")  # not traced: probes come every few seconds
        assert telemetry.force_flush()
    finally:
        telemetry.shutdown()
    assert asked.status_code == 200 and embedded.status_code == 200
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    served_spans = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    assert sorted(s["name"] for s in served_spans) == ["POST /v1/ask", "POST /v1/ask", "POST /v1/embeddings"]
    servers = {s["name"]: s for s in served_spans if s["attributes"]["http.response.status_code"] == 200}
    ask = servers["POST /v1/ask"]
    assert ask["parent_id"] is None and ask["attributes"]["http.response.status_code"] == 200
    assert ask["attributes"]["http.route"] == "/v1/ask" and ask["attributes"]["docent.client"] == "alice"
    assert ask["attributes"]["client.address"] == "127.0.0.1"
    trace_id = ask["context"]["trace_id"]
    by_id = {s["context"]["span_id"]: s for s in spans}
    answer = next(s for s in spans if s["name"] == "answer" and s["context"]["trace_id"] == trace_id)
    assert answer["parent_id"] == ask["context"]["span_id"]  # the job thread kept the request's context
    chat = next(s for s in spans if s["name"].startswith("chat ") and s["context"]["trace_id"] == trace_id)
    assert by_id[chat["parent_id"]]["name"] == "answer"
    assert chat["attributes"]["gen_ai.usage.output_tokens"] > 0
    embed = next(s for s in spans if s["name"] == "embeddings all-MiniLM-L6-v2"
                 and s["parent_id"] == servers["POST /v1/embeddings"]["context"]["span_id"])
    assert embed["attributes"]["gen_ai.operation.name"] == "embeddings" and embed["attributes"]["docent.texts"] == 2
    refused = next(s for s in spans if s["attributes"].get("http.response.status_code") == 401)
    assert refused["attributes"]["docent.outcome"] == "4xx"
    assert QUESTION not in spans_file.read_text()  # no question text unless turned on


def test_metrics_carry_the_genai_series(served: Served) -> None:
    from app import telemetry

    telemetry.configure(telemetry.TraceOptions())
    try:
        served.post("/v1/ask", {"question": QUESTION, "max_tokens": 20, "docent": {"cache": False}})
        text = httpx.get(f"{served.url}/metrics", headers=served.headers()).text
    finally:
        telemetry.shutdown()
    for name in ("gen_ai_client_token_usage", "gen_ai_server_time_to_first_token_seconds",
                 "gen_ai_client_operation_duration_seconds", "docent_retrieval_duration_seconds",
                 "docent_api_requests", "docent_requests_total"):
        assert name in text, name
    assert 'gen_ai_token_type="output"' in text


def test_a_question_asked_again_is_answered_from_the_cache_unless_told_not_to(served: Served) -> None:
    question = "How many storm warnings were recorded, and by whom?"
    first = served.post("/v1/ask", {"question": question, "max_tokens": 20}).json()
    again = served.post("/v1/ask", {"question": question, "max_tokens": 20}).json()
    assert first["cached_from"] is None
    assert again["cached_from"] is not None and again["answer"] == first["answer"]
    assert "usage" not in again  # the model wrote nothing
    fresh = served.post("/v1/ask", {"question": question, "max_tokens": 20, "docent": {"cache": False}}).json()
    assert fresh["cached_from"] is None and fresh["usage"]["completion_tokens"] > 0
    chat = served.client().chat.completions.create(
        model="docent", messages=[{"role": "user", "content": question}], max_tokens=20)
    assert chat.model_extra["docent"]["cached_from"] is not None
    assert chat.choices[0].message.content == fresh["answer"]
    uncached = served.client().chat.completions.create(
        model="docent", messages=[{"role": "user", "content": question}], max_tokens=20,
        extra_body={"docent": {"cache": False}})
    assert uncached.model_extra["docent"]["cached_from"] is None


def test_health_reports_the_checks_and_the_error_budgets(served: Served) -> None:
    body = httpx.get(f"{served.url}/health").json()
    assert body["status"] in ("ok", "degraded")
    assert body["checks"]["status"] in ("ok", "degraded", "problems")
    assert [o["objective"] for o in body["objectives"]] == ["answers", "indexing", "api"]
