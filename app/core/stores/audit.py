"""Append-only, hash-chained audit log.

The log lives in one folder (``DATA_DIR/audit/``)::

    audit.jsonl        one JSON record per line
    anchor.json        {"seq", "hash"} of the last record, kept outside the log
    quarantine/        torn last lines left by a crash, never deleted

Every record carries ``seq`` (1, 2, 3, ...), ``ts`` (ISO-8601 UTC with
milliseconds), ``event``, ``data``, ``prev`` (the previous record's hash, or 64
zeros for the first) and ``hash``: the SHA-256 of the canonical JSON of the
record without ``hash``. Changing, removing or reordering any line breaks the
chain; removing lines from the end is caught by the anchor. Every record's
``data`` names its ``user``: the API key that asked (a team library's user),
or ``local:LOGIN`` for the window and the command line.

Integrity events written by the log itself:

* ``audit_quarantine`` -- a torn last line (crash mid-write) was moved to
  ``quarantine/``. This is an expected consequence of a crash, not tampering.
* ``audit_anchor_mismatch`` -- when a writer opened the log it did not agree
  with the anchor (records had been removed from its end, the anchor was
  missing, ...). The writer keeps going so the app still works, but the
  evidence stays in the chain: ``verify()`` fails at this record for good.
"""

from __future__ import annotations

import contextvars
import errno
import getpass
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from app.durable import atomic_write_bytes, fsync_dir
from app.errors import DISK_FULL, FAILED, READ_ONLY, StoreError

LOG_NAME = "audit.jsonl"
ANCHOR_NAME = "anchor.json"
QUARANTINE_DIR = "quarantine"

#: ``prev`` of the first record.
GENESIS = "0" * 64

EVENT_QUARANTINE = "audit_quarantine"
EVENT_ANCHOR_MISMATCH = "audit_anchor_mismatch"

_FIELDS = frozenset({"seq", "ts", "event", "data", "prev", "hash"})
_HEX = frozenset("0123456789abcdef")

# One lock per log file for the whole process, so that two AuditLog objects on
# the same folder (say, the window's and a worker's) never interleave appends.
_PATH_LOCKS: dict[str, threading.Lock] = {}
_PATH_LOCKS_GUARD = threading.Lock()

# Who the records appended in this context are for (the local API's key name
# and client address); None for the window and the command line.
_CLIENT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("docent_audit_client", default=None)


def local_user() -> str:
    """Who the window and the command line record as the user: ``local:LOGIN``.

    Key names cannot hold a colon, so a local user is never confused with an
    API user of the same name.
    """
    try:
        login = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without one): still someone local
        login = ""
    return f"local:{login}" if login else "local"


def record_user(record: dict[str, Any]) -> str:
    """The user a record was written for: its ``user``, else (records from
    before users were recorded) its API key, else the local user."""
    data = record.get("data") if isinstance(record.get("data"), dict) else {}
    user = data.get("user")
    if isinstance(user, str) and user:
        return user
    client = data.get("client")
    if isinstance(client, dict) and isinstance(client.get("key"), str):
        return client["key"]
    return "local"


def _attribute(data: dict[str, Any], client: dict[str, Any] | None) -> dict[str, Any]:
    """``data`` with who it is for: the API client (key and address) and the user."""
    if client is not None and "client" not in data:
        data = {**data, "client": client}
    if "user" not in data:
        sender = data.get("client")
        key = sender.get("key") if isinstance(sender, dict) else None
        data = {**data, "user": key if isinstance(key, str) and key else local_user()}
    return data


@contextmanager
def attributed(client: dict[str, Any]) -> Iterator[None]:
    """Every record appended inside this block (this thread or task, and work
    run with a copy of its context) carries ``client`` as its ``client`` field.

    The local API wraps each request in one, so its questions sit in the same
    hash chain as the window's, each naming the key (never the secret) and the
    address that asked.
    """
    token = _CLIENT.set(dict(client))
    try:
        yield
    finally:
        _CLIENT.reset(token)


