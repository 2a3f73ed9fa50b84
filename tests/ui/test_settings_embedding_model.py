"""The settings dialog lets a person choose an embedding model folder (e.g. a multilingual one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.config import Settings, bundled_embedding_model  # noqa: E402
from app.ui import settings_dialog  # noqa: E402
from app.ui.settings_dialog import SettingsDialog  # noqa: E402


def test_a_model_folder_can_be_browsed_to_and_is_saved(qtbot, monkeypatch) -> None:
    dialog = SettingsDialog(Settings(), found_models=[])
    qtbot.addWidget(dialog)
    assert dialog.embedding_model_edit.text() == ""
    assert "all-MiniLM-L6-v2" in dialog.embedding_model_edit.placeholderText()
    assert "multilingual" in dialog.embedding_model_edit.toolTip()
    assert dialog.settings().embedding_model_path is None
    assert dialog.embedding_model_note.isHidden()

    folder = str(bundled_embedding_model())  # any real sentence-transformers folder
    monkeypatch.setattr(settings_dialog.QFileDialog, "getExistingDirectory", lambda *a, **k: folder)
    dialog.embedding_model_browse_button.click()

    assert dialog.settings().embedding_model_path == folder
    assert dialog.embedding_model_error.isHidden() and dialog.ok_button.isEnabled()
    assert not dialog.embedding_model_note.isHidden()
    assert "indexed again" in dialog.embedding_model_note.text()

    dialog.embedding_model_edit.clear()
    assert dialog.settings().embedding_model_path is None
    assert dialog.embedding_model_note.isHidden()


def test_folders_that_are_not_embedding_models_are_explained(qtbot, tmp_path: Path) -> None:
    dialog = SettingsDialog(Settings(), found_models=[])
    qtbot.addWidget(dialog)

    dialog.embedding_model_edit.setText(str(tmp_path / "missing"))
    assert not dialog.embedding_model_error.isHidden()
    assert "does not exist" in dialog.embedding_model_error.text()
    assert not dialog.ok_button.isEnabled() and not dialog.is_valid()

    cross = tmp_path / "reranker"
    cross.mkdir()
    (cross / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    dialog.embedding_model_edit.setText(str(cross))
    assert "cross-encoder" in dialog.embedding_model_error.text()

    bare = tmp_path / "bert"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    dialog.embedding_model_edit.setText(str(bare))
    assert "modules.json" in dialog.embedding_model_error.text()
    assert not dialog.ok_button.isEnabled()


def test_the_dialog_loads_the_folder_in_use_and_restores_the_bundled_model(qtbot) -> None:
    folder = str(bundled_embedding_model())
    dialog = SettingsDialog(Settings(embedding_model_path=folder), found_models=[])
    qtbot.addWidget(dialog)
    assert dialog.embedding_model_edit.text() == folder
    assert dialog.embedding_model_note.isHidden()  # nothing changed yet

    dialog.restore_defaults()

    assert dialog.settings().embedding_model_path is None
    assert not dialog.embedding_model_note.isHidden()
