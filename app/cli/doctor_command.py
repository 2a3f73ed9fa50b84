"""``docent doctor [--json]``: check the data folder, the models and the machine."""

from __future__ import annotations

import argparse
from typing import TextIO

from app.cli.common import data_dir, emit, say
from app.cli.parser import EXIT_FAILED, EXIT_OK
from app.config import DataPaths, Settings

_MARK = {"ok": "ok     ", "warning": "warning", "problem": "PROBLEM"}


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    """Run every check read-only; exit 0 when healthy (warnings allowed), 1 when problems were found."""
    from app.core import doctor

    paths = DataPaths(data_dir(args))
    settings = Settings.load(paths.settings)
    if not args.json:
        say(f"Checking {paths.root} (loading the models takes a few seconds)…")
    report = doctor.run(paths, settings, models=True)
    if args.json:
        emit(report.to_json(), out)
    else:
        for check in report.checks:
            out.write(f"{_MARK[check.status]}  {check.name}: {check.detail}\n")
            if check.fix and check.status != "ok":
                out.write(f"         what to do: {check.fix}\n")
        out.write(report.verdict() + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED
