"""One operation's timing waterfall: where did the seconds go?

Each span is a horizontal bar on a shared time axis, indented under its
parent; errors are red and the chat span carries a marker at its first
token. A headline sums the answer up ("8.0 s: 0.2 s retrieval · 6.1 s
reading the prompt · 1.5 s writing"); selecting a bar lists its attributes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.config import DataPaths
from app.core.stores.activity import Operation, SpanRow
from app.errors import StoreError
from app.telemetry import names
from app.ui.charts import COLOURS, ERROR_COLOUR, format_ms, nice_step

_ROW_H = 24
_LABEL_W = 250
_INDENT = 14


@dataclass(frozen=True)
class WaterfallRow:
    """One bar: a span, how deep it sits, and where it lies from the trace's start."""

    span: SpanRow
    depth: int
    offset_ms: float
    duration_ms: float
    error: bool
    markers: list[tuple[str, float]] = field(default_factory=list)  # (event name, ms from the trace's start)

    @property
    def name(self) -> str:
        return self.span.name


def waterfall_rows(spans: list[SpanRow]) -> list[WaterfallRow]:
    """The spans as bars, each parent followed by its children in start order."""
    if not spans:
        return []
    origin = min(s.start_ns for s in spans)
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRow]] = {}
    for s in spans:
        # A span whose parent is missing (another process, or pruned) is shown as a root.
        parent = s.parent_id if s.parent_id in ids else None
        children.setdefault(parent, []).append(s)
    rows: list[WaterfallRow] = []

    def visit(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: (x.start_ns, -x.end_ns)):
            markers = [(str(e.get("name")), (int(e.get("ts_ns") or s.start_ns) - origin) / 1e6)
                       for e in s.events if e.get("name") != "exception"]
            rows.append(WaterfallRow(s, depth, (s.start_ns - origin) / 1e6, s.duration_ms,
                                     s.status.startswith("error"), markers))
            visit(s.span_id, depth + 1)

    visit(None, 0)
    return rows


def _is_chat(s: SpanRow) -> bool:
    return s.attributes.get(names.OPERATION) == "chat" or s.name.startswith("chat ")


def headline(spans: list[SpanRow], operation: Operation | None = None) -> str:
    """Where the time went, in one line: retrieval, reading the prompt, writing, and the rest."""
    if not spans:
        return ""
    total_ms = (max(s.end_ns for s in spans) - min(s.start_ns for s in spans)) / 1e6
    if operation is not None:
        total_ms = operation.duration_ms
    parts: list[str] = []
    retrieval = [s for s in spans if s.attributes.get(names.OPERATION) == "retrieval" or s.name == "retrieval"]
    if retrieval:
        parts.append(f"{format_ms(sum(s.duration_ms for s in retrieval))} retrieval")
    chats = [s for s in spans if _is_chat(s)]
    for chat in chats[:1]:
        first = next((int(e["ts_ns"]) for e in chat.events if e.get("name") == "first_token" and e.get("ts_ns")), None)
        if first is not None:
            parts.append(f"{format_ms((first - chat.start_ns) / 1e6)} reading the prompt")
            parts.append(f"{format_ms((chat.end_ns - first) / 1e6)} writing")
        else:
            parts.append(f"{format_ms(chat.duration_ms)} generating")
    if not parts:
        # Not an answer: name the longest steps under the operation.
        rows = waterfall_rows(spans)
        steps = sorted((r for r in rows if r.depth == 1), key=lambda r: -r.duration_ms)[:3]
        parts = [f"{format_ms(r.duration_ms)} {r.name}" for r in steps]
    return f"{format_ms(total_ms)}: " + " · ".join(parts) if parts else format_ms(total_ms)


