"""The local API under load: what serving over HTTP costs next to calling the
library in process, and whether a thousand clients at once are all answered.

Parts, all against this machine's loopback address (127.0.0.1) only, each
with a bounded number of requests and a time limit:

* embeddings: the same one-sentence texts posted one per request to
  ``/v1/embeddings`` by 16 concurrent clients, against a server with
  batching on and one with it off, vs the in-process embedder encoding all
  of them in one ``encode`` call (targets: >= 0.8x in-process, >= 3x
  unbatched);
* first token: the same question streamed from ``/v1/chat/completions``
  (model ``docent``) vs ``Answerer.ask`` in process, both with the chat
  model's KV cache emptied first (target: <= 1.1x);
* search: ``/v1/search`` p50/p95 under 8 concurrent clients, with one
  client, and ``retriever.search`` in process for reference;
* stress: ``docent serve`` in a subprocess (so its peak memory is its own)
  and 1,000 concurrent connections doing short requests (one-sentence
  embeddings, ``/health``, ``/v1/search``); every answer must be 200, or 429/
  503 with ``Retry-After``; the server must still answer ``/health`` after.

The in-process servers (``ServerThread``) share the bench process with
their clients; the stress server does not.

Usage: python bench/api.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

import httpx  # noqa: E402
import numpy as np  # noqa: E402

LOOPBACK = "127.0.0.1"
PYDOCS = Path("/usr/share/doc/python3.11/html/library")
# Library reference pages: prose with code, a realistic small team library.
PYDOCS_PAGES = ("json.html", "csv.html", "datetime.html", "pathlib.html", "subprocess.html",
                "sqlite3.html", "argparse.html", "logging.html")
PYDOCS_QUESTIONS = [
    "How do I parse a JSON string into a Python object?",
    "How do I read the rows of a CSV file?",
    "How do I run a command and capture its output?",
    "How do I get the current date and time?",
]
PYDOCS_QUERIES = [
    "parse JSON string", "csv DictReader fieldnames", "subprocess run capture_output", "timezone aware datetime",
    "Path glob recursive", "sqlite3 connection commit", "argparse add_argument nargs", "logging basicConfig level",
    "What does json.dumps indent do?", "How do I write rows to a CSV file?", "timeout of a child process",
    "difference between naive and aware datetime objects", "How do I create a directory with parents?",
    "How do I use placeholders in SQL queries?", "mutually exclusive command line options",
    "How do I log to a file?",
]
TESTS_QUESTIONS = [
    "How many storm warnings did the lighthouse keepers record?",
    "What do the beekeeping notes say about the hives?",
    "How long does sourdough proof?",
]
TESTS_QUERIES = [
    "storm warnings lighthouse", "beekeeping hives", "sourdough proof time", "bicycle repair",
    "orchids watering", "How long does sourdough proof?", "What did the lighthouse keepers record?",
    "How often should orchids be watered?",
]

EMBED_CLIENTS = 16
SEARCH_CLIENTS = 8
TARGETS = {"embed_vs_in_process": 0.8, "embed_vs_unbatched": 3.0, "first_token_ratio": 1.1}

_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _pct(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values``, nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _raise_open_files() -> int:
    """Lift this process's open-file limit to its hard limit (1,000 sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- corpus -------------------------------------------------------------------


def _sentences(count: int) -> list[str]:
    """``count`` distinct one-sentence texts of real prose (Python's docs), or
    made-up ones where they are not installed."""
    out: list[str] = []
    seen: set[str] = set()
    pages = sorted(PYDOCS.glob("*.html")) if PYDOCS.is_dir() else []
    for page in pages:
        raw = page.read_text(encoding="utf-8", errors="replace").split('role="main"', 1)[-1]
        text = _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", raw))).strip()
        for s in _SENTENCE_END.split(text):
            s = s.strip()
            if 40 <= len(s) <= 200 and len(s.split()) >= 6 and "¶" not in s and s not in seen:
                seen.add(s)
                out.append(s)
                if len(out) == count:
                    return out
    subjects = ("The keeper", "A beekeeper", "The baker", "Our cyclist", "The gardener")
    verbs = ("recorded", "noticed", "wrote down", "reported", "measured")
    things = ("storm warnings", "honey yields", "proofing times", "tyre pressures", "orchid blooms")
    i = 0
    while len(out) < count:
        out.append(f"{subjects[i % 5]} {verbs[i // 5 % 5]} {i + 3} {things[i // 25 % 5]} on day {i}.")
        i += 1
    return out


