"""Measures how long the GUI thread's event loop goes without running.

A timer asks to fire every few milliseconds; the largest gap between two
firings is the longest stall a user could have felt. Reported by the
benchmark, never asserted as a timing in tests.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer


class StallMeter(QObject):
    """Records the longest gap between event-loop turns while running."""

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.longest_ms = 0.0
        self.ticks = 0

    def start(self) -> None:
        self.longest_ms, self.ticks, self._last = 0.0, 0, time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        """Stop measuring; returns the longest stall in milliseconds."""
        self._timer.stop()
        return self.longest_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            # Subtract the interval: only the delay beyond it is a stall.
            self.longest_ms = max(self.longest_ms, (now - self._last) * 1000 - self.interval_ms)
        self._last = now
        self.ticks += 1
