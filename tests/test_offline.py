"""Nothing leaves the machine: a full ingest, search and answer opens no
network connection, and works inside a network namespace with no interfaces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Runs in a child process: records every socket connection and name lookup
# Python makes (an audit hook sees them all, whichever library asks), then
# runs the real CLI.
PROBE = r"""
import json, sys
attempts = []
def hook(event, args):
    if event == "socket.connect":
        addr = args[1]
        if isinstance(addr, tuple):
            host = str(addr[0])
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                attempts.append(f"connect {addr!r}")
    elif event == "socket.getaddrinfo":
        host = str(args[0])
        if host not in ("localhost", "127.0.0.1", "::1", "None"):
            attempts.append(f"lookup {host}")
sys.addaudithook(hook)
from app.cli import run
data, folder = sys.argv[1], sys.argv[2]
codes = [
    run(["--data-dir", data, "ingest", folder]),
    run(["--data-dir", data, "search", "storm warnings"]),
    run(["--data-dir", data, "ask", "How many storm warnings were recorded?", "--max-tokens", "30"]),
]
from app.core.library import Library
with Library(data, writer=False) as lib:
    failed = [path for path, _ in lib.status().failed]
sys.stdout.flush()
print("\nPROBE " + json.dumps({"codes": codes, "attempts": attempts, "failed": failed}))
"""


# The same hook around `docent serve`: a client thread asks, embeds and
# searches over loopback, then stops the server with Ctrl+C.
SERVE_PROBE = PROBE.split("from app.cli import run")[0] + r"""
import http.client, os, signal, socket, threading
from app.cli import run
data, folder = sys.argv[1], sys.argv[2]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
statuses = []
def call(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); c.close()
    return r.status
def client():
    gave_up = threading.Event(); threading.Timer(240, gave_up.set).start()
    while not gave_up.is_set():
        try:
            if call("GET", "/health") == 200:
                break
        except OSError:
            pass
        gave_up.wait(0.2)
    statuses.append(call("POST", "/v1/chat/completions", {"model": "docent", "max_tokens": 20,
        "messages": [{"role": "user", "content": "How many storm warnings were recorded?"}]}))
    statuses.append(call("POST", "/v1/embeddings", {"input": "storm warnings"}))
    statuses.append(call("POST", "/v1/search", {"query": "storm warnings"}))
    os.kill(os.getpid(), signal.SIGINT)
codes = [run(["--data-dir", data, "ingest", folder])]
threading.Thread(target=client, daemon=True).start()
codes.append(run(["--data-dir", data, "serve", "--port", str(port), "--no-auth"]))
sys.stdout.flush()
print("\nPROBE " + json.dumps({"codes": codes, "statuses": statuses, "attempts": attempts}))
"""


def _run_probe(cmd_prefix: list[str], data: Path, folder: Path, probe: str = PROBE) -> dict:
    env_python = sys.executable
    proc = subprocess.run(
        [*cmd_prefix, env_python, "-c", probe, str(data), str(folder)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("PROBE "))
    return json.loads(line[len("PROBE "):])


def test_ingest_search_and_answer_open_no_network_connection(docs, tmp_path) -> None:
    # A scanned page among them: OCR's models are the wheel's own, never fetched.
    from tests import hostile

    hostile.scanned_pdf(docs["pdf"].parent / "scanned.pdf")
    result = _run_probe([], tmp_path / "data", docs["pdf"].parent)
    assert result["codes"] == [0, 0, 0]
    assert result["attempts"] == []
    assert result["failed"] == []


def test_serving_the_api_opens_no_network_connection(docs, tmp_path) -> None:
    result = _run_probe([], tmp_path / "data", docs["pdf"].parent, SERVE_PROBE)
    assert result["codes"] == [0, 0]
    assert result["statuses"] == [200, 200, 200]
    assert result["attempts"] == []


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -n` (root or user namespaces)")
def test_everything_works_with_no_network_at_all(docs, tmp_path) -> None:
    # A namespace with no interfaces also covers native code (Chroma's Rust
    # core, llama.cpp) that a Python-level hook cannot see.
    from tests import hostile

    hostile.scanned_pdf(docs["pdf"].parent / "scanned.pdf")
    result = _run_probe(["unshare", "-n"], tmp_path / "data", docs["pdf"].parent)
    assert result["codes"] == [0, 0, 0]
    assert result["attempts"] == []
    assert result["failed"] == []


def test_onnxruntime_usage_events_are_switched_off_before_it_loads(monkeypatch) -> None:
    # onnxruntime's Linux build looks up Microsoft's events server unless told
    # not to when its environment is created (seen with strace from the
    # installed app during OCR); every entry point runs enforce_offline first,
    # and reader processes inherit the variable.
    from app.config import enforce_offline

    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    enforce_offline()
    assert os.environ["ORT_DISABLE_TELEMETRY"] == "1"
