"""The ``docent`` command line, over ``app.core`` (no Qt).

Results go to stdout, human progress and messages to stderr. Errors are
sentences with a non-zero exit code, never a traceback (set DOCENT_DEBUG=1
to see one). The parser is in :mod:`app.cli.parser`; the commands are grouped
by what they work on (the library, questions, the record).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO

from app.cli.common import say
from app.cli.library_commands import cmd_ingest, cmd_reindex, cmd_remove, cmd_status, cmd_watch
from app.cli.parser import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE, build_parser
from app.cli.question_commands import cmd_ask, cmd_search
from app.cli.record_commands import cmd_audit, cmd_eval, cmd_selftest
from app.cli.service_commands import cmd_keys, cmd_serve
from app.cli.doctor_command import cmd_doctor
from app.cli.stats_command import cmd_stats
from app.config import enforce_offline
from app.errors import DocentError

__all__ = ["EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "EXIT_USAGE", "build_parser", "run"]

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
    "serve": cmd_serve,
    "keys": cmd_keys,
    "doctor": cmd_doctor,
    "stats": cmd_stats,
}


#: Commands whose work is traced (into the activity store, and exported where
#: --trace / --otlp or the settings say).
TRACED = frozenset({"ingest", "search", "ask", "watch", "serve", "reindex", "remove"})


def _start_tracing(args: argparse.Namespace) -> None:
    from app.config import DataPaths, Settings
    from app.core import observability
    from app.cli.common import data_dir

    paths = DataPaths(data_dir(args))
    settings = Settings.load(paths.settings) if paths.settings.exists() else Settings()
    observability.start(paths, settings, trace_file=getattr(args, "trace", None), otlp=getattr(args, "otlp", None),
                        record=paths.root.is_dir() or args.command in ("ingest", "watch", "serve"))


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
        if args.command not in TRACED:
            return COMMANDS[args.command](args, out)
        _start_tracing(args)
        try:
            return COMMANDS[args.command](args, out)
        finally:
            from app import telemetry

            telemetry.shutdown()  # the command's last spans are written before it returns
    except DocentError as exc:
        say(f"docent: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("docent: interrupted.")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        if os.environ.get("DOCENT_DEBUG"):
            traceback.print_exc()
        say(f"docent: unexpected error ({type(exc).__name__}: {exc}). "
             "Set DOCENT_DEBUG=1 and run again for details, and please report it.")
        return EXIT_FAILED
