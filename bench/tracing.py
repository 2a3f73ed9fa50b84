"""The cost of tracing: ingest and answers with tracing off (no-op spans) vs
on with file export, in one run.

"On" is what the app does by default (every span to the local activity
store) plus ``--trace FILE`` (a rotated JSON-lines span file), content
recording off. "Off" is no provider at all (:func:`telemetry.shutdown`: every
span a no-op). The two are interleaved, alternating which goes first, so a
shared machine's drift hits both alike; the "on" times include flushing the
spans to disk (``force_flush``) at the end of each operation, so nothing
is left to be paid after the clock stops.

Ingest: a fresh data folder per run (the embedding model loaded once and
shared), the R manuals from Debian's r-doc-pdf when installed. Answers: the
same questions with the same sampling (temperature 0) from a cold KV cache
each time, so both modes do identical model work. Target: on ≤ 1.02 × off.

Usage: python bench/tracing.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

R_MANUALS = Path("/usr/share/R/doc/manual")
INGEST_MANUALS = ("R-FAQ.pdf", "R-data.pdf", "R-intro.pdf")
ANSWER_MANUAL = "R-intro.pdf"
QUESTIONS = [
    "How do I read a table of data from a file into a data frame?",
    "What does the function seq() do?",
    "How are missing values represented?",
    "How do I fit a linear model?",
    "What is a factor used for?",
    "How can I save the objects of a session?",
]
SAMPLE_QUESTIONS = [
    "How many storm warnings did the lighthouse keepers record?",
    "When is swarm season?",
    "How long does sourdough proof?",
]
TARGET = 1.02


class Tracing:
    """Switches this process's tracing off, or on as the app runs it plus a span file."""

    def __init__(self, spans_dir: Path) -> None:
        self.spans_dir = spans_dir
        self.file = spans_dir / "spans.jsonl"

    def on(self, data: Path) -> None:
        from app import config, telemetry
        from app.core.stores.activity import ActivityRecorder

        recorder = ActivityRecorder(config.DataPaths(data).activity)
        telemetry.configure(telemetry.TraceOptions(file=self.file, recorder=recorder))
        # Open the activity store now, as a running app has it open after its
        # first operation: opening it (once per process) is not a span's cost.
        recorder.export([])

    @staticmethod
    def off() -> None:
        from app import telemetry

        telemetry.shutdown()

    @staticmethod
    def flush() -> None:
        from app import telemetry

        telemetry.force_flush()

    def written(self) -> tuple[int, int]:
        """(spans, bytes) in the span files (rotated ones included)."""
        spans = size = 0
        for f in self.spans_dir.glob("spans.jsonl*"):
            size += f.stat().st_size
            with open(f, "rb") as fh:
                spans += sum(1 for _ in fh)
        return spans, size


def _docs(folder: Path, names: tuple[str, ...], quick: bool) -> str:
    folder.mkdir(parents=True)
    manuals = [R_MANUALS / n for n in names if (R_MANUALS / n).is_file()]
    if manuals and not quick:
        for pdf in manuals:
            shutil.copy(pdf, folder / pdf.name)
        return ", ".join(m.name for m in manuals) + " (r-doc-pdf)"
    from tests import corpus as made

    made.make_library(folder)
    return "the tests' sample library"


def _paired(runs: int, measure: Callable[[bool, int], float]) -> tuple[list[float], list[float]]:
    """``measure(traced, i)`` for each i, off and on, alternating which goes first."""
    off: list[float] = []
    on: list[float] = []
    for i in range(runs):
        for traced in ((False, True) if i % 2 == 0 else (True, False)):
            (on if traced else off).append(measure(traced, i))
    return off, on


def bench_ingest(work: Path, tracing: Tracing, quick: bool, runs: int) -> dict[str, Any]:
    """The same folder ingested into a fresh data folder per run, off and on."""
    from app.core.library import Library

    docs = work / "ingest-docs"
    corpus = _docs(docs, INGEST_MANUALS, quick)
    shared: dict[str, Any] = {}
    counts: list[tuple[int, int]] = []

    def measure(traced: bool, i: int) -> float:
        data = work / f"ingest-data-{i}-{'on' if traced else 'off'}"
        lib = Library(data, purpose="bench")
        try:
            if "embedder" in shared:
                lib.use_embedder(shared["embedder"])
            else:
                shared["embedder"] = lib.embedder  # model loading is not ingest
            lib.vectors  # noqa: B018 - opening the store is not ingest either
            if traced:
                tracing.on(data)
            t = time.perf_counter()
            report = lib.indexer.ingest([docs])
            if traced:
                tracing.flush()
            elapsed = time.perf_counter() - t
            counts.append((report.indexed, report.chunks))
        finally:
            tracing.off()
            lib.close()
            shutil.rmtree(data, ignore_errors=True)
        return elapsed

    measure(False, -1)  # warm-up: first calls allocate torch's buffers, fill the page cache
    spans_before = tracing.written()
    off, on = _paired(runs, measure)
    spans, size = (a - b for a, b in zip(tracing.written(), spans_before))
    assert len(set(counts)) == 1, f"runs indexed different work: {counts}"
    files, chunks = counts[0]
    return {
        "corpus": corpus, "files": files, "chunks": chunks, "runs": runs,
        "off_s": [round(x, 2) for x in off], "on_s": [round(x, 2) for x in on],
        "off_s_median": round(statistics.median(off), 2), "on_s_median": round(statistics.median(on), 2),
        "ratio": round(sum(on) / sum(off), 4),
        "spans_per_run": spans // runs, "span_bytes_per_run": size // runs,
    }


