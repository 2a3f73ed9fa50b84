"""A terminal progress bar for long work (counts, ETA), written to stderr.

The bar is tqdm's, with the time left it estimates from the rate so far
(``[elapsed<remaining]``). On a terminal it redraws one line; into a pipe or
a log it writes a whole line now and then instead of carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def format_eta(seconds: float | None) -> str:
    """``1:05`` style time left, ``--:--`` when unknown."""
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Lines:
    """A file for tqdm that turns its in-place redraws into whole lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line and line != self._last:  # closing redraws the last state once more
            self.stream.write(line + "\n")
            self._last = line

    def flush(self) -> None:
        self.stream.flush()


class ProgressBar:
    """Counts done of a total, with what is being worked on and the time left."""

    def __init__(self, stream: TextIO | None = None, *, every_s: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        # A terminal may redraw often; a log gets a line every few seconds.
        self.every_s = 0.1 if self._tty else every_s
        self._bar: tqdm | None = None
        self._drawn_at = 0.0

    def update(
        self,
        done: int,
        total: int,
        *,
        chunks: int | None = None,
        current: str | None = None,
        detail: str = "",
        unit: str = "files",
    ) -> None:
        """Show ``done`` of ``total`` (``unit``: files, questions…), chunks so far and the time left.

        Args:
            current: what is being worked on (a path: its file name is shown).
            detail: what is being done to it ("page 3/12"), shown after its name.

        The time left is tqdm's, from the average rate so far.
        """
        name = ""
        if current:
            name = current.rsplit("/", 1)[-1]
            name = name if len(name) <= 32 else name[:29] + "..."
        if detail:
            name += f" ({detail})"
        desc = f"{name}: " if name else ""
        made = f"{chunks} chunks" if chunks is not None else ""
        now = time.monotonic()
        bar = self._bar
        if bar is None:
            # Made at the first update, so its first line already says what is done.
            self._bar = tqdm(
                total=total, initial=done, desc=desc, postfix=made, unit=f" {unit}",
                file=self.stream if self._tty else _Lines(self.stream),
                dynamic_ncols=self._tty, ascii=not self._tty, leave=True,
                smoothing=0,  # the time left from the average rate, not the last step
                bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} "
                           "[{elapsed}<{remaining}{postfix}]",
            )
            self._drawn_at = now
            return
        bar.total = total
        bar.n = done
        bar.set_description_str(desc, refresh=False)
        bar.set_postfix_str(made, refresh=False)
        if done >= total or now - self._drawn_at >= self.every_s:
            self._drawn_at = now
            bar.refresh()

    def close(self) -> None:
        """End the bar (its last state stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
