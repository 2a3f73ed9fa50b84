"""Settings → Observability: where traces go, whether they hold text, and the objectives."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.config import Settings

EXPORTS = ("off", "file", "otlp")


def otlp_problem(url: str) -> str | None:
    """Why ``url`` cannot be an OTLP/HTTP endpoint, or None when it can."""
    from urllib.parse import urlparse

    url = url.strip()
    if not url:
        return "Enter the collector's address, e.g. http://localhost:4318."
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"“{url}” is not an http:// or https:// address (e.g. http://localhost:4318)."
    return None


class ObservabilityPage(QWidget):
    """The page: export off / to a file / to OTLP, content recording, and the objectives.

    Args:
        traces: the data folder's span file (shown for the file export).

    Signals:
        changed(): a field changed (the dialog re-validates).
    """

    changed = Signal()

    def __init__(self, traces: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.explanation = QLabel(
            "Docent records how long each answer, search and indexed file took in the data folder, for the "
            "Activity panel. Nothing leaves this computer unless you choose an export below.", self)
        self.explanation.setWordWrap(True)
        self.off_radio = QRadioButton("&Off (only the local activity record)", self)
        self.file_radio = QRadioButton("To a JSON-lines &file, rotated at 10 MB", self)
        self.otlp_radio = QRadioButton("To an &OpenTelemetry collector (OTLP over HTTP)", self)
        self.group = QButtonGroup(self)
        for i, radio in enumerate((self.off_radio, self.file_radio, self.otlp_radio)):
            self.group.addButton(radio, i)
        self.file_label = QLabel(str(traces) if traces else "traces/spans.jsonl in the data folder", self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label.setToolTip("Where the spans are written; older files are kept beside it as .1, .2, …")
        self.otlp_edit = QLineEdit(self)
        self.otlp_edit.setPlaceholderText("http://localhost:4318")
        self.otlp_edit.setToolTip("The collector's OTLP/HTTP address; spans go to /v1/traces and metrics "
                                  "to /v1/metrics under it.")
        self.otlp_error = QLabel(self)
        self.otlp_error.setObjectName("OtlpError")
        self.otlp_error.setWordWrap(True)
        self.otlp_error.setStyleSheet("QLabel#OtlpError { color: rgb(218, 54, 51); font-weight: bold; }")
        self.otlp_error.hide()
        self.content_check = QCheckBox("&Record questions and passage text in traces", self)
        self.content_warning = QLabel(
            "⚠ Exported traces would then contain your questions and parts of your documents.", self)
        self.content_warning.setWordWrap(True)

        self.answer_start_spin = QDoubleSpinBox(self)
        self.answer_start_spin.setRange(0.5, 120.0)
        self.answer_start_spin.setSingleStep(0.5)
        self.answer_start_spin.setDecimals(1)
        self.answer_start_spin.setSuffix(" s")
        self.answer_start_spin.setToolTip("An answer is on time when its first word appears within this.")
        self.answer_target_spin = self._percent(50.0, 99.9)
        self.answer_target_spin.setToolTip("The share of answers that must start on time.")
        self.index_target_spin = self._percent(50.0, 99.99)
        self.index_target_spin.setToolTip("The share of files that must index without an error of Docent's "
                                          "(a damaged or protected file does not count against it).")
        self.api_target_spin = self._percent(50.0, 99.99)
        self.api_target_spin.setToolTip("The share of local API requests that must succeed (no 5xx).")
        self.window_spin = QSpinBox(self)
        self.window_spin.setRange(1, 90)
        self.window_spin.setSuffix(" days")
        self.window_spin.setToolTip("The objectives are counted over this rolling window.")

        self.group.idToggled.connect(lambda *_: self._update())
        self.otlp_edit.textChanged.connect(lambda *_: self._update())
        self._lay_out()

    def _percent(self, low: float, high: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setRange(low, high)
        spin.setDecimals(2)
        spin.setSingleStep(0.1)
        spin.setSuffix(" %")
        return spin

    def _lay_out(self) -> None:
        export = QGroupBox("Export traces", self)
        form = QFormLayout(export)
        form.addRow(self.off_radio)
        form.addRow(self.file_radio)
        form.addRow("      File:", self.file_label)
        form.addRow(self.otlp_radio)
        form.addRow(QLabel("      &Endpoint:", self, buddy=self.otlp_edit), self.otlp_edit)
        form.addRow("", self.otlp_error)
        form.addRow(self.content_check)
        form.addRow(self.content_warning)
        objectives = QGroupBox("Service-level objectives", self)
        obj = QFormLayout(objectives)
        obj.addRow(QLabel("Answers start &within:", self, buddy=self.answer_start_spin), self.answer_start_spin)
        obj.addRow(QLabel("…for at least (&answers):", self, buddy=self.answer_target_spin), self.answer_target_spin)
        obj.addRow(QLabel("Files index without error (&indexing):", self, buddy=self.index_target_spin),
                   self.index_target_spin)
        obj.addRow(QLabel("Local API requests succeed (A&PI):", self, buddy=self.api_target_spin),
                   self.api_target_spin)
        obj.addRow(QLabel("Counted over the last (&window):", self, buddy=self.window_spin), self.window_spin)
        layout = QVBoxLayout(self)
        layout.addWidget(self.explanation)
        layout.addWidget(export)
        layout.addWidget(objectives)
        layout.addStretch(1)

    # -- values ------------------------------------------------------------

    def load(self, s: Settings) -> None:
        """Show ``s``' observability fields."""
        export = s.trace_export if s.trace_export in EXPORTS else "off"
        self.group.button(EXPORTS.index(export)).setChecked(True)
        self.otlp_edit.setText(s.otlp_url)
        self.content_check.setChecked(s.trace_content)
        self.answer_start_spin.setValue(s.slo_answer_start_s)
        self.answer_target_spin.setValue(s.slo_answer_target * 100)
        self.index_target_spin.setValue(s.slo_index_target * 100)
        self.api_target_spin.setValue(s.slo_api_target * 100)
        self.window_spin.setValue(s.slo_window_days)
        self._update()

    def export(self) -> str:
        """The chosen export: off, file or otlp."""
        return EXPORTS[max(0, self.group.checkedId())]

    def values(self) -> dict[str, object]:
        """The settings this page edits, for ``dataclasses.replace``."""
        return {
            "trace_export": self.export(),
            "otlp_url": self.otlp_edit.text().strip(),
            "trace_content": self.content_check.isChecked(),
            "slo_answer_start_s": round(self.answer_start_spin.value(), 1),
            "slo_answer_target": round(self.answer_target_spin.value() / 100, 6),
            "slo_index_target": round(self.index_target_spin.value() / 100, 6),
            "slo_api_target": round(self.api_target_spin.value() / 100, 6),
            "slo_window_days": self.window_spin.value(),
        }

    def problem(self) -> str | None:
        """Why the page cannot be saved as it stands (a bad endpoint), or None."""
        return otlp_problem(self.otlp_edit.text()) if self.export() == "otlp" else None

    @Slot()
    def _update(self) -> None:
        self.otlp_edit.setEnabled(self.export() == "otlp")
        self.file_label.setEnabled(self.export() == "file")
        problem = self.problem()
        self.otlp_error.setText(problem or "")
        self.otlp_error.setVisible(problem is not None)
        self.changed.emit()