def _corpus(docs: Path, quick: bool) -> tuple[str, list[str], list[str]]:
    """Fill ``docs``; returns its name, questions for the model, search queries."""
    pages = [PYDOCS / p for p in PYDOCS_PAGES if (PYDOCS / p).is_file()]
    if pages and not quick:
        docs.mkdir(parents=True)
        for page in pages:
            shutil.copy(page, docs / page.name)
        return (f"{len(pages)} pages of Python's library reference (python3.11-doc)", PYDOCS_QUESTIONS,
                PYDOCS_QUERIES)
    from tests import corpus as made

    made.make_library(docs)
    return "tests' sample library", TESTS_QUESTIONS, TESTS_QUERIES


# --- embeddings -----------------------------------------------------------------


def _post_each(url: str, path: str, bodies: list[dict[str, Any]], clients: int,
               timeout: float = 120) -> tuple[float, list[float], list[httpx.Response | str]]:
    """Post every body once, ``clients`` at a time (one connection each);
    returns the wall time, each request's latency and the responses in order
    (the error's name where the connection failed instead)."""
    results: list[httpx.Response | str] = ["not sent"] * len(bodies)
    latencies: list[float] = [0.0] * len(bodies)
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        with httpx.Client(base_url=url, timeout=timeout) as http:
            http.get("/health")  # the connection is open before the clock starts
            start.wait()
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                began = time.perf_counter()
                try:
                    results[i] = http.post(path, json=bodies[i])
                except httpx.TransportError as exc:  # recorded; the client reconnects for its next one
                    results[i] = type(exc).__name__
                latencies[i] = time.perf_counter() - began

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client) for _ in range(clients)]
        start.wait()
        began = time.perf_counter()
        for f in futures:
            f.result()
        wall = time.perf_counter() - began
    return wall, latencies, results


def _failures(responses: list[httpx.Response | str]) -> Counter[str]:
    """Each answer other than 200, by status (or connection error)."""
    return Counter(f"error:{r}" if isinstance(r, str) else str(r.status_code)
                   for r in responses if isinstance(r, str) or r.status_code != 200)


def _embedding_round(url: str, texts: list[str], model: str) -> tuple[float, np.ndarray, list[int], Counter[str]]:
    """One pass over ``texts``: wall time, the vectors answered, their indexes,
    and the count of each other status (a failed request is recorded, not retried)."""
    wall, _lat, responses = _post_each(url, "/v1/embeddings", [{"input": t, "model": model} for t in texts],
                                       EMBED_CLIENTS)
    ok = [i for i, r in enumerate(responses) if not isinstance(r, str) and r.status_code == 200]
    vectors = np.array([responses[i].json()["data"][0]["embedding"] for i in ok], dtype=np.float32)  # type: ignore[union-attr]
    return wall, vectors, ok, _failures(responses)


def _batch_stats(metrics: Any) -> tuple[float, float]:
    """Texts and batches the batcher has encoded so far (from its /metrics histogram)."""
    found = {"sum": 0.0, "count": 0.0}
    for line in metrics.render().decode().splitlines():
        for key in found:
            if line.startswith(f"docent_embedding_batch_size_{key} "):
                found[key] = float(line.split()[1])
    return found["sum"], found["count"]


