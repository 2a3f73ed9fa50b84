"""The window's "Local API" setting, used as a person would: turn it on in the
settings, read the address in the status bar, make a key for another program,
revoke it, turn it off. Real server, real HTTP, the window's own library."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMessageBox

from app.config import DataPaths, Settings
from app.ui.local_api import NewKeyDialog, SecretDialog
from tests.ui.test_main_window import drop

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HONEY = ("# Orchard diary\n\nThe orchard's beehives produced forty-two kilograms of heather honey in "
         "August, the best harvest since the hives were moved beside the pear trees.\n")


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refuses(port: int) -> bool:
    """Whether a connection to ``port`` on this computer is refused."""
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def status(url: str, **kwargs: object) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=10, **kwargs).status_code  # type: ignore[arg-type]
    except httpx.TransportError:
        return None


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def turn_on(window, port: int):  # noqa: ANN201 - the SettingsDialog used
    """Tick the switch on the settings' Local API tab, choose the port, press OK."""
    dialog = window.settings_dialog()
    dialog.tabs.setCurrentWidget(dialog.api_page)
    dialog.api_page.enabled_check.setChecked(True)
    dialog.api_page.port_spin.setValue(port)
    assert f"http://127.0.0.1:{port}/v1" in dialog.api_page.explanation.text()
    window.apply_settings(dialog.settings())
    return dialog


def create_key(qtbot, window, monkeypatch: pytest.MonkeyPatch, name: str, folder: str | None = None) -> str:
    """Create a key on the settings' Local API tab; returns the secret the person was shown."""
    dialog = window.settings_dialog()
    qtbot.addWidget(dialog)
    asked: list[str] = []
    shown: list[str] = []

    def answer(self: NewKeyDialog) -> int:
        asked.append(self.windowTitle())
        if len(asked) > 1:
            return QDialog.DialogCode.Rejected
        self.name_edit.setText(name)
        if folder is not None:
            self.scope_combo.setCurrentIndex(self.scope_combo.findData(folder))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(NewKeyDialog, "exec", answer)
    monkeypatch.setattr(SecretDialog, "exec", lambda self: shown.append(self.text()) or 0)
    qtbot.mouseClick(dialog.api_page.create_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and len(shown) == 1, "asked once, and the secret shown once"
    assert "will not show it again" in shown[0]
    secrets = re.findall(r"dk-[A-Za-z0-9_-]{20,}", shown[0])
    assert len(secrets) == 1
    assert name in dialog.api_page.key_names()
    return secrets[0]


def test_the_api_serves_the_windows_library_with_keys_made_in_the_settings(
    qtbot, open_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    diary = notes / "orchard.md"
    diary.write_text(HONEY, encoding="utf-8")
    window = open_window(tmp_path / "data")
    drop(window, [notes])
    qtbot.waitUntil(lambda: ("orchard.md", "indexed") in window.library_pane.visible_files(), timeout=60_000)
    assert not window.api_label.isVisible(), "off by default"

    port = free_port()
    turn_on(window, port)
    address = f"http://127.0.0.1:{port}/v1"
    qtbot.waitUntil(lambda: window.api_label.text() == f"API: {address}", timeout=60_000)
    assert window.api_label.isVisible()
    assert window.library.settings.api_enabled and window.library.settings.api_port == port
    qtbot.waitUntil(lambda: status(f"http://127.0.0.1:{port}/health") == 200, timeout=30_000)
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
    # The window's library and model: what it indexed, with the model it answers with.
    assert health["library"]["files"]["indexed"] == 1
    assert health["model"] == window.library.model_path.name

    # Without a key, nothing but /health.
    assert status(address + "/models") == 401

    secret = create_key(qtbot, window, monkeypatch, "orchard-script", str(notes))
    keys_file = DataPaths(window.library.paths.root).keys
    assert secret not in keys_file.read_text(encoding="utf-8"), "only a hash is stored"
    again = window.settings_dialog()
    qtbot.addWidget(again)
    row = [again.api_page.keys_view.topLevelItem(0).text(c) for c in range(4)]
    assert row[0] == "orchard-script" and row[2] == str(notes)
    assert row[1] == secret[:7] + "…" and secret not in " ".join(row), "the list shows a hint, never the secret"

    models = httpx.get(address + "/models", headers=bearer(secret), timeout=30)
    assert models.status_code == 200
    assert "docent" in [m["id"] for m in models.json()["data"]]
    found = httpx.post(address + "/search", json={"query": "How much honey did the beehives produce?", "k": 3},
                       headers=bearer(secret), timeout=120)
    assert found.status_code == 200
    hits = found.json()["hits"]
    assert hits and hits[0]["path"] == str(diary)
    assert "forty-two kilograms" in hits[0]["text"]

    # Revoking asks first, then the same request is refused.
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda _parent, _title, text, *a: asked.append(text) or QMessageBox.StandardButton.Yes)
    again.api_page.keys_view.setCurrentItem(again.api_page.keys_view.topLevelItem(0))
    qtbot.mouseClick(again.api_page.revoke_button, Qt.MouseButton.LeftButton)
    assert asked and "orchard-script" in asked[0]
    assert again.api_page.key_names() == []
    assert httpx.get(address + "/models", headers=bearer(secret), timeout=30).status_code == 401

    # Off: the address leaves the status bar and the port refuses connections.
    window.apply_settings(replace(window.library.settings, api_enabled=False))
    qtbot.waitUntil(lambda: not window.api_label.isVisible(), timeout=30_000)
    qtbot.waitUntil(lambda: refuses(port), timeout=30_000)


def test_a_port_in_use_is_named_and_the_window_goes_on(qtbot, open_window, tmp_path: Path) -> None:
    window = open_window(tmp_path / "data")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        turn_on(window, port)
        qtbot.waitUntil(lambda: window.banner.is_shown(), timeout=30_000)
        assert str(port) in window.banner.current_text()
        assert "Choose another port" in window.banner.current_text()
        assert window.api_label.text() == "API: not running"
        assert str(port) in window.api_label.toolTip()
        assert window.library.settings.api_enabled, "the setting stays on, to retry"

        # The window still works: a dropped document is indexed.
        notes = tmp_path / "notes"
        notes.mkdir()
        (notes / "orchard.md").write_text(HONEY, encoding="utf-8")
        drop(window, [notes])
        qtbot.waitUntil(lambda: ("orchard.md", "indexed") in window.library_pane.visible_files(), timeout=60_000)
    finally:
        blocker.close()

    # With the port free, pressing OK in the settings again starts the API.
    window.apply_settings(window.library.settings)
    qtbot.waitUntil(lambda: window.api_label.text() == f"API: http://127.0.0.1:{port}/v1", timeout=60_000)
    assert status(f"http://127.0.0.1:{port}/health") == 200


def test_a_new_port_moves_the_api_and_closing_the_window_stops_it(qtbot, open_window, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = free_port()
    Settings(api_enabled=True, api_port=first).save(DataPaths(data).settings)
    window = open_window(data)
    qtbot.waitUntil(lambda: window.api_label.text() == f"API: http://127.0.0.1:{first}/v1", timeout=60_000)
    assert status(f"http://127.0.0.1:{first}/health") == 200

    second = free_port()
    turn_on(window, second)
    qtbot.waitUntil(lambda: window.api_label.text() == f"API: http://127.0.0.1:{second}/v1", timeout=60_000)
    assert refuses(first)
    assert status(f"http://127.0.0.1:{second}/health") == 200

    window.close()
    # Stopped before the window's close returned (and so before the library closed).
    assert refuses(second)
