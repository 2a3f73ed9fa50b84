"""A terminal progress bar for long work (counts, ETA), written to stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_eta(seconds: float | None) -> str:
    """``1:05`` style time left, ``--:--`` when unknown."""
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Redraws one line on a terminal; prints a line now and then otherwise."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 24, every_s: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.every_s = every_s
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._drawn = False

    def update(
        self,
        done: int,
        total: int,
        *,
        chunks: int | None = None,
        eta_s: float | None,
        current: str | None,
        pages: tuple[int, int] = (0, 0),
        unit: str = "files",
    ) -> None:
        """Show ``done`` of ``total`` (``unit``: files, questions…), chunks so far and the time left."""
        now = time.monotonic()
        if now - self._last < (self.every_s if not self._tty else 0.1) and done < total:
            return
        self._last = now
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        name = ""
        if current:
            name = current.rsplit("/", 1)[-1]
            name = name if len(name) <= 32 else name[:29] + "..."
        if pages[1] > 1:
            name += f" (page {pages[0]}/{pages[1]})"
        made = f" · {chunks} chunks" if chunks is not None else ""
        line = f"[{bar}] {done}/{total} {unit}{made} · ETA {format_eta(eta_s)} {name}"
        if self._tty:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self._tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
