"""The audit log as a table: #, time, event and a one-line summary per record.

The model behind :class:`app.ui.audit_panel.AuditPanel`'s table; rows come
from :class:`app.core.stores.audit_tail.LogTail` and are summarised in words
by the core, so the command line and the window say the same.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont

from app.core.stores.audit_tail import AuditRow, local_time, short_text, summarize

_SUMMARY_MAX = 240
# Translucent, so the palette's text stays readable on it in light and dark themes.
_BROKEN_TINT = QColor(218, 54, 51, 70)


class AuditTableModel(QAbstractTableModel):
    """The log's lines, oldest first, as #, time, event and summary."""

    HEADERS = ("#", "Time", "Event", "Summary")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[AuditRow] = []
        self._broken_line: int | None = None
        # Summaries are cached: data() is called on every repaint.
        self._summaries: list[str] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        record = row.record or {}
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                seq = record.get("seq")
                return str(seq) if isinstance(seq, int) else f"line {row.line}"
            if col == 1:
                return local_time(record.get("ts"))
            if col == 2:
                return str(record.get("event", "")) if row.record else "(unreadable line)"
            return self._summaries[index.row()]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 1:
                return str(record.get("ts", "")) + " (UTC)" if record.get("ts") else None
            if col == 3:
                return self._summaries[index.row()]
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and row.line == self._broken_line:
            return _BROKEN_TINT
        if role == Qt.ItemDataRole.FontRole and self._is_alarm(row):
            font = QFont()
            font.setBold(True)
            return font
        return None

    @staticmethod
    def _is_alarm(row: AuditRow) -> bool:
        # Errors and the log's own integrity notes should stand out when
        # scrolling a long log.
        event = str((row.record or {}).get("event", ""))
        return row.record is None or event == "error" or event.startswith("audit_")

    def set_broken(self, seq: int | None) -> None:
        """Tint the record where the chain breaks (records are numbered like lines)."""
        if seq == self._broken_line:
            return
        self._broken_line = seq
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(self.HEADERS) - 1),
                                  [Qt.ItemDataRole.BackgroundRole])

    def row(self, i: int) -> AuditRow:
        return self._rows[i]

    def row_of_line(self, line: int) -> int | None:
        # Lines are numbered 1, 2, 3 … in order, so the row is the line's index.
        i = line - 1
        return i if 0 <= i < len(self._rows) and self._rows[i].line == line else None

    def reset(self, rows: list[AuditRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._summaries = [self._summary(r) for r in self._rows]
        self.endResetModel()

    def extend(self, rows: list[AuditRow]) -> None:
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self._summaries.extend(self._summary(r) for r in rows)
        self.endInsertRows()

    @staticmethod
    def _summary(row: AuditRow) -> str:
        if row.record is None:
            return short_text(row.raw, _SUMMARY_MAX)
        data = row.record.get("data")
        text = summarize(str(row.record.get("event", "")), data if isinstance(data, dict) else {})
        return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"
