"""The activity store: recent operations and their spans, in the data folder.

Every span Docent makes is handed here (by :class:`ActivityRecorder`, an
OpenTelemetry span exporter that never leaves the machine). A span that
marks an operation (``docent.operation``: an answer, a search, a file
indexed, an API request) also becomes one row of ``operations`` with the
figures the Activity panel charts and the error budgets count: duration,
outcome, time to first token, tokens per second, retrieval time, chunks.

Operations are kept for the longest objective window (and a week more);
spans only for the most recent operations (config.ACTIVITY_TRACES_KEPT), as
the waterfalls need them. Nothing here holds question or document text
unless the user turned content recording on (then it is in the spans'
attributes, as on any exported span).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from app import config
from app.core.stores import migrations
from app.core.stores.sqlite import SqliteStore
from app.errors import StoreError
from app.telemetry import names

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
_PRUNE_EVERY = 64  # exports between two prunings
_KEEP_DAYS_BEYOND_WINDOW = 7


def _m001_initial(db: sqlite3.Connection) -> None:
    migrations.run_script(db, """
        CREATE TABLE operations (
            id INTEGER PRIMARY KEY,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            label TEXT,
            start_ns INTEGER NOT NULL,
            duration_ms REAL NOT NULL,
            outcome TEXT NOT NULL,
            ttft_ms REAL,
            tokens_per_s REAL,
            retrieval_ms REAL,
            chunks INTEGER,
            attributes TEXT NOT NULL
        );
        CREATE INDEX operations_by_kind ON operations (kind, start_ns);
        CREATE INDEX operations_by_start ON operations (start_ns);
        CREATE TABLE spans (
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            parent_id TEXT,
            name TEXT NOT NULL,
            start_ns INTEGER NOT NULL,
            end_ns INTEGER NOT NULL,
            status TEXT NOT NULL,
            attributes TEXT NOT NULL,
            events TEXT NOT NULL,
            PRIMARY KEY (trace_id, span_id)
        );
        CREATE INDEX spans_by_start ON spans (start_ns)
    """)


MIGRATIONS = [_m001_initial]


@dataclass(frozen=True)
class Operation:
    """One operation as the Activity panel lists it.

    Attributes:
        kind: answer, search, index, request or embed.
        label: a short name (a file's name, an API route, "question"); never
            the question unless content recording is on.
        outcome: ok; failed (the file's problem, e.g. a corrupt PDF); error
            (Docent's own); declined; stopped; or an HTTP status class for
            requests (ok, 4xx, 5xx).
    """

    trace_id: str
    span_id: str
    kind: str
    label: str
    start_ns: int
    duration_ms: float
    outcome: str
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    retrieval_ms: float | None = None
    chunks: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """This operation for ``docent stats --json`` and the service."""
        return {
            "trace_id": self.trace_id, "span_id": self.span_id, "kind": self.kind, "label": self.label,
            "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.start_ns / NS_PER_S)),
            "duration_ms": round(self.duration_ms, 1), "outcome": self.outcome,
            "ttft_ms": _round(self.ttft_ms), "tokens_per_s": _round(self.tokens_per_s),
            "retrieval_ms": _round(self.retrieval_ms), "chunks": self.chunks,
        }


@dataclass(frozen=True)
class SpanRow:
    """One recorded span (for a waterfall)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


class ActivityStore(SqliteStore):
    """``activity.sqlite3``: operations and their spans (see the module's doc).

    Args:
        path: the file (created with its folder when writable).
        readonly: read only (``docent stats`` while the app runs).
    """

    what = "activity record"
    MIGRATIONS = MIGRATIONS
    damaged_advice = "It may be damaged; move it aside (only the Activity panel's history is lost)."
    closed_reads_empty = True

    def __init__(self, path: Path, *, readonly: bool = False,
                 keep_days: int = config.SLO_WINDOW_DAYS + _KEEP_DAYS_BEYOND_WINDOW,
                 keep_traces: int = config.ACTIVITY_TRACES_KEPT) -> None:
        super().__init__(path, readonly=readonly)
        self.keep_days = keep_days
        self.keep_traces = keep_traces
        self._exports = 0

    # --- writing ------------------------------------------------------------

    def record(self, spans: Sequence[ReadableSpan]) -> None:
        """Store finished spans, and an operation row for each operation span."""
        span_rows: list[tuple[object, ...]] = []
        op_rows: list[tuple[object, ...]] = []
        for s in spans:
            ctx = s.get_span_context()
            if ctx is None or s.start_time is None or s.end_time is None:
                continue
            trace_id, span_id = _hex(ctx.trace_id, 32), _hex(ctx.span_id, 16)
            attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in (s.attributes or {}).items()}
            status = s.status.status_code.name.lower()
            if status == "error" and s.status.description:
                status = f"error: {s.status.description}"
            events = [{"name": e.name, "ts_ns": e.timestamp,
                       "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (e.attributes or {}).items()}}
                      for e in s.events]
            span_rows.append((trace_id, span_id, _hex(s.parent.span_id, 16) if s.parent else None, s.name,
                              s.start_time, s.end_time, status, json.dumps(attrs, default=str),
                              json.dumps(events, default=str)))
            kind = attrs.get(names.KIND)
            if kind:
                outcome = str(attrs.get(names.OUTCOME) or ("error" if status.startswith("error") else "ok"))
                op_rows.append((trace_id, span_id, str(kind), str(attrs.get(names.LABEL) or s.name), s.start_time,
                                (s.end_time - s.start_time) / 1e6, outcome, attrs.get(names.TTFT_MS),
                                attrs.get(names.TOKENS_PER_S), attrs.get(names.RETRIEVAL_MS),
                                attrs.get(names.CHUNKS), json.dumps(attrs, default=str)))
        if not span_rows:
            return
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", span_rows)
            db.executemany(
                "INSERT INTO operations (trace_id, span_id, kind, label, start_ns, duration_ms, outcome, ttft_ms, "
                "tokens_per_s, retrieval_ms, chunks, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                op_rows)
        self._exports += 1
        if self._exports % _PRUNE_EVERY == 0:
            self.prune()

    def prune(self, now_ns: int | None = None) -> None:
        """Forget operations older than the objective window (and a week), and
        the spans of all but the most recent operations."""
        now_ns = now_ns if now_ns is not None else time.time_ns()
        with self._tx() as db:
            db.execute("DELETE FROM operations WHERE start_ns < ?", (now_ns - self.keep_days * DAY_NS,))
            # The start of the keep_traces-th most recent operation: older spans go.
            row = db.execute("SELECT start_ns FROM operations ORDER BY start_ns DESC LIMIT 1 OFFSET ?",
                             (max(0, self.keep_traces - 1),)).fetchone()
            if row is not None:
                db.execute("DELETE FROM spans WHERE start_ns < ?", (row[0],))

    # --- reading ------------------------------------------------------------

    def operations(self, *, kind: str | None = None, since_ns: int | None = None,
                   limit: int | None = 100) -> list[Operation]:
        """Operations, the most recent first."""
        sql = "SELECT * FROM operations WHERE 1=1"
        params: list[object] = []
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if since_ns is not None:
            sql += " AND start_ns >= ?"
            params.append(since_ns)
        sql += " ORDER BY start_ns DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._operation(r) for r in self._query(sql, params)]

    def operation(self, trace_id: str, span_id: str | None = None) -> Operation | None:
        """The operation of ``trace_id`` (the outermost one, or the one of ``span_id``)."""
        if span_id is not None:
            rows = self._query("SELECT * FROM operations WHERE trace_id = ? AND span_id = ?", (trace_id, span_id))
        else:
            rows = self._query("SELECT * FROM operations WHERE trace_id = ? ORDER BY start_ns, duration_ms DESC",
                               (trace_id,))
        return self._operation(rows[0]) if rows else None

    def spans(self, trace_id: str) -> list[SpanRow]:
        """Every recorded span of one trace, in start order (empty once pruned)."""
        rows = self._query("SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns, end_ns DESC", (trace_id,))
        return [SpanRow(r["trace_id"], r["span_id"], r["parent_id"], r["name"], r["start_ns"], r["end_ns"],
                        r["status"], json.loads(r["attributes"]), json.loads(r["events"])) for r in rows]

    def counts(self, kind: str, since_ns: int, *, bad_sql: str, params: Sequence[object] = ()) -> tuple[int, int]:
        """(all, bad) operations of ``kind`` since ``since_ns``; ``bad_sql`` is a
        condition on the row (e.g. ``outcome = 'error'``)."""
        row = self._query(
            f"SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN {bad_sql} THEN 1 ELSE 0 END), 0) AS bad "
            "FROM operations WHERE kind = ? AND start_ns >= ?", (*params, kind, since_ns))
        return (int(row[0]["n"]), int(row[0]["bad"])) if row else (0, 0)

    def values(self, kind: str, column: str, since_ns: int) -> list[tuple[int, float | None, str]]:
        """(start_ns, value, outcome) of each ``kind`` operation since ``since_ns``,
        oldest first; ``column`` is one of the operation's figures."""
        if column not in ("duration_ms", "ttft_ms", "tokens_per_s", "retrieval_ms", "chunks"):
            raise ValueError(f"unknown figure {column!r}")
        rows = self._query(f"SELECT start_ns, {column} AS v, outcome FROM operations "
                           "WHERE kind = ? AND start_ns >= ? ORDER BY start_ns", (kind, since_ns))
        return [(r["start_ns"], r["v"], r["outcome"]) for r in rows]

    @staticmethod
    def _operation(r: sqlite3.Row) -> Operation:
        return Operation(r["trace_id"], r["span_id"], r["kind"], r["label"] or r["kind"], r["start_ns"],
                         r["duration_ms"], r["outcome"], r["ttft_ms"], r["tokens_per_s"], r["retrieval_ms"],
                         r["chunks"], json.loads(r["attributes"]))


class ActivityRecorder(SpanExporter):
    """Hands finished spans to an :class:`ActivityStore` (opened on first use,
    so a process that makes no span never creates the file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._store: ActivityStore | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            with self._lock:
                if self._store is None:
                    if not self.path.parent.is_dir():
                        return SpanExportResult.FAILURE  # the data folder went away: record nothing
                    self._store = ActivityStore(self.path)
                self._store.record(spans)
        except (StoreError, sqlite3.Error, OSError):
            # A full or read-only disk costs the activity history, never the work.
            self.failures += 1
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
