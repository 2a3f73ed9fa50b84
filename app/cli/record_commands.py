"""Commands about the record and the installation: audit, eval, the self-test."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TextIO

from app.cli.common import StopFlag, data_dir, emit, say
from app.cli.parser import EXIT_FAILED, EXIT_OK
from app.errors import UsageError


def cmd_audit(args: argparse.Namespace, out: TextIO) -> int:
    from app.config import DataPaths
    from app.core.stores.audit import AuditLog, record_user

    log = AuditLog(DataPaths(data_dir(args)).audit, writable=False)
    if args.audit_command == "verify":
        result = log.verify()
        if result.ok:
            note = f" ({result.reason})" if result.reason else ""
            out.write(f"Audit log verified: {result.records} records intact.{note}\n")
            return EXIT_OK
        out.write(f"Audit log broken at record {result.broken_at}: {result.reason}\n")
        return EXIT_FAILED
    records = log.records()
    if args.user is not None:
        records = [r for r in records if record_user(r) == args.user]
    if args.json:
        emit(records, out)
        return EXIT_OK
    if args.user is not None and not records:
        say(f"docent: no audit records of the user {args.user}.")
    for r in records:
        data = r.get("data", {})
        summary = data.get("question") or data.get("path") or ""
        out.write(f"{r['seq']:>6}  {r['ts']}  {record_user(r):<14} {r['event']:<16} {summary}\n")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    """Score retrieval (and answers) on a question set: see :func:`app.core.evaluate.run`."""
    from app.config import Settings
    from app.core import evaluate as ev
    from app.errors import Cancelled
    from app.progress import ProgressBar

    modes = ev.parse_modes(args.modes)
    settings = Settings.load(data_dir(args) / "settings.json") if args.data_dir else Settings()
    if args.reranker is not None:
        if not args.reranker.expanduser().is_dir():
            raise UsageError(f"The reranker folder {args.reranker} does not exist.")
        settings = dataclasses.replace(settings, reranker_path=str(args.reranker.expanduser().resolve()))
    if args.prompt_budget is not None:
        if args.prompt_budget < 0:
            raise UsageError("--prompt-budget must be 0 (whole passages) or a number of tokens.")
        settings = dataclasses.replace(settings, prompt_budget=args.prompt_budget)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1.")
    bar = ProgressBar()

    def note(message: str) -> None:
        bar.close()  # each step gets its own bar
        say(f"docent eval: {message}")

    stop = StopFlag().install()
    try:
        results = ev.run(
            args.questions, args.docs, settings, modes=modes, answers=not args.no_answers,
            answer_modes=ev.parse_modes(args.answer_modes), max_tokens=args.max_tokens, model=args.model, work=args.work, should_stop=stop, note=note,
            limit=args.limit,
            on_ingest=lambda s: bar.update(s.files_done, s.files_total, chunks=s.chunks_done,
                                           current=s.current),
            on_answer=lambda mode, done, total: bar.update(done, total, current=f"{mode}: answers",
                                                           unit="questions"),
        )
    except Cancelled:
        bar.close()
        say("docent eval: stopped.")
        return EXIT_FAILED
    finally:
        bar.close()
        stop.restore()
    if args.out:
        ev.save(results, args.out)
    out.write(ev.table(results) + "\n")
    return EXIT_OK


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