def bench_answers(work: Path, tracing: Tracing, quick: bool, runs: int) -> dict[str, Any]:
    """The same questions answered cold, off and on (interleaved per question)."""
    from app.core.library import Library
    from app.core.models.llm import Sampling

    docs = work / "answer-docs"
    corpus = _docs(docs, (ANSWER_MANUAL,), quick)
    questions = SAMPLE_QUESTIONS if corpus.startswith("the tests'") else QUESTIONS
    sampling = Sampling(temperature=0.0, max_tokens=48 if quick else 64)
    data = work / "answer-data"
    lib = Library(data, purpose="bench")
    off: list[float] = []
    on: list[float] = []
    tokens: dict[tuple[str, bool], list[int]] = {}
    try:
        lib.indexer.ingest([docs])
        model = lib.model()
        answerer = lib.answerer
        answerer.ask(questions[0], sampling=Sampling(temperature=0.0, max_tokens=8), use_cache=False)  # warm-up
        spans_before = tracing.written()

        def measure(traced: bool, i: int) -> float:
            q = questions[i % len(questions)]
            model.forget()  # cold: the same prompt processing in both modes
            if traced:
                tracing.on(data)
            try:
                t = time.perf_counter()
                answer = answerer.ask(q, sampling=sampling, use_cache=False)
                if traced:
                    tracing.flush()
                elapsed = time.perf_counter() - t
            finally:
                tracing.off()
            tokens.setdefault((q, traced), []).append((answer.usage or {}).get("completion_tokens") or 0)
            return elapsed

        off, on = _paired(runs * len(questions), measure)
        spans, size = (a - b for a, b in zip(tracing.written(), spans_before))
    finally:
        tracing.off()
        lib.close()
    same = all(tokens[(q, False)] == tokens[(q, True)] for q, _ in tokens)
    n = len(on)
    return {
        "corpus": corpus, "questions": len(questions), "answers_per_mode": n, "max_tokens": sampling.max_tokens,
        "identical_output_tokens": same,
        "off_s_median": round(statistics.median(off), 3), "on_s_median": round(statistics.median(on), 3),
        "off_s_total": round(sum(off), 2), "on_s_total": round(sum(on), 2),
        "ratio": round(sum(on) / sum(off), 4),
        "pair_ratio_median": round(statistics.median(b / a for a, b in zip(off, on)), 4),
        "spans_per_answer": spans // n, "span_bytes_per_answer": size // n,
    }


def span_cost(tracing: Tracing, work: Path, n: int = 1500) -> dict[str, float]:
    """One span's cost, off and on (its export to the store and the file
    included), in µs; ``n`` stays under the span queue's 2,048."""
    from app import telemetry

    def loop() -> float:
        t = time.perf_counter()
        for i in range(n):
            with telemetry.span("step", {"docent.chunks": i}):
                pass
        telemetry.force_flush()
        return (time.perf_counter() - t) / n * 1e6

    tracing.off()
    off = min(loop() for _ in range(3))
    data = work / "span-cost"
    data.mkdir()
    tracing.on(data)
    try:
        on = min(loop() for _ in range(3))
    finally:
        tracing.off()
    return {"off_us": round(off, 2), "on_us": round(on, 2)}


def main(quick: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="docent-bench-tracing-"))
    tracing = Tracing(work / "spans")
    try:
        started = time.perf_counter()
        ingest = bench_ingest(work, tracing, quick, runs=2 if quick else 3)
        answers = bench_answers(work, tracing, quick, runs=1 if quick else 2)
        total_spans, total_bytes = tracing.written()
        cost = span_cost(tracing, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "what": "tracing on (activity store + JSON-lines span file) vs off (no-op spans), interleaved",
        "target_ratio": TARGET,
        "ingest": ingest,
        "answer": answers,
        "span_cost": cost,
        "spans_written": total_spans,
        "span_file_bytes": total_bytes,
        "met": {"ingest": ingest["ratio"] <= TARGET, "answer": answers["ratio"] <= TARGET},
        "bench_s": round(time.perf_counter() - started),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the tests' sample library, fewer runs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "tracing.json")
    args = ap.parse_args()
    out = main(args.quick)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
