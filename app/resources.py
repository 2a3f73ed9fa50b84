"""Where Docent's own files are, from source and from the frozen app.

Every lookup of a file Docent ships (sample documents, icons, the desktop
entry) goes through :func:`resource_path`, so it works the same from a source
checkout (``resources/`` beside the ``app`` package) and from the PyInstaller
build (``resources/`` inside the bundle, ``sys._MEIPASS``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def is_frozen() -> bool:
    """True when running from the PyInstaller build, not from source."""
    return bool(getattr(sys, "frozen", False))


def resources_dir() -> Path:
    """The ``resources/`` folder: in the bundle when frozen, else beside ``app/``."""
    if is_frozen():
        return Path(getattr(sys, "_MEIPASS")) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """A file Docent ships, e.g. ``resource_path("samples", "welcome.md")``.

    Raises:
        FileNotFoundError: the file is not there (a broken install), with
            the path it looked for.
    """
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"Docent's file {path} is missing; the installation is incomplete. Reinstall Docent."
        )
    return path


def sample_document() -> Path:
    """The bundled sample PDF (four pages; the self-test asks about page 3)."""
    return resource_path("samples", "lighthouse-report.pdf")


def app_icon() -> Path:
    """The application icon (PNG, 256 px)."""
    return resource_path("icons", "docent-256.png")
