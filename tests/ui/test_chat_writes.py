"""Conversations are written off the GUI thread, and the window shows the same as before."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402

WRITES = ("create", "rename", "delete", "add_turn", "update_turn", "delete_turn")


@pytest.fixture()
def write_threads(monkeypatch) -> list[tuple[str, str]]:
    """Every chat-store write, with the name of the thread it ran on (a spy; the store is real)."""
    from app.core.stores.chats import ChatStore

    seen: list[tuple[str, str]] = []
    for name in WRITES:
        real = getattr(ChatStore, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):  # noqa: ANN001, ANN002, ANN003
            seen.append((_name, threading.current_thread().name))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(ChatStore, name, spy)
    return seen


def test_chat_writes_run_on_the_chat_writer_thread(qtbot, open_window, tmp_path: Path, write_threads,
                                                  monkeypatch) -> None:
    window = open_window(tmp_path / "data")
    qtbot.waitUntil(lambda: window.conversation_id is not None, timeout=10_000)
    first = window.conversation_id
    assert window.chats_list.titles() == ["New chat"]

    window.chat.question.setPlainText("What does the harbour master log?")
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None and window.chat.turns
                    and window.chat.turns[-1].turn_id is not None, timeout=120_000)
    assert window.chats_list.titles() == ["What does the harbour master log?"]
    assert window.chat.send_button.isEnabled()

    window.new_chat()
    qtbot.waitUntil(lambda: window.conversation_id != first, timeout=10_000)
    assert len(window.chats_list.titles()) == 2 and window.chat.turns == []

    monkeypatch.setattr("app.ui.conversations.QInputDialog.getText", lambda *a, **k: ("Harbour", True))
    window.rename_chat(first)
    qtbot.waitUntil(lambda: "Harbour" in window.chats_list.titles(), timeout=10_000)

    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr("app.ui.conversations.QMessageBox.question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    second = window.conversation_id
    window.delete_chat(second)
    qtbot.waitUntil(lambda: window.conversation_id == first, timeout=10_000)
    assert window.chats_list.titles() == ["Harbour"]
    assert "harbour master" in window.chat.transcript.toPlainText()

    main = threading.main_thread().name
    assert {name for name, _ in write_threads} >= {"create", "add_turn", "rename", "delete"}
    assert all(thread != main for _, thread in write_threads), write_threads


def test_a_new_chat_made_just_before_closing_is_there_after_a_restart(qtbot, open_window, tmp_path: Path) -> None:
    data = tmp_path / "data"
    window = open_window(data)
    qtbot.waitUntil(lambda: window.conversation_id is not None, timeout=10_000)
    window.new_chat()
    window.new_chat()
    window.close()  # the writes sent are in before the window goes

    reopened = open_window(data)
    qtbot.waitUntil(lambda: reopened.conversation_id is not None, timeout=10_000)
    assert reopened.chats_list.titles() == ["New chat"] * 3
