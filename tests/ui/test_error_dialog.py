"""An unexpected error in the window: logged, shown with details, and the window keeps working."""

from __future__ import annotations

import logging
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from app.applog import setup_logging
from app.ui.crash import install_excepthook


@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_click_is_logged_and_shown_with_its_details(qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    log_file = setup_logging(tmp_path / "data")
    assert log_file == tmp_path / "data" / "docent.log"
    hook = install_excepthook(log_file)

    clicks: list[int] = []

    def handler() -> None:
        clicks.append(1)
        if len(clicks) == 1:
            raise ValueError("the index row 42 has no chunk")

    button = QPushButton("Do it")
    qtbot.addWidget(button)
    button.clicked.connect(handler)
    button.show()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: getattr(hook, "last_dialog", None) is not None and hook.last_dialog.isVisible())
    box: QMessageBox = hook.last_dialog
    assert box.text() == "Something went wrong inside Docent."
    assert "ValueError: the index row 42 has no chunk" in box.informativeText()
    assert str(log_file) in box.informativeText() and "safe" in box.informativeText()
    assert "Traceback (most recent call last)" in box.detailedText() and "in handler" in box.detailedText()
    for handler_ in logging.getLogger().handlers:
        handler_.flush()
    logged = log_file.read_text(encoding="utf-8")
    assert "Unexpected error" in logged and "the index row 42 has no chunk" in logged

    # The window is still alive: close the dialog and the next click works.
    box.button(QMessageBox.StandardButton.Close).click()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert len(clicks) == 2


def test_an_unwritable_data_folder_still_opens_without_a_log(tmp_path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    assert setup_logging(blocker) is None
