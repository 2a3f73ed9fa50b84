"""What the activity store says about the recent past: ``docent stats``'s figures.

Percentiles of answer latency and speed, retrieval latency, indexing
throughput and failures over a window (the last hour, day or week), plus the
error budgets (:mod:`app.core.slo`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from app.config import Settings
from app.core import slo
from app.core.stores.activity import NS_PER_S, ActivityStore
from app.telemetry import names

WINDOWS = {"hour": 3600, "day": 86400, "week": 7 * 86400}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0–1) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def busy_seconds(intervals: Sequence[tuple[int, int]]) -> float:
    """Seconds covered by the union of ``(start_ns, end_ns)`` intervals (files
    are read ahead, so their spans overlap: adding them up would count twice)."""
    total = 0
    end_so_far: int | None = None
    start_run = 0
    for start, end in sorted(intervals):
        if end_so_far is None or start > end_so_far:
            if end_so_far is not None:
                total += end_so_far - start_run
            start_run, end_so_far = start, end
        else:
            end_so_far = max(end_so_far, end)
    if end_so_far is not None:
        total += end_so_far - start_run
    return total / NS_PER_S


def _spread(values: list[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)
    return {"p50": r(percentile(values, 0.5)), "p95": r(percentile(values, 0.95))}


def _cache(answers: Sequence[Any]) -> dict[str, Any]:
    """How often a question already answered was answered from the cache."""
    looked = [o.attributes[names.CACHE_HIT] for o in answers if names.CACHE_HIT in o.attributes]
    hits = sum(1 for hit in looked if hit is True)
    return {"lookups": len(looked), "hits": hits,
            "hit_ratio": round(hits / len(looked), 3) if looked else None}


def summarise(store: ActivityStore, settings: Settings, window: str = "day",
              now_ns: int | None = None) -> dict[str, Any]:
    """The figures of the last ``window`` (hour, day, week) and the error budgets."""
    now_ns = now_ns if now_ns is not None else time.time_ns()
    since = now_ns - WINDOWS[window] * NS_PER_S
    answers = store.operations(kind="answer", since_ns=since, limit=None)
    searches = store.operations(kind="search", since_ns=since, limit=None)
    files = store.operations(kind="index", since_ns=since, limit=None)
    requests = store.operations(kind="request", since_ns=since, limit=None)
    outcomes = lambda ops, name: sum(1 for o in ops if o.outcome == name)  # noqa: E731
    chunks = sum(o.chunks or 0 for o in files)
    busy = busy_seconds([(o.start_ns, o.start_ns + int(o.duration_ms * 1e6)) for o in files])
    retrieval = [o.retrieval_ms for o in answers + searches if o.retrieval_ms is not None]
    return {
        "window": window,
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since / NS_PER_S)),
        "answers": {
            "count": len(answers), "declined": outcomes(answers, "declined"),
            "stopped": outcomes(answers, "stopped"), "errors": outcomes(answers, "error"),
            "time_to_first_token_ms": _spread([o.ttft_ms for o in answers if o.ttft_ms is not None]),
            "tokens_per_second": _spread([o.tokens_per_s for o in answers if o.tokens_per_s is not None]),
            "duration_ms": _spread([o.duration_ms for o in answers]),
            "cache": _cache(answers),
        },
        "retrieval_ms": {"count": len(retrieval), **_spread(retrieval)},
        "searches": {"count": len(searches), "errors": outcomes(searches, "error")},
        "indexing": {
            "files": len(files), "indexed": outcomes(files, "ok"), "failed": outcomes(files, "failed"),
            "errors": outcomes(files, "error"), "chunks": chunks,
            "chunks_per_second": round(chunks / busy, 1) if busy > 0 and chunks else None,
        },
        "requests": {
            "count": len(requests), "4xx": outcomes(requests, "4xx"),
            "5xx": outcomes(requests, "5xx") + outcomes(requests, "error"),
            "duration_ms": _spread([o.duration_ms for o in requests]),
        },
        "objectives": [b.to_json() for b in slo.budgets(store, settings, now_ns)],
    }
