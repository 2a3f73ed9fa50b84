"""The team window driving a real team server: a library with the bundled
models served over HTTP in this process, keys for a reader, an editor and an
admin, and the window connecting with them as a person would (File → Connect
to team library…)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt

from app.core.stores.audit import record_user
from app.core.team_client import TeamClient, TeamError, TeamOffline, check_url
from app.errors import UsageError
from app.service.runner import ServerThread
from app.ui.connect_dialog import ConnectDialog
from app.ui.team_window import TeamWindow, passage_span
from app.workers.team_worker import CONNECTED, OFFLINE, RECONNECTING
from tests.team import TeamServer, start_team

WAIT_MS = 120_000  # a question on the bundled model, on a slow machine


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, embedder, chat_model) -> Iterator[TeamServer]:
    served = start_team(tmp_path_factory.mktemp("team-window"), embedder, chat_model)
    yield served
    served.stop()


def _connect(qtbot, team: TeamServer, who: str) -> TeamWindow:
    """Connect through the dialog, as File → Connect to team library… does, and open the window."""
    dialog = ConnectDialog(url=team.url)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.key_edit.setText(team.secrets[who])
    assert dialog.key_edit.echoMode() == dialog.key_edit.EchoMode.Password
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.client is not None, timeout=30_000)
    assert dialog.me["user"] == who
    window = TeamWindow(dialog.client, dialog.me, poll_ms=300)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state == CONNECTED and bool(window.folder_paths()), timeout=30_000)
    return window


def _ask(qtbot, window: TeamWindow, question: str) -> None:
    window.question_edit.setPlainText(question)
    qtbot.mouseClick(window.ask_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window._asking is None, timeout=WAIT_MS)


# --- the client on its own --------------------------------------------------------


def test_the_client_checks_addresses_and_keeps_the_key_to_its_host() -> None:
    assert check_url("http://server:8731/") == "http://server:8731"
    assert check_url("server:8731") == "http://server:8731"
    for bad in ("ftp://server", "http://", "file:///etc/passwd", "http://u:p@server:1"):
        with pytest.raises(UsageError):
            check_url(bad)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": "http://elsewhere.example/v1/whoami"})

    client = TeamClient("http://team.example:8731", "s3cret", transport=httpx.MockTransport(answer))
    with pytest.raises(TeamError, match="redirect"):
        client.whoami()
    # One request, to the server named; the redirect was not followed.
    assert [r.url.host for r in seen] == ["team.example"]
    assert seen[0].headers["authorization"] == "Bearer s3cret"


def _sse(*events: str) -> httpx.MockTransport:
    body = "".join(f"data: {e}\n\n" for e in events).encode()
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body,
                                                              headers={"content-type": "text/event-stream"}))


def test_the_stream_gives_tokens_then_the_answer_and_tells_a_cut_from_a_refusal() -> None:
    whole = _sse('{"token": "Late "}', '{"token": "July."}', '{"answer": "Late July. [1]", "sources": []}', "[DONE]")
    got = list(TeamClient("http://team.example", "k", transport=whole).ask_stream("When?"))
    assert got == ["Late ", "July.", {"answer": "Late July. [1]", "sources": []}]
    cut = _sse('{"token": "Late "}')  # the server went away before its answer
    with pytest.raises(TeamOffline):
        list(TeamClient("http://team.example", "k", transport=cut).ask_stream("When?"))
    failed = _sse('{"error": {"message": "The model could not finish.", "code": "internal_error"}}')
    with pytest.raises(TeamError, match="could not finish") as caught:
        list(TeamClient("http://team.example", "k", transport=failed).ask_stream("When?"))
    assert not isinstance(caught.value, TeamOffline)
    stopped = list(TeamClient("http://team.example", "k", transport=whole).ask_stream("When?", should_stop=lambda: True))
    assert stopped == []


def test_an_unreachable_server_is_offline_not_a_crash(unused_port: int) -> None:
    client = TeamClient(f"http://127.0.0.1:{unused_port}", "key")
    with pytest.raises(TeamOffline, match="Cannot reach"):
        client.whoami()


@pytest.fixture()
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the window ---------------------------------------------------------------------


def test_a_wrong_key_shows_the_servers_sentence_in_the_dialog(qtbot, team: TeamServer) -> None:
    dialog = ConnectDialog(url=team.url)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.key_edit.setText("not-a-key")
    qtbot.mouseClick(dialog.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "not valid" in dialog.message.text(), timeout=30_000)
    assert "This API key is not valid" in dialog.message.text()
    assert dialog.client is None and dialog.isVisible() and dialog.connect_button.isEnabled()


def test_a_reader_sees_their_folders_read_only_and_the_connection(qtbot, team: TeamServer) -> None:
    window = _connect(qtbot, team, "rita")
    assert window.folder_paths() == [str(team.notes)]
    assert str(team.docs) not in window.folder_paths()
    folder = window.library_tree.topLevelItem(0)
    assert folder.text(1) == "1 indexed" and folder.child(0).text(0) == "garden.md"
    assert window.add_folder_button is None and "Read-only" in window.library_note.text()
    assert window.state_label.text() == f"● Connected to {team.url} as rita (reader)"
    assert "rita (reader)" in window.windowTitle()


def test_an_editor_gets_the_add_folder_control(qtbot, team: TeamServer) -> None:
    window = _connect(qtbot, team, "ed")
    assert window.add_folder_button is not None and window.add_folder_button.isVisible()


def test_asking_streams_an_answer_whose_source_opens_the_page(qtbot, team: TeamServer) -> None:
    window = _connect(qtbot, team, "rita")
    tokens: list[str] = []
    window.asker.token.connect(lambda _id, piece: tokens.append(piece))
    _ask(qtbot, window, "When did the tomatoes in the greenhouse ripen?")
    turn = window.turns[-1]
    assert turn.status == "done", turn.note
    assert tokens, "the answer was not streamed"
    assert turn.sources and all(s["path"] == str(team.notes / "garden.md") for s in turn.sources)
    assert "When did the tomatoes" in window.transcript_text()
    assert window.sources_list.count() == len(turn.sources)
    assert window.sources_list.item(0).text().startswith("[1] garden.md")
    # Clicking the source shows its page, fetched from the server, the passage highlighted.
    item = window.sources_list.item(0)
    rect = window.sources_list.visualItemRect(item)
    qtbot.mouseClick(window.sources_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: "twelve apple trees" in window.viewer.toPlainText(), timeout=30_000)
    highlighted = window.highlighted_text()
    assert highlighted and "tomatoes" in highlighted
    assert highlighted.strip() in window.viewer.toPlainText()
    assert str(team.notes / "garden.md") in window.viewer_title.text()


def test_stop_ends_the_answer_and_keeps_what_came(qtbot, team: TeamServer) -> None:
    window = _connect(qtbot, team, "rita")
    window.question_edit.setPlainText("Tell me everything about the garden.")
    qtbot.mouseClick(window.ask_button, Qt.MouseButton.LeftButton)
    assert window.stop_button.isEnabled() and not window.ask_button.isEnabled()
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    assert window._asking is None and window.turns[-1].status == "stopped"
    assert window.ask_button.isEnabled() and not window.stop_button.isEnabled()
    assert "Stopped." in window.transcript_text()
    assert window.history() == []  # a stopped answer is not part of the conversation sent next


def test_a_page_outside_the_readers_folders_is_not_shown(qtbot, team: TeamServer) -> None:
    window = _connect(qtbot, team, "rita")
    window.open_source({"n": 1, "path": str(team.docs / "lighthouse-report.pdf"), "page": 2, "chunk_id": "x"})
    qtbot.waitUntil(lambda: "no document" in window.viewer_title.text(), timeout=30_000)
    assert window.viewer.toPlainText() == ""


def test_the_audit_tab_shows_only_the_readers_records(qtbot, team: TeamServer) -> None:
    boss = httpx.post(team.url + "/v1/search", json={"query": "storm warnings", "k": 2}, timeout=60,
                      headers={"Authorization": f"Bearer {team.secrets['boss']}"})
    assert boss.status_code == 200
    window = _connect(qtbot, team, "rita")
    _ask(qtbot, window, "How many apple trees were planted?")
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.audit_model.rowCount() > 0, timeout=30_000)
    users = {record_user(window.audit_model.row(i).record) for i in range(window.audit_model.rowCount())}
    assert users == {"rita"}
    events = {window.audit_model.row(i).record["event"] for i in range(window.audit_model.rowCount())}
    assert "answer" in events or "ask" in events, events
    assert "of rita" in window.audit_label.text()


def test_a_dropped_connection_keeps_the_chat_and_it_continues_after(qtbot, team: TeamServer) -> None:
    window = _connect(qtbot, team, "rita")
    _ask(qtbot, window, "When did the tomatoes in the greenhouse ripen?")
    assert window.turns[-1].status == "done"
    before = window.transcript_text()
    port = team.server.port
    team.server.stop()
    try:
        qtbot.waitUntil(lambda: window.state == RECONNECTING, timeout=30_000)
        assert window.state_label.text().startswith("● Reconnecting…")
        qtbot.waitUntil(lambda: window.state == OFFLINE, timeout=30_000)
        assert window.state_label.text().startswith("● Offline: Cannot reach")
        assert window.transcript_text() == before
        # Asked while offline: kept in the box, offered again.
        window.question_edit.setPlainText("How many apple trees were planted?")
        qtbot.mouseClick(window.ask_button, Qt.MouseButton.LeftButton)
        assert window.question_edit.toPlainText() == "How many apple trees were planted?"
        assert window.notice.isVisible() and "your question is kept" in window.notice.text()
        assert window.retry_button.isVisible()
        assert len(window.turns) == 1 and window.transcript_text() == before
    finally:
        team.server = ServerThread(team.service, port=port).start()
    qtbot.waitUntil(lambda: window.state == CONNECTED, timeout=30_000)
    assert window.state_label.text() == f"● Connected to {team.url} as rita (reader)"
    assert "Retry" in window.notice.text()
    qtbot.mouseClick(window.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window._asking is None and len(window.turns) == 2, timeout=WAIT_MS)
    assert window.turns[-1].status == "done", window.turns[-1].note
    assert window.turns[-1].question == "How many apple trees were planted?"
    assert window.transcript_text().startswith(before.rstrip()[:40])
    assert not window.notice.isVisible() and window.question_edit.toPlainText() == ""


def test_an_answer_cut_off_by_a_drop_goes_back_in_the_box(qtbot, team: TeamServer) -> None:
    window = _connect(qtbot, team, "rita")
    # Simulated as the stream's failure arrives (the worker's signal), so the
    # test does not race the model.
    window.question_edit.setPlainText("What was planted along the southern wall?")
    window.state = CONNECTED
    window.ask()
    turn = window._asking
    assert turn is not None
    window.asker.stop(turn.ask_id)  # the real request gives way to the simulated drop
    window.asker.failed.emit(turn.ask_id, "The connection to the server ended before the answer was complete.",
                             True)
    qtbot.waitUntil(lambda: window._asking is None, timeout=WAIT_MS)
    assert turn.status == "lost"
    assert window.question_edit.toPlainText() == "What was planted along the southern wall?"
    assert "Connection lost — your question is kept; Retry." == window.notice.text()
    assert "What was planted along the southern wall?" in window.transcript_text()


def test_passage_span_uses_the_pages_frame() -> None:
    page = {"text": "abcdefghij", "passages": [{"id": "a", "start": 0, "end": 6}, {"id": "b", "start": 4, "end": 10}]}
    assert passage_span({"chunk_id": "b", "span": [104, 110]}, page) == (4, 10)
    assert passage_span({"chunk_id": "zz", "text": "def"}, page) == (3, 6)
    assert passage_span({"chunk_id": "zz", "text": "xyz"}, page) is None


def test_an_editor_adds_a_folder_on_the_server(qtbot, team: TeamServer) -> None:
    later = team.notes / "later"
    later.mkdir()
    (later / "kiln.md").write_text("# Kiln log\n\nThe wood-fired kiln reached 1,280 degrees.\n", encoding="utf-8")
    window = _connect(qtbot, team, "ed")

    def names() -> set[str]:
        tree = window.library_tree
        return {tree.topLevelItem(i).child(j).text(0) for i in range(tree.topLevelItemCount())
                for j in range(tree.topLevelItem(i).childCount())}

    window.requests.add_folder.emit(str(later))  # what "Add folder on server…" sends
    qtbot.waitUntil(lambda: "kiln.md" in names(), timeout=WAIT_MS)


def test_the_main_windows_file_menu_opens_the_connect_dialog(qtbot, open_window, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    window = open_window(tmp_path / "data")
    file_menu = window.menuBar().actions()[0].menu()
    action = next(a for a in file_menu.actions() if a.text() == "Connect to team library…")
    action.trigger()
    qtbot.waitUntil(lambda: any(isinstance(w, ConnectDialog) and w.isVisible()
                                for w in QApplication.topLevelWidgets()), timeout=10_000)
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ConnectDialog) and w.isVisible())
    assert dialog.key_edit.echoMode() == dialog.key_edit.EchoMode.Password
    dialog.reject()
