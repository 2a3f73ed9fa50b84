"""The settings dialog: which model answers, and how; and the Local API.

It edits a copy of :class:`~app.config.Settings`; the caller saves it. Models
are discovered by the caller (scanning disks is slow and belongs off the GUI
thread), so the dialog only lists what it is given, plus a file picker. The
Local API tab (:mod:`app.ui.local_api`) also makes and revokes API keys, at
once: a key's secret is shown only when it is made.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import config
from app.config import Settings
# Only the cheap folder checks: the model libraries themselves are never imported here.
from app.core.models.embedder import backend_available, embedding_model_problem
from app.core.answering.rerank import reranker_problem
from app.core.stores.keys import KeyStore
from app.ui.local_api import LocalApiPage
from app.ui.observability_page import ObservabilityPage

BUNDLED_LABEL = "Bundled SmolLM2-135M (default)"
BUNDLED_EMBEDDING_LABEL = "Bundled all-MiniLM-L6-v2, English (default)"
# The embedding backends (Settings.embedding_backend), as offered to the user.
EMBEDDING_BACKENDS = (
    ("Faster (ONNX int8, default)", "onnx-int8"),
    ("Standard (full precision, needs PyTorch)", "torch"),
)
# Measured by bench/onnx.py (bench/onnx.json): 3.08× on 1,885 chunks of the
# Python docs, 2 CPU cores, recall@5 unchanged on the 50-question dev set.
_ONNX_SPEEDUP = "3"
# Item data for the bundled model: Settings.model_path is None for it.
_BUNDLED = ""


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.normcase(str(Path(a).expanduser().resolve())) == os.path.normcase(
            str(Path(b).expanduser().resolve())
        )
    except OSError:
        return a == b


class SettingsDialog(QDialog):
    """Edits a copy of the settings; :meth:`settings` returns the result.

    Args:
        settings: the current settings (never modified).
        found_models: GGUF files found elsewhere, as (label, path).
        keys: the data folder's API keys, listed on the Local API tab (None: no key list).
        folders: the library's folders, which a new key may be limited to.
        traces: the data folder's trace file, shown on the Observability tab.
        reranker_cache: where the library keeps ONNX exports of rerankers.
    """

    def __init__(
        self,
        settings: Settings,
        found_models: list[tuple[str, str]] | None = None,
        parent: QWidget | None = None,
        *,
        keys: KeyStore | None = None,
        folders: Sequence[str] = (),
        traces: Path | None = None,
        reranker_cache: Path | None = None,
    ) -> None:
        super().__init__(parent)
        # The library's ONNX exports of rerankers: without torch (the installed
        # app) a reranker folder is usable only when its export is there.
        self._reranker_cache = reranker_cache
        self.setWindowTitle("Settings")
        self._original = settings
        self._found = list(found_models or [])
        self.api_page = LocalApiPage(keys, folders, self)
        self.observability_page = ObservabilityPage(traces, self)

        self.model_combo = QComboBox(self)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(30)
        self.browse_button = QPushButton("Browse…", self)
        self.model_error = QLabel(self)
        self.model_error.setObjectName("ModelError")
        self.model_error.setWordWrap(True)
        self.model_error.setStyleSheet(
            "QLabel#ModelError { color: rgb(218, 54, 51); font-weight: bold; }"
        )
        self.model_error.hide()

        self.context_spin = QSpinBox(self)
        self.context_spin.setRange(512, 131072)
        self.context_spin.setSingleStep(512)
        self.context_spin.setSuffix(" tokens")
        self.gpu_layers_spin = QSpinBox(self)
        self.gpu_layers_spin.setRange(0, 999)
        self.threads_spin = QSpinBox(self)
        self.threads_spin.setRange(0, max(1, (os.cpu_count() or 1) * 2))
        self.threads_spin.setSpecialValueText("Auto")

        self.temperature_spin = self._double(0.0, 2.0, 0.05)
        self.top_k_spin = QSpinBox(self)
        self.top_k_spin.setRange(1, 200)
        self.top_p_spin = self._double(0.05, 1.0, 0.05)
        self.repeat_penalty_spin = self._double(1.0, 2.0, 0.05)
        self.max_tokens_spin = QSpinBox(self)
        self.max_tokens_spin.setRange(16, 8192)
        self.max_tokens_spin.setSingleStep(16)
        self.sources_spin = QSpinBox(self)
        self.sources_spin.setRange(1, 20)
        self.prompt_budget_spin = QSpinBox(self)
        self.prompt_budget_spin.setRange(0, 8000)
        self.prompt_budget_spin.setSingleStep(50)
        self.prompt_budget_spin.setSuffix(" tokens")
        self.prompt_budget_spin.setSpecialValueText("Whole passages")  # shown at 0
        self.min_relevance_spin = self._double(0.0, 1.0, 0.05)
        self.reranker_edit = QLineEdit(self)
        self.reranker_edit.setPlaceholderText("Off (no reranker)")
        self.reranker_edit.setClearButtonEnabled(True)
        self.reranker_browse_button = QPushButton("Browse…", self)
        self.reranker_error = QLabel(self)
        self.reranker_error.setObjectName("RerankerError")
        self.reranker_error.setWordWrap(True)
        self.reranker_error.setStyleSheet(
            "QLabel#RerankerError { color: rgb(218, 54, 51); font-weight: bold; }"
        )
        self.reranker_error.hide()
        self.rerank_candidates_spin = QSpinBox(self)
        self.rerank_candidates_spin.setRange(1, 200)
        self.rerank_candidates_spin.setSuffix(" passages")
        self.max_file_spin = QSpinBox(self)
        self.max_file_spin.setRange(0, 100_000)
        self.max_file_spin.setSuffix(" MB")
        self.max_file_spin.setSpecialValueText("No limit")
        self.rescan_spin = self._double(1.0, 1440.0, 1.0)
        self.rescan_spin.setDecimals(0)
        self.rescan_spin.setSuffix(" min")
        self.embedding_backend_combo = QComboBox(self)
        for label, backend in EMBEDDING_BACKENDS:
            self.embedding_backend_combo.addItem(label, backend)
            if not backend_available(backend):
                # The installed app leaves torch out: shown, so the choice is
                # explained, but not selectable.
                item = self.embedding_backend_combo.model().item(self.embedding_backend_combo.count() - 1)
                item.setEnabled(False)
                item.setToolTip("Needs PyTorch, which this installation of Docent leaves out.")
        self.embedding_backend_note = QLabel(self)
        self.embedding_backend_note.setWordWrap(True)
        self.embedding_backend_note.setText(
            "Takes effect the next time Docent starts. A library indexed with the other backend "
            "must be indexed again: Docent never mixes the two kinds of vectors."
        )
        self.embedding_backend_note.hide()
        # Empty: the bundled English model (Settings.embedding_model_path is None).
        self.embedding_model_edit = QLineEdit(self)
        self.embedding_model_edit.setPlaceholderText(BUNDLED_EMBEDDING_LABEL)
        self.embedding_model_edit.setClearButtonEnabled(True)
        self.embedding_model_browse_button = QPushButton("Browse…", self)
        self.embedding_model_error = QLabel(self)
        self.embedding_model_error.setObjectName("EmbeddingModelError")
        self.embedding_model_error.setWordWrap(True)
        self.embedding_model_error.setStyleSheet(
            "QLabel#EmbeddingModelError { color: rgb(218, 54, 51); font-weight: bold; }"
        )
        self.embedding_model_error.hide()
        self.embedding_model_note = QLabel(self)
        self.embedding_model_note.setWordWrap(True)
        self.embedding_model_note.setText(
            "Takes effect the next time Docent starts. A library indexed with another embedding "
            "model must be indexed again: vectors of two models cannot be compared."
        )
        self.embedding_model_note.hide()
        self.follow_links_check = QCheckBox("Follow symbolic links", self)
        self.ocr_check = QCheckBox("Read scanned pages and images (&OCR)", self)
        self.poll_check = QCheckBox("Check folders by polling (network drives)", self)
        self.system_prompt_edit = QPlainTextEdit(self)
        self.system_prompt_edit.setPlaceholderText(
            "Empty: Docent's built-in instructions (answer only from the numbered sources, "
            "cite them like [1], and say so when they do not contain the answer)."
        )
        self.system_prompt_edit.setTabChangesFocus(True)

        self.button_box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults,
            self,
        )
        self.ok_button = self.button_box.button(QDialogButtonBox.StandardButton.Ok)
        self.restore_button = self.button_box.button(QDialogButtonBox.StandardButton.RestoreDefaults)

        self._set_tooltips()
        self._lay_out()

        self.browse_button.clicked.connect(self.choose_model_file)
        self.reranker_browse_button.clicked.connect(self.choose_reranker_folder)
        self.reranker_edit.textChanged.connect(self._validate)
        self.model_combo.currentIndexChanged.connect(self._validate)
        self.embedding_backend_combo.currentIndexChanged.connect(self._backend_changed)
        self.embedding_model_browse_button.clicked.connect(self.choose_embedding_model_folder)
        self.embedding_model_edit.textChanged.connect(self._embedding_model_changed)
        self.button_box.accepted.connect(self.accept)
        self.button_box.rejected.connect(self.reject)
        self.restore_button.clicked.connect(self.restore_defaults)
        self.observability_page.changed.connect(self._validate)

        self._load(settings)

    # -- public API -------------------------------------------------------

    def settings(self) -> Settings:
        """The edited settings, as a new object."""
        prompt = self.system_prompt_edit.toPlainText()
        return dataclasses.replace(
            self._original,
            model_path=self.model_path(),
            n_ctx=self.context_spin.value(),
            n_gpu_layers=self.gpu_layers_spin.value(),
            n_threads=self.threads_spin.value() or None,
            temperature=round(self.temperature_spin.value(), 2),
            top_k=self.top_k_spin.value(),
            top_p=round(self.top_p_spin.value(), 2),
            repeat_penalty=round(self.repeat_penalty_spin.value(), 2),
            max_tokens=self.max_tokens_spin.value(),
            sources_per_answer=self.sources_spin.value(),
            prompt_budget=self.prompt_budget_spin.value(),
            # Whitespace alone would replace the built-in prompt with nothing.
            system_prompt=prompt if prompt.strip() else "",
            min_relevance=round(self.min_relevance_spin.value(), 2),
            max_file_mb=self.max_file_spin.value(),
            rescan_minutes=float(self.rescan_spin.value()),
            follow_symlinks=self.follow_links_check.isChecked(),
            ocr=self.ocr_check.isChecked(),
            embedding_backend=str(self.embedding_backend_combo.currentData()),
            embedding_model_path=self.embedding_model_path(),
            sync_poll=self.poll_check.isChecked(),
            reranker_path=self.reranker_path(),
            rerank_candidates=self.rerank_candidates_spin.value(),
            **self.api_page.values(),
            **self.observability_page.values(),
        )

    def model_path(self) -> str | None:
        """The chosen GGUF file, or None for the bundled model."""
        data = self.model_combo.currentData()
        return str(data) if data else None

    def reranker_path(self) -> str | None:
        """The chosen cross-encoder folder, or None for no reranking."""
        text = self.reranker_edit.text().strip()
        return text or None

    def is_valid(self) -> bool:
        """Whether the settings can be accepted as they stand."""
        return (self._model_problem() is None and self._reranker_problem() is None
                and self._embedding_model_problem() is None and self.observability_page.problem() is None)

    def accept(self) -> None:
        """Close with the settings, unless a field is unusable (then say why and stay open)."""
        self._validate()
        if not self.is_valid():
            return
        super().accept()

    @Slot()
    def choose_embedding_model_folder(self) -> None:
        """Ask for a sentence-transformers model folder and put it in the embedding model field."""
        start = self.embedding_model_path() or str(Path.home())
        name = QFileDialog.getExistingDirectory(self, "Choose an embedding model folder", start)
        if name:
            self.embedding_model_edit.setText(name)

    def embedding_model_path(self) -> str | None:
        """The chosen embedding model folder, or None for the bundled model."""
        text = self.embedding_model_edit.text().strip()
        return text or None

    @Slot()
    def choose_reranker_folder(self) -> None:
        """Ask for a cross-encoder model folder and put it in the reranker field."""
        start = self.reranker_path() or str(Path.home())
        name = QFileDialog.getExistingDirectory(self, "Choose a reranker (cross-encoder) folder", start)
        if name:
            self.reranker_edit.setText(name)

    @Slot()
    def choose_model_file(self) -> None:
        """Ask for a GGUF file and select it."""
        start = self.model_path() or str(Path.home())
        name, _filter = QFileDialog.getOpenFileName(
            self, "Choose a model file", str(Path(start).parent if self.model_path() else start),
            "GGUF models (*.gguf);;All files (*)",
        )
        if name:
            self.select_model(name)

    def select_model(self, path: str, label: str | None = None) -> None:
        """Select ``path`` in the model list, adding it if it is not there."""
        for i in range(self.model_combo.count()):
            data = self.model_combo.itemData(i)
            if data and _same_file(str(data), path):
                self.model_combo.setCurrentIndex(i)
                return
        self.model_combo.addItem(label or Path(path).name, path)
        self.model_combo.setItemData(self.model_combo.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(self.model_combo.count() - 1)

    @Slot()
    def restore_defaults(self) -> None:
        """Put every field back to Docent's defaults (model included)."""
        self._load(Settings())

    # -- building ---------------------------------------------------------

    def _double(self, low: float, high: float, step: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setDecimals(2)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        return spin

    def _set_tooltips(self) -> None:
        tips = {
            self.model_combo: "The language model that writes the answers (a .gguf file). Bigger "
            "models answer better but need more memory and time. The bundled one is small and fast.",
            self.browse_button: "Pick a .gguf model file from your disk.",
            self.context_spin: "How much text the model can consider at once: the question, the "
            "passages and the answer together. More needs more memory.",
            self.gpu_layers_spin: "How many of the model's layers run on the graphics card. 0 runs "
            "everything on the processor; a large number puts as much as fits on the GPU.",
            self.threads_spin: "How many processor threads the model uses. Auto picks a good number "
            "for this computer.",
            self.temperature_spin: "How adventurous the wording is. Low values (0–0.3) give steady, "
            "factual answers; high values vary more and may wander.",
            self.top_k_spin: "The model chooses each word among this many most likely candidates. "
            "Lower is more focused.",
            self.top_p_spin: "The model chooses among the most likely words that together make up "
            "this share of the probability. Lower is more focused.",
            self.repeat_penalty_spin: "Discourages the model from repeating itself. 1.0 means no "
            "penalty; around 1.1 is usually right.",
            self.max_tokens_spin: "The longest answer, in tokens (a token is about three quarters "
            "of a word).",
            self.sources_spin: "How many passages from your documents are given to the model for "
            "each question.",
            self.prompt_budget_spin: "How much of those passages the model reads, in all. A longer "
            "passage is given by its sentences that matter most to the question, so the answer "
            "starts sooner on a slow processor. The Sources panel still shows, and cites, whole "
            "passages. \"Whole passages\" gives them all in full.",
            self.max_file_spin: "Files larger than this are listed as skipped instead of indexed.",
            self.embedding_backend_combo: "How passages are turned into search vectors. Faster (ONNX "
            f"int8) embeds about {_ONNX_SPEEDUP}× as fast on the processor, with the same search "
            "quality on Docent's test questions (the default). Standard runs the same model in full "
            "precision on PyTorch (source installs only). Changing it means indexing your library again.",
            self.embedding_model_edit: "The model that turns passages and questions into vectors "
            "for search by meaning: a folder holding a sentence-transformers model. Empty: the "
            "bundled all-MiniLM-L6-v2, which understands English. For Chinese, Japanese and other "
            "languages choose a multilingual model such as paraphrase-multilingual-MiniLM-L12-v2 "
            "(saved to a folder on a computer with internet access, then copied here). Changing it "
            "means indexing your library again. Keyword search works in every language either way.",
            self.embedding_model_browse_button: "Pick the folder of a sentence-transformers model.",
            self.rescan_spin: "Besides following changes live, Docent re-checks every folder this "
            "often, to catch changes the system did not report.",
            self.follow_links_check: "Index the targets of symbolic links inside your folders "
            "(link loops are detected). Off by default.",
            self.ocr_check: "Read the text of scanned PDF pages and of pictures (PNG, JPEG, TIFF, "
            "WebP) by optical character recognition, on this computer. Slower than reading a text "
            "layer (a second or two per page); off: pictures are skipped and scanned PDFs say why.",
            self.poll_check: "Network drives often send no change notifications: check them "
            "every few seconds instead.",
            self.min_relevance_spin: "How closely the best passage must match the question (cosine "
            "similarity). If none reaches this, Docent says it cannot find the answer instead of "
            f"guessing. {config.MIN_RELEVANCE} was measured best on the development set (make tune).",
            self.reranker_edit: "A folder holding a sentence-transformers CrossEncoder model (for "
            "example ms-marco-MiniLM-L-6-v2, saved on this computer). It rereads the best search "
            "results together with the question and puts the most relevant first: better sources, "
            "a little slower. Leave empty to turn reranking off.",
            self.reranker_browse_button: "Pick the folder of a cross-encoder model.",
            self.rerank_candidates_spin: "How many of the search's best passages the reranker "
            "rereads. More can find a better passage lower down, but each one takes time.",
            self.system_prompt_edit: "Instructions the model receives before every question. Leave "
            "empty to use Docent's own, which keep answers to your documents and make them cite.",
        }
        for widget, tip in tips.items():
            widget.setToolTip(tip)
            widget.setWhatsThis(tip)

    def _lay_out(self) -> None:
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.browse_button)

        model_box = QGroupBox("Model", self)
        model_form = QFormLayout(model_box)
        model_form.addRow(self._label("Model &file:", self.model_combo), model_row)
        model_form.addRow("", self.model_error)
        model_form.addRow(self._label("&Context length:", self.context_spin), self.context_spin)
        model_form.addRow(self._label("&GPU layers:", self.gpu_layers_spin), self.gpu_layers_spin)
        model_form.addRow(self._label("&Threads:", self.threads_spin), self.threads_spin)

        answer_box = QGroupBox("Answers", self)
        answer_form = QFormLayout(answer_box)
        answer_form.addRow(self._label("T&emperature:", self.temperature_spin), self.temperature_spin)
        answer_form.addRow(self._label("Top-&k:", self.top_k_spin), self.top_k_spin)
        answer_form.addRow(self._label("Top-&p:", self.top_p_spin), self.top_p_spin)
        answer_form.addRow(self._label("&Repeat penalty:", self.repeat_penalty_spin), self.repeat_penalty_spin)
        answer_form.addRow(self._label("&Max answer length:", self.max_tokens_spin), self.max_tokens_spin)
        answer_form.addRow(self._label("&Sources per answer:", self.sources_spin), self.sources_spin)
        answer_form.addRow(self._label("Passage te&xt read:", self.prompt_budget_spin), self.prompt_budget_spin)
        answer_form.addRow(self._label("Minimum re&levance:", self.min_relevance_spin), self.min_relevance_spin)
        reranker_row = QHBoxLayout()
        reranker_row.addWidget(self.reranker_edit, 1)
        reranker_row.addWidget(self.reranker_browse_button)
        answer_form.addRow(self._label("Re&ranker:", self.reranker_edit), reranker_row)
        answer_form.addRow("", self.reranker_error)
        answer_form.addRow(self._label("Rerank &candidates:", self.rerank_candidates_spin),
                           self.rerank_candidates_spin)

        library_box = QGroupBox("Library", self)
        library_form = QFormLayout(library_box)
        library_form.addRow(self._label("Maximum file si&ze:", self.max_file_spin), self.max_file_spin)
        library_form.addRow(self._label("Full re&scan every:", self.rescan_spin), self.rescan_spin)
        library_form.addRow(self._label("&Embedding:", self.embedding_backend_combo), self.embedding_backend_combo)
        library_form.addRow("", self.embedding_backend_note)
        embedding_model_row = QHBoxLayout()
        embedding_model_row.addWidget(self.embedding_model_edit, 1)
        embedding_model_row.addWidget(self.embedding_model_browse_button)
        library_form.addRow(self._label("Embedding &model:", self.embedding_model_edit), embedding_model_row)
        library_form.addRow("", self.embedding_model_error)
        library_form.addRow("", self.embedding_model_note)
        library_form.addRow("", self.follow_links_check)
        library_form.addRow("", self.ocr_check)
        library_form.addRow("", self.poll_check)

        prompt_box = QGroupBox("Instructions to the model", self)
        prompt_layout = QVBoxLayout(prompt_box)
        prompt_layout.addWidget(self.system_prompt_edit)
        self.system_prompt_edit.setMinimumHeight(80)

        columns = QHBoxLayout()
        columns.addWidget(model_box, 1)
        columns.addWidget(answer_box, 1)

        general = QWidget(self)
        general_layout = QVBoxLayout(general)
        general_layout.addLayout(columns)
        general_layout.addWidget(library_box)
        general_layout.addWidget(prompt_box, 1)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(general, "&General")
        self.tabs.addTab(self.api_page, "Local &API")
        self.tabs.addTab(self.observability_page, "&Observability")

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.button_box)

    def _label(self, text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text, self)
        label.setBuddy(buddy)
        label.setToolTip(buddy.toolTip())
        return label

    # -- values -----------------------------------------------------------

    def _load(self, s: Settings) -> None:
        self._fill_models(s.model_path)
        self.context_spin.setValue(s.n_ctx)
        self.gpu_layers_spin.setValue(s.n_gpu_layers)
        threads = s.n_threads or 0
        if threads > self.threads_spin.maximum():
            self.threads_spin.setMaximum(threads)
        self.threads_spin.setValue(threads)
        self.temperature_spin.setValue(s.temperature)
        self.top_k_spin.setValue(s.top_k)
        self.top_p_spin.setValue(s.top_p)
        self.repeat_penalty_spin.setValue(s.repeat_penalty)
        self.max_tokens_spin.setValue(s.max_tokens)
        self.sources_spin.setValue(s.sources_per_answer)
        self.prompt_budget_spin.setValue(s.prompt_budget)
        self.system_prompt_edit.setPlainText(s.system_prompt)
        self.min_relevance_spin.setValue(s.min_relevance)
        self.reranker_edit.setText(s.reranker_path or "")
        self.rerank_candidates_spin.setValue(s.rerank_candidates)
        self.max_file_spin.setValue(s.max_file_mb or 0)
        self.rescan_spin.setValue(s.rescan_minutes)
        self.follow_links_check.setChecked(s.follow_symlinks)
        self.ocr_check.setChecked(s.ocr)
        self.poll_check.setChecked(s.sync_poll)
        index = self.embedding_backend_combo.findData(s.embedding_backend)
        self.embedding_backend_combo.setCurrentIndex(max(index, 0))
        self.embedding_model_edit.setText(s.embedding_model_path or "")
        self.api_page.load(s)
        self.observability_page.load(s)
        self._backend_changed()
        self._validate()

    def _fill_models(self, current: str | None) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItem(BUNDLED_LABEL, _BUNDLED)
        for label, path in self._found:
            self.select_model(path, label)
        self.model_combo.setCurrentIndex(0)
        if current:
            self.select_model(current)
        self.model_combo.blockSignals(False)

    def _model_problem(self) -> str | None:
        path = self.model_path()
        if path is None:
            return None
        p = Path(path).expanduser()
        if not p.exists():
            return f"The model file {p} does not exist. Choose another one."
        if not p.is_file():
            return f"{p} is a folder, not a model file."
        return None

    def _reranker_problem(self) -> str | None:
        path = self.reranker_path()
        return reranker_problem(path, self._reranker_cache) if path else None

    def _embedding_model_problem(self) -> str | None:
        path = self.embedding_model_path()
        return embedding_model_problem(path) if path else None

    @Slot()
    def _embedding_model_changed(self) -> None:
        # Only a change from the model in use now needs the warning.
        original = self._original.embedding_model_path or None
        chosen = self.embedding_model_path()
        changed = chosen != original and not (chosen and original and _same_file(chosen, original))
        self.embedding_model_note.setVisible(bool(changed))
        self._validate()

    @Slot()
    def _backend_changed(self) -> None:
        # Only a change from what is in use now needs the warning.
        changed = self.embedding_backend_combo.currentData() != self._original.embedding_backend
        self.embedding_backend_note.setVisible(changed)

    @Slot()
    def _validate(self) -> None:
        problem = self._model_problem()
        self.model_error.setText(problem or "")
        self.model_error.setVisible(problem is not None)
        reranker = self._reranker_problem()
        self.reranker_error.setText(reranker or "")
        self.reranker_error.setVisible(reranker is not None)
        embedding = self._embedding_model_problem()
        self.embedding_model_error.setText(embedding or "")
        self.embedding_model_error.setVisible(embedding is not None)
        self.ok_button.setEnabled(problem is None and reranker is None and embedding is None
                                  and self.observability_page.problem() is None)