def _lock_for(path: Path) -> threading.Lock:
    key = os.path.normcase(os.path.abspath(path))
    with _PATH_LOCKS_GUARD:
        lock = _PATH_LOCKS.get(key)
        if lock is None:
            lock = _PATH_LOCKS[key] = threading.Lock()
        return lock


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :meth:`AuditLog.verify`.

    ``broken_at`` is the seq of the first record that cannot be trusted (for a
    log cut short: the first missing one); ``reason`` is a sentence for a
    person. A log that is intact may still carry a note in ``reason`` (a torn
    last line waiting to be quarantined) while ``ok`` is True.
    """

    ok: bool
    records: int
    broken_at: int | None
    reason: str | None


# --------------------------------------------------------------------------
# Canonical JSON and hashing


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _record_hash(record: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of ``record`` without its ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


def _json_default(value: Any) -> Any:
    # Callers naturally pass paths, timestamps and sets; store them in a form
    # that reads back identically, so the hash verifies after a round trip.
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} cannot be stored in the audit log")


def _fix_surrogates(text: str) -> str:
    # A file name that is not valid UTF-8 reaches Python as lone surrogates,
    # which cannot be written as UTF-8. Spell them out (\xNN) so the log stays
    # valid UTF-8 and the name is still recognisable.
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _fix_surrogates(value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_fix_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` exactly as it will read back from the file.

    The hash must be computed over what ``verify()`` will later parse, so the
    data makes one JSON round trip first (tuples become lists, int keys become
    strings, paths become strings).
    """
    try:
        text = json.dumps(data, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise StoreError(f"Could not write to the audit log: {err}.") from err
    result: dict[str, Any] = json.loads(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        result = _without_surrogates(result)
    return result


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """A record parsed from one line (without its newline), or None."""
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _looks_like_record(value: dict[str, Any] | None) -> bool:
    # Good enough to take seq/hash from; verify() checks everything else.
    return (
        value is not None
        and isinstance(value.get("seq"), int)
        and not isinstance(value.get("seq"), bool)
        and isinstance(value.get("hash"), str)
    )


def _malformed(record: dict[str, Any]) -> str | None:
    """Why ``record`` does not have the shape of an audit record, or None."""
    keys = set(record)
    if keys != _FIELDS:
        missing = sorted(_FIELDS - keys)
        extra = sorted(keys - _FIELDS)
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(extra))
        return "; ".join(parts)
    seq = record["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool):
        return "seq is not a number"
    for name in ("ts", "event", "prev", "hash"):
        if not isinstance(record[name], str):
            return f"{name} is not text"
    if not isinstance(record["data"], dict):
        return "data is not an object"
    return None


def _find_torn(buf: bytes) -> tuple[int, str | None]:
    """Split the end of ``buf`` into (end of the complete part, torn kind).

    A crash mid-append leaves a last line without its newline ("incomplete"),
    or, rarely, a last line that is not a record at all ("invalid"). Only the
    very last line is ever treated as torn: damage further up is tampering
    and is left for ``verify()`` to report.
    """
    if not buf:
        return 0, None
    if not buf.endswith(b"\n"):
        return buf.rfind(b"\n") + 1, "incomplete"
    start = buf.rfind(b"\n", 0, len(buf) - 1) + 1
    if not _looks_like_record(_parse_line(buf[start:-1])):
        return start, "invalid"
    return len(buf), None


def _torn_note(kind: str | None, size: int) -> str:
    what = "was cut off mid-write" if kind == "incomplete" else "is not a valid record"
    return f"the last line ({size} bytes) {what}"


def _write_error(message: str, err: OSError) -> StoreError:
    """A StoreError for a failed write, with the kind its errno names."""
    kind = FAILED
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        kind = DISK_FULL
    elif err.errno == errno.EROFS:
        kind = READ_ONLY
    return StoreError(f"{message}: {err.strerror or err}.", kind=kind)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Tail:
    size: int  # file size in bytes
    good_end: int  # offset just after the last complete line
    last: dict[str, Any] | None  # the last complete record
    before_last: dict[str, Any] | None  # the record before it, when read
    torn: bytes
    torn_kind: str | None


@dataclass(frozen=True)
class _Anchor:
    seq: int
    hash: str


# --------------------------------------------------------------------------


class AuditLog:
    """An append-only, hash-chained log of what Docent did.

    Open one per data folder and share it between threads: :meth:`append` is
    thread-safe and cheap (it keeps the last seq and hash in memory instead of
    re-reading the log). Open with ``writable=False`` to read or verify a log
    that another process is writing.

    Records that cannot be written now are held in memory, in order, and
    counted by :attr:`held`: a writable log holds them while the disk is full
    (and writes them as soon as there is room); a log opened with
    ``hold=True`` (and not writable: the read-only "answer only" mode, when
    the data folder cannot be written at all) holds every record it is given,
    while reading and verifying still work.
    """

    def __init__(self, folder: Path, *, writable: bool = True, hold: bool = False) -> None:
        """Open the log in ``folder``.

        When writable, the folder is created, a torn last line left by a crash
        is moved to ``quarantine/`` (and noted in a new record), and a log that
        disagrees with its anchor gets an ``audit_anchor_mismatch`` record.
        """
        self.folder = Path(folder)
        self.path = self.folder / LOG_NAME
        self.anchor_path = self.folder / ANCHOR_NAME
        self.writable = writable
        self.hold = hold
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._lock = _lock_for(self.path)
        self._seq = 0
        self._hash = GENESIS
        self._size = 0
        if writable:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise _write_error(f"Cannot create the audit folder {self.folder}", err) from err
            with self._lock:
                self._recover(check_anchor=True)

    # -- public API -------------------------------------------------------

    @staticmethod
    def hash_text(text: str) -> str:
        """SHA-256 hex digest of ``text`` (UTF-8), for prompts and answers."""
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def append(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Append one record and return it, with its ``seq`` and ``hash``.

        The line is on disk (fsync) before the anchor moves, so the anchor is
        never ahead of the log. Raises StoreError if the log cannot be written.
        """
        if not self.writable and not self.hold:
            raise StoreError("The audit log was opened read-only; it cannot be written.", kind=READ_ONLY)
        if not isinstance(event, str) or not event:
            raise StoreError("An audit record needs an event name.")
        if not isinstance(data, dict):
            raise StoreError("An audit record's data must be a dictionary.")
        normalised = _normalise(_attribute(data, _CLIENT.get()))
        with self._lock:
            if not self.writable or (self._held and not self._flush_held()):
                self._held.append((event, normalised))
                return {"event": event, "data": normalised, "held": True}
            try:
                return self._append_locked(event, normalised)
            except StoreError as exc:
                if exc.kind != DISK_FULL:
                    raise
                # A full disk must not stop Docent answering: the record waits
                # in memory, in order, and is written as soon as there is room.
                self._held.append((event, normalised))
                return {"event": event, "data": normalised, "held": True}

    def append_many(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Append several records at once: one write, one fsync, one anchor update.

        The local API's embedding requests arrive by the hundred; a record
        each, written together (group commit), keeps the chain exact without
        paying three fsyncs per request. Falls back to :meth:`append` one by
        one when records are being held (read-only, full disk).
        """
        if not entries:
            return []
        client = _CLIENT.get()
        prepared: list[tuple[str, dict[str, Any]]] = []
        for event, data in entries:
            if not isinstance(event, str) or not event or not isinstance(data, dict):
                raise StoreError("An audit record needs an event name and a dictionary of data.")
            prepared.append((event, _normalise(_attribute(data, client))))
        with self._lock:
            if self.writable and not self._held:
                try:
                    return self._append_many_locked(prepared)
                except StoreError as exc:
                    if exc.kind != DISK_FULL:
                        raise
        return [self.append(event, data) for event, data in prepared]

    def _append_many_locked(self, entries: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Append ``entries`` (normalised) with ``self._lock`` held: one write, one fsync."""
        fh = self._open_for_append()
        if os.fstat(fh.fileno()).st_size != self._size:
            # Someone else changed the file since we last looked (another
            # process writing the same folder, or a failed write): pick up its
            # real end, quarantining a torn line, before chaining onto it.
            fh.close()
            self._recover(check_anchor=False)
            fh = self._open_for_append()
        records: list[dict[str, Any]] = []
        lines: list[bytes] = []
        seq, prev = self._seq, self._hash
        stamp = _iso(_now())
        for event, data in entries:
            seq += 1
            record: dict[str, Any] = {"seq": seq, "ts": stamp, "event": event, "data": data, "prev": prev}
            record["hash"] = prev = _record_hash(record)
            records.append(record)
            lines.append((json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
        block = b"".join(lines)
        with fh:
            try:
                fh.write(block)
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as err:
                # Take back a partial write so the next append does not chain
                # onto garbage; if even that fails, the next open quarantines it.
                try:
                    fh.truncate(self._size)
                except OSError:
                    pass
                raise _write_error(f"Cannot write the audit log {self.path}", err) from err
        self._seq, self._hash = seq, prev
        self._size += len(block)
        self._write_anchor()
        return records

    @property
    def held(self) -> int:
        """Records waiting in memory (the disk was full, or the log is held read-only)."""
        return len(self._held)

    def _flush_held(self) -> bool:
        """Write held records in order; False if the disk is still full."""
        while self._held:
            event, data = self._held[0]
            try:
                self._append_locked(event, data)
            except StoreError as exc:
                if exc.kind == DISK_FULL:
                    return False
                raise
            self._held.pop(0)
        return True

    def records(self) -> list[dict[str, Any]]:
        """Every record in order. A torn last line is not a record and is left out.

        Raises StoreError if the log cannot be read or a line in it is not a
        record (use :meth:`verify` to find out what is wrong).
        """
        with self._lock:
            buf = self._read_log()
        end, _kind = _find_torn(buf)
        out: list[dict[str, Any]] = []
        for number, line in enumerate(buf[:end].split(b"\n")[:-1] if end else [], 1):
            record = _parse_line(line)
            if record is None:
                raise StoreError(
                    f"The audit log {self.path} cannot be read: line {number} is not "
                    "a valid record. Run `docent audit verify` for details."
                )
            out.append(record)
        return out

    def verify(self) -> VerifyResult:
        """Recompute the chain and compare its end with the anchor.

        Fails at the first record that was edited, removed, reordered or
        inserted, or when the log ends before the anchored record. A torn last
        line alone does not fail it (a crash is not tampering).
        """
        with self._lock:
            # The anchor first: a writer moves it only after the line is on
            # disk, so a log read afterwards is never behind this anchor.
            anchor, anchor_problem = self._read_anchor()
            buf = self._read_log()

        end, torn_kind = _find_torn(buf)
        torn_size = len(buf) - end
        lines = buf[:end].split(b"\n")[:-1] if end else []
        count = len(lines)

        def broken(at: int, reason: str) -> VerifyResult:
            return VerifyResult(ok=False, records=count, broken_at=at, reason=reason)

        prev_hash = GENESIS
        anchored_hash: str | None = None
        for number, line in enumerate(lines, 1):
            expected = number
            record = _parse_line(line)
            if record is None:
                return broken(
                    expected,
                    f"line {number} of the log is not a valid record "
                    f"(record {expected} was expected there)",
                )
            shape = _malformed(record)
            if shape is not None:
                return broken(expected, f"record {expected} is malformed ({shape})")
            seq = record["seq"]
            if seq != expected:
                if seq > expected:
                    if expected == 1:
                        why = f"the log starts at record {seq} instead of record 1"
                    else:
                        why = (
                            f"record {expected} is missing: the log goes from "
                            f"record {expected - 1} to record {seq}"
                        )
                else:
                    why = (
                        f"record {seq} appears out of order at line {number}, "
                        f"where record {expected} was expected"
                    )
                return broken(expected, why)
            if _record_hash(record) != record["hash"]:
                return broken(seq, f"record {seq} was edited (its hash does not match)")
            if record["prev"] != prev_hash:
                if seq == 1:
                    why = "record 1 does not start the chain (its prev link is not the start value)"
                else:
                    why = (
                        f"record {seq} does not follow record {seq - 1} (its prev link "
                        f"does not match; record {seq - 1} was replaced or rewritten)"
                    )
                return broken(seq, why)
            if record["event"] == EVENT_ANCHOR_MISMATCH:
                detail = record["data"].get("reason")
                return broken(
                    seq,
                    f"record {seq} notes that the log had been damaged before it was "
                    f"written: {detail or 'it did not match its anchor'}",
                )
            if anchor is not None and seq == anchor.seq:
                anchored_hash = record["hash"]
            prev_hash = record["hash"]

        torn_suffix = (
            f", followed by a torn line of {torn_size} bytes" if torn_kind else ""
        )
        if anchor_problem is not None:
            return broken(count + 1, anchor_problem)
        if anchor is None:
            # The first append writes the line, then the anchor; a crash in
            # between leaves one record and no anchor. More records than that
            # without an anchor means it was removed, and with it the check
            # for records cut from the end.
            if count >= 2:
                return broken(
                    count + 1,
                    f"the anchor file ({ANCHOR_NAME}) is missing, so records removed "
                    "from the end of the log could not be detected",
                )
        elif anchor.seq > count:
            ends = f"ends at {count}" if count else "is empty"
            return broken(
                count + 1,
                f"the log was cut short: the anchor expects record {anchor.seq} "
                f"but the log {ends}{torn_suffix}",
            )
        elif anchored_hash != anchor.hash:
            return broken(
                anchor.seq,
                f"record {anchor.seq} does not match the anchor (it was replaced "
                "after it was written)",
            )

        note = None
        if torn_kind is not None:
            note = (
                f"{_torn_note(torn_kind, torn_size)}; a torn last line will be "
                "quarantined on the next write"
            )
        return VerifyResult(ok=True, records=count, broken_at=None, reason=note)

    # -- internals --------------------------------------------------------

    def _read_log(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as err:
            raise StoreError(
                f"Cannot read the audit log {self.path}: {err.strerror or err}."
            ) from err

    def _read_anchor(self) -> tuple[_Anchor | None, str | None]:
        """(anchor, None), (None, None) when there is none, or (None, problem)."""
        try:
            raw = self.anchor_path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as err:
            return None, f"the anchor file ({ANCHOR_NAME}) cannot be read: {err.strerror or err}"
        value = _parse_line(raw.strip())
        if value is not None:
            seq, digest = value.get("seq"), value.get("hash")
            if (
                isinstance(seq, int)
                and not isinstance(seq, bool)
                and seq >= 1
                and isinstance(digest, str)
                and len(digest) == 64
                and set(digest) <= _HEX
            ):
                return _Anchor(seq, digest), None
        return None, f"the anchor file ({ANCHOR_NAME}) is damaged"

    def _write_anchor(self) -> None:
        # Atomic (temporary file, then rename): a crash leaves either the old
        # anchor or the new one, never half of one.
        payload = json.dumps({"seq": self._seq, "hash": self._hash}).encode("utf-8")
        try:
            atomic_write_bytes(self.anchor_path, payload)
        except OSError as err:
            raise _write_error(f"Cannot update the audit anchor {self.anchor_path}", err) from err

    def _scan_tail(self) -> _Tail:
        """Read only the end of the log: enough for the last two records."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return _Tail(0, 0, None, None, b"", None)
        except OSError as err:
            raise StoreError(
                f"Cannot read the audit log {self.path}: {err.strerror or err}."
            ) from err
        with fh:
            size = fh.seek(0, os.SEEK_END)
            pos, buf = size, b""
            # Four newlines cover: a line cut off mid-write (or an invalid last
            # line), the last complete record, and the one before it.
            while pos > 0 and buf.count(b"\n") < 4:
                step = min(64 * 1024, pos)
                pos -= step
                fh.seek(pos)
                buf = fh.read(step) + buf
        end, kind = _find_torn(buf)
        records: list[dict[str, Any] | None] = []
        body = buf[:end]
        lines = body.split(b"\n")[:-1] if body else []
        if pos > 0 and lines:
            lines = lines[1:]  # the first piece may start mid-line
        for line in lines[-2:]:
            records.append(_parse_line(line))
        last = records[-1] if records else None
        before = records[-2] if len(records) >= 2 else None
        if lines and not _looks_like_record(last):
            raise StoreError(
                f"The audit log {self.path} is damaged at its end and cannot be "
                "continued. Run `docent audit verify` for details, and move the "
                "audit folder aside to start a new log."
            )
        return _Tail(size, pos + end, last, before, buf[end:], kind)

    def _recover(self, *, check_anchor: bool) -> None:
        """Bring the in-memory end of the chain in line with the file.

        Quarantines a torn last line, then (on open) compares the log's end
        with the anchor. Called with ``self._lock`` held.
        """
        anchor, anchor_problem = self._read_anchor() if check_anchor else (None, None)
        tail = self._scan_tail()
        quarantined: dict[str, Any] | None = None
        if tail.torn:
            quarantined = self._quarantine(tail)
        if tail.last is not None:
            self._seq = int(tail.last["seq"])
            self._hash = str(tail.last["hash"])
        else:
            self._seq, self._hash = 0, GENESIS
        self._size = tail.good_end

        mismatch = None
        if check_anchor:
            mismatch = anchor_problem or self._anchor_mismatch(anchor, tail)
        if quarantined is not None:
            self._append_locked(EVENT_QUARANTINE, quarantined)
        if mismatch is not None:
            self._append_locked(
                EVENT_ANCHOR_MISMATCH,
                {
                    "reason": mismatch,
                    "anchor": None if anchor is None else {"seq": anchor.seq, "hash": anchor.hash},
                    "log_last_seq": tail.last["seq"] if tail.last else 0,
                },
            )

    def _anchor_mismatch(self, anchor: _Anchor | None, tail: _Tail) -> str | None:
        """Why the log's end disagrees with the anchor, or None.

        Only what the tail shows is checked (cheap); verify() checks the rest.
        """
        last_seq = int(tail.last["seq"]) if tail.last else 0
        if anchor is None:
            if last_seq >= 2:
                return (
                    f"the anchor file ({ANCHOR_NAME}) was missing although the log "
                    f"had {last_seq} records"
                )
            return None
        if anchor.seq > last_seq:
            ends = f"ended at {last_seq}" if last_seq else "was empty"
            torn = " (a torn line after it was quarantined)" if tail.torn else ""
            return (
                f"the log was cut short: the anchor expected record {anchor.seq} "
                f"but the log {ends}{torn}"
            )
        assert tail.last is not None
        if anchor.seq == last_seq and tail.last.get("hash") != anchor.hash:
            return f"record {anchor.seq} did not match the anchor"
        if anchor.seq == last_seq - 1:
            if tail.before_last is not None:
                found = tail.before_last.get("hash")
            else:
                found = tail.last.get("prev")
            if found != anchor.hash:
                return f"record {anchor.seq} did not match the anchor"
        return None

    def _quarantine(self, tail: _Tail) -> dict[str, Any]:
        """Move the torn bytes to quarantine/, then cut them from the log."""
        qdir = self.folder / QUARANTINE_DIR
        stamp = _now().strftime("%Y%m%dT%H%M%S%fZ")
        target = qdir / f"torn-{stamp}.jsonl"
        n = 1
        while target.exists():
            n += 1
            target = qdir / f"torn-{stamp}-{n}.jsonl"
        try:
            qdir.mkdir(parents=True, exist_ok=True)
            # The copy is on disk before the log is truncated: a crash in
            # between leaves the bytes in both places, never in neither.
            with open(target, "xb") as fh:
                fh.write(tail.torn)
                fh.flush()
                os.fsync(fh.fileno())
            fsync_dir(qdir)
            with open(self.path, "r+b") as fh:
                fh.truncate(tail.good_end)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            raise _write_error(f"Cannot quarantine the torn end of the audit log {self.path}", err) from err
        return {
            "file": f"{QUARANTINE_DIR}/{target.name}",
            "bytes": len(tail.torn),
            "offset": tail.good_end,
            "sha256": hashlib.sha256(tail.torn).hexdigest(),
            "reason": _torn_note(tail.torn_kind, len(tail.torn)),
        }

    def _open_for_append(self) -> BinaryIO:
        try:
            return open(self.path, "ab")
        except OSError as err:
            raise _write_error(f"Cannot write the audit log {self.path}", err) from err

    def _append_locked(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Append with ``self._lock`` held and ``data`` already normalised."""
        return self._append_many_locked([(event, data)])[0]
