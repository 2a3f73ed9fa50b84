"""``docent doctor``: (being built for #16)."""

from __future__ import annotations

import argparse
from typing import TextIO

from app.errors import UsageError


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    raise UsageError("docent doctor is not built yet.")
