"""One answer to "is this path inside that folder?".

Library folders, chat scopes, "this folder" in a question and the check
before a cited file is opened all ask it. Paths are compared after the
platform's own normalisation (``..`` and ``.`` collapsed, repeated and
trailing separators folded; on Windows ``/`` and ``\\`` are the same and case
does not matter), and a folder never contains a sibling that merely starts
with its name (``/docs/ab`` is not inside ``/docs/a``).
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from pathlib import Path

PathLike = str | os.PathLike[str]


def _flavour(windows: bool | None):  # noqa: ANN202 - posixpath or ntpath
    return ntpath if (os.name == "nt" if windows is None else windows) else posixpath


def normal(path: PathLike, *, windows: bool | None = None) -> str:
    """``path`` as it is compared: normalised and, on Windows, case-folded."""
    mod = _flavour(windows)
    return mod.normcase(mod.normpath(os.fspath(path)))


def is_inside(path: PathLike, folder: PathLike, *, resolve: bool = False, windows: bool | None = None) -> bool:
    """Whether ``path`` is ``folder`` or lies anywhere under it.

    Args:
        resolve: follow symbolic links (and make both absolute) first, so a
            link inside ``folder`` that points elsewhere is *not* inside. Use
            it before touching a file for a user (opening a cited document);
            without it the comparison is of the names alone, as the catalog
            stores them (real absolute paths already).
        windows: compare as Windows does (``None``: as this platform does).
    """
    if not os.fspath(path) or not os.fspath(folder):
        return False
    if resolve:
        try:
            path, folder = Path(path).resolve(), Path(folder).resolve()
        except (OSError, RuntimeError):  # a link loop, a vanished drive
            return False
    mod = _flavour(windows)
    p, f = normal(path, windows=windows), normal(folder, windows=windows)
    if p == f:
        return True
    return p.startswith(f if f.endswith(mod.sep) else f + mod.sep)
