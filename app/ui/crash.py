"""What the window does with an error nobody expected: log it, show it, keep going.

Without this a Python exception in a Qt slot is printed to a terminal the
installed app's user never sees (or, with PySide6's default, aborts). The
hook writes the traceback to ``docent.log`` and shows a dialog that says what
happened in words, where the log is, and has the traceback under "Show
Details…" to copy into a bug report. The window stays open: work already saved
(the index, chats, the audit log) is on disk, and the next action may succeed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.applog import log_unexpected
from app.config import APP_NAME

Hook = Callable[[type[BaseException], BaseException, TracebackType | None], None]


def error_dialog(exc: BaseException, details: str, log_file: Path | None,
                 parent: QWidget | None = None) -> QMessageBox:
    """A non-blocking dialog for an unexpected error, with the traceback as details."""
    box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME,
                      "Something went wrong inside Docent.", QMessageBox.StandardButton.Close, parent)
    where = (f"The details are saved in the log file:\n{log_file}" if log_file is not None
             else "The log file could not be written; copy the details below.")
    box.setInformativeText(
        f"{type(exc).__name__}: {exc}\n\nYour library, chats and audit log are safe; you can keep "
        f"working. If it happens again, please report it with the details.\n\n{where}"
    )
    box.setDetailedText(details)
    box.setObjectName("docent-error-dialog")
    return box


def install_excepthook(log_file: Path | None, parent: Callable[[], QWidget | None] = lambda: None) -> Hook:
    """Make unexpected errors in the window go to the log and a dialog.

    Returns the hook (also installed as ``sys.excepthook``). KeyboardInterrupt
    keeps its usual meaning.
    """
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        details = log_unexpected(exc_type, exc, tb)
        if QApplication.instance() is None:
            return
        box = error_dialog(exc, details, log_file, parent())
        box.open()  # not exec(): a second error while it is shown must not nest event loops
        hook.last_dialog = box  # type: ignore[attr-defined]  # kept alive while shown; tests read it

    sys.excepthook = hook
    return hook
