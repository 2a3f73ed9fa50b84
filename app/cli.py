"""The ``docent`` command line, over ``app.core`` (no Qt).

Results go to stdout, human progress and messages to stderr. Errors are
sentences with a non-zero exit code, never a traceback (set DOCENT_DEBUG=1
to see one).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from app import __version__, config
from app.config import DataPaths, Settings, default_data_dir, enforce_offline
from app.errors import DocentError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
# The modes ``docent eval`` knows (app.core.evaluate.EVAL_MODES, repeated so
# that building the parser imports nothing heavy).
EVAL_MODE_NAMES = ("vector", "keyword", "hybrid", "hybrid+reranker")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as Docent does (exit 2, no traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"docent: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand of the contract."""
    p = _Parser(prog="docent", description="Docent: ask your documents, offline, with sources.")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="data folder (default: $DOCENT_DATA_DIR or the user data folder)")
    p.add_argument("--version", action="version", version=f"docent {__version__}")
    p.add_argument("--selftest", action="store_true",
                   help="check this installation end to end, offline, in a temporary folder; exit 0 if it works")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ing = sub.add_parser("ingest", help="add folders or files to the library and index them")
    ing.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ing.add_argument("--json", action="store_true", help="print the report as JSON")

    srch = sub.add_parser("search", help="find passages (QUERY '-' reads one query per line)")
    srch.add_argument("query", metavar="QUERY")
    srch.add_argument("-k", type=int, default=config.SOURCES_PER_ANSWER,
                      help=f"hits to return (default {config.SOURCES_PER_ANSWER})")
    srch.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    srch.add_argument("--scope", default=None, help="only search this file or folder")
    srch.add_argument("--no-rerank", action="store_true",
                      help="skip the reranker set in the settings (plain hybrid ranking)")
    srch.add_argument("--json", action="store_true")

    ask = sub.add_parser("ask", help="answer a question from the library (QUESTION '-' for a batch)")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("-k", type=int, default=config.SOURCES_PER_ANSWER,
                     help=f"passages given to the model (default {config.SOURCES_PER_ANSWER})")
    ask.add_argument("--model", type=Path, default=None, metavar="GGUF", help="a GGUF model file")
    ask.add_argument("--max-tokens", type=int, default=config.MAX_TOKENS)
    ask.add_argument("--temperature", type=float, default=None)
    ask.add_argument("--top-k", type=int, default=None)
    ask.add_argument("--top-p", type=float, default=None)
    ask.add_argument("--repeat-penalty", type=float, default=None)
    ask.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    ask.add_argument("--scope", default=None, help="only use this file or folder")
    ask.add_argument("--no-rerank", action="store_true",
                     help="skip the reranker set in the settings (plain hybrid ranking)")
    ask.add_argument("--json", action="store_true")

    st = sub.add_parser("status", help="what the library holds")
    st.add_argument("--files", action="store_true", help="list every file")
    st.add_argument("--json", action="store_true")

    w = sub.add_parser("watch", help="keep PATHs in sync until interrupted")
    w.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    w.add_argument("--poll", action="store_true",
                   help="check for changes by polling (for network drives that send no events)")

    aud = sub.add_parser("audit", help="check or show the audit log")
    aud_sub = aud.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=_Parser)
    aud_sub.required = True
    aud_sub.add_parser("verify", help="exit 0 if the log is intact, 1 if not")
    show = aud_sub.add_parser("show", help="print the records")
    show.add_argument("--json", action="store_true")

    ev = sub.add_parser("eval", help="measure retrieval and answer quality on a question set")
    ev.add_argument("questions", type=Path, metavar="QUESTIONS.jsonl")
    ev.add_argument("--docs", type=Path, required=True, metavar="DIR",
                    help="the folder the questions' file paths are relative to")
    ev.add_argument("--modes", default=",".join(EVAL_MODE_NAMES),
                    help="comma-separated retrieval modes (default: all; hybrid+reranker "
                         "runs only when a reranker is configured)")
    ev.add_argument("--reranker", type=Path, default=None, metavar="DIR",
                    help="a CrossEncoder model folder (default: the settings' reranker, if any)")
    ev.add_argument("--no-answers", action="store_true", help="score retrieval only (no model)")
    ev.add_argument("--max-tokens", type=int, default=200)
    ev.add_argument("--model", type=Path, default=None, metavar="GGUF")
    ev.add_argument("--work", type=Path, default=None, metavar="DIR",
                    help="data folder for the evaluation's own index (default: a temporary one)")
    ev.add_argument("--out", type=Path, default=None, help="write the full results as JSON here "
                    "(tools/readme.py puts them in the README)")

    rm = sub.add_parser("remove", help="take library folders or files out of the library (not off the disk)")
    rm.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    rm.add_argument("--json", action="store_true", help="print the result as JSON")

    rx = sub.add_parser("reindex", help="read library files again, even if unchanged (default: all)")
    rx.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    rx.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _emit(obj: Any, out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser().resolve() if args.data_dir else default_data_dir()


def _settings(args: argparse.Namespace) -> Settings | None:
    """The saved settings with this run's overrides (None: just the saved ones).

    ``--no-rerank`` leaves the reranker out for this run only, so its model is
    never even loaded; the saved settings are not changed.
    """
    if not getattr(args, "no_rerank", False):
        return None
    saved = Settings.load(DataPaths(_data_dir(args)).settings)
    return dataclasses.replace(saved, reranker_path=None)


class _StopFlag:
    """Set by SIGINT/SIGTERM so long work stops between units, cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.event.is_set()

    def install(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.event.is_set():  # a second Ctrl+C: stop now
            raise KeyboardInterrupt
        self.event.set()
        _say("\nStopping after the current step… (press Ctrl+C again to quit at once)")

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --- commands ----------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library
    from app.progress import ProgressBar

    missing = [p for p in args.paths if not p.expanduser().exists()]
    if missing:
        raise UsageError(f"{missing[0]} does not exist. Check the path and try again.")
    stop = _StopFlag().install()
    bar = ProgressBar()
    try:
        with Library(_data_dir(args), purpose="docent ingest") as lib:
            lib.recover()  # after a crash: catalog and vectors agree again before ingesting
            paths = [p.expanduser() for p in args.paths]
            if lib.repair is not None:
                _say(f"docent: {lib.repair.message}")
                # Rebuild every library folder, not just the ones named now.
                paths += [r for r in lib.rebuild_roots() if r not in paths]
            report = lib.indexer.ingest(
                paths,
                progress=lambda s: bar.update(s.files_done, s.files_total, chunks=s.chunks_done,
                                              current=s.current,
                                              pages=(s.pages_done, s.pages_total)),
                should_stop=stop,
            )
    finally:
        bar.close()
        stop.restore()
    if args.json:
        _emit(report.to_json(), out)
    else:
        out.write(
            f"Indexed {report.indexed} file(s) ({report.chunks} chunks), {report.unchanged} unchanged, "
            f"{report.removed} removed, {len(report.failed)} failed, {len(report.skipped)} skipped.\n"
        )
        for path, reason in report.failed:
            out.write(f"  failed  {path}: {reason}\n")
        for path, reason in report.skipped:
            out.write(f"  skipped {path}: {reason}\n")
    if report.cancelled:
        _say("Ingest was stopped before the end; run the same command again to finish it.")
        return EXIT_FAILED
    return EXIT_OK


def _batch(queries: Callable[[str], dict[str, Any]], out: TextIO) -> int:
    """Run one query per stdin line, one JSON object per output line."""
    for line in sys.stdin:
        query = line.strip()
        if not query:
            continue
        try:
            _emit(queries(query), out)
        except DocentError as exc:
            _emit({"error": str(exc)}, out)
    return EXIT_OK


def cmd_search(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library

    keyword = args.mode == "keyword"
    with Library(_data_dir(args), writer=not keyword, purpose="docent search",
                 settings=_settings(args)) as lib:
        retriever = lib.keyword_retriever if keyword else lib.retriever
        scope = str(Path(args.scope).expanduser().resolve()) if args.scope else None

        def run(query: str) -> dict[str, Any]:
            return retriever.search(query, k=args.k, mode=args.mode, scope=scope,
                                    rerank=not args.no_rerank).to_json()

        if args.query == "-":
            return _batch(run, out)
        result = run(args.query)
    if args.json:
        _emit(result, out)
        return EXIT_OK
    if not result["hits"]:
        out.write("No passages found.\n")
    for hit in result["hits"]:
        where = f"page {hit['page']}" if hit["page"] is not None else "no pages"
        snippet = " ".join(hit["text"].split())
        snippet = snippet if len(snippet) <= 200 else snippet[:197] + "..."
        out.write(f"{hit['rank']}. {Path(hit['path']).name} · {where} · score {hit['score']:.4f}\n"
                  f"   {hit['path']}\n   {snippet}\n")
    return EXIT_OK


def _citation_line(c: dict[str, Any]) -> str:
    from app.core.documents.model import citation_place

    mark = " (inferred)" if c.get("inferred") else ""
    return f"[{c['n']}] {citation_place(c)}{mark} — {c['path']}"


def cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library

    if args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    if args.model is not None and not args.model.expanduser().is_file():
        raise UsageError(f"The model file {args.model} does not exist.")
    stop = _StopFlag().install()
    try:
        with Library(_data_dir(args), purpose="docent ask", model_path=args.model, answer_only_ok=True,
                     settings=_settings(args)) as lib:
            if lib.repair is not None:
                _say(f"docent: {lib.repair.message}")
            if lib.degraded:
                _say(f"docent: {lib.degraded}\nAnswering from what is already indexed; "
                     "this question's audit records cannot be written until that is fixed.")
            scope = str(Path(args.scope).expanduser().resolve()) if args.scope else None
            sampling = lib.sampling(args.max_tokens)
            overrides = {name: getattr(args, name) for name in ("temperature", "top_k", "top_p", "repeat_penalty")
                         if getattr(args, name) is not None}
            sampling = dataclasses.replace(sampling, **overrides)

            def run(question: str, on_token: Callable[[str], None] | None = None,
                    show_progress: bool = False) -> dict[str, Any]:
                # Recognised once: a whole-document question names what it reads.
                task = lib.answerer.plan(question, scope)
                return lib.answerer.ask(
                    question, k=args.k, mode=args.mode, scope=scope, sampling=sampling,
                    on_token=on_token, should_stop=stop, task=task,
                    on_progress=progress(task.label if task is not None else "your documents")
                    if show_progress else None,
                ).to_json()

            def progress(label: str) -> Callable[[int, int], None]:
                """Whole-document answers read in parts first: say how far on stderr."""
                from time import perf_counter

                from app.core.answering.wholedoc import progress_text

                began = perf_counter()

                def show(done: int, total: int) -> None:
                    _say("docent: " + progress_text(label, done, total, perf_counter() - began))

                return show

            if args.question == "-":
                return _batch(run, out)
            if args.json:
                _emit(run(args.question), out)
                return EXIT_OK

            def stream(piece: str) -> None:
                out.write(piece)
                out.flush()

            result = run(args.question, stream, show_progress=True)
    finally:
        stop.restore()
    out.write("\n")
    if result["citations"]:
        out.write("\nSources:\n")
        for c in result["citations"]:
            out.write(_citation_line(c) + "\n")
    elif not result["declined"]:
        out.write("\n(This answer cites none of your documents.)\n")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library

    data_dir = _data_dir(args)
    with Library(data_dir, writer=False) as lib:
        status = lib.status()
    if args.json:
        _emit(status.to_json(with_files=args.files), out)
        return EXIT_OK
    f = status.files
    out.write(f"Library at {data_dir}\n")
    out.write("  " + " · ".join(f"{n} {s}" for s, n in f.items()) + f"\n  {status.chunks} chunks\n")
    if status.failed:
        out.write("Failed:\n")
        for path, reason in status.failed:
            out.write(f"  {path}: {reason}\n")
    if args.files:
        out.write("Files:\n")
        for d in status.documents:
            reason = f" — {d['reason']}" if d["reason"] else ""
            out.write(f"  {d['status']:<11} {d['chunks']:>6}  {d['path']}{reason}\n")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library
    from app.core.ingest.sync import FolderSync

    missing = [p for p in args.paths if not p.expanduser().exists()]
    if missing:
        raise UsageError(f"{missing[0]} does not exist. Check the path and try again.")
    stop = _StopFlag().install()
    try:
        with Library(_data_dir(args), purpose="docent watch") as lib:
            lib.recover()
            if lib.repair is not None:
                _say(f"docent: {lib.repair.message}")
            roots = [p.expanduser().resolve() for p in args.paths]
            sync = FolderSync(lib.indexer, only=roots, poll=args.poll or lib.settings.sync_poll,
                              rescan_s=lib.settings.rescan_minutes * 60, log=_say)
            _say(f"Watching {', '.join(map(str, roots))} (Ctrl+C to stop)")
            sync.run(should_stop=stop)
            _say("Stopped watching.")
    finally:
        stop.restore()
    return EXIT_OK


def cmd_audit(args: argparse.Namespace, out: TextIO) -> int:
    from app.config import DataPaths
    from app.core.stores.audit import AuditLog

    log = AuditLog(DataPaths(_data_dir(args)).audit, writable=False)
    if args.audit_command == "verify":
        result = log.verify()
        if result.ok:
            note = f" ({result.reason})" if result.reason else ""
            out.write(f"Audit log verified: {result.records} records intact.{note}\n")
            return EXIT_OK
        out.write(f"Audit log broken at record {result.broken_at}: {result.reason}\n")
        return EXIT_FAILED
    records = log.records()
    if args.json:
        _emit(records, out)
        return EXIT_OK
    for r in records:
        data = r.get("data", {})
        summary = data.get("question") or data.get("path") or ""
        out.write(f"{r['seq']:>6}  {r['ts']}  {r['event']:<16} {summary}\n")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    """Score retrieval (and answers) on a question set: see :func:`app.core.evaluate.run`."""
    from app.config import Settings
    from app.core import evaluate as ev
    from app.errors import Cancelled
    from app.progress import ProgressBar

    modes = ev.parse_modes(args.modes)
    settings = Settings.load(_data_dir(args) / "settings.json") if args.data_dir else Settings()
    if args.reranker is not None:
        if not args.reranker.expanduser().is_dir():
            raise UsageError(f"The reranker folder {args.reranker} does not exist.")
        settings = dataclasses.replace(settings, reranker_path=str(args.reranker.expanduser().resolve()))
    bar = ProgressBar()

    def note(message: str) -> None:
        bar.close()  # each step gets its own bar
        _say(f"docent eval: {message}")

    stop = _StopFlag().install()
    try:
        results = ev.run(
            args.questions, args.docs, settings, modes=modes, answers=not args.no_answers,
            max_tokens=args.max_tokens, model=args.model, work=args.work, should_stop=stop, note=note,
            on_ingest=lambda s: bar.update(s.files_done, s.files_total, chunks=s.chunks_done,
                                           current=s.current),
            on_answer=lambda mode, done, total: bar.update(done, total, current=f"{mode}: answers",
                                                           unit="questions"),
        )
    except Cancelled:
        bar.close()
        _say("docent eval: stopped.")
        return EXIT_FAILED
    finally:
        bar.close()
        stop.restore()
    if args.out:
        ev.save(results, args.out)
    out.write(ev.table(results) + "\n")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.ingest.maintenance import normal_path, not_removable, remove_paths
    from app.core.library import Library

    with Library(_data_dir(args), purpose="docent remove") as lib:
        lib.recover()
        if lib.repair is not None:
            _say(f"docent: {lib.repair.message}")
        catalog = lib.catalog
        paths = [normal_path(p) for p in args.paths]
        # Nothing is removed when one path is wrong: a typo must not half-run a removal.
        unknown = not_removable(catalog, paths)
        if unknown:
            for item in unknown:
                _say(f"docent: {item['path']} was not removed: {item['reason']}.")
            _say("docent: nothing was removed; `docent status --files` lists the library.")
            return EXIT_FAILED
        for p in paths:
            _say(f"Removing {p} from the library…")
        report = remove_paths(lib.indexer, paths)
    if args.json:
        _emit(report.to_json(), out)
    else:
        out.write(f"Removed {len(report.removed)} item(s) from the library: {report.files} file(s), "
                  f"{report.chunks} passage(s). The files on disk are untouched.\n")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.ingest.maintenance import normal_path, outside_library, reindex
    from app.core.library import Library
    from app.progress import ProgressBar

    stop = _StopFlag().install()
    bar = ProgressBar()
    try:
        with Library(_data_dir(args), purpose="docent reindex") as lib:
            lib.recover()
            if lib.repair is not None:
                _say(f"docent: {lib.repair.message}")
            paths = [normal_path(p) for p in args.paths] or None
            strays = outside_library(lib.catalog, paths or [])
            if strays:
                for p in strays:
                    _say(f"docent: {p} is not in the library; add it with `docent ingest {p}`.")
                return EXIT_FAILED
            if paths is None and not lib.catalog.roots():
                _say("The library is empty: nothing to re-index.")
            else:
                _say(f"Re-indexing {', '.join(paths) if paths else 'the whole library'}…")
            report = reindex(
                lib.indexer, paths,
                progress=lambda s: bar.update(s.files_done, s.files_total, chunks=s.chunks_done,
                                              current=s.current,
                                              pages=(s.pages_done, s.pages_total)),
                should_stop=stop,
            )
    finally:
        bar.close()
        stop.restore()
    if args.json:
        _emit(report.to_json(), out)
    else:
        out.write(
            f"Re-indexed {report.indexed} file(s) ({report.chunks} chunks), {report.unchanged} unchanged, "
            f"{report.removed} removed, {len(report.failed)} failed, {len(report.skipped)} skipped.\n"
        )
        for path, reason in report.failed:
            out.write(f"  failed  {path}: {reason}\n")
    if report.cancelled:
        _say("Re-indexing was stopped before the end; run the same command again to finish it.")
        return EXIT_FAILED
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "ingest": cmd_ingest,
    "search": cmd_search,
    "ask": cmd_ask,
    "status": cmd_status,
    "watch": cmd_watch,
    "audit": cmd_audit,
    "eval": cmd_eval,
    "remove": cmd_remove,
    "reindex": cmd_reindex,
}


def cmd_selftest(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.selftest import header, run_selftest

    out.write(header() + "\n")
    out.flush()

    def show(step) -> None:  # noqa: ANN001 - app.core.selftest.Step
        out.write(step.line() + "\n")
        out.flush()

    report = run_selftest(on_step=show)
    out.write(report.verdict() + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def run(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one ``docent`` command; returns the exit code."""
    enforce_offline()
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    if args.command is None and not args.selftest:
        return -1  # the caller opens the window
    try:
        if args.selftest:
            return cmd_selftest(args, out)
        return COMMANDS[args.command](args, out)
    except DocentError as exc:
        _say(f"docent: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("docent: interrupted.")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        if os.environ.get("DOCENT_DEBUG"):
            traceback.print_exc()
        _say(f"docent: unexpected error ({type(exc).__name__}: {exc}). "
             "Set DOCENT_DEBUG=1 and run again for details, and please report it.")
        return EXIT_FAILED
