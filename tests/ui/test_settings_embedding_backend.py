"""The settings dialog offers the embedding backend and says what changing it means."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.config import Settings  # noqa: E402
from app.ui.settings_dialog import EMBEDDING_BACKENDS, SettingsDialog  # noqa: E402


def test_the_backend_combo_shows_edits_and_explains_the_choice(qtbot) -> None:
    dialog = SettingsDialog(Settings(), found_models=[])
    qtbot.addWidget(dialog)
    combo = dialog.embedding_backend_combo

    assert [combo.itemData(i) for i in range(combo.count())] == [b for _label, b in EMBEDDING_BACKENDS]
    assert combo.currentData() == "onnx-int8"  # the default
    assert "×" in combo.toolTip() and "indexing your library again" in combo.toolTip()
    assert dialog.embedding_backend_note.isHidden()

    combo.setCurrentIndex(combo.findData("torch"))

    assert dialog.settings().embedding_backend == "torch"
    assert not dialog.embedding_backend_note.isHidden()
    assert "indexed again" in dialog.embedding_backend_note.text()


def test_the_dialog_loads_the_torch_backend_and_restores_the_default(qtbot) -> None:
    dialog = SettingsDialog(Settings(embedding_backend="torch"), found_models=[])
    qtbot.addWidget(dialog)

    assert dialog.embedding_backend_combo.currentData() == "torch"
    assert dialog.embedding_backend_note.isHidden()  # nothing changed yet

    dialog.restore_defaults()

    assert dialog.settings().embedding_backend == "onnx-int8"
    assert not dialog.embedding_backend_note.isHidden()


def test_without_torch_the_standard_backend_is_shown_but_cannot_be_chosen(qtbot, monkeypatch) -> None:
    """The installed app leaves torch out: the choice is explained, not offered."""
    import app.ui.settings_dialog as settings_dialog

    monkeypatch.setattr(settings_dialog, "backend_available", lambda backend: backend != "torch")
    dialog = SettingsDialog(Settings(), found_models=[])
    qtbot.addWidget(dialog)
    combo = dialog.embedding_backend_combo
    item = combo.model().item(combo.findData("torch"))

    assert not item.isEnabled() and "PyTorch" in item.toolTip()
    assert combo.model().item(combo.findData("onnx-int8")).isEnabled()
