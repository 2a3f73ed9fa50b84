"""The window, used as a person would: drop, ask, read the sources, check the audit."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from tests import corpus

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def drop(window, paths: list[Path]) -> None:
    """Drop files/folders on the window as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)


def sample_library_window(qtbot, open_window, tmp_path: Path):  # noqa: ANN001, ANN201
    """A window with the tests' five-file sample library dropped on it and indexed."""
    folder = tmp_path / "docs"
    corpus.make_library(folder)
    window = open_window(tmp_path / "data")
    drop(window, [folder])
    qtbot.waitUntil(lambda: not window.ingesting and "5 indexed" in window.library_pane.counts.text(),
                    timeout=60_000)
    return window


def ask(qtbot, window, question: str) -> dict:
    window.chat.question.setPlainText(question)
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None and window.chat.turns
                    and window.chat.turns[-1].turn_id is not None, timeout=120_000)
    return window.chat.turns[-1].record


def test_drop_a_folder_ask_and_check_the_cited_page(qtbot, open_window, tmp_path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    pdf = corpus.make_pdf(folder / "lighthouse-report.pdf")
    window = open_window(tmp_path / "data")
    assert window.library_pane.empty.isVisible(), "first run says what to do"

    drop(window, [folder])
    qtbot.waitUntil(lambda: ("lighthouse-report.pdf", "indexed") in window.library_pane.visible_files(),
                    timeout=60_000)
    assert "1 indexed" in window.library_pane.counts.text()

    tokens: list[str] = []
    window.model_worker.token.connect(lambda _rid, piece: tokens.append(piece))
    record = ask(qtbot, window, "How many storm warnings did the lighthouse keepers record?")
    assert len(tokens) > 1, "the answer streamed token by token"
    assert not record["declined"]
    cited = [c for c in record["citations"] if c["path"] == str(pdf)]
    assert cited and cited[0]["page"] == 3
    assert "lighthouse-report.pdf" in window.chat.transcript.toPlainText()

    # The sources sidebar lists the citation; clicking it opens the PDF at page 3.
    cards = window.sources.cards()
    index = next(i for i, c in enumerate(cards) if c["path"] == str(pdf) and c["page"] == 3)
    window.sources.click_card(index)
    viewer = window.viewer.viewer if hasattr(window.viewer, "viewer") else window.viewer
    qtbot.waitUntil(lambda: viewer.current_page() == 3, timeout=10_000)
    assert viewer.highlight_found()

    # The audit tab shows the question and the answer, and the chain verifies.
    window.tabs.setCurrentWidget(window.audit_panel)
    window.audit_panel.refresh_now()
    assert "Verified" in window.audit_panel.status_text()
    events = [r["event"] for r in window.library.audit.records()]
    assert events[-2:] == ["ask", "answer"]


def test_stop_halts_the_answer_and_the_chat_stays_usable(qtbot, open_window, tmp_path) -> None:
    folder = tmp_path / "docs"
    corpus.make_library(folder)
    window = open_window(tmp_path / "data")
    window.library.apply_settings(dataclasses.replace(window.library.settings, max_tokens=400))
    drop(window, [folder])
    qtbot.waitUntil(lambda: not window.ingesting and window.library_pane.counts.text().startswith("5 indexed"),
                    timeout=60_000)

    tokens: list[str] = []
    window.model_worker.token.connect(lambda _rid, piece: tokens.append(piece))
    window.chat.question.setPlainText("Describe the cooperative, its finances, safety and outlook in detail.")
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(tokens) >= 2, timeout=60_000)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window._pending is None, timeout=30_000)
    record = window.chat.turns[-1].record
    assert record["stopped"] is True
    assert window.chat.send_button.isEnabled() and not window.chat.stop_button.isEnabled()

    again = ask(qtbot, window, "When is swarm season for bees?")
    assert again["answer"]


def test_conversations_and_settings_survive_a_restart(qtbot, open_window, tmp_path) -> None:
    folder = tmp_path / "docs"
    corpus.make_library(folder)
    data = tmp_path / "data"
    window = open_window(data)
    drop(window, [folder])
    qtbot.waitUntil(lambda: not window.ingesting and "5 indexed" in window.library_pane.counts.text(),
                    timeout=60_000)
    ask(qtbot, window, "What temperature should sourdough bake at?")
    window.chats.rename(window.conversation_id, "Baking questions")
    window.new_chat()
    window.apply_settings(dataclasses.replace(window.library.settings, temperature=0.65, sources_per_answer=3))
    window.close()

    reopened = open_window(data)
    assert "Baking questions" in reopened.chats_list.titles()
    assert reopened.library.settings.temperature == 0.65
    assert reopened.library.settings.sources_per_answer == 3
    baking = next(c for c in reopened.chats.conversations() if c.title == "Baking questions")
    reopened.open_chat(baking.id)
    assert "sourdough" in reopened.chat.transcript.toPlainText()
    assert ("sourdough.md", "indexed") in reopened.library_pane.visible_files()


