"""Docent's log file, in the data folder, for the installed app's users and their bug reports.

The window has no terminal, so anything that goes wrong must leave a trace a
person can find and send: ``docent.log`` in the data folder (rotated at 1 MB,
three old files kept). Unexpected errors are written there with their
traceback before the window shows them.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from types import TracebackType

from app.config import DataPaths

_HANDLER_NAME = "docent-file"


def setup_logging(data_dir: Path, *, level: int = logging.INFO) -> Path | None:
    """Send Docent's log records to ``docent.log`` in ``data_dir``.

    Idempotent (a second call replaces the first handler). Returns the log
    file, or None when it cannot be written (a read-only or full disk): the
    app must still open, so that is not an error.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
            handler.close()
    path = DataPaths(Path(data_dir)).log
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3,
                                                       encoding="utf-8")
    except OSError:
        return None
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    return path


def log_unexpected(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    """Write an unexpected error to the log; returns its traceback text (for the details box)."""
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    logging.getLogger("docent").error("Unexpected error:\n%s", details)
    if sys.stderr is not None:  # a windowed build may have no stderr
        sys.stderr.write(details)
    return details