def bench_embeddings(batched_url: str, unbatched_url: str, embedder: Any, model: str, texts: list[str],
                     rounds: int, batched_metrics: Any) -> dict[str, Any]:
    """Texts/s through both servers vs one in-process ``encode`` call, in rotating order."""
    reference = embedder.encode(texts)  # also the warm-up: first calls allocate torch's buffers
    for url in (batched_url, unbatched_url):
        _embedding_round(url, texts[:32], model)
    # The unbatched server's ceiling: the embedder called once per text, in process.
    singles = texts[:128]
    began = time.perf_counter()
    for text in singles:
        embedder.encode([text])
    one_at_a_time = len(singles) / (time.perf_counter() - began)
    batches_before = _batch_stats(batched_metrics)
    times: dict[str, list[float]] = {"raw": [], "batched": [], "unbatched": []}
    failed: dict[str, Counter[str]] = {"batched": Counter(), "unbatched": Counter()}
    deviation = 0.0
    for r in range(rounds):
        order = ["raw", "batched", "unbatched"]
        order = order[r % 3:] + order[:r % 3]  # drift on the shared machine hits each alike
        for who in order:
            if who == "raw":
                began = time.perf_counter()
                embedder.encode(texts)
                times["raw"].append(time.perf_counter() - began)
                continue
            wall, vectors, ok, bad = _embedding_round(batched_url if who == "batched" else unbatched_url, texts, model)
            times[who].append(wall)
            failed[who] += bad
            if ok:
                deviation = max(deviation, float(np.abs(vectors - reference[ok]).max()))
    raw, batched, unbatched = (statistics.median(times[k]) for k in ("raw", "batched", "unbatched"))
    batches_after = _batch_stats(batched_metrics)
    batches = batches_after[1] - batches_before[1]
    n = len(texts)
    return {
        "texts": n, "clients": EMBED_CLIENTS, "rounds": rounds,
        "in_process_one_call_s": [round(s, 3) for s in times["raw"]],
        "api_batched_s": [round(s, 3) for s in times["batched"]],
        "api_unbatched_s": [round(s, 3) for s in times["unbatched"]],
        "in_process_texts_per_s": round(n / raw, 1),
        "api_batched_texts_per_s": round(n / batched, 1),
        "api_unbatched_texts_per_s": round(n / unbatched, 1),
        "in_process_one_text_per_call_texts_per_s": round(one_at_a_time, 1),
        "api_batched_mean_batch": round((batches_after[0] - batches_before[0]) / batches, 1) if batches else None,
        "vs_in_process": round(raw / batched, 3),
        "vs_unbatched": round(unbatched / batched, 3),
        # Batched rows are padded with other texts; a cosine-level check that the answers are the same vectors.
        "max_abs_difference_from_in_process": round(deviation, 6),
        # Requests answered with anything but 200 in the timed rounds (by status); the
        # throughput above still counts them, so it is only clean when these are empty.
        "failed_batched": dict(sorted(failed["batched"].items())),
        "failed_unbatched": dict(sorted(failed["unbatched"].items())),
    }


# --- first token ----------------------------------------------------------------


def _api_first_token(url: str, question: str, max_tokens: int) -> tuple[float | None, int | None]:
    """Seconds from sending the question to the first content chunk of the
    stream, and the prompt's tokens."""
    body = {"model": "docent", "messages": [{"role": "user", "content": question}], "stream": True,
            "temperature": 0.0, "max_tokens": max_tokens, "stream_options": {"include_usage": True},
            "docent": {"cache": False}}  # the model's first token, not a stored answer's
    first: float | None = None
    prompt_tokens: int | None = None
    with httpx.Client(base_url=url, timeout=300) as http:
        http.get("/health")  # connection open before the clock starts, as in process there is none
        began = time.perf_counter()
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                raise SystemExit(f"/v1/chat/completions answered {response.status_code}: {response.read()!r}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                choices = event.get("choices") or [{}]
                if first is None and choices[0].get("delta", {}).get("content"):
                    first = time.perf_counter() - began
                if event.get("usage"):
                    prompt_tokens = event["usage"].get("prompt_tokens")
    return first, prompt_tokens


def _in_process_first_token(service: Any, question: str, max_tokens: int) -> tuple[float | None, int | None]:
    stamps: list[float] = []
    began = time.perf_counter()
    answer = service.answerer.ask(question, sampling=service.sampling(temperature=0.0, max_tokens=max_tokens),
                                  use_cache=False, on_token=lambda _piece: stamps.append(time.perf_counter()))
    return (stamps[0] - began if stamps else None), (answer.usage or {}).get("prompt_tokens")


def bench_first_token(url: str, service: Any, questions: list[str], reps: int,
                      max_tokens: int) -> dict[str, Any]:
    """The same questions streamed through the API and asked in process, both cold."""
    model = service.library.model()
    _in_process_first_token(service, questions[0], 4)  # warm-up: llama.cpp's and torch's buffers
    _api_first_token(url, questions[0], 4)
    api: list[float] = []
    local: list[float] = []
    declined = 0
    prompt_tokens: list[int] = []
    for i, question in enumerate(q for q in questions for _ in range(reps)):
        pair: list[float | None] = []
        for who in (("api", "local") if i % 2 == 0 else ("local", "api")):
            model.forget()  # cold: an empty KV cache on both sides
            t, tokens = _api_first_token(url, question, max_tokens) if who == "api" else \
                _in_process_first_token(service, question, max_tokens)
            if tokens:
                prompt_tokens.append(tokens)
            pair.append(t)
            if t is not None:
                (api if who == "api" else local).append(t)
        declined += sum(t is None for t in pair)
    api_ms, local_ms = _ms(statistics.median(api)) if api else None, _ms(statistics.median(local)) if local else None
    return {
        "questions": len(questions), "repetitions": reps, "max_tokens": max_tokens,
        "answers_without_tokens": declined,
        "prompt_tokens_median": statistics.median(prompt_tokens) if prompt_tokens else None,
        "api_first_token_ms": [_ms(t) for t in api], "in_process_first_token_ms": [_ms(t) for t in local],
        "api_first_token_ms_median": api_ms, "in_process_first_token_ms_median": local_ms,
        "ratio": round(api_ms / local_ms, 3) if api_ms and local_ms else None,
    }


# --- search ---------------------------------------------------------------------


def bench_search(url: str, service: Any, queries: list[str], concurrent_requests: int,
                 serial_requests: int) -> dict[str, Any]:
    """/v1/search latency with 8 clients and with one, and retriever.search in process."""
    retriever = service.answerer.retriever
    for q in queries[:4]:  # warm-up
        retriever.search(q, k=5)
    local: list[float] = []
    for i in range(serial_requests):
        began = time.perf_counter()
        retriever.search(queries[i % len(queries)], k=5)
        local.append(time.perf_counter() - began)
    bodies = [{"query": queries[i % len(queries)], "k": 5} for i in range(serial_requests)]
    _, one, responses = _post_each(url, "/v1/search", bodies, 1)
    bodies = [{"query": queries[i % len(queries)], "k": 5} for i in range(concurrent_requests)]
    wall, many, more = _post_each(url, "/v1/search", bodies, SEARCH_CLIENTS)
    bad = _failures([*responses, *more])
    return {
        "clients": SEARCH_CLIENTS, "requests": concurrent_requests, "k": 5, "mode": "hybrid",
        "concurrent_p50_ms": _ms(_pct(many, 0.5)), "concurrent_p95_ms": _ms(_pct(many, 0.95)),
        "concurrent_requests_per_s": round(concurrent_requests / wall, 1),
        "one_client_requests": serial_requests,
        "one_client_p50_ms": _ms(_pct(one, 0.5)), "one_client_p95_ms": _ms(_pct(one, 0.95)),
        "in_process_p50_ms": _ms(_pct(local, 0.5)), "in_process_p95_ms": _ms(_pct(local, 0.95)),
        "failed": dict(sorted(bad.items())),  # non-200 answers (their latency is in the figures above)
    }


# --- stress -----------------------------------------------------------------------

# The server is `docent serve`, with its open-file limit lifted first.
SERVER = ("import resource, sys\n"
          "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
          "resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n"
          "from app.__main__ import main\n"
          "sys.exit(main(sys.argv[1:]))\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in KiB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _sockets(pid: int) -> int:
    n = 0
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            try:
                n += os.readlink(fd.path).startswith("socket:")
            except OSError:
                pass
    except OSError:
        pass
    return n


class _Watch:
    """Samples the server's open sockets (its concurrent connections) while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_sockets = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_sockets = max(self.peak_sockets, _sockets(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def _storm(url: str, connections: int, requests: int, texts: list[str], queries: list[str],
                 limit_s: float) -> dict[str, Any]:
    """``connections`` clients at once, ``requests`` short requests in all, within ``limit_s``."""
    kinds = ("embed", "health", "search")
    records: list[tuple[str, int | None, bool, float, str | None]] = []
    go = asyncio.Event()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(limit_s, pool=limit_s)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:

        async def client(i: int, count: int) -> None:
            await go.wait()
            for j in range(count):
                kind = kinds[(i + j) % 3]
                began = time.perf_counter()
                try:
                    if kind == "embed":
                        r = await http.post("/v1/embeddings", json={"input": texts[(i + j) % len(texts)]})
                    elif kind == "health":
                        r = await http.get("/health")
                    else:
                        r = await http.post("/v1/search", json={"query": queries[(i + j) % len(queries)], "k": 5})
                except httpx.HTTPError as exc:
                    records.append((kind, None, False, time.perf_counter() - began, type(exc).__name__))
                    continue
                records.append((kind, r.status_code, "retry-after" in r.headers, time.perf_counter() - began,
                                None))

        per, extra = divmod(requests, connections)
        tasks = [asyncio.create_task(client(i, per + (i < extra))) for i in range(connections)]
        await asyncio.sleep(0.1)  # every client is waiting on the start line
        began = time.perf_counter()
        go.set()
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), limit_s)
        except asyncio.TimeoutError:
            timed_out = True
        wall = time.perf_counter() - began
    statuses = Counter(str(s) if s is not None else f"error:{e}" for _k, s, _ra, _t, e in records)
    answered = [(k, s, ra, t) for k, s, ra, t, _e in records if s is not None]
    acceptable = [r for r in answered if r[1] == 200 or (r[1] in (429, 503) and r[2])]
    latencies = [t for _k, _s, _ra, t in answered]
    by_kind = {}
    for kind in kinds:
        lat = [t for k, _s, _ra, t in answered if k == kind]
        by_kind[kind] = {"answered": len(lat), "p50_ms": _ms(_pct(lat, 0.5)), "p95_ms": _ms(_pct(lat, 0.95)),
                         "max_ms": _ms(max(lat) if lat else None)}
    return {
        "connections": connections, "requests": requests, "time_limit_s": limit_s, "timed_out": timed_out,
        "wall_s": round(wall, 1), "requests_per_s": round(len(answered) / wall, 1) if wall else None,
        "statuses": dict(sorted(statuses.items())),
        "answered": len(answered), "unfinished": requests - len(records),
        "acceptable": len(acceptable),
        "other_statuses": len(answered) - len(acceptable),
        "connection_errors": len(records) - len(answered),
        "p50_ms": _ms(_pct(latencies, 0.5)), "p95_ms": _ms(_pct(latencies, 0.95)),
        "max_ms": _ms(max(latencies) if latencies else None), "by_kind": by_kind,
    }


def bench_stress(data: Path, work: Path, connections: int, requests: int, texts: list[str], queries: list[str],
                 limit_s: float) -> dict[str, Any]:
    """`docent serve` in its own process, and ``connections`` clients at once against it."""
    port = _free_port()
    url = f"http://{LOOPBACK}:{port}"
    log = (work / "serve.log").open("wb")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, "--data-dir", str(data), "serve", "--host", LOOPBACK, "--port", str(port),
         "--no-auth"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    result: dict[str, Any] = {"server": f"docent serve --host {LOOPBACK} --no-auth (own process)"}
    try:
        deadline = time.monotonic() + 300
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    ready = True
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        if not ready:
            raise SystemExit(f"docent serve did not become ready: {(work / 'serve.log').read_text()[-2000:]}")
        # Warm-up, so the storm measures serving, not torch's first-call allocations.
        with httpx.Client(base_url=url, timeout=120) as http:
            http.post("/v1/embeddings", json={"input": texts[0]})
            http.post("/v1/search", json={"query": queries[0], "k": 5})
        result["rss_ready_mb"] = round(_proc_status(proc.pid).get("VmRSS", 0) / 1024)
        watch = _Watch(proc.pid)
        result.update(asyncio.run(_storm(url, connections, requests, texts, queries, limit_s)))
        watch.stop()
        result["server_peak_sockets"] = watch.peak_sockets
        result["server_alive"] = proc.poll() is None
        began = time.perf_counter()
        try:
            after = httpx.get(url + "/health", timeout=30)
            result["health_after"] = after.status_code
        except httpx.HTTPError as exc:
            result["health_after"] = f"error:{type(exc).__name__}"
        result["health_after_ms"] = _ms(time.perf_counter() - began)
        mem = _proc_status(proc.pid)
        result["server_peak_rss_mb"] = round(mem.get("VmHWM", 0) / 1024)
        result["rss_after_mb"] = round(mem.get("VmRSS", 0) / 1024)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl+C: it closes the library cleanly
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log.close()
    result["server_exit_code"] = proc.returncode
    tail = (work / "serve.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
    result["server_log_tail"] = tail[-5:]
    return result


# --- all of it --------------------------------------------------------------------


def main(quick: bool) -> dict[str, Any]:
    from app.core.library import Library
    from app.service.engine import Service
    from app.service.runner import ServerThread

    sizes = ({"texts": 64, "rounds": 1, "questions": 2, "reps": 1, "search": 40, "serial": 16,
              "connections": 200, "requests": 600, "limit_s": 120.0} if quick else
             {"texts": 512, "rounds": 3, "questions": 4, "reps": 2, "search": 200, "serial": 64,
              "connections": 1000, "requests": 3000, "limit_s": 300.0})
    _raise_open_files()
    work = Path(tempfile.mkdtemp(prefix="docent-bench-api-"))
    started = time.perf_counter()
    try:
        corpus, questions, queries = _corpus(work / "docs", quick)
        texts = _sentences(sizes["texts"])
        lib = Library(work / "data", purpose="bench")
        began = time.perf_counter()
        lib.indexer.ingest([work / "docs"])
        ingest_s = time.perf_counter() - began
        chunks = lib.catalog.indexed_chunk_count()
        services = [Service(lib, auth=False), Service(lib, auth=False, batching=False)]
        servers: list[Any] = []
        try:
            for service in services:
                service.load()
                if service.state != "ready":
                    raise SystemExit(f"The service did not load: {service.problem}")
                servers.append(ServerThread(service, LOOPBACK, 0).start())
            batched, unbatched = services
            print("embeddings", flush=True)
            embeddings = bench_embeddings(servers[0].url, servers[1].url, lib.embedder, batched.embedding_model_name,
                                          texts, sizes["rounds"], batched.metrics)
            print("first token", flush=True)
            first = bench_first_token(servers[0].url, batched, questions[:sizes["questions"]], sizes["reps"],
                                      max_tokens=16)
            print("search", flush=True)
            search = bench_search(servers[0].url, batched, queries, sizes["search"], sizes["serial"])
        finally:
            for server in servers:
                server.stop()
            for service in services:
                service.close()
            lib.close()
        bench_peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print("stress", flush=True)
        stress = bench_stress(work / "data", work, sizes["connections"], sizes["requests"], texts, queries,
                              sizes["limit_s"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    clean = not embeddings["failed_batched"] and not embeddings["failed_unbatched"]
    embeddings["met"] = {"vs_in_process": clean and embeddings["vs_in_process"] >= TARGETS["embed_vs_in_process"],
                         "vs_unbatched": clean and embeddings["vs_unbatched"] >= TARGETS["embed_vs_unbatched"]}
    first["met"] = first["ratio"] is not None and first["ratio"] <= TARGETS["first_token_ratio"]
    stress["all_answered_or_told_to_retry"] = (
        stress["acceptable"] == stress["requests"] and not stress["timed_out"])
    stress["stayed_up"] = bool(stress["server_alive"]) and stress["health_after"] == 200
    return {
        "corpus": corpus, "chunks": chunks, "ingest_s": round(ingest_s, 1), "quick": quick,
        "cores": os.cpu_count(), "address": LOOPBACK,
        "embeddings": embeddings, "first_token": first, "search": search, "stress": stress,
        "bench_process_peak_rss_mb": bench_peak_mb,
        "total_s": round(time.perf_counter() - started, 1),
        "targets": {"embed_vs_in_process": ">= 0.8", "embed_vs_unbatched": ">= 3",
                    "first_token_ratio": "<= 1.1",
                    "stress": "every response 200, or 429/503 with Retry-After; /health 200 after"},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (200 connections, 600 requests)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "api.json")
    args = ap.parse_args()
    result = main(args.quick)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
