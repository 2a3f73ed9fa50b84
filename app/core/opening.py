"""What Docent lets a person open with the system's apps.

A citation's path comes from the index, and the index's text comes from
documents anyone could have written, so "Open" and "Show in folder" only act
on a file that is really in the library, known to the catalog, and a
document — never a program, script or launcher the system would run.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from app.core.documents import kind_for
from app.core.paths import is_inside
from app.errors import DocentError

# Kinds the system runs (or installs, or follows) rather than shows. Some
# (.py, .js, .sh, .bash) are also indexed as code: reading them is fine,
# launching them is not.
EXECUTABLE_SUFFIXES = frozenset(
    {
        ".desktop", ".exe", ".bat", ".cmd", ".com", ".ps1", ".psm1", ".sh", ".bash", ".zsh",
        ".csh", ".ksh", ".fish", ".py", ".pyw", ".pyc", ".js", ".jse", ".vbs", ".vbe", ".wsf",
        ".wsh", ".hta", ".jar", ".jnlp", ".app", ".appimage", ".lnk", ".url", ".command",
        ".scr", ".pif", ".cpl", ".msc", ".msi", ".msp", ".reg", ".deb", ".rpm", ".run",
        ".so", ".dll", ".dylib", ".pl", ".rb", ".php", ".lua", ".applescript", ".scpt",
        ".workflow", ".action", ".scf", ".inf",
    }
)
_EXEC_BITS = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


class NotOpenable(DocentError):
    """A path Docent will not hand to the system to open; ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(reason)


def check_openable(
    path: str | Path, roots: Sequence[str], known_files: Callable[[str], bool]
) -> Path:
    """The real path of ``path`` if Docent may open it; else raise :class:`NotOpenable`.

    Rules, in order: the file exists; its real path (links and ``..``
    resolved) is inside one of the library ``roots`` (a root may be a single
    file); the catalog knows it (``known_files(real_path)``); it is a regular
    file; it is a document kind Docent reads and not a program, script or
    launcher (by suffix, or by the executable bit on POSIX).
    """
    given = Path(path)
    name = given.name or str(given)
    try:
        real = given.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        raise NotOpenable(
            given, f"{name} cannot be found; it may have been moved, renamed or deleted."
        ) from None
    name = real.name or name

    if not any(is_inside(real, root, resolve=True) for root in roots):
        raise NotOpenable(
            real, f"{name} is outside your library folders, so Docent will not open it."
        )
    if not known_files(str(real)):
        raise NotOpenable(
            real, f"{name} is not in Docent's index; add its folder to the library first."
        )
    try:
        st = real.stat()
    except OSError as exc:
        raise NotOpenable(real, f"{name} cannot be read ({exc.strerror or exc}).") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotOpenable(real, f"{name} is not a regular file, so Docent will not open it.")

    program = f"{name} is a program or script; Docent only opens documents."
    # The last suffix is what the system goes by: "report.pdf.exe" is a program.
    if real.suffix.lower() in EXECUTABLE_SUFFIXES:
        raise NotOpenable(real, program)
    # kind_for also accepts the extension-less text files Docent indexes
    # (README, LICENSE, Makefile…); the executable-bit test below still applies.
    if kind_for(real) is None:
        raise NotOpenable(
            real, f"{name} is not a kind of document Docent reads, so it will not open it."
        )
    if os.name == "posix" and st.st_mode & _EXEC_BITS:
        raise NotOpenable(real, program)
    return real

