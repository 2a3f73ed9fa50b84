"""Reading the audit log as it grows, and saying in words what a record holds.

:class:`LogTail` reads only the complete lines appended since its last read,
so following a long log costs nothing per change; it starts over only when
the file shrank or was rewritten. The window's audit panel follows the log
with it; nothing here needs Qt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# Bytes just before the read offset that must still be there on the next read;
# if they changed, the file was rewritten and the reader starts over.
_GUARD_BYTES = 64


@dataclass(frozen=True)
class AuditRow:
    """One line of the log as the table shows it.

    ``record`` is None when the line is not valid JSON (a damaged log); then
    ``raw`` holds the line so the user can still see it.
    """

    line: int
    record: dict[str, Any] | None
    raw: str


class LogTail:
    """Reads the complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0
        self._guard = b""
        self._mtime_ns: int | None = None

    def read(self) -> tuple[bool, bool, list[AuditRow]]:
        """(file changed, started over, new rows).

        "Changed" also covers an edit that added no line, which only a chain
        check can judge. Raises OSError if the file cannot be read.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            restarted = self.offset > 0 or self._mtime_ns is not None
            self._restart()
            return restarted, restarted, []
        if st.st_size == self.offset and st.st_mtime_ns == self._mtime_ns:
            return False, False, []
        with open(self.path, "rb") as fh:
            restarted = False
            if st.st_size < self.offset or not self._guard_holds(fh):
                self._restart()
                restarted = True
            fh.seek(self.offset)
            chunk = fh.read()
        self._mtime_ns = st.st_mtime_ns
        # A line without its newline is still being written (or torn by a
        # crash): leave it for the next read instead of showing half a record.
        end = chunk.rfind(b"\n") + 1
        complete = chunk[:end]
        rows = []
        for raw in complete.split(b"\n")[:-1] if complete else []:
            self.lines += 1
            rows.append(parse_row(self.lines, raw))
        self.offset += len(complete)
        self._guard = (self._guard + complete)[-_GUARD_BYTES:]
        return True, restarted, rows

    def _guard_holds(self, fh: Any) -> bool:
        if not self._guard:
            return True
        fh.seek(self.offset - len(self._guard))
        return fh.read(len(self._guard)) == self._guard

    def _restart(self) -> None:
        self.offset = 0
        self.lines = 0
        self._guard = b""
        self._mtime_ns = None


def parse_row(line: int, raw: bytes) -> AuditRow:
    """One raw log line (1-based ``line``) as a row; a line that is not a JSON object keeps its text."""
    text = raw.decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return AuditRow(line, value if isinstance(value, dict) else None, text)


# --------------------------------------------------------------------------
# What a row says


def local_time(ts: object) -> str:
    """An ISO-8601 UTC stamp as local time a person reads, or the input as is."""
    if not isinstance(ts, str) or not ts:
        return ""
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_text(value: object, limit: int = 60) -> str:
    """``value`` (text, or anything as compact JSON) on one line, cut to ``limit`` characters."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize(event: str, data: dict[str, Any]) -> str:
    """One line describing a record's data, tailored to the common events."""
    if event in ("ask", "answer") and isinstance(data.get("question"), str):
        text = f"“{' '.join(data['question'].split())}”"
        if event == "answer":
            if data.get("stopped"):
                text += " — stopped"
            if data.get("declined"):
                text += " — declined"
            else:
                cites = data.get("citations")
                n = len(cites) if isinstance(cites, list) else 0
                text += f" — {n} citation{'' if n == 1 else 's'}"
        return text
    if event in ("ingest", "remove") and "path" in data:
        details = []
        if data.get("status"):
            details.append(str(data["status"]))
        if isinstance(data.get("chunks"), int):
            n = data["chunks"]
            details.append(f"{n} chunk{'' if n == 1 else 's'}")
        if data.get("reason"):
            details.append(short_text(data["reason"], 120))
        return str(data["path"]) + (f" ({', '.join(details)})" if details else "")
    for key in ("reason", "message", "error"):
        if isinstance(data.get(key), str) and data[key]:
            return " ".join(data[key].split())
    # Who it was for (the user, an API client) is not what happened: it is shown apart.
    return ", ".join(f"{k}={short_text(v)}" for k, v in data.items() if k not in ("user", "client"))
