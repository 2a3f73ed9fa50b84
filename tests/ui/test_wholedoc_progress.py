"""A whole-document answer shows its reading progress in the chat, and Stop works."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QObject, Qt, Slot

from tests import corpus
from tests.test_wholedoc import tutorial_pages
from tests.ui.test_main_window import drop

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class Watcher(QObject):
    """Sees the chat after the window handled each progress signal: a QObject
    on the GUI thread, so its slot is queued there after the window's (a bare
    lambda would run at once on the worker's thread)."""

    def __init__(self, window) -> None:  # noqa: ANN001
        super().__init__()
        self.window = window
        self.seen: list[tuple[int, int, bool, str, int, int]] = []
        self.stop_at: int | None = None

    @Slot(int, int, int, str)
    def progress(self, _rid: int, done: int, total: int, _label: str) -> None:
        chat = self.window.chat
        self.seen.append((done, total, chat.progress.isVisible(), chat.progress_label.text(),
                          chat.progress_bar.value(), chat.progress_bar.maximum()))
        if self.stop_at is not None and done == self.stop_at:
            chat.stop_button.click()


@pytest.fixture(scope="module")
def small_model():
    """A small context, so a four-page PDF is read in several parts."""
    from app.config import bundled_chat_model
    from app.core.models.llm import LocalModel

    return LocalModel(bundled_chat_model(), n_ctx=512)


def test_the_chat_shows_reading_progress_and_stop_works(qtbot, open_window, tmp_path, small_model) -> None:
    import dataclasses

    folder = tmp_path / "docs"
    folder.mkdir()
    corpus.make_pdf(folder / "appetite.pdf", tutorial_pages(4))
    window = open_window(tmp_path / "data")
    window.library.apply_settings(dataclasses.replace(window.library.settings, max_tokens=40))
    window.library.use_model(small_model)
    drop(window, [folder])
    qtbot.waitUntil(lambda: not window.ingesting and ("appetite.pdf", "indexed") in window.library_pane.visible_files(),
                    timeout=60_000)

    watcher = Watcher(window)
    window.model_worker.progress.connect(watcher.progress)
    seen = watcher.seen
    assert not window.chat.progress.isVisible()
    window.chat.question.setPlainText("Summarise appetite.pdf")
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None, timeout=180_000)

    total = seen[-1][1]
    assert total >= 3 and seen[-1][0] == total
    for done, tot, visible, text, value, maximum in seen:
        assert visible and text.startswith(f"Reading appetite.pdf: {done} of {tot} parts")
        assert (value, maximum) == (done, tot)
    assert any("s left" in text for done, tot, _, text, _, _ in seen if 0 < done < tot), \
        "an estimate of the time left while parts remain"
    assert not window.chat.progress.isVisible(), "hidden once the answer is in"
    record = window.chat.turns[-1].record
    assert record["answer"] and not record["stopped"]
    assert all(c["path"].endswith("appetite.pdf") for c in record["citations"] + record["sources"])

    # Stop after the first part: the answer keeps what was read, the chat stays usable.
    seen.clear()
    watcher.stop_at = 1
    window.chat.question.setPlainText("summarize appetite")
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None, timeout=180_000)
    record = window.chat.turns[-1].record
    assert record["stopped"] is True and "Stopped after reading 1 of" in record["answer"]
    assert max(s[0] for s in seen) == 1
    assert not window.chat.progress.isVisible()
    assert window.chat.send_button.isEnabled() and not window.chat.stop_button.isEnabled()
