"""A question asked again shows the answer given before, marked "cached, from
…"; Regenerate writes a new one (issue #17). Real window, models and stores."""

from __future__ import annotations

import os

from tests.ui.test_main_window import ask, sample_library_window

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

QUESTION = "How many storm warnings did the lighthouse keepers record?"


def test_the_same_question_again_is_marked_cached_and_regenerate_writes_it_again(
        qtbot, open_window, tmp_path) -> None:
    window = sample_library_window(qtbot, open_window, tmp_path)

    first = ask(qtbot, window, QUESTION)
    assert first.get("cached_from") is None and first["answer"]
    assert "cached, from" not in window.chat.transcript.toPlainText()

    # In a new chat (in the same one the earlier turn is part of what the model reads).
    first_chat = window.conversation_id
    window.new_chat()
    qtbot.waitUntil(lambda: window.conversation_id not in (None, first_chat) and not window.chat.turns,
                    timeout=10_000)
    again = ask(qtbot, window, QUESTION)
    assert again["cached_from"] and again["answer"] == first["answer"]
    assert [c["chunk_id"] for c in again["citations"]] == [c["chunk_id"] for c in first["citations"]]
    shown = window.chat.transcript.toPlainText()
    assert shown.count("cached, from ") == 1
    assert f"cached, from {again['cached_from'][:10]}" in shown

    # Regenerate writes it again: the turn is replaced by a fresh answer, not marked cached.
    turn_id = window.chat.turns[-1].turn_id
    window.regenerate(turn_id)
    qtbot.waitUntil(lambda: window._pending is None and window.chat.turns[-1].turn_id is not None,
                    timeout=120_000)
    assert [t.turn_id for t in window.chat.turns][-1] == turn_id
    fresh = window.chat.turns[-1].record
    assert fresh.get("cached_from") is None and fresh["answer"]
    assert "usage" in fresh  # the model wrote it
    assert "cached, from" not in window.chat.transcript.toPlainText()
