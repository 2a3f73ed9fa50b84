"""Qt signals can be emitted for as long as the app runs.

PySide6 6.12.0 dropped a reference to ``True`` (``emit``'s result) on every
``Signal.emit``: after some tens of thousands of emits (a mailbox of ten
thousand messages, each a progress step) Python aborted with "deallocating
True or False". Docent pins a PySide6 without that fault; this test fails on
one that has it.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QObject, Signal  # noqa: E402


class _Steps(QObject):
    progress = Signal(dict)
    ticks = Signal(int)


def test_emitting_a_signal_keeps_pythons_shared_objects_alive(qtbot) -> None:
    steps = _Steps()
    got = [0]

    def count(_value: object) -> None:
        got[0] += 1

    steps.progress.connect(count)
    steps.ticks.connect(count)
    emits = 2_000
    before = sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)
    for i in range(emits):
        steps.progress.emit({"files_done": i, "eta_s": None, "current": "harbour.mbox"})
        steps.ticks.emit(i)
    after = sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)
    assert got[0] == 2 * emits
    # A few references come and go with the interpreter's own work; one lost
    # per emit would be thousands.
    assert all(abs(a - b) < emits // 4 for a, b in zip(after, before, strict=True)), (before, after)
