"""Error budgets and ``docent stats``, from operations recorded through the real
telemetry path (spans → ActivityRecorder → the activity store)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import telemetry
from app.cli import run
from app.config import DataPaths, Settings
from app.core import slo, stats
from app.core.stores.activity import NS_PER_S, ActivityRecorder, ActivityStore
from app.telemetry import names

MINUTE = 60 * NS_PER_S


@pytest.fixture
def data(tmp_path: Path) -> Iterator[DataPaths]:
    paths = DataPaths(tmp_path / "data")
    paths.root.mkdir()
    telemetry.configure(telemetry.TraceOptions(recorder=ActivityRecorder(paths.activity)))
    yield paths
    telemetry.shutdown()


def operation(kind: str, *, ago_s: float, duration_ms: float, **attrs: object) -> None:
    """One finished operation span, ``ago_s`` seconds ago."""
    end = time.time_ns() - int(ago_s * NS_PER_S)
    start = end - int(duration_ms * 1e6)
    values = {names.KIND: kind, **{k: v for k, v in attrs.items() if v is not None}}
    span = telemetry.tracer().start_span(kind, attributes=values, start_time=start)  # type: ignore[arg-type]
    span.end(end_time=end)


def store_of(paths: DataPaths) -> ActivityStore:
    assert telemetry.force_flush()
    return ActivityStore(paths.activity, readonly=True)


def test_a_burst_of_slow_answers_burns_the_budget_fast_and_says_so(data: DataPaths) -> None:
    for i in range(40):  # a quiet, healthy week
        operation("answer", ago_s=86400 * (1 + i / 8), duration_ms=3000, **{names.TTFT_MS: 1200.0})
    for i in range(6):  # then, in the last minutes, answers that start after 9 s
        operation("answer", ago_s=30 + i * 20, duration_ms=12000, **{names.TTFT_MS: 9000.0})
    budget = slo.budgets(store_of(data), Settings())[0]
    assert budget.objective.name == "answers"
    assert budget.alert == "fast"
    assert budget.total == 46 and budget.bad == 6
    assert "burning fast" in budget.message and "6 of 6 answers missed" in budget.message


def test_one_slow_answer_is_not_an_incident(data: DataPaths) -> None:
    for i in range(10):
        operation("answer", ago_s=3600 * (2 + i), duration_ms=2000, **{names.TTFT_MS: 800.0})
    operation("answer", ago_s=60, duration_ms=9000, **{names.TTFT_MS: 8000.0})
    budget = slo.budgets(store_of(data), Settings())[0]
    assert budget.bad == 1 and budget.alert is None
    # 1 miss in 11 against a 5 % budget: the month's budget is overspent, and the sentence says how much is left.
    assert budget.remaining is not None and budget.remaining < 0
    assert "0 % of the error budget left" in budget.message


def test_a_file_the_user_must_fix_is_not_an_internal_error(data: DataPaths) -> None:
    for i in range(50):
        operation("index", ago_s=100 + i, duration_ms=40, **{names.OUTCOME: "ok", names.CHUNKS: 10})
    for i in range(5):  # corrupt PDFs: the file's problem, said in its status
        operation("index", ago_s=200 + i, duration_ms=10, **{names.OUTCOME: "failed"})
    indexing = slo.budgets(store_of(data), Settings())[1]
    assert indexing.objective.name == "indexing"
    assert (indexing.total, indexing.bad, indexing.alert) == (55, 0, None)
    assert indexing.remaining == 1.0


def test_a_burst_of_server_errors_alerts_on_the_api_objective(data: DataPaths) -> None:
    for i in range(200):
        operation("request", ago_s=10 + i, duration_ms=30, **{names.OUTCOME: "ok"})
    for i in range(5):
        operation("request", ago_s=15 + i, duration_ms=30, **{names.OUTCOME: "5xx"})
    api = slo.budgets(store_of(data), Settings(slo_api_target=0.999))[2]
    assert api.alert == "fast" and api.bad == 5


def test_the_targets_come_from_the_settings(data: DataPaths) -> None:
    for i in range(20):
        operation("answer", ago_s=60 + i, duration_ms=7000, **{names.TTFT_MS: 6000.0})
    store = store_of(data)
    assert slo.budgets(store, Settings())[0].bad == 20  # 6 s misses the default 5 s
    relaxed = slo.budgets(store, Settings(slo_answer_start_s=10.0))[0]
    assert relaxed.bad == 0 and relaxed.alert is None and relaxed.objective.title == "Answers start within 10 s"


def test_stats_reports_percentiles_throughput_and_budgets(data: DataPaths) -> None:
    ttfts = [1000.0, 2000.0, 3000.0, 4000.0, 10000.0]
    for i, ttft in enumerate(ttfts):
        operation("answer", ago_s=600 + i, duration_ms=ttft + 2000,
                  **{names.TTFT_MS: ttft, names.TOKENS_PER_S: 40.0 + i, names.RETRIEVAL_MS: 50.0 * (i + 1)})
    # Two files read one after the other over 2 s, 300 chunks: 150 chunks/s.
    operation("index", ago_s=100, duration_ms=1000, **{names.OUTCOME: "ok", names.CHUNKS: 100})
    operation("index", ago_s=99, duration_ms=1000, **{names.OUTCOME: "ok", names.CHUNKS: 200})
    operation("index", ago_s=98.5, duration_ms=0.5, **{names.OUTCOME: "failed"})
    operation("answer", ago_s=3 * 86400, duration_ms=100, **{names.TTFT_MS: 50.0})  # outside the day
    store_of(data).close()
    out = io.StringIO()
    assert run(["--data-dir", str(data.root), "stats", "--json"], out) == 0
    figures = json.loads(out.getvalue())
    assert figures["answers"]["count"] == 5
    assert figures["answers"]["time_to_first_token_ms"] == {"p50": 3000.0, "p95": 8800.0}
    assert figures["retrieval_ms"]["p50"] == 150.0
    assert figures["indexing"]["files"] == 3 and figures["indexing"]["failed"] == 1
    assert figures["indexing"]["chunks_per_second"] == pytest.approx(150, rel=0.01)
    assert [o["objective"] for o in figures["objectives"]] == ["answers", "indexing", "api"]
    text = io.StringIO()
    assert run(["--data-dir", str(data.root), "stats"], text) == 0
    shown = text.getvalue()
    assert "first token p50 3.0 s · p95 8.8 s" in shown
    assert "3 files  2 indexed, 1 failed" in shown and "150 chunks/s" in shown


def test_stats_on_a_new_data_folder_says_nothing_happened_yet(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run(["--data-dir", str(tmp_path / "none"), "stats"], out) == 0
    assert "Answers            0" in out.getvalue()
    assert "no answers in the last 28 days yet" in out.getvalue()
    assert not (tmp_path / "none").exists()  # reading the figures creates nothing


def test_busy_time_counts_overlapping_files_once() -> None:
    s = NS_PER_S
    assert stats.busy_seconds([(0, 2 * s), (1 * s, 3 * s), (5 * s, 6 * s)]) == 4.0
    assert stats.busy_seconds([]) == 0.0


def test_the_store_keeps_spans_only_for_recent_operations(tmp_path: Path) -> None:
    telemetry.configure(telemetry.TraceOptions(recorder=ActivityRecorder(tmp_path / "a.sqlite3")))
    try:
        for i in range(5):
            with telemetry.span("answer", {names.KIND: "answer"}):
                with telemetry.span("retrieval"):
                    pass
        assert telemetry.force_flush()
    finally:
        telemetry.shutdown()
    store = ActivityStore(tmp_path / "a.sqlite3", keep_traces=2)
    ops = store.operations()
    assert len(ops) == 5 and all(len(store.spans(o.trace_id)) == 2 for o in ops)
    store.prune()
    kept = [o for o in store.operations() if store.spans(o.trace_id)]
    assert [o.trace_id for o in kept] == [o.trace_id for o in ops[:2]]  # the two newest
    assert len(store.operations()) == 5  # summaries stay for the charts and budgets
