"""The banner shows messages without blocking, newest first, with details on demand."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtWidgets import QVBoxLayout, QWidget  # noqa: E402

from app.ui.banner import Banner  # noqa: E402


@pytest.fixture()
def banner(qtbot) -> Iterator[Banner]:
    # Inside a window, as it will be used: visibility depends on the parent.
    window = QWidget()
    qtbot.addWidget(window)
    b = Banner(window)
    QVBoxLayout(window).addWidget(b)
    window.show()
    yield b  # the window must stay referenced, or Qt deletes the banner with it


def test_it_is_hidden_until_there_is_something_to_say(banner: Banner) -> None:
    assert not banner.is_shown()
    assert banner.current_text() == ""


def test_a_message_shows_and_closes(qtbot, banner: Banner) -> None:
    banner.show_message("Could not read report.pdf: it is encrypted.", level="warning")

    qtbot.waitUntil(banner.isVisible)
    assert banner.is_shown()
    assert banner.current_text() == "Could not read report.pdf: it is encrypted."
    assert banner.current_level() == "warning"
    assert not banner.details_button.isVisible()  # nothing more to show

    with qtbot.waitSignal(banner.dismissed):
        banner.close_button.click()
    assert not banner.is_shown()


def test_details_are_revealed_on_demand_and_selectable(qtbot, banner: Banner) -> None:
    banner.show_message("The model could not be loaded.", details="Traceback …\nModelError: bad magic")

    assert banner.details_button.isVisible()
    assert not banner.details_view.isVisible()
    banner.details_button.click()
    qtbot.waitUntil(banner.details_view.isVisible)
    assert "bad magic" in banner.details_view.toPlainText()
    assert banner.details_view.isReadOnly()
    banner.details_button.click()
    qtbot.waitUntil(lambda: not banner.details_view.isVisible())


def test_messages_queue_newest_first_with_a_count(banner: Banner) -> None:
    banner.show_message("first", level="info")
    banner.show_message("second", level="warning")
    banner.show_message("third", level="error")

    assert banner.current_text() == "third"
    assert banner.more_label.text() == "(+2 more)"

    banner.close_button.click()
    assert banner.current_text() == "second"
    assert banner.more_label.text() == "(+1 more)"

    banner.close_button.click()
    assert banner.current_text() == "first"
    assert not banner.more_label.isVisible()

    banner.close_button.click()
    assert not banner.is_shown()


def test_dismiss_all_clears_the_queue(banner: Banner) -> None:
    for i in range(4):
        banner.show_message(f"message {i}")
    assert banner.dismiss_all_button.isVisible()

    banner.dismiss_all_button.click()

    assert not banner.is_shown()
    assert banner.pending_count() == 0


def test_a_repeating_message_does_not_bury_the_others(banner: Banner) -> None:
    banner.show_message("older problem")
    for _ in range(3):
        banner.show_message("Cannot reach the watched folder.", level="warning")

    assert banner.pending_count() == 1
    assert banner.text_label.text() == "Cannot reach the watched folder. (×3)"


def test_each_level_has_its_own_look(banner: Banner) -> None:
    seen = set()
    for level in ("error", "warning", "info"):
        banner.show_message(level, level=level)
        assert banner.property("level") == level
        seen.add(banner.icon_label.text())
    assert len(seen) == 3

    with pytest.raises(ValueError):
        banner.show_message("x", level="fatal")
