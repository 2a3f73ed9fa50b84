"""Following the audit log as it grows, and summarising its records (no Qt)."""

from __future__ import annotations

import json
from pathlib import Path

from app.core.stores.audit_tail import LogTail, local_time, short_text, summarize


def _line(seq: int, event: str = "ingest") -> bytes:
    return (json.dumps({"seq": seq, "event": event, "data": {"path": f"/d/{seq}.txt"}}) + "\n").encode()


def test_the_tail_reads_only_complete_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    tail = LogTail(log)
    assert tail.read() == (False, False, [])  # no log yet

    log.write_bytes(_line(1) + _line(2))
    changed, restarted, rows = tail.read()
    assert changed and not restarted and [r.record["seq"] for r in rows] == [1, 2]
    assert [r.line for r in rows] == [1, 2]

    with log.open("ab") as fh:  # a record still being written is left for the next read
        fh.write(_line(3)[:10])
    changed, _, rows = tail.read()
    assert rows == []
    with log.open("ab") as fh:
        fh.write(_line(3)[10:] + b"not json\n")
    _, _, rows = tail.read()
    assert rows[0].record["seq"] == 3 and rows[0].line == 3
    assert rows[1].record is None and rows[1].raw == "not json"


def test_a_rewritten_log_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(_line(1) + _line(2))
    tail = LogTail(log)
    tail.read()

    log.write_bytes(_line(7) + _line(8) + _line(9))  # same start offset, different bytes
    changed, restarted, rows = tail.read()
    assert changed and restarted and [r.record["seq"] for r in rows] == [7, 8, 9]

    log.unlink()
    assert tail.read() == (True, True, [])


def test_records_are_summarised_in_words() -> None:
    assert summarize("answer", {"question": "Why?", "citations": [{"n": 1}, {"n": 2}]}) == "“Why?” — 2 citations"
    assert summarize("remove", {"path": "/x.pdf", "chunks": 1}) == "/x.pdf (1 chunk)"
    assert summarize("remove_root", {"path": "/docs", "files": 3}) == "path=/docs, files=3"
    assert short_text("a  b\nc") == "a b c" and short_text({"k": 1}) == '{"k":1}'
    assert len(short_text("x" * 100, 10)) == 10
    assert local_time("") == "" and local_time("not a time") == "not a time"
