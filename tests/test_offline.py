"""Nothing leaves the machine: a full ingest, search and answer opens no
network connection, and works inside a network namespace with no interfaces."""

from __future__ import annotations

import json
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
sys.stdout.flush()
print("\nPROBE " + json.dumps({"codes": codes, "attempts": attempts}))
"""


def _run_probe(cmd_prefix: list[str], data: Path, folder: Path) -> dict:
    env_python = sys.executable
    proc = subprocess.run(
        [*cmd_prefix, env_python, "-c", PROBE, str(data), str(folder)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("PROBE "))
    return json.loads(line[len("PROBE "):])


def test_ingest_search_and_answer_open_no_network_connection(docs, tmp_path) -> None:
    result = _run_probe([], tmp_path / "data", docs["pdf"].parent)
    assert result["codes"] == [0, 0, 0]
    assert result["attempts"] == []


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -n` (root or user namespaces)")
def test_everything_works_with_no_network_at_all(docs, tmp_path) -> None:
    # A namespace with no interfaces also covers native code (Chroma's Rust
    # core, llama.cpp) that a Python-level hook cannot see.
    result = _run_probe(["unshare", "-n"], tmp_path / "data", docs["pdf"].parent)
    assert result["codes"] == [0, 0, 0]
    assert result["attempts"] == []
