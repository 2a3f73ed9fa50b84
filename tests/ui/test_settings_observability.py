"""Settings → Observability: export, content recording and the objectives are saved."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.config import Settings  # noqa: E402
from app.ui.settings_dialog import SettingsDialog  # noqa: E402


def test_export_is_off_and_content_unrecorded_by_default(qtbot, tmp_path: Path) -> None:
    dialog = SettingsDialog(Settings(), traces=tmp_path / "traces" / "spans.jsonl")
    qtbot.addWidget(dialog)
    page = dialog.observability_page
    assert dialog.tabs.tabText(dialog.tabs.indexOf(page)) == "&Observability"
    assert page.off_radio.isChecked() and not page.content_check.isChecked()
    assert "questions" in page.content_warning.text()
    assert page.file_label.text().endswith("spans.jsonl")
    assert page.answer_start_spin.value() == 5.0 and page.answer_target_spin.value() == 95.0
    assert page.window_spin.value() == 28


def test_the_page_saves_export_content_and_objectives(qtbot) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    page = dialog.observability_page
    page.otlp_radio.setChecked(True)
    page.otlp_edit.setText("http://collector.example:4318")
    page.content_check.setChecked(True)
    page.answer_start_spin.setValue(8.0)
    page.answer_target_spin.setValue(90.0)
    page.index_target_spin.setValue(98.5)
    page.api_target_spin.setValue(99.5)
    page.window_spin.setValue(14)

    s = dialog.settings()
    assert (s.trace_export, s.otlp_url, s.trace_content) == ("otlp", "http://collector.example:4318", True)
    assert (s.slo_answer_start_s, s.slo_answer_target, s.slo_index_target, s.slo_api_target,
            s.slo_window_days) == (8.0, 0.9, 0.985, 0.995, 14)

    page.file_radio.setChecked(True)
    assert dialog.settings().trace_export == "file"


def test_an_endpoint_that_is_not_http_cannot_be_saved(qtbot) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    page = dialog.observability_page
    page.otlp_radio.setChecked(True)
    page.otlp_edit.setText("collector:4318")
    assert not dialog.ok_button.isEnabled()
    assert "http://" in page.otlp_error.text() and page.otlp_error.isVisibleTo(page)
    page.otlp_edit.setText("https://collector:4318")
    assert dialog.ok_button.isEnabled() and not page.otlp_error.isVisibleTo(page)
    page.otlp_edit.setText("nonsense")
    page.off_radio.setChecked(True)  # the endpoint only matters when it is used
    assert dialog.ok_button.isEnabled()


def test_the_window_reconfigures_tracing_when_export_changes(qtbot, open_window, tmp_path: Path) -> None:
    import dataclasses

    from app.telemetry.setup import options

    window = open_window(tmp_path / "data")
    assert options().recorder is not None and options().file is None
    window.apply_settings(dataclasses.replace(window.library.settings, trace_export="file"))
    assert options().file == window.library.paths.traces
    assert options().recorder is not None  # the local record goes on
