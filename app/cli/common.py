"""What every ``docent`` command shares: output, the data folder, Ctrl+C, and
indexing with a progress bar."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from app.cli.parser import EXIT_FAILED, EXIT_OK
from app.config import DataPaths, Settings, default_data_dir


def emit(obj: Any, out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser().resolve() if args.data_dir else default_data_dir()


def run_settings(args: argparse.Namespace) -> Settings | None:
    """The saved settings with this run's overrides (None: just the saved ones).

    ``--no-rerank`` leaves the reranker out for this run only, so its model is
    never even loaded; ``--generate`` (and its companions) answers on an
    inference server; ``--vectors URL`` keeps the vectors in a Chroma server.
    The saved settings are not changed.
    """
    overrides: dict[str, Any] = {}
    if getattr(args, "no_rerank", False):
        overrides["reranker_path"] = None
    overrides.update(generation_overrides(args))
    overrides.update(vectors_overrides(args))
    if not overrides:
        return None
    saved = Settings.load(DataPaths(data_dir(args)).settings)
    return dataclasses.replace(saved, **overrides)


def generation_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``--generate``, ``--generate-model`` and ``--generate-allow-network`` set for this run."""
    out: dict[str, Any] = {}
    if getattr(args, "generate", None):
        out["generation_url"] = args.generate
    if getattr(args, "generate_model", None):
        out["generation_model"] = args.generate_model
    if getattr(args, "generate_allow_network", False):
        out["generation_allow_network"] = True
    return out


def vectors_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``--vectors URL`` and ``--vectors-allow-network`` set for this run
    (the vectors kept in a Chroma server instead of the data folder).

    Raises:
        StoreError: the URL is refused (not ``http(s)://HOST:PORT``, or another
            machine without ``--vectors-allow-network``); checked here, so the
            command stops before it opens the data folder.
    """
    out: dict[str, Any] = {}
    allow = bool(getattr(args, "vectors_allow_network", False))
    if getattr(args, "vectors", None):
        from app.core.stores.vectors import server_address

        server_address(args.vectors, allow_network=allow)
        out["vectors_url"] = args.vectors
    if allow:
        out["vectors_allow_network"] = True  # also for a vectors_url in the saved settings
    return out


class StopFlag:
    """Set by SIGINT/SIGTERM so long work stops between units, cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.event.is_set()

    def install(self) -> "StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.event.is_set():  # a second Ctrl+C: stop now
            raise KeyboardInterrupt
        self.event.set()
        say("\nStopping after the current step… (press Ctrl+C again to quit at once)")

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def recovered(lib: Any) -> None:  # noqa: ANN401 - app.core.library.Library
    """Bring a writer's stores in line after a crash, saying what was repaired."""
    lib.recover()  # after a crash: catalog and vectors agree again before any work
    if lib.repair is not None:
        say(f"docent: {lib.repair.message}")


def index_with_bar(work: Callable[..., Any], stop: StopFlag) -> Any:  # noqa: ANN401 - IngestReport
    """Run ``work(progress=…, should_stop=…)`` (an ingest or a re-index) with the
    terminal progress bar: files, chunks, the page of a long PDF (or the
    passages embedded of a large file) and the time left."""
    from app.progress import ProgressBar

    bar = ProgressBar()
    try:
        return work(
            progress=lambda s: bar.update(s.files_done, s.files_total, chunks=s.chunks_done,
                                          current=s.current, detail=s.detail()),
            should_stop=stop,
        )
    finally:
        bar.close()


def report_indexing(report: Any, out: TextIO, *, json_out: bool, verb: str, again: str) -> int:  # noqa: ANN401
    """Print an ingest or re-index report (``verb``: "Indexed", "Re-indexed") and
    the exit code: failed when it was stopped before the end (``again`` says so)."""
    if json_out:
        emit(report.to_json(), out)
    else:
        out.write(
            f"{verb} {report.indexed} file(s) ({report.chunks} chunks), {report.unchanged} unchanged, "
            f"{report.removed} removed, {len(report.failed)} failed, {len(report.skipped)} skipped.\n"
        )
        for path, reason in report.failed:
            out.write(f"  failed  {path}: {reason}\n")
        for path, reason in report.skipped:
            out.write(f"  skipped {path}: {reason}\n")
    if report.cancelled:
        say(f"{again} was stopped before the end; run the same command again to finish it.")
        return EXIT_FAILED
    return EXIT_OK
