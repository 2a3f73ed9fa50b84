"""The Activity panel: how Docent has been doing over the last hour, day or week.

Charts of answer latency and speed, retrieval latency, indexing throughput
and failures; what is left of each error budget; and the recent
operations, each opening its timing waterfall. Everything comes from the
data folder's activity store (read off the GUI thread by
app/workers/activity_worker.py), refreshed while the panel is visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtGui import QColor, QHideEvent, QIcon, QPainter, QPixmap, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.config import DataPaths, Settings
from app.core.slo import Budget
from app.core.stores.activity import Operation
from app.ui.charts import COLOURS, ERROR_COLOUR, BudgetBar, TimeChart, format_ms
from app.ui.waterfall import WaterfallDialog, open_waterfall
from app.workers.activity_worker import RANGES, ActivityReader, ActivitySnapshot

REFRESH_MS = 5_000
# A coloured dot per kind (emoji are missing from many Linux fonts).
_KIND_COLOURS = {"answer": COLOURS[0], "search": COLOURS[2], "index": COLOURS[1], "request": COLOURS[3],
                 "embed": COLOURS[4]}


def _dot(kind: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(_KIND_COLOURS.get(kind, COLOURS[4])))
    p.drawEllipse(1, 1, 10, 10)
    p.end()
    return QIcon(pixmap)
_BAD = ("error", "failed", "5xx")
_RANGE_LABELS = {"hour": "Last hour", "day": "Last day", "week": "Last week"}


def _when(start_ns: int) -> str:
    seconds = time.time() - start_ns / 1e9
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86_400:
        return time.strftime("%H:%M", time.localtime(start_ns / 1e9))
    return time.strftime("%a %d %b %H:%M", time.localtime(start_ns / 1e9))


class _BudgetRow(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.left = QLabel(self)
        self.bar = BudgetBar(self)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.left)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)

    def show_budget(self, b: Budget) -> None:
        self.title.setText(b.objective.title)
        self.left.setText("no data yet" if b.remaining is None else f"{max(0.0, b.remaining) * 100:.0f} % left")
        self.bar.set_remaining(b.remaining)
        self.message.setText(b.message)
        self.message.setStyleSheet(f"color: {ERROR_COLOUR};" if b.alert == "fast" else "")


class ActivityPanel(QWidget):
    """Charts, error budgets and recent operations of one data folder.

    Args:
        paths: the data folder (its activity store).
        settings: returns the current settings (the objectives' targets).

    Signals:
        budgets_changed(list): the error budgets, after each read.
        refreshed(): a read was shown.
    """

    budgets_changed = Signal(object)
    refreshed = Signal()

    def __init__(self, paths: DataPaths, settings: Callable[[], Settings], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self._settings = settings
        self.snapshot: ActivitySnapshot | None = None
        self.reader = ActivityReader(paths, self)
        self.reader.snapshot.connect(self._show)
        self.reader.failed.connect(self._failed)
        self.waterfall: WaterfallDialog | None = None
        self._icons: dict[str, QIcon] = {}

        self.range_combo = QComboBox(self)
        for name in RANGES:
            self.range_combo.addItem(_RANGE_LABELS[name], name)
        self.range_combo.setToolTip("How far back the charts reach.")
        self.range_combo.currentIndexChanged.connect(lambda _: self.refresh())
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)

        self.ttft_chart = TimeChart("Time to first token", "s", empty_text="No answers in this period.")
        self.speed_chart = TimeChart("Writing speed", "tokens/s", empty_text="No answers in this period.")
        self.retrieval_chart = TimeChart("Retrieval", "ms", empty_text="No searches in this period.")
        self.indexing_chart = TimeChart("Indexing throughput", "chunks/s",
                                        empty_text="Nothing was indexed in this period.")
        self.failures_chart = TimeChart("Failures", "count", kind="bar",
                                        empty_text="No failures in this period.")
        self.failures_chart.setMaximumHeight(170)
        self.charts = {"ttft": self.ttft_chart, "speed": self.speed_chart, "retrieval": self.retrieval_chart,
                       "indexing": self.indexing_chart, "failures": self.failures_chart}

        self.budget_rows = [_BudgetRow(self) for _ in range(3)]

        self.operations_view = QTreeWidget(self)
        self.operations_view.setHeaderLabels(["Operation", "When", "Duration", "Outcome"])
        self.operations_view.setRootIsDecorated(False)
        self.operations_view.setAlternatingRowColors(True)
        self.operations_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.operations_view.setToolTip("Double-click or press Enter to see where the time went.")
        header = self.operations_view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.operations_view.itemActivated.connect(self._open_item)
        self.no_operations_label = QLabel("Nothing has happened in this period yet: ask a question or add "
                                          "documents, and each operation is listed here.", self)
        self.no_operations_label.setWordWrap(True)

        self._lay_out()
        self.timer = QTimer(self, interval=REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("<b>Activity</b>", self))
        top.addStretch(1)
        top.addWidget(self.range_combo)
        charts = self.chart_grid = QGridLayout()
        charts.setSpacing(10)
        self._columns = 0
        self._place_charts(2)
        budgets = QVBoxLayout()
        budgets.setSpacing(2)
        title = QLabel("<b>Error budgets</b>", self)
        budgets.addWidget(title)
        for row in self.budget_rows:
            budgets.addWidget(row)
        content = QWidget(self)
        inner = QVBoxLayout(content)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addLayout(charts)
        inner.addSpacing(6)
        inner.addLayout(budgets)
        inner.addSpacing(6)
        inner.addWidget(QLabel("<b>Recent operations</b>", self))
        inner.addWidget(self.operations_view)
        inner.addWidget(self.no_operations_label)
        self.operations_view.setMinimumHeight(200)
        scroll = QScrollArea(self)
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(scroll, 1)
        self.status_label.hide()

    def _place_charts(self, columns: int) -> None:
        """Two charts a row when there is room, one in the window's narrow side pane."""
        if columns == self._columns:
            return
        self._columns = columns
        for chart in self.charts.values():
            self.chart_grid.removeWidget(chart)
        for i, chart in enumerate(list(self.charts.values())[:4]):
            self.chart_grid.addWidget(chart, i // columns, i % columns)
        self.chart_grid.addWidget(self.failures_chart, 4 // columns, 0, 1, columns)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._place_charts(2 if event.size().width() >= 720 else 1)

    # -- reading -------------------------------------------------------------

    def range_name(self) -> str:
        """The chosen range: hour, day or week."""
        return str(self.range_combo.currentData())

    def set_range(self, name: str) -> None:
        """Choose ``name`` (hour, day, week); the panel reads again."""
        self.range_combo.setCurrentIndex(self.range_combo.findData(name))

    def refresh(self) -> None:
        """Read the store again (in the background; ``refreshed`` follows)."""
        self.reader.read(self._settings(), self.range_name())

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()
        self.timer.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802
        self.timer.stop()  # no reads nobody sees
        super().hideEvent(event)

    def _failed(self, message: str) -> None:
        self.status_label.setText(message)
        self.status_label.show()

    def _show(self, snap: ActivitySnapshot) -> None:
        self.snapshot = snap
        if snap.error:
            self._failed(snap.error)
        else:
            self.status_label.hide()
        for name, chart in self.charts.items():
            chart.set_data(snap.buckets, snap.bucket_ns, snap.series.get(name, {}))
        for row, budget in zip(self.budget_rows, snap.budgets, strict=False):
            row.show_budget(budget)
        self._fill_operations(snap.operations)
        self.budgets_changed.emit(snap.budgets)
        self.refreshed.emit()

    def _fill_operations(self, operations: list[Operation]) -> None:
        selected = self.selected_trace()
        self.operations_view.clear()
        for op in operations:
            item = QTreeWidgetItem([f"{op.kind} · {op.label}", _when(op.start_ns),
                                    format_ms(op.duration_ms), op.outcome])
            item.setIcon(0, self._icons.setdefault(op.kind, _dot(op.kind)))
            item.setData(0, Qt.ItemDataRole.UserRole, op.trace_id)
            item.setToolTip(0, self._tip(op))
            if op.outcome in _BAD:
                item.setForeground(3, Qt.GlobalColor.red)
            self.operations_view.addTopLevelItem(item)
            if op.trace_id == selected:
                item.setSelected(True)
                self.operations_view.setCurrentItem(item)
        self.operations_view.setVisible(bool(operations))
        self.no_operations_label.setVisible(not operations)

    @staticmethod
    def _tip(op: Operation) -> str:
        lines = [f"{op.kind}: {op.label}", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(op.start_ns / 1e9))]
        if op.ttft_ms is not None:
            lines.append(f"First token after {format_ms(op.ttft_ms)}")
        if op.tokens_per_s is not None:
            lines.append(f"{op.tokens_per_s:.1f} tokens/s")
        if op.chunks is not None:
            lines.append(f"{op.chunks} chunks")
        return "\n".join(lines)

    # -- operations ------------------------------------------------------------

    def operation_rows(self) -> list[tuple[str, str, str]]:
        """(operation, duration, outcome) of each listed operation, newest first."""
        view = self.operations_view
        return [(view.topLevelItem(i).text(0), view.topLevelItem(i).text(2), view.topLevelItem(i).text(3))
                for i in range(view.topLevelItemCount())]

    def selected_trace(self) -> str | None:
        item = self.operations_view.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def _open_item(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        self.open_trace(str(item.data(0, Qt.ItemDataRole.UserRole)))

    def open_trace(self, trace_id: str) -> WaterfallDialog:
        """Show the waterfall of ``trace_id``."""
        self.waterfall = open_waterfall(self.paths, trace_id, self.window())
        return self.waterfall
