"""The settings dialog's reranker field: empty is off, a bad folder is refused inline."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

from PySide6.QtWidgets import QFileDialog  # noqa: E402

from app.config import Settings, bundled_embedding_model  # noqa: E402
from app.ui.settings_dialog import SettingsDialog  # noqa: E402


def _cross_encoder_folder(tmp_path: Path) -> Path:
    """A folder laid out as a saved cross-encoder (the dialog only reads its description)."""
    folder = tmp_path / "ms-marco-MiniLM-L-6-v2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["BertForSequenceClassification"], "id2label": {"0": "LABEL_0"},
    }), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_the_reranker_is_off_by_default_and_an_empty_field_keeps_it_off(qtbot) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)

    assert dialog.reranker_edit.text() == "" and dialog.reranker_path() is None
    assert dialog.rerank_candidates_spin.value() == 20
    assert dialog.ok_button.isEnabled() and not dialog.reranker_error.isVisibleTo(dialog)
    assert dialog.settings().reranker_path is None
    assert dialog.reranker_edit.toolTip() and dialog.rerank_candidates_spin.toolTip()


def test_a_cross_encoder_folder_is_accepted_and_saved(qtbot, tmp_path: Path, monkeypatch) -> None:
    folder = _cross_encoder_folder(tmp_path)
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    dialog.reranker_browse_button.click()
    dialog.rerank_candidates_spin.setValue(30)

    assert dialog.reranker_edit.text() == str(folder)
    assert dialog.ok_button.isEnabled() and dialog.is_valid()
    edited = dialog.settings()
    assert (edited.reranker_path, edited.rerank_candidates) == (str(folder), 30)
    dialog.show()
    dialog.accept()
    assert not dialog.isVisible()


def test_a_folder_that_is_not_a_cross_encoder_is_explained_and_keeps_the_dialog_open(
    qtbot, tmp_path: Path
) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.show()

    missing = tmp_path / "nowhere"
    dialog.reranker_edit.setText(str(missing))
    assert dialog.reranker_error.isVisible()
    assert str(missing) in dialog.reranker_error.text()
    assert "Settings → Answers → Reranker" in dialog.reranker_error.text()
    assert not dialog.ok_button.isEnabled() and not dialog.is_valid()
    dialog.accept()  # e.g. Enter pressed: refused, the dialog stays open
    assert dialog.isVisible()

    # The embedding model is a sentence-transformers folder too, but not a cross-encoder.
    dialog.reranker_edit.setText(str(bundled_embedding_model()))
    assert "embedding model" in dialog.reranker_error.text()
    assert not dialog.ok_button.isEnabled()

    dialog.reranker_edit.clear()  # empty again: reranking off, nothing to complain about
    assert dialog.ok_button.isEnabled() and not dialog.reranker_error.isVisible()


def test_the_saved_reranker_shows_and_restore_defaults_turns_it_off(qtbot, tmp_path: Path) -> None:
    folder = _cross_encoder_folder(tmp_path)
    dialog = SettingsDialog(Settings(reranker_path=str(folder), rerank_candidates=40))
    qtbot.addWidget(dialog)

    assert dialog.reranker_edit.text() == str(folder) and dialog.rerank_candidates_spin.value() == 40
    dialog.restore_defaults()
    assert dialog.reranker_path() is None and dialog.rerank_candidates_spin.value() == 20


def test_without_torch_a_reranker_exported_earlier_in_the_library_is_accepted(
    qtbot, tmp_path: Path, monkeypatch
) -> None:
    """The installed app leaves out torch: a reranker folder is usable when the library
    already holds its ONNX export, and the dialog must look there, not refuse it."""
    import app.core.answering.rerank as rerank
    from app.core.models import cross_encoder

    monkeypatch.setattr(rerank, "torch_available", lambda: False)
    folder = _cross_encoder_folder(tmp_path)
    cache = tmp_path / "data" / "models" / "rerank-onnx"

    refused = SettingsDialog(Settings(), reranker_cache=cache)
    qtbot.addWidget(refused)
    refused.show()
    refused.reranker_edit.setText(str(folder))
    assert "no ONNX export" in refused.reranker_error.text() and not refused.ok_button.isEnabled()

    made = cross_encoder.export_dir(folder, cache)  # what a source install's first use leaves behind
    made.mkdir(parents=True)
    (made / "model.onnx").write_bytes(b"")
    (made / "docent-rerank.json").write_text("{}", encoding="utf-8")
    accepted = SettingsDialog(Settings(reranker_path=str(folder)), reranker_cache=cache)
    qtbot.addWidget(accepted)
    accepted.show()
    assert accepted.ok_button.isEnabled() and not accepted.reranker_error.isVisible()
    assert accepted.settings().reranker_path == str(folder)
