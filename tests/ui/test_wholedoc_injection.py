"""In the window, "Summarise evil.md" is defended like any answer: neither
the chat nor its stored snapshot carries a planted payload or link, and where
the output check acted the snapshot's flags say so as for an ordinary answer."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt

from tests.test_wholedoc_injection import EVIL, assert_defended, leaks
from tests.ui.test_main_window import drop

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def test_the_window_summary_of_an_injected_file_is_payload_free(qtbot, open_window, tmp_path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "evil.md").write_text(EVIL, encoding="utf-8")
    window = open_window(tmp_path / "data")
    drop(window, [folder])
    qtbot.waitUntil(lambda: not window.ingesting and ("evil.md", "indexed") in window.library_pane.visible_files(),
                    timeout=60_000)

    labels: list[str] = []
    pieces: list[str] = []
    # (Called on the worker's thread, as the signals are emitted.)
    window.model_worker.progress.connect(lambda _rid, _done, _total, label: labels.append(label))
    window.model_worker.token.connect(lambda _rid, piece: pieces.append(piece))
    window.chat.question.setPlainText("Summarise evil.md")
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None and window.chat.turns
                    and window.chat.turns[-1].turn_id is not None, timeout=180_000)

    turn = window.chat.turns[-1]
    assert labels and set(labels) == {"evil.md"}, "answered as a whole-document task, progress names the file"
    assert_defended(turn.record, "".join(pieces))
    assert not leaks(turn.answer) and not leaks(window.chat.transcript.toPlainText())
    assert all(c["path"].endswith("evil.md") for c in turn.record["citations"])
    record = window.library.audit.records()[-1]["data"]
    assert record["instruction_like_sources"], "the whole-document path screened its chunks"
    assert record["flags"] == turn.record.get("flags", [])
