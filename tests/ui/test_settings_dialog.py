"""The settings dialog edits a copy of the settings, validates the model and persists."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

from PySide6.QtWidgets import QFileDialog  # noqa: E402

from app.config import Settings  # noqa: E402
from app.ui.settings_dialog import BUNDLED_LABEL, SettingsDialog  # noqa: E402


def _gguf(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(b"GGUF")
    return str(path)


def test_the_dialog_shows_the_settings_it_was_given(qtbot, tmp_path: Path) -> None:
    big = _gguf(tmp_path, "mistral-7b.Q4_K_M.gguf")
    settings = Settings(model_path=big, n_ctx=8192, n_threads=None, temperature=0.7, top_k=20,
                        system_prompt="Be brief.")
    dialog = SettingsDialog(settings, found_models=[("Mistral 7B", big)])
    qtbot.addWidget(dialog)

    assert dialog.model_combo.itemText(0) == BUNDLED_LABEL
    assert dialog.model_combo.currentText() == "Mistral 7B"
    assert dialog.model_combo.count() == 2  # the current model is not listed twice
    assert dialog.context_spin.value() == 8192
    assert dialog.threads_spin.value() == 0 and dialog.threads_spin.text() == "Auto"
    assert dialog.temperature_spin.value() == 0.7
    assert dialog.system_prompt_edit.toPlainText() == "Be brief."
    assert dialog.ok_button.isEnabled()
    assert all(w.toolTip() for w in (dialog.model_combo, dialog.temperature_spin, dialog.top_p_spin,
                                     dialog.min_relevance_spin, dialog.system_prompt_edit))


def test_settings_returns_an_edited_copy_and_leaves_the_input_alone(qtbot) -> None:
    original = Settings(chunk_tokens=300, extra={"theme": "dark"})
    dialog = SettingsDialog(original, found_models=[])
    qtbot.addWidget(dialog)

    dialog.temperature_spin.setValue(1.05)
    dialog.top_k_spin.setValue(10)
    dialog.threads_spin.setValue(3)
    dialog.sources_spin.setValue(8)
    edited = dialog.settings()

    assert (edited.temperature, edited.top_k, edited.n_threads, edited.sources_per_answer) == (1.05, 10, 3, 8)
    assert edited.model_path is None
    # Fields the dialog does not show are carried over untouched.
    assert edited.chunk_tokens == 300 and edited.extra == {"theme": "dark"}
    assert edited is not original
    assert (original.temperature, original.top_k) == (0.2, 40)


def test_ranges_follow_the_fields_meaning(qtbot) -> None:
    dialog = SettingsDialog(Settings(), found_models=[])
    qtbot.addWidget(dialog)

    assert (dialog.context_spin.minimum(), dialog.context_spin.maximum(), dialog.context_spin.singleStep()) == (
        512, 131072, 512)
    assert (dialog.temperature_spin.minimum(), dialog.temperature_spin.maximum()) == (0.0, 2.0)
    assert (dialog.top_p_spin.minimum(), dialog.top_p_spin.maximum()) == (0.05, 1.0)
    assert (dialog.repeat_penalty_spin.minimum(), dialog.repeat_penalty_spin.maximum()) == (1.0, 2.0)
    assert (dialog.max_tokens_spin.minimum(), dialog.max_tokens_spin.maximum()) == (16, 8192)
    assert (dialog.sources_spin.minimum(), dialog.sources_spin.maximum()) == (1, 20)
    # The prompt budget reads as words at 0, as tokens otherwise.
    dialog.prompt_budget_spin.setValue(0)
    assert dialog.prompt_budget_spin.text() == "Whole passages"
    dialog.prompt_budget_spin.setValue(300)
    assert dialog.prompt_budget_spin.text() == "300 tokens"
    assert dialog.threads_spin.maximum() == (os.cpu_count() or 1) * 2


def test_a_missing_model_file_is_refused_inline(qtbot, tmp_path: Path) -> None:
    dialog = SettingsDialog(Settings(), found_models=[("Gone", str(tmp_path / "gone.gguf"))])
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.ok_button.isEnabled()

    dialog.model_combo.setCurrentIndex(1)
    assert not dialog.ok_button.isEnabled()
    assert dialog.model_error.isVisible()
    assert "does not exist" in dialog.model_error.text()

    dialog.model_combo.setCurrentIndex(0)
    assert dialog.ok_button.isEnabled()
    assert not dialog.model_error.isVisible()


def test_browse_adds_and_selects_the_chosen_file(qtbot, tmp_path: Path, monkeypatch) -> None:
    chosen = _gguf(tmp_path, "qwen.gguf")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (chosen, "")))
    dialog = SettingsDialog(Settings(), found_models=[])
    qtbot.addWidget(dialog)

    dialog.browse_button.click()

    assert dialog.model_combo.currentText() == "qwen.gguf"
    assert dialog.settings().model_path == chosen
    assert dialog.ok_button.isEnabled()


def test_restore_defaults_resets_every_field(qtbot, tmp_path: Path) -> None:
    model = _gguf(tmp_path, "m.gguf")
    dialog = SettingsDialog(Settings(model_path=model, temperature=1.5, max_tokens=64,
                                     system_prompt="x"), found_models=[])
    qtbot.addWidget(dialog)

    dialog.restore_button.click()

    restored = dialog.settings()
    defaults = Settings()
    assert restored.model_path is None
    assert (restored.temperature, restored.max_tokens, restored.system_prompt) == (
        defaults.temperature, defaults.max_tokens, defaults.system_prompt)


def test_edited_settings_survive_a_restart(qtbot, tmp_path: Path) -> None:
    model = _gguf(tmp_path, "llama-3.2-3b.gguf")
    path = tmp_path / "data" / "settings.json"
    first = SettingsDialog(Settings.load(path), found_models=[("Llama 3.2 3B", model)])
    qtbot.addWidget(first)

    first.model_combo.setCurrentIndex(1)
    first.context_spin.setValue(16384)
    first.gpu_layers_spin.setValue(33)
    first.threads_spin.setValue(2)
    first.temperature_spin.setValue(0.35)
    first.top_k_spin.setValue(25)
    first.top_p_spin.setValue(0.8)
    first.repeat_penalty_spin.setValue(1.25)
    first.max_tokens_spin.setValue(1024)
    first.sources_spin.setValue(7)
    first.prompt_budget_spin.setValue(350)
    assert first.ocr_check.isChecked(), "scans are read by default"
    first.ocr_check.setChecked(False)
    first.min_relevance_spin.setValue(0.4)
    first.system_prompt_edit.setPlainText("Answer in French.")
    saved = first.settings()
    saved.save(path)

    # A new session: settings read back from disk into a fresh dialog.
    reloaded = Settings.load(path)
    assert reloaded == saved
    second = SettingsDialog(reloaded, found_models=[("Llama 3.2 3B", model)])
    qtbot.addWidget(second)

    assert second.model_combo.currentText() == "Llama 3.2 3B"
    assert (second.context_spin.value(), second.gpu_layers_spin.value(), second.threads_spin.value()) == (
        16384, 33, 2)
    assert second.temperature_spin.value() == 0.35
    assert second.top_k_spin.value() == 25
    assert second.top_p_spin.value() == 0.8
    assert second.repeat_penalty_spin.value() == 1.25
    assert second.max_tokens_spin.value() == 1024
    assert second.sources_spin.value() == 7
    assert second.prompt_budget_spin.value() == 350
    assert not second.ocr_check.isChecked() and reloaded.ocr is False
    assert second.min_relevance_spin.value() == 0.4
    assert second.system_prompt_edit.toPlainText() == "Answer in French."
    assert second.settings() == saved