def test_cancel_stops_indexing_between_files(qtbot, open_window, tmp_path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"note-{i:02d}.md").write_text(f"# Note {i}\n\nMeeting {i} discussed budget line {i}.\n")
    window = open_window(tmp_path / "data")
    seen: list[dict] = []
    window.ingest_worker.progress.connect(seen.append)
    drop(window, [folder])
    qtbot.waitUntil(lambda: any(p["files_done"] >= 2 for p in seen), timeout=60_000)
    window.cancel_button.click()
    qtbot.waitUntil(lambda: not window.ingesting, timeout=60_000)
    assert window.last_report["cancelled"] is True
    assert window.last_report["indexed"] < 40
    assert not window.progress.isVisible()


def test_everyday_chat_actions(qtbot, open_window, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "docs"
    docs = corpus.make_library(folder)
    window = open_window(tmp_path / "data")
    drop(window, [folder])
    qtbot.waitUntil(lambda: not window.ingesting and "5 indexed" in window.library_pane.counts.text(),
                    timeout=60_000)

    # Shift+Enter makes a new line instead of sending.
    box = window.chat.question
    box.setPlainText("first line")
    box.moveCursor(box.textCursor().MoveOperation.End)
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert box.toPlainText() == "first line\n" and window._pending is None
    box.clear()

    # Asking within one file only uses that file.
    window.library_pane.ask_about_requested.emit(str(docs["md"]))
    record = ask(qtbot, window, "What temperature and how long?")
    assert record["sources"] and {s["path"] for s in record["sources"]} == {str(docs["md"])}

    # "Why this answer" lists what was retrieved and what the model was given.
    turn_id = window.chat.turns[-1].turn_id
    window.show_why(turn_id)
    rows = window.why_dialog.table_rows()
    assert rows and any("sourdough.md" in " ".join(r) for r in rows)

    # Regenerate replaces the answer in place.
    window.regenerate(turn_id)
    qtbot.waitUntil(lambda: window._pending is None, timeout=120_000)
    assert [t.turn_id for t in window.chat.turns] == [turn_id]

    # Export writes the conversation with its citations as Markdown.
    out = tmp_path / "chat.md"
    monkeypatch.setattr("app.ui.main_window.QFileDialog.getSaveFileName", lambda *a, **k: (str(out), ""))
    window.export_chat()
    text = out.read_text(encoding="utf-8")
    assert "What temperature and how long?" in text and "sourdough.md" in text

    # Copy puts the answer and its sources on the clipboard.
    window.copy_answer(turn_id)
    from PySide6.QtWidgets import QApplication as App
    assert "sourdough.md" in App.clipboard().text() or window.chat.turns[-1].record["declined"]


def test_the_window_follows_changes_on_disk_and_shows_sync_state(qtbot, open_window, tmp_path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "one.md").write_text("# One\n\nThe ferry leaves at nine.\n")
    data = tmp_path / "data"
    window = open_window(data)
    drop(window, [folder])
    qtbot.waitUntil(lambda: ("one.md", "indexed") in window.library_pane.visible_files(), timeout=60_000)

    (folder / "two.md").write_text("# Two\n\nThe lighthouse is painted red.\n")
    (folder / "one.md").unlink()
    qtbot.waitUntil(lambda: ("two.md", "indexed") in window.library_pane.visible_files()
                    and not any(name == "one.md" for name, _ in window.library_pane.visible_files()),
                    timeout=60_000)
    qtbot.waitUntil(lambda: "up to date" in window.sync_label.text(), timeout=30_000)
    window.close()

    # Changed while Docent was closed: brought in line when it opens again.
    (folder / "three.md").write_text("# Three\n\nThe harbour wall was repaired.\n")
    reopened = open_window(data)
    qtbot.waitUntil(lambda: ("three.md", "indexed") in reopened.library_pane.visible_files(), timeout=60_000)
    assert ("two.md", "indexed") in reopened.library_pane.visible_files()


def test_broken_files_show_their_reasons_in_the_library(qtbot, open_window, tmp_path) -> None:
    from tests import hostile

    folder = tmp_path / "mixed"
    hostile.make_mixed_folder(folder)
    window = open_window(tmp_path / "data")
    drop(window, [folder])
    qtbot.waitUntil(lambda: not window.ingesting and ("locked.pdf", "failed") in window.library_pane.visible_files(),
                    timeout=120_000)
    assert "encrypted" in window.library_pane.reason_of("locked.pdf")
    assert "not even by OCR" in window.library_pane.reason_of("drawing.pdf")
    assert ("scanned.pdf", "indexed (OCR)") in window.library_pane.visible_files()
    window.library_pane.select_path(str(folder / "locked.pdf"))
    assert "encrypted" in window.library_pane.details.text()
    assert ("lighthouse-report.pdf", "indexed") in window.library_pane.visible_files()
    window.library_pane.filter.setText("failed")
    names = {name for name, _ in window.library_pane.visible_files()}
    assert "locked.pdf" in names and "lighthouse-report.pdf" not in names