def attribute_rows(s: SpanRow) -> list[tuple[str, str]]:
    """A span's attributes (and its events and status) as (name, value) lines, names sorted."""
    status = "ok" if s.status == "unset" else s.status  # OpenTelemetry's "unset" means nothing went wrong
    rows = [("name", s.name), ("duration", format_ms(s.duration_ms)), ("status", status)]
    for key in sorted(s.attributes):
        value = s.attributes[key]
        rows.append((key, value if isinstance(value, str) else json.dumps(value)))
    for e in s.events:
        at = (int(e.get("ts_ns") or s.start_ns) - s.start_ns) / 1e6
        extra = ", ".join(f"{k}={v}" for k, v in (e.get("attributes") or {}).items()
                          if k not in ("exception.stacktrace",))
        rows.append((f"event: {e.get('name')}", f"+{format_ms(at)}" + (f" ({extra})" if extra else "")))
    return rows


class WaterfallView(QWidget):
    """The bars, painted; click or arrow keys select one (``selected`` carries its index)."""

    selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[WaterfallRow] = []
        self.current = -1
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(False)

    def set_rows(self, rows: list[WaterfallRow]) -> None:
        """Show ``rows`` (from :func:`waterfall_rows`)."""
        self.rows = rows
        self.current = -1
        self.updateGeometry()
        self.update()

    def select(self, index: int) -> None:
        """Select the bar at ``index`` (and say so)."""
        if 0 <= index < len(self.rows):
            self.current = index
            self.selected.emit(index)
            self.update()

    def total_ms(self) -> float:
        return max((r.offset_ms + r.duration_ms for r in self.rows), default=0.0) or 1.0

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(760, 28 + _ROW_H * max(1, len(self.rows)) + 8)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, self.sizeHint().height())

    def _plot(self) -> QRectF:
        return QRectF(_LABEL_W, 24, max(40.0, self.width() - _LABEL_W - 70), _ROW_H * len(self.rows))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = int((event.position().y() - 24) // _ROW_H)
        self.select(index)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Down:
            self.select(min(len(self.rows) - 1, self.current + 1))
        elif event.key() == Qt.Key.Key_Up:
            self.select(max(0, self.current - 1))
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        grid = QColor(text)
        grid.setAlpha(40)
        plot = self._plot()
        total = self.total_ms()
        fm = QFontMetrics(self.font())
        # The time axis: round ticks (0, 0.5 s, 1 s, …) over the whole trace.
        step = nice_step(total, 5)
        i = 0
        while step * i <= total * 1.0001:
            x = plot.left() + plot.width() * step * i / total
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(x, plot.top() - 4), QPointF(x, plot.bottom()))
            p.setPen(text)
            label = format_ms(step * i)
            w = fm.horizontalAdvance(label)
            p.drawText(QPointF(min(x - w / 2, self.width() - w - 2) if i else x, 16), label)
            i += 1
        for i, row in enumerate(self.rows):
            top = plot.top() + i * _ROW_H
            if i == self.current:
                p.fillRect(QRectF(0, top, self.width(), _ROW_H), pal.color(QPalette.ColorRole.Highlight).lighter(170)
                           if pal.color(QPalette.ColorRole.Window).lightness() > 128
                           else pal.color(QPalette.ColorRole.Highlight).darker(150))
            p.setPen(QColor(ERROR_COLOUR) if row.error else text)
            name = fm.elidedText(row.name, Qt.TextElideMode.ElideRight, _LABEL_W - 12 - row.depth * _INDENT)
            p.drawText(QRectF(6 + row.depth * _INDENT, top, _LABEL_W, _ROW_H),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
            x = plot.left() + plot.width() * row.offset_ms / total
            w = max(2.0, plot.width() * row.duration_ms / total)
            colour = QColor(ERROR_COLOUR) if row.error else QColor(COLOURS[min(row.depth, len(COLOURS) - 1)])
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawRoundedRect(QRectF(x, top + 5, w, _ROW_H - 10), 3, 3)
            for _name, at in row.markers:
                mx = plot.left() + plot.width() * at / total
                p.setPen(QPen(text, 2))
                p.drawLine(QPointF(mx, top + 2), QPointF(mx, top + _ROW_H - 2))
                p.setBrush(text)
                p.drawPolygon([QPointF(mx - 4, top + 1), QPointF(mx + 4, top + 1), QPointF(mx, top + 6)])
            label = format_ms(row.duration_ms)
            p.setPen(text)
            lw = fm.horizontalAdvance(label)
            lx = x + w + 5 if x + w + 5 + lw < self.width() else x - lw - 5
            p.drawText(QRectF(lx, top, lw + 2, _ROW_H), Qt.AlignmentFlag.AlignVCenter, label)
        p.end()


class WaterfallDialog(QDialog):
    """The waterfall of one trace, with its headline and the selected span's attributes.

    Args:
        operation: the operation (its row in the activity store), when known.
        spans: its spans (empty once pruned).
    """

    def __init__(self, operation: Operation | None, spans: list[SpanRow], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.operation = operation
        self.spans = spans
        self.rows = waterfall_rows(spans)
        title = "Timing"
        if operation is not None:
            when = time.strftime("%H:%M:%S", time.localtime(operation.start_ns / 1e9))
            title = f"Timing — {operation.kind} “{operation.label}” at {when}"
        self.setWindowTitle(title)
        self.resize(1000, 620)

        self.headline_label = QLabel(self)
        font = self.headline_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.headline_label.setFont(font)
        self.headline_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note_label = QLabel(self)
        self.note_label.setWordWrap(True)
        if spans:
            self.headline_label.setText(headline(spans, operation))
            self.note_label.setText("Click a bar to see its attributes. ▼ marks the first token.")
        else:
            self.headline_label.setText(
                f"{format_ms(operation.duration_ms)} ({operation.outcome})" if operation else "No timing recorded")
            self.note_label.setText(
                "The spans of this operation were pruned: Docent keeps them only for the most recent operations."
                if operation is not None else
                "No timing was recorded for this answer (it was made before tracing, or its record was pruned).")
        self.view = WaterfallView(self)
        self.view.set_rows(self.rows)
        scroll = QScrollArea(self)
        scroll.setWidget(self.view)
        scroll.setWidgetResizable(True)
        self.attributes = QTreeWidget(self)
        self.attributes.setHeaderLabels(["Attribute", "Value"])
        self.attributes.setRootIsDecorated(False)
        self.attributes.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.attributes.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(scroll)
        split.addWidget(self.attributes)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline_label)
        layout.addWidget(self.note_label)
        layout.addWidget(split, 1)
        layout.addWidget(buttons)
        self.view.selected.connect(self._show_attributes)
        if self.rows:
            self.view.select(0)
            self.view.setFocus()

    def bar_names(self) -> list[tuple[str, int]]:
        """(span name, depth) of each bar, top to bottom (what a user reads down the left)."""
        return [(r.name, r.depth) for r in self.rows]

    def attribute_pairs(self) -> list[tuple[str, str]]:
        """The attributes listed now (of the selected bar)."""
        return [(self.attributes.topLevelItem(i).text(0), self.attributes.topLevelItem(i).text(1))
                for i in range(self.attributes.topLevelItemCount())]

    def _show_attributes(self, index: int) -> None:
        self.attributes.clear()
        for key, value in attribute_rows(self.rows[index].span):
            item = QTreeWidgetItem([key, value])
            item.setToolTip(1, value)
            self.attributes.addTopLevelItem(item)


def open_waterfall(paths: DataPaths, trace_id: str, parent: QWidget | None = None) -> WaterfallDialog:
    """Read ``trace_id``'s spans and show them (non-modal; the dialog deletes itself on close)."""
    from app.workers.activity_worker import read_trace

    try:
        operation, spans = read_trace(paths, trace_id)
    except StoreError as exc:  # a damaged store: say so in the dialog
        dialog = WaterfallDialog(None, [], parent)
        dialog.note_label.setText(f"The activity record could not be read: {exc}")
    else:
        dialog = WaterfallDialog(operation, spans, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog

