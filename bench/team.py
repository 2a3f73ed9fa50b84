"""A team library under load: 20 simulated users asking and searching at once.

One ``docent serve`` in its own process (auth on, one key per user, the
generation queue sized to the team with ``--queue``) over a small real
library; 20 users, each a thread with its own connection, alternate searches
and streamed questions with a short pause between them (people read what
they get), for a fixed time. Each user sends one request at a time, so the
audit log can be checked afterwards against what each user sent, in order:
every request recorded exactly once, under its user. (The questions are
sent as they are: a tag added to them would be a term the library never
uses, and Docent declines such questions without asking the model.) Reported: statuses (no 5xx is the target), search
latency and time to the first answer token (p50/p95), and the audit check.

Everything targets this machine's loopback address (127.0.0.1) only, with a
time limit and a bounded number of requests per user; it stops by itself.

Usage: python bench/team.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if str(ROOT / "bench") in sys.path:  # bench/onnx.py would shadow the onnx package
    sys.path.remove(str(ROOT / "bench"))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

import httpx  # noqa: E402

from bench.api import LOOPBACK, SERVER, _corpus, _free_port, _pct, _proc_status  # noqa: E402

USERS = 20
#: Share of a user's requests that are questions (the rest are searches).
ASK_SHARE = 0.3
ANSWER_TOKENS = 24
PAUSE_S = (0.5, 2.0)


def _user(url: str, name: str, secret: str, questions: list[str], queries: list[str], until: float,
          max_requests: int, seed: int, out: list[dict[str, Any]]) -> None:
    """One simulated user: search or ask, read, repeat until ``until``."""
    rng = random.Random(seed)
    pause = threading.Event()
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(300, connect=10)) as http:
        for n in range(max_requests):
            if time.monotonic() >= until:
                return
            asking = rng.random() < ASK_SHARE
            text = rng.choice(questions if asking else queries)
            began = time.perf_counter()
            row: dict[str, Any] = {"user": name, "text": text, "kind": "ask" if asking else "search"}
            try:
                if asking:
                    first = None
                    with http.stream("POST", "/v1/ask", json={"question": text, "stream": True,
                                                               "max_tokens": ANSWER_TOKENS}) as r:
                        row["status"] = r.status_code
                        for line in r.iter_lines():
                            if first is None and line.startswith('data: {"token"'):
                                first = time.perf_counter() - began
                            if line.startswith('data: {"error"'):
                                row["stream_error"] = json.loads(line[6:])["error"].get("code")
                            elif line.startswith("data: {") and not line.startswith('data: {"token"'):
                                final = json.loads(line[6:])
                                row["declined"] = bool(final.get("declined"))
                                row["cached"] = bool(final.get("cached_from"))
                    row["first_token_s"] = first
                else:
                    r = http.post("/v1/search", json={"query": text, "k": 5})
                    row["status"] = r.status_code
            except httpx.HTTPError as exc:
                row["status"] = f"error:{type(exc).__name__}"
            row["seconds"] = time.perf_counter() - began
            out.append(row)
            pause.wait(rng.uniform(*PAUSE_S))


EVAL = ROOT.parent / "shared" / "eval" / "pydocs"
PYDOCS_HTML = Path("/usr/share/doc/python3.11/html")


def _team_corpus(docs: Path, quick: bool) -> tuple[str, list[str], list[str]]:
    """The pydocs development set's documents and its 80 questions (each user
    asks them in its own random order, so most are new to the server), or the
    local API bench's smaller library where they are missing or ``quick``."""
    questions_file = EVAL / "questions.jsonl"
    if quick or not questions_file.is_file() or not (PYDOCS_HTML / "tutorial").is_dir():
        return _corpus(docs, quick)
    for sub in ("tutorial", "howto", "faq"):
        shutil.copytree(PYDOCS_HTML / sub, docs / sub)
    rows = [json.loads(line) for line in questions_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [r["question"] for r in rows]
    queries = [" ".join(r["keywords"]) for r in rows if r.get("keywords")] or questions
    return ("the pydocs development set: Python's tutorial, HOWTOs and FAQ (python3.11-doc), "
            f"{len(questions)} of its questions", questions, queries)


def _audited(data: Path) -> dict[tuple[str, str], list[str]]:
    """What the audit log holds of each user's requests: ``(user, event)`` to
    the questions or queries of those records, in the log's order."""
    from app.core.stores.audit import AuditLog, record_user

    seen: dict[tuple[str, str], list[str]] = {}
    for record in AuditLog(data / "audit", writable=False).records():
        d = record.get("data", {})
        text = d.get("question") or d.get("query")
        if isinstance(text, str) and record_user(record).startswith("user"):
            seen.setdefault((record_user(record), record["event"]), []).append(text)
    return seen


#: The records one request leaves: a search its ``search``; a question its
#: ``ask`` (what was asked) and its ``answer`` (what was retrieved and said).
EVENTS = {"search": ("search",), "ask": ("ask", "answer")}


def main(quick: bool) -> dict[str, Any]:
    from app.core.library import Library
    from app.core.stores.keys import KeyStore

    duration = 40.0 if quick else 180.0
    max_requests = 40 if quick else 200
    work = Path(tempfile.mkdtemp(prefix="docent-bench-team-"))
    try:
        corpus, questions, queries = _team_corpus(work / "docs", quick)
        data = work / "data"
        lib = Library(data, purpose="bench")
        lib.indexer.ingest([work / "docs"])
        chunks = lib.catalog.indexed_chunk_count()
        lib.close()
        keys = KeyStore(data / "keys.json")
        secrets = {f"user{i:02d}": keys.create(f"user{i:02d}", role="reader")[1] for i in range(1, USERS + 1)}
        port = _free_port()
        url = f"http://{LOOPBACK}:{port}"
        log = (work / "serve.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, "--data-dir", str(data), "serve", "--host", LOOPBACK,
             "--port", str(port), "--queue", str(USERS * 2)],
            cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            stdout=log, stderr=subprocess.STDOUT)
        rows: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise SystemExit(f"docent serve did not become ready: {(work / 'serve.log').read_text()[-2000:]}")
            until = time.monotonic() + duration
            threads = [threading.Thread(target=_user, args=(url, name, secret, questions, queries, until,
                                                            max_requests, i, rows), daemon=True)
                       for i, (name, secret) in enumerate(secrets.items())]
            began = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=duration + 600)  # a request in flight at the end is let finish
            wall = time.perf_counter() - began
            peak_mb = round(_proc_status(proc.pid).get("VmHWM", 0) / 1024)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Ctrl+C: the audit log and the library close cleanly
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            log.close()
        audited = _audited(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    statuses = Counter(str(r["status"]) for r in rows)
    ok = [r for r in rows if r["status"] == 200 and not r.get("stream_error")]
    expected: dict[tuple[str, str], list[str]] = {}
    for r in ok:
        for event in EVENTS[r["kind"]]:
            expected.setdefault((r["user"], event), []).append(r["text"])
    # Each user's records, in order, against what that user sent, in order.
    missing = twice = stray = 0
    for key in set(expected) | set(audited):
        want, got = Counter(expected.get(key, [])), Counter(audited.get(key, []))
        missing += sum((want - got).values())
        extra = sum((got - want).values())
        twice += extra if key in expected else 0
        stray += extra if key not in expected else 0
    in_order = all(audited.get(k) == v for k, v in expected.items())
    records_expected = sum(len(v) for v in expected.values())
    searches = [r["seconds"] * 1000 for r in ok if r["kind"] == "search"]
    # Only questions the model answered: a declined one ("not in your documents")
    # never reaches the model, and would make the queue look shorter than it is.
    answered = [r for r in ok if r["kind"] == "ask" and not r.get("declined") and not r.get("cached")]
    firsts = [r["first_token_s"] * 1000 for r in answered if r.get("first_token_s")]
    five_xx = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500)
    return {
        "corpus": corpus, "chunks": chunks, "users": USERS, "seconds": duration, "wall_s": round(wall, 1),
        "address": LOOPBACK, "ask_share": ASK_SHARE, "answer_tokens": ANSWER_TOKENS, "quick": quick,
        "requests": len(rows), "asks": sum(r["kind"] == "ask" for r in rows), "answered_by_model": len(answered),
        "searches": sum(r["kind"] == "search" for r in rows),
        "statuses": dict(statuses), "stream_errors": sum(bool(r.get("stream_error")) for r in rows),
        "five_xx": five_xx,
        "search_p50_ms": _pct(searches, 0.5), "search_p95_ms": _pct(searches, 0.95),
        "first_token_p50_ms": _pct(firsts, 0.5), "first_token_p95_ms": _pct(firsts, 0.95),
        "audit": {"requests_ok": len(ok), "records_expected": records_expected,
                  "recorded_once": records_expected - missing, "missing": missing, "extra": twice,
                  "unexpected": stray, "in_order": in_order},
        "server_peak_rss_mb": peak_mb,
        "met": five_xx == 0 and not missing and not twice and not stray and in_order and bool(expected),
        "cores": os.cpu_count(),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 seconds instead of three minutes")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "team.json")
    args = ap.parse_args()
    result = main(args.quick)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "audit"}, indent=1))
