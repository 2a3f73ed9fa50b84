"""`docent keys` and `docent serve` as a user runs them: the real executable."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from tests.team import wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_keys_show_the_secret_once_and_keep_only_its_hash(docent, data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    made = docent("keys", "create", "ci-bot", "--scope", str(folder), "--rpm", "60")
    assert made.code == 0, made.err
    secret = made.out.strip().splitlines()[-1]
    assert secret.startswith("dk-") and len(secret) > 30
    assert "shown only once" in made.out
    stored = (data_dir / "keys.json").read_text(encoding="utf-8")
    assert secret not in stored
    listed = docent("keys", "list", "--json")
    [key] = listed.json()
    assert key["name"] == "ci-bot" and key["scopes"] == [str(folder)] and key["rpm"] == 60
    assert secret not in listed.out and "hash" not in key
    assert "ci-bot" in docent("keys", "list").out
    again = docent("keys", "create", "ci-bot")
    assert again.code == 2 and "already exists" in again.err
    assert docent("keys", "revoke", "ci-bot").code == 0
    assert docent("keys", "list", "--json").json() == []
    gone = docent("keys", "revoke", "ci-bot")
    assert gone.code == 1 and "no key named ci-bot" in gone.err


def test_serve_refuses_to_open_the_library_to_the_network_without_keys(docent) -> None:
    open_door = docent("serve", "--host", "0.0.0.0", "--no-auth")
    assert open_door.code == 2 and "loopback" in open_door.err
    no_keys = docent("serve", "--host", "0.0.0.0")
    assert no_keys.code == 2 and "docent keys create NAME" in no_keys.err


def test_serve_says_when_its_port_is_taken(docent) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = docent("serve", "--port", str(port))
    assert result.code == 2 and f"127.0.0.1:{port}" in result.err and "--port" in result.err


@pytest.mark.slow
def test_serve_answers_keeps_folders_in_sync_and_stops_on_ctrl_c(docent, docs, data_dir: Path) -> None:
    folder = docs["pdf"].parent
    assert docent("ingest", str(folder)).code == 0
    secret = docent("keys", "create", "me").out.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "docent"), "--data-dir", str(data_dir), "serve", "--port", str(port)],
        stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(url + "/health").status_code == 200
            except httpx.TransportError:
                return proc.poll() is not None  # it died: stop waiting
        assert wait_until(healthy, 240) and proc.poll() is None
        client = openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0)
        reply = client.chat.completions.create(
            model="docent", messages=[{"role": "user", "content": "What did the cooperative's revenue grow to?"}],
            max_tokens=40, temperature=0)
        assert "4.2" in reply.choices[0].message.content
        assert reply.model_extra["docent"]["sources"][0]["path"] == str(docs["pdf"])
        # One writer per data folder: the server holds it.
        busy = docent("ingest", str(folder))
        assert busy.code == 3
        # A file added to a library folder is found without `docent ingest` (the server keeps it in sync).
        (folder / "ferry.md").write_text("# Ferry timetable\n\nThe quizzical narwhal ferry leaves at dawn.\n",
                                         encoding="utf-8")

        def found() -> bool:
            hits = httpx.post(url + "/v1/search", json={"query": "quizzical narwhal", "mode": "keyword"},
                              headers={"Authorization": f"Bearer {secret}"}).json()["hits"]
            return any(h["path"].endswith("ferry.md") for h in hits)
        assert wait_until(found, 120)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        err = proc.stderr.read()
        assert f"Docent API on http://127.0.0.1:{port}/v1" in err and "Stopped serving." in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The lock is released: the library is usable again, and the API's questions are in its record.
    records = json.loads(docent("audit", "show", "--json").out)
    asked = [r for r in records if r["event"] == "answer" and r["data"].get("client", {}).get("key") == "me"]
    assert asked
    assert docent("audit", "verify").code == 0
