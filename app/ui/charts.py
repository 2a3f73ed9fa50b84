"""Small time charts for the Activity panel, painted with QPainter.

QtCharts would do, but it is a heavy module to load at start-up and its
themes ignore the application's palette; these few lines follow the light
or dark palette (app/ui/theme.py), draw lines with points or stacked-free
grouped bars, and say in a sentence when there is nothing to draw.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

#: Series colours: blue, orange, teal, purple (readable on light and dark backgrounds).
COLOURS = ("#3d7fd9", "#e08a2c", "#2aa198", "#9b6dd6", "#7a8b99")
ERROR_COLOUR = "#da3633"  # the banner's error red


def format_ms(ms: float) -> str:
    """A duration for a label: 35 ms, 0.2 s, 6.1 s, 2 min."""
    if ms < 1:
        return "<1 ms" if ms > 0 else "0 s"
    if ms < 100:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 × 10^k) giving about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    exp = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if raw <= step * exp:
            return step * exp
    return 10 * exp


def _tick(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


class TimeChart(QWidget):
    """A titled chart of values per time bucket.

    Args:
        title: shown above the plot.
        unit: the values' unit, after the axis maximum ("s", "tokens/s").
        kind: "line" (each series a line, gaps where a bucket is empty) or "bar".
        empty_text: the sentence shown when no series has a value.
    """

    def __init__(self, title: str, unit: str, kind: str = "line", empty_text: str = "No data yet.",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.unit = unit
        self.kind = kind
        self.empty_text = empty_text
        self.buckets: list[int] = []
        self.bucket_ns = 1
        self.series: dict[str, list[float | None]] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(150)

    def set_data(self, buckets: list[int], bucket_ns: int, series: dict[str, list[float | None]]) -> None:
        """Show ``series`` (label → one value per bucket) over ``buckets`` (their starts, ns)."""
        self.buckets, self.bucket_ns, self.series = buckets, bucket_ns, series
        self.setToolTip(self.summary())
        self.update()

    def is_empty(self) -> bool:
        """Whether there is nothing to draw (the empty sentence is shown)."""
        if self.kind == "bar":
            return not any(v for values in self.series.values() for v in values)
        return all(v is None for values in self.series.values() for v in values)

    def summary(self) -> str:
        """The chart in words (its tooltip, and for screen readers)."""
        if self.is_empty():
            return f"{self.title}: {self.empty_text}"
        parts = []
        for label, values in self.series.items():
            seen = [v for v in values if v is not None]
            if self.kind == "bar":
                parts.append(f"{label}: {sum(seen):g}")
            else:
                parts.append(f"{label}: latest {_tick(seen[-1])} {self.unit}, highest {_tick(max(seen))} {self.unit}")
        return f"{self.title} — " + "; ".join(parts)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(420, 190)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        faint = QColor(text)
        faint.setAlpha(150)
        grid = QColor(text)
        grid.setAlpha(35)
        fm = QFontMetrics(self.font())
        bold = self.font()
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(text)
        p.drawText(QPointF(4, fm.ascent() + 2), self.title)
        title_w = QFontMetrics(bold).horizontalAdvance(self.title)
        p.setFont(self.font())
        p.setPen(faint)
        p.drawText(QPointF(4 + title_w + 6, fm.ascent() + 2), f"({self.unit})")
        # The legend, right-aligned on the title's line.
        x = self.width() - 6
        for i, label in reversed(list(enumerate(self.series))):
            w = fm.horizontalAdvance(label)
            x -= w
            p.setPen(faint)
            p.drawText(QPointF(x, fm.ascent() + 2), label)
            x -= 14
            p.fillRect(QRectF(x, fm.ascent() - 6, 10, 8), self._colour(i, label))
            x -= 12
        top = fm.height() + 12
        axis_w = fm.horizontalAdvance("00,000") + 8
        plot = QRectF(axis_w, top, max(10.0, self.width() - axis_w - 8), max(10.0, self.height() - top - fm.height() - 8))
        p.setPen(QPen(grid, 1))
        p.drawRect(plot)
        if self.is_empty() or not self.buckets:
            p.setPen(faint)
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            p.end()
            return
        step = nice_step(max(v for values in self.series.values() for v in values if v is not None) * 1.1, 4)
        top_value = step * 4
        for i in range(5):
            y = plot.bottom() - plot.height() * i / 4
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(faint)
            label = _tick(step * i)
            p.drawText(QRectF(0, y - fm.height() / 2, axis_w - 5, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        n = len(self.buckets)
        slot = plot.width() / n
        # Time labels: the first bucket, the middle and now.
        for i, align in ((0, Qt.AlignmentFlag.AlignLeft), (n // 2, Qt.AlignmentFlag.AlignHCenter),
                         (n, Qt.AlignmentFlag.AlignRight)):
            ns = self.buckets[0] + i * self.bucket_ns
            fmt = "%H:%M" if n * self.bucket_ns <= 86_400 * 10**9 else "%a %H:%M"
            label = "now" if i == n else time.strftime(fmt, time.localtime(ns / 1e9))
            x = plot.left() + i * slot
            rect = QRectF(x - 60 if align != Qt.AlignmentFlag.AlignLeft else x, plot.bottom() + 2, 120, fm.height())
            if align == Qt.AlignmentFlag.AlignRight:
                rect = QRectF(x - 120, plot.bottom() + 2, 120, fm.height())
            p.drawText(rect, align, label)
        if self.kind == "bar":
            count = max(1, len(self.series))
            width = max(1.5, slot * 0.8 / count)
            for s, (label, values) in enumerate(self.series.items()):
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(self._colour(s, label))
                for i, v in enumerate(values):
                    if v:
                        h = plot.height() * v / top_value
                        p.drawRect(QRectF(plot.left() + i * slot + slot * 0.1 + s * width, plot.bottom() - h, width, h))
        else:
            for s, (label, values) in enumerate(self.series.items()):
                colour = self._colour(s, label)
                path = QPainterPath()
                started = False
                points: list[QPointF] = []
                for i, v in enumerate(values):
                    if v is None:
                        started = False  # a gap: nothing happened in this bucket
                        continue
                    pt = QPointF(plot.left() + (i + 0.5) * slot, plot.bottom() - plot.height() * v / top_value)
                    points.append(pt)
                    if started:
                        path.lineTo(pt)
                    else:
                        path.moveTo(pt)
                        started = True
                p.setPen(QPen(colour, 2))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawPath(path)
                p.setBrush(colour)
                p.setPen(Qt.PenStyle.NoPen)
                for pt in points:
                    p.drawEllipse(pt, 3.5, 3.5)
        p.end()

    @staticmethod
    def _colour(index: int, label: str) -> QColor:
        if label in ("errors", "failed", "error"):
            return QColor(ERROR_COLOUR)
        return QColor(COLOURS[index % len(COLOURS)])


class BudgetBar(QWidget):
    """A thin bar of an error budget's remaining share (green, amber when low, red when spent)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.remaining: float | None = None
        self.setFixedHeight(10)
        self.setMinimumWidth(120)

    def set_remaining(self, remaining: float | None) -> None:
        """Show ``remaining`` (1.0 untouched … 0 spent; None: no operations yet)."""
        self.remaining = remaining
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        back = QColor(self.palette().color(QPalette.ColorRole.WindowText))
        back.setAlpha(35)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(back)
        p.drawRoundedRect(r, 4, 4)
        if self.remaining is not None:
            share = max(0.0, min(1.0, self.remaining))
            colour = "#2ea043" if share > 0.5 else "#d4961a" if share > 0.2 else ERROR_COLOUR
            p.setBrush(QColor(colour))
            if share > 0:
                p.drawRoundedRect(QRectF(r.left(), r.top(), r.width() * share, r.height()), 4, 4)
        p.end()
