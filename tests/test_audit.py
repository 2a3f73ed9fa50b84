"""The audit log: chain, anchor, torn-line quarantine, concurrency."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from app.core.stores.audit import (
    EVENT_ANCHOR_MISMATCH,
    EVENT_QUARANTINE,
    GENESIS,
    AuditLog,
    VerifyResult,
    local_user,
)
from app.errors import StoreError


def _filled(folder: Path, n: int) -> AuditLog:
    log = AuditLog(folder)
    for i in range(n):
        log.append("ingest", {"path": f"/docs/file{i}.pdf", "chunks": i})
    return log


def _lines(folder: Path) -> list[bytes]:
    return (folder / "audit.jsonl").read_bytes().splitlines(keepends=True)


def _write_lines(folder: Path, lines: list[bytes]) -> None:
    (folder / "audit.jsonl").write_bytes(b"".join(lines))


def _canonical_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the chain -------------------------------------------------------------


def test_empty_or_missing_log_verifies(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    ro = AuditLog(missing, writable=False)
    assert ro.verify() == VerifyResult(ok=True, records=0, broken_at=None, reason=None)
    assert ro.records() == []
    assert not missing.exists()  # a read-only open creates nothing

    log = AuditLog(tmp_path / "audit")
    assert (tmp_path / "audit").is_dir()
    assert log.verify().ok
    assert log.records() == []


def test_records_have_the_documented_shape(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    first = log.append("ask", {"question": "Où est la clé ?", "k": 5})
    second = log.append("answer", {"answer_hash": AuditLog.hash_text("oui")})

    assert set(first) == {"seq", "ts", "event", "data", "prev", "hash"}
    assert first["seq"] == 1 and second["seq"] == 2
    assert first["prev"] == GENESIS
    assert second["prev"] == first["hash"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert first["hash"] == _canonical_hash(first)

    on_disk = [json.loads(line) for line in _lines(tmp_path)]
    assert on_disk == [first, second]
    assert log.records() == [first, second]
    assert "Où est la clé ?" in (tmp_path / "audit.jsonl").read_text(encoding="utf-8")

    anchor = json.loads((tmp_path / "anchor.json").read_text())
    assert anchor == {"seq": 2, "hash": second["hash"]}


def test_hash_text_is_sha256_hex() -> None:
    assert AuditLog.hash_text("abc") == hashlib.sha256(b"abc").hexdigest()


def test_chain_verifies_after_appends_and_reopen(tmp_path: Path) -> None:
    log = _filled(tmp_path, 25)
    result = log.verify()
    assert result.ok and result.records == 25 and result.broken_at is None

    reopened = AuditLog(tmp_path)
    rec = reopened.append("remove", {"path": "/docs/file3.pdf"})
    assert rec["seq"] == 26
    assert rec["prev"] == log.records()[24]["hash"]
    assert AuditLog(tmp_path, writable=False).verify() == VerifyResult(True, 26, None, None)


def test_data_reads_back_as_hashed(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    rec = log.append(
        "ingest",
        {"path": tmp_path / "a.pdf", "span": (3, 9), 7: "int key", "tags": {"b", "a"}},
    )
    assert rec["data"] == {
        "path": str(tmp_path / "a.pdf"),
        "span": [3, 9],
        "7": "int key",
        "tags": ["a", "b"],
        "user": local_user(),
    }
    assert local_user().startswith("local")
    assert log.records() == [rec]
    assert log.verify().ok


def test_undecodable_file_name_stays_valid_utf8(tmp_path: Path) -> None:
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    log = AuditLog(tmp_path)
    rec = log.append("ingest", {"path": name})
    assert rec["data"]["path"] == "caf\\xe9.txt"
    (tmp_path / "audit.jsonl").read_bytes().decode("utf-8")  # strict
    assert log.verify().ok


def test_bad_input_is_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    with pytest.raises(StoreError):
        log.append("ingest", {"x": object()})
    with pytest.raises(StoreError):
        log.append("", {})
    assert log.records() == []
    ro = AuditLog(tmp_path, writable=False)
    with pytest.raises(StoreError, match="read-only"):
        ro.append("ingest", {})


def test_a_held_log_keeps_records_in_memory_and_still_reads(tmp_path: Path) -> None:
    """The read-only "answer only" mode: appends wait in memory, in order; the
    file is untouched and reading and verifying work as before."""
    _filled(tmp_path, 3)
    before = (tmp_path / "audit.jsonl").read_bytes()
    held = AuditLog(tmp_path, writable=False, hold=True)
    first = held.append("ask", {"question": "Where is the lighthouse?"})
    held.append("answer", {"answer_hash": AuditLog.hash_text("On the point.")})
    assert first["held"] is True and held.held == 2
    assert (tmp_path / "audit.jsonl").read_bytes() == before
    assert [r["seq"] for r in held.records()] == [1, 2, 3]
    assert held.verify() == VerifyResult(True, 3, None, None)


# -- tampering ---------------------------------------------------------------


def test_one_edited_character_fails_at_that_record(tmp_path: Path) -> None:
    _filled(tmp_path, 10)
    lines = _lines(tmp_path)
    assert b"file6.pdf" in lines[6]
    lines[6] = lines[6].replace(b"file6.pdf", b"file6.pdF")
    _write_lines(tmp_path, lines)

    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok
    assert result.broken_at == 7
    assert result.reason == "record 7 was edited (its hash does not match)"


def test_edited_and_rehashed_record_breaks_the_next_link(tmp_path: Path) -> None:
    _filled(tmp_path, 10)
    lines = _lines(tmp_path)
    rec = json.loads(lines[3])
    rec["data"]["chunks"] = 999
    rec["hash"] = _canonical_hash(rec)
    lines[3] = (json.dumps(rec) + "\n").encode()
    _write_lines(tmp_path, lines)

    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and result.broken_at == 5
    assert "record 5 does not follow record 4" in (result.reason or "")


def test_rehashed_last_record_fails_against_anchor(tmp_path: Path) -> None:
    _filled(tmp_path, 5)
    lines = _lines(tmp_path)
    rec = json.loads(lines[-1])
    rec["event"] = "settings"
    rec["hash"] = _canonical_hash(rec)
    lines[-1] = (json.dumps(rec) + "\n").encode()
    _write_lines(tmp_path, lines)

    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and result.broken_at == 5
    assert "anchor" in (result.reason or "")


def test_deleted_middle_line_fails(tmp_path: Path) -> None:
    _filled(tmp_path, 10)
    lines = _lines(tmp_path)
    del lines[4]
    _write_lines(tmp_path, lines)

    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and result.broken_at == 5
    assert result.reason == "record 5 is missing: the log goes from record 4 to record 6"


def test_deleted_first_line_fails(tmp_path: Path) -> None:
    _filled(tmp_path, 3)
    _write_lines(tmp_path, _lines(tmp_path)[1:])
    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and result.broken_at == 1


def test_reordered_lines_fail(tmp_path: Path) -> None:
    _filled(tmp_path, 10)
    lines = _lines(tmp_path)
    lines[2], lines[3] = lines[3], lines[2]
    _write_lines(tmp_path, lines)

    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and result.broken_at == 3


def test_garbage_middle_line_fails_and_records_refuses(tmp_path: Path) -> None:
    _filled(tmp_path, 5)
    lines = _lines(tmp_path)
    lines[1] = b"not json\n"
    _write_lines(tmp_path, lines)

    ro = AuditLog(tmp_path, writable=False)
    result = ro.verify()
    assert not result.ok and result.broken_at == 2
    with pytest.raises(StoreError, match="line 2"):
        ro.records()


def test_truncated_log_fails_by_the_anchor(tmp_path: Path) -> None:
    _filled(tmp_path, 42)
    _write_lines(tmp_path, _lines(tmp_path)[:-2])

    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok
    assert result.records == 40
    assert result.broken_at == 41
    assert result.reason == (
        "the log was cut short: the anchor expects record 42 but the log ends at 40"
    )


def test_truncation_stays_evident_after_a_writer_reopens(tmp_path: Path) -> None:
    # A writer that opens a cut log must not paper over it by moving the anchor.
    _filled(tmp_path, 10)
    _write_lines(tmp_path, _lines(tmp_path)[:-2])

    log = AuditLog(tmp_path)
    log.append("ingest", {"path": "/docs/new.pdf"})
    events = [r["event"] for r in log.records()]
    assert events[8] == EVENT_ANCHOR_MISMATCH
    assert log.records()[8]["data"]["anchor"]["seq"] == 10

    result = log.verify()
    assert not result.ok and result.broken_at == 9
    assert "cut short" in (result.reason or "")


def test_emptied_log_fails(tmp_path: Path) -> None:
    _filled(tmp_path, 3)
    (tmp_path / "audit.jsonl").write_bytes(b"")
    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and result.broken_at == 1
    assert "the log is empty" in (result.reason or "")


def test_missing_anchor_fails_once_there_are_records(tmp_path: Path) -> None:
    _filled(tmp_path, 3)
    (tmp_path / "anchor.json").unlink()
    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and "anchor" in (result.reason or "")


def test_damaged_anchor_fails(tmp_path: Path) -> None:
    _filled(tmp_path, 3)
    (tmp_path / "anchor.json").write_text("{nope")
    result = AuditLog(tmp_path, writable=False).verify()
    assert not result.ok and "anchor" in (result.reason or "")


# -- crashes -----------------------------------------------------------------


def test_crash_before_first_anchor_is_not_tampering(tmp_path: Path) -> None:
    _filled(tmp_path, 1)
    (tmp_path / "anchor.json").unlink()
    assert AuditLog(tmp_path, writable=False).verify().ok
    log = AuditLog(tmp_path)
    log.append("ingest", {})
    assert log.verify().ok
    assert [r["event"] for r in log.records()] == ["ingest", "ingest"]


def test_anchor_one_behind_after_crash_is_accepted(tmp_path: Path) -> None:
    _filled(tmp_path, 4)
    old_anchor = (tmp_path / "anchor.json").read_bytes()
    AuditLog(tmp_path).append("ingest", {"path": "/docs/late.pdf"})
    # The line reached the disk, the anchor update did not.
    (tmp_path / "anchor.json").write_bytes(old_anchor)

    assert AuditLog(tmp_path, writable=False).verify() == VerifyResult(True, 5, None, None)
    log = AuditLog(tmp_path)
    log.append("ingest", {})
    assert log.verify() == VerifyResult(True, 6, None, None)
    assert EVENT_ANCHOR_MISMATCH not in [r["event"] for r in log.records()]


@pytest.mark.parametrize(
    "torn",
    [
        b'{"seq":6,"ts":"2024-01-01T00:00:00.000Z","event":"ing',  # cut mid-write
        b"\x00\x00\x00\x00\x00\x00",  # zero-filled tail (delayed allocation)
        b'{"seq":6,"ts":\n',  # a last line that is not a record
    ],
)
def test_torn_last_line_is_quarantined_not_tampering(tmp_path: Path, torn: bytes) -> None:
    _filled(tmp_path, 5)
    with open(tmp_path / "audit.jsonl", "ab") as fh:
        fh.write(torn)

    # A reader only notes it.
    ro = AuditLog(tmp_path, writable=False)
    seen = ro.verify()
    assert seen.ok and seen.records == 5 and seen.broken_at is None
    assert "a torn last line will be quarantined on the next write" in (seen.reason or "")
    assert len(ro.records()) == 5

    # The next writer moves it aside and says so in the chain.
    log = AuditLog(tmp_path)
    quarantined = list((tmp_path / "quarantine").glob("torn-*.jsonl"))
    assert len(quarantined) == 1
    assert quarantined[0].read_bytes() == torn

    records = log.records()
    assert len(records) == 6
    note = records[-1]
    assert note["event"] == EVENT_QUARANTINE
    assert note["data"]["file"] == f"quarantine/{quarantined[0].name}"
    assert note["data"]["bytes"] == len(torn)
    assert note["data"]["sha256"] == hashlib.sha256(torn).hexdigest()

    log.append("ingest", {"path": "/docs/after.pdf"})
    assert log.verify() == VerifyResult(True, 7, None, None)
    assert (tmp_path / "audit.jsonl").read_bytes().endswith(b"\n")


def test_torn_line_on_an_empty_log(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(b'{"seq":1,"ts"')
    log = AuditLog(tmp_path)
    assert [r["event"] for r in log.records()] == [EVENT_QUARANTINE]
    assert log.verify().ok


def test_damaged_committed_last_line_is_not_excused(tmp_path: Path) -> None:
    # The anchor shows record 5 was completely written: garbling it is not a
    # crash, even though the writer still quarantines it to keep going.
    _filled(tmp_path, 5)
    lines = _lines(tmp_path)
    lines[-1] = lines[-1][:30]
    _write_lines(tmp_path, lines)

    seen = AuditLog(tmp_path, writable=False).verify()
    assert not seen.ok and "cut short" in (seen.reason or "")

    log = AuditLog(tmp_path)
    assert [r["event"] for r in log.records()][-2:] == [EVENT_QUARANTINE, EVENT_ANCHOR_MISMATCH]
    result = log.verify()
    assert not result.ok and result.broken_at == 6


# -- concurrency -------------------------------------------------------------


def test_concurrent_appends_keep_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    threads, per_thread = 8, 40
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                log.append("ask", {"thread": n, "i": i})
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()

    assert errors == []
    records = log.records()
    assert [r["seq"] for r in records] == list(range(1, threads * per_thread + 1))
    assert AuditLog(tmp_path, writable=False).verify() == VerifyResult(
        True, threads * per_thread, None, None
    )


def test_two_logs_on_one_folder_interleave_safely(tmp_path: Path) -> None:
    a = AuditLog(tmp_path)
    b = AuditLog(tmp_path)
    for i in range(5):
        a.append("ingest", {"i": i, "by": "a"})
        b.append("ingest", {"i": i, "by": "b"})
    assert [r["seq"] for r in a.records()] == list(range(1, 11))
    assert a.verify().ok


def test_records_written_together_chain_like_records_written_alone(tmp_path) -> None:
    from app.core.stores.audit import AuditLog, attributed

    log = AuditLog(tmp_path / "audit")
    log.append("ask", {"question": "first"})
    with attributed({"key": "bot", "address": "127.0.0.1"}):
        written = log.append_many([("embed", {"count": 1}), ("embed", {"count": 2, "client": {"key": "other"}})])
    log.append("ask", {"question": "last"})
    records = AuditLog(tmp_path / "audit", writable=False).records()
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert [r["data"].get("count") for r in records] == [None, 1, 2, None]
    assert records[1]["data"]["client"] == {"key": "bot", "address": "127.0.0.1"}
    assert records[2]["data"]["client"] == {"key": "other"}  # its own attribution is kept
    assert [w["hash"] for w in written] == [records[1]["hash"], records[2]["hash"]]
    assert log.verify().ok
