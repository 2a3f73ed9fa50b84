"""A mailbox of ten thousand messages, dropped on the window: progress per message, then per passage embedded; Cancel; done."""

from __future__ import annotations

import os

import pytest

from tests import corpus
from tests.ui.test_main_window import drop

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.mark.slow
def test_a_mailbox_of_ten_thousand_messages_shows_progress_stops_and_indexes(qtbot, open_window, tmp_path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    corpus.make_mailbox(folder / "harbour.mbox", 10_000)
    window = open_window(tmp_path / "data")
    seen: list[tuple[str, int, int]] = []  # the label, the bar's value and its maximum, after each step

    def saw(wanted) -> bool:  # noqa: ANN001 - what to wait for, given what is on screen
        seen.append((window.progress_label.text(), window.progress.value(), window.progress.maximum()))
        return wanted()

    # Reading counts messages; embedding then counts passages. Stop while embedding.
    drop(window, [folder])
    qtbot.waitUntil(lambda: saw(lambda: "embedding" in window.progress_label.text()), timeout=120_000)
    assert any("harbour.mbox (message " in label and "/10,000)" in label for label, _, _ in seen)
    window.cancel_button.click()
    qtbot.waitUntil(lambda: not window.ingesting, timeout=60_000)
    assert window.last_report["cancelled"] is True
    assert window.last_report["indexed"] == 0
    assert "0 chunks" in window.library_pane.counts.text()  # nothing half-stored

    # Again, to the end: the bar moves while the one file is embedded, with the time left.
    seen.clear()
    drop(window, [folder])
    qtbot.waitUntil(lambda: saw(lambda: not window.ingesting and "1 indexed" in window.library_pane.counts.text()),
                    timeout=600_000)
    embedding = [(label, value, top) for label, value, top in seen if "embedding" in label]
    assert any(0 < value < top for _, value, top in embedding), embedding[-3:]
    assert any("ETA --:--" not in label for label, _, _ in embedding)
    assert "10,000/10,000 passages" in embedding[-1][0]
    assert window.last_report["failed"] == [] and window.last_report["chunks"] >= 10_000
