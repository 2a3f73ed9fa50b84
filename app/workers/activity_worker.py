"""Reading the activity store for the Activity panel, off the GUI thread.

:func:`read_activity` turns the store's operations into what the panel
draws: per-bucket percentiles for the charts, the recent operations and the
error budgets. :class:`ActivityReader` runs it on Qt's thread pool (a week
of operations can take a moment to read) and hands the result back as a
signal; :func:`read_trace` reads one operation's spans for a waterfall.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.config import DataPaths, Settings
from app.core import slo
from app.core.stores.activity import NS_PER_S, ActivityStore, Operation, SpanRow
from app.errors import StoreError

#: The panel's ranges: (seconds shown, buckets).
RANGES: dict[str, tuple[int, int]] = {"hour": (3600, 30), "day": (86_400, 48), "week": (7 * 86_400, 56)}
RECENT_OPERATIONS = 200
_FAILED = ("failed",)
_ERRORS = ("error", "5xx")


@dataclass
class ActivitySnapshot:
    """What the Activity panel shows for one range.

    Attributes:
        buckets: each bucket's start (ns since the epoch), oldest first.
        series: chart name → list of (series label → one value per bucket, None where empty).
        operations: the most recent operations, newest first.
        budgets: each objective's error budget.
        error: a sentence when the store could not be read.
    """

    range_name: str
    since_ns: int
    bucket_ns: int
    buckets: list[int]
    series: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    budgets: list[slo.Budget] = field(default_factory=list)
    error: str | None = None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q * 100) - 1))])


def _bucketed(rows: list[tuple[int, float | None, str]], since_ns: int, bucket_ns: int,
              count: int) -> list[list[tuple[float | None, str]]]:
    out: list[list[tuple[float | None, str]]] = [[] for _ in range(count)]
    for start, value, outcome in rows:
        i = (start - since_ns) // bucket_ns
        if 0 <= i < count:
            out[i].append((value, outcome))
    return out


def read_activity(paths: DataPaths, settings: Settings, range_name: str = "hour",
                  now_ns: int | None = None) -> ActivitySnapshot:
    """The charts' series, recent operations and budgets over ``range_name``."""
    now_ns = now_ns if now_ns is not None else time.time_ns()
    seconds, count = RANGES[range_name]
    bucket_ns = seconds * NS_PER_S // count
    # Buckets end at the next bucket boundary after now, so they do not shift on every refresh.
    end = (now_ns // bucket_ns + 1) * bucket_ns
    since = end - count * bucket_ns
    snap = ActivitySnapshot(range_name, since, bucket_ns, [since + i * bucket_ns for i in range(count)])
    store = ActivityStore(paths.activity, readonly=True)
    try:
        def per_bucket(kind: str, column: str) -> list[list[tuple[float | None, str]]]:
            return _bucketed(store.values(kind, column, since), since, bucket_ns, count)

        def figures(cells: list[list[tuple[float | None, str]]], q: float) -> list[float | None]:
            return [_percentile([v for v, _ in cell if v is not None], q) for cell in cells]

        ttft = per_bucket("answer", "ttft_ms")
        speed = per_bucket("answer", "tokens_per_s")
        retrieval = [a + b for a, b in zip(per_bucket("answer", "retrieval_ms"),
                                           per_bucket("search", "retrieval_ms"), strict=True)]
        chunks = per_bucket("index", "chunks")
        durations = per_bucket("index", "duration_ms")
        rate: list[float | None] = []
        for c, d in zip(chunks, durations, strict=True):
            # Chunks per second of indexing: what the indexer managed while it worked.
            busy_s = sum(v or 0 for v, _ in d) / 1000
            rate.append(sum(v or 0 for v, _ in c) / busy_s if c and busy_s > 0 else None)
        failed = [float(sum(1 for _, o in cell if o in _FAILED)) for cell in durations]
        errors = [0.0] * count
        for kind in ("answer", "search", "index", "request", "embed"):
            for i, cell in enumerate(per_bucket(kind, "duration_ms")):
                errors[i] += sum(1 for _, o in cell if o in _ERRORS)
        snap.series = {
            "ttft": {"p50": [None if v is None else v / 1000 for v in figures(ttft, 0.5)],
                     "p95": [None if v is None else v / 1000 for v in figures(ttft, 0.95)]},
            "speed": {"median": figures(speed, 0.5)},
            "retrieval": {"p50": figures(retrieval, 0.5), "p95": figures(retrieval, 0.95)},
            "indexing": {"chunks/s": rate},
            "failures": {"failed files": failed, "errors": errors},
        }
        snap.operations = store.operations(since_ns=since, limit=RECENT_OPERATIONS)
        snap.budgets = slo.budgets(store, settings, now_ns)
    except StoreError as exc:
        snap.error = str(exc)
    finally:
        store.close()
    return snap


def read_budgets(paths: DataPaths, settings: Settings, now_ns: int | None = None) -> list[slo.Budget]:
    """Only the error budgets (the window's periodic burn-rate check)."""
    store = ActivityStore(paths.activity, readonly=True)
    try:
        return slo.budgets(store, settings, now_ns)
    finally:
        store.close()


def read_trace(paths: DataPaths, trace_id: str) -> tuple[Operation | None, list[SpanRow]]:
    """One trace's operation and spans (empty once pruned); small enough to read on the GUI thread."""
    store = ActivityStore(paths.activity, readonly=True)
    try:
        return store.operation(trace_id), store.spans(trace_id)
    finally:
        store.close()


class _Signals(QObject):
    done = Signal(int, object)  # request number, ActivitySnapshot | list[Budget] | Exception


class _Read(QRunnable):
    def __init__(self, number: int, signals: _Signals, job) -> None:  # noqa: ANN001 - a callable
        super().__init__()
        self.number, self.signals, self.job = number, signals, job

    def run(self) -> None:
        try:
            result = self.job()
        except (StoreError, OSError) as exc:  # shown as a sentence, never a crash
            result = exc
        self.signals.done.emit(self.number, result)


class ActivityReader(QObject):
    """Reads snapshots on the thread pool; only the newest request's answer is delivered.

    Signals:
        snapshot(ActivitySnapshot): the panel's data.
        budgets(list): the error budgets (from :meth:`check_budgets`).
        failed(str): the store could not be read.
    """

    snapshot = Signal(object)
    budgets = Signal(object)
    failed = Signal(str)

    def __init__(self, paths: DataPaths, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self._numbers = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._kinds: dict[int, str] = {}
        self._signals = _Signals(self)
        self._signals.done.connect(self._done)

    def read(self, settings: Settings, range_name: str) -> None:
        """Read the panel's data for ``range_name``; ``snapshot`` follows."""
        self._submit("snapshot", lambda: read_activity(self.paths, settings, range_name))

    def check_budgets(self, settings: Settings) -> None:
        """Read the error budgets; ``budgets`` follows."""
        self._submit("budgets", lambda: read_budgets(self.paths, settings))

    def _submit(self, what: str, job) -> None:  # noqa: ANN001 - a callable
        number = next(self._numbers)
        self._latest[what] = number
        self._kinds[number] = what
        QThreadPool.globalInstance().start(_Read(number, self._signals, job))

    def _done(self, number: int, result: object) -> None:
        what = self._kinds.pop(number, "")
        if self._latest.get(what) != number:
            return  # an older read finishing after a newer one
        if isinstance(result, Exception):
            self.failed.emit(str(result))
        elif what == "snapshot":
            self.snapshot.emit(result)
        else:
            self.budgets.emit(result)
