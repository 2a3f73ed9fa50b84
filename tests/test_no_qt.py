"""The no-Qt guard of ``make test`` bites: with it, Qt cannot be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_under_the_guard_importing_qt_fails(pytestconfig: pytest.Config) -> None:
    if not pytestconfig.pluginmanager.has_plugin("tests.no_qt"):
        pytest.skip("only under -p tests.no_qt (make test runs the tests outside tests/ui so)")
    with pytest.raises(ImportError, match="no_qt"):
        import PySide6  # noqa: F401
    with pytest.raises(ImportError, match="no_qt"):
        from PySide6 import QtCore  # noqa: F401


def test_the_guard_refuses_qt_and_nothing_else() -> None:
    # In a fresh interpreter, so it works whether or not this one has Qt loaded.
    code = (
        "import tests.no_qt as guard; guard.install()\n"
        "import json, app.core.library, app.cli\n"
        "try:\n"
        "    import PySide6\n"
        "except ImportError as exc:\n"
        "    print('refused:', exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused: No module named 'PySide6'"), proc.stdout
