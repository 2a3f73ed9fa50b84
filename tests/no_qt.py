"""A pytest plugin that makes Qt unimportable, to show the core runs without it.

``make test`` runs the tests outside ``tests/ui`` with it::

    python -m pytest tests --ignore=tests/ui -p tests.no_qt

(pytest-qt imports PySide6 as it starts, so this plugin switches it off for
that run; ``tests/ui`` runs on its own, with Qt). The refusal is in this process only,
as napari does it: a finder at the front of ``sys.meta_path`` that refuses
``PySide6`` (and ``shiboken6``), so any test or module that reaches for Qt
fails with an ImportError naming this plugin. Subprocesses (the ``docent``
command, the built app) are started as a user would start them, with Qt.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType

import pytest

REFUSED = ("PySide6", "shiboken6")


class RefuseQt(importlib.abc.MetaPathFinder):
    """Refuses to find Qt's modules: ``import PySide6`` raises ModuleNotFoundError."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> None:
        if fullname.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: Qt is made unimportable by tests/no_qt.py "
                "(the core and its tests must run without it)", name=fullname)
        return None


def install() -> RefuseQt:
    """Put the refusing finder first in ``sys.meta_path`` (idempotent)."""
    for finder in sys.meta_path:
        if isinstance(finder, RefuseQt):
            return finder
    finder = RefuseQt()
    sys.meta_path.insert(0, finder)
    return finder


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    # Called as "-p tests.no_qt" registers this plugin, before the installed
    # plugins load: the surest moment to keep pytest-qt (and its PySide6) out.
    pluginmanager.set_blocked("pytest-qt")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin("pytestqt.plugin"):
        raise pytest.UsageError("tests.no_qt needs pytest-qt switched off: add -p no:pytest-qt")
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in REFUSED)
    if loaded:
        raise pytest.UsageError(f"Qt was imported before tests.no_qt could refuse it: {loaded[0]}")
    install()
