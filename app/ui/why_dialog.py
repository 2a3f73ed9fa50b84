"""“Why this answer”: what was retrieved, what the model saw, what it cited.

The dialog works from the answer's stored snapshot (the chat history keeps
the passages each answer was given), so it still shows what the model saw
after the documents changed or the index was rebuilt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QPushButton,
    QWidget,
)

if TYPE_CHECKING:
    from app.config import DataPaths
    from app.ui.waterfall import WaterfallDialog

NONE = "—"
YES = "✔"

_COLUMNS = (
    ("Rank", "Position in the final order (1 = best): the reranker's order when it ran, "
             "otherwise the order after fusing the vector and keyword searches."),
    ("File", "The document the passage comes from."),
    ("Page", "Page in the document (1 = first page); — for formats without pages."),
    ("Score", "The score the passages are ordered by (higher is better): the reranker score when "
              "the reranker ran, otherwise the fused rank score of the vector and keyword searches."),
    ("Vector score", "How close the passage's meaning is to the question, from the vector search "
                     "(cosine similarity of their embeddings; higher is better). — when the vector "
                     "search did not find the passage among its best candidates."),
    ("Keyword (BM25)", "How well the passage's words match the question's words (BM25; higher is "
                       "better). — when the keyword search did not find it."),
    ("Reranker score", "The cross-encoder reranker's judgement of how well the passage answers the "
                       "question, reading both together (higher is better). — when no reranker is "
                       "set in Settings → Answers → Reranker, or it was not used for this answer."),
    ("Similarity", "Cosine similarity of question and passage, used to decide whether anything is "
                   "relevant enough to answer from."),
    ("Given to the model", "Whether the passage was put in the prompt as a numbered source."),
    ("Cited", "Whether the answer cites this passage."),
)
# Column positions that the code refers to by meaning.
COL_FILE, COL_GIVEN, COL_CITED = 1, 8, 9


def _score(value: object) -> str:
    if value is None or isinstance(value, bool):
        return NONE
    try:
        return f"{float(value):.4f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return NONE


def _ms(value: object) -> str:
    if value is None or isinstance(value, bool):
        return NONE
    try:
        return f"{float(value):,.0f} ms"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return NONE


def _page(entry: dict[str, Any]) -> str:
    page = entry.get("page")
    if page is None:
        return NONE
    label = entry.get("label")
    if label and str(label) != str(page):
        return f"{page} ({label})"
    return str(page)


class WhyDialog(QDialog):
    """Shows every passage retrieved for one answer and how each was used.

    Args:
        record: the answer as stored: ``question``, ``answer``, ``declined``,
            ``sources``, ``citations``, ``model``, ``timings_ms`` and
            ``retrieved`` (each with ``chunk_id``, ``path``, ``page``,
            ``score``, ``vector_score``, ``keyword_score``, ``rerank_score``,
            ``similarity``, ``given`` and ``text``). Missing keys are tolerated.
        paths: the data folder, whose activity record has the answer's timing
            (``trace_id``); None: no Timing button.
    """

    def __init__(self, record: dict[str, Any], parent: QWidget | None = None, *,
                 paths: DataPaths | None = None) -> None:
        super().__init__(parent)
        self._paths = paths
        self.waterfall: WaterfallDialog | None = None
        self.setWindowTitle("Why this answer")
        self.resize(900, 600)
        self._record = record
        self._entries = self._retrieved(record)
        self._sources = {s.get("chunk_id"): s for s in record.get("sources") or [] if isinstance(s, dict)}
        self._cited = self._citations(record)

        self.question_label = QLabel(self)
        self.question_label.setWordWrap(True)
        self.question_label.setTextFormat(Qt.TextFormat.PlainText)
        self.question_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        question = f"Question: {record.get('question', '')}"
        if record.get("search_query"):
            # A follow-up was searched together with the conversation it refers to.
            question += f"\nSearched for (with the conversation): {record['search_query']}"
        self.question_label.setText(question)
        font = self.question_label.font()
        font.setBold(True)
        self.question_label.setFont(font)

        self.table = QTableWidget(0, len(_COLUMNS), self)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        for col, (name, tip) in enumerate(_COLUMNS):
            item = QTableWidgetItem(name)
            item.setToolTip(tip)
            self.table.setHorizontalHeaderItem(col, item)
        self._fill()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_FILE, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_selected)

        self.passage = QPlainTextEdit(self)
        self.passage.setReadOnly(True)
        self.passage.setPlaceholderText("Select a passage to read all of it.")

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.passage)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        # The sentence check: which of the answer's sentences the passages say.
        self.support_label = QLabel(support_summary(record), self)
        self.support_label.setWordWrap(True)
        self.support_label.setTextFormat(Qt.TextFormat.PlainText)
        self.support_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.support_label.setVisible(bool(self.support_label.text()))

        self.footer_label = QLabel(self._footer(), self)
        self.footer_label.setWordWrap(True)
        self.footer_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        # Where this answer's seconds went: its trace's waterfall.
        self.timing_button = QPushButton("Timing…", self)
        buttons.addButton(self.timing_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.timing_button.clicked.connect(self.show_timing)
        self.timing_button.setVisible(paths is not None)
        if record.get("trace_id"):
            self.timing_button.setToolTip("Where the time went: retrieval, reading the prompt, writing.")
        else:
            self.timing_button.setEnabled(False)
            self.timing_button.setToolTip("No timing was recorded for this answer (it was made before "
                                          "Docent recorded activity).")

        layout = QVBoxLayout(self)
        layout.addWidget(self.question_label)
        if not self._entries:
            empty = QLabel("No passage was retrieved for this question.", self)
            layout.addWidget(empty)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.support_label)
        layout.addWidget(self.footer_label)
        layout.addWidget(buttons)

        if self._entries:
            self.table.selectRow(0)

    # -- public API -------------------------------------------------------

    def table_rows(self) -> list[list[str]]:
        """The table's cells as shown, row by row."""
        return [
            [self.table.item(r, c).text() for c in range(self.table.columnCount())]
            for r in range(self.table.rowCount())
        ]

    def passage_text(self) -> str:
        """The full text shown for the selected passage."""
        return self.passage.toPlainText()

    def footer_text(self) -> str:
        """The model, timings and outcome line."""
        return self.footer_label.text()

    def support_text(self) -> str:
        """The sentence check's summary ("" when the answer has none)."""
        return self.support_label.text() if not self.support_label.isHidden() else ""

    # -- building ---------------------------------------------------------

    @staticmethod
    def _retrieved(record: dict[str, Any]) -> list[dict[str, Any]]:
        retrieved = record.get("retrieved")
        if isinstance(retrieved, list) and retrieved:
            return [r for r in retrieved if isinstance(r, dict)]
        # Older snapshots kept only the passages given to the model.
        return [{**s, "given": True} for s in record.get("sources") or [] if isinstance(s, dict)]

    def _citations(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        by_n = {s.get("n"): s.get("chunk_id") for s in self._sources.values()}
        cited: dict[str, dict[str, Any]] = {}
        for c in record.get("citations") or []:
            if not isinstance(c, dict):
                continue
            chunk_id = c.get("chunk_id") or by_n.get(c.get("n"))
            if chunk_id:
                cited.setdefault(chunk_id, c)
        return cited

    def _fill(self) -> None:
        self.table.setRowCount(len(self._entries))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        center = Qt.AlignmentFlag.AlignCenter
        for r, entry in enumerate(self._entries):
            chunk_id = entry.get("chunk_id")
            path = str(entry.get("path") or "")
            source = self._sources.get(chunk_id)
            citation = self._cited.get(chunk_id) if chunk_id else None
            rank = entry.get("rank") if isinstance(entry.get("rank"), int) else r + 1
            cells = [
                (str(rank), right, None),
                (_file_name(entry, path), None, path),
                (_page(entry), right, None),
                (_score(entry.get("score")), right, None),
                (_score(entry.get("vector_score")), right, None),
                (_score(entry.get("keyword_score")), right, None),
                (_score(entry.get("rerank_score")), right, None),
                (_score(entry.get("similarity")), right, None),
                (YES if entry.get("given") else NONE, center,
                 f"Source [{source['n']}] in the prompt" if source and "n" in source else None),
                (YES if citation else NONE, center, self._citation_tip(citation)),
            ]
            for c, (text, align, tip) in enumerate(cells):
                item = QTableWidgetItem(text)
                if align is not None:
                    item.setTextAlignment(int(align))
                if tip:
                    item.setToolTip(tip)
                self.table.setItem(r, c, item)

    @staticmethod
    def _citation_tip(citation: dict[str, Any] | None) -> str | None:
        if not citation:
            return None
        tip = f"Cited as [{citation.get('n')}]"
        if citation.get("inferred"):
            tip += " — the answer had no marker here; it was matched to this passage by meaning"
        return tip

    def _footer(self) -> str:
        timings = self._record.get("timings_ms") or {}
        parts = [
            f"Model: {self._record.get('model') or NONE}",
            f"retrieve {_ms(timings.get('retrieve'))}",
            f"first token {_ms(timings.get('first_token'))}",
            f"total {_ms(timings.get('total'))}",
        ]
        text = " · ".join(parts)
        if self._record.get("declined"):
            text += " · declined: no passage was relevant enough"
        return text

    @Slot()
    def show_timing(self) -> None:
        """Open the waterfall of this answer's trace."""
        from app.ui.waterfall import open_waterfall

        trace_id = self._record.get("trace_id")
        if self._paths is not None and trace_id:
            self.waterfall = open_waterfall(self._paths, str(trace_id), self)

    @Slot()
    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            self.passage.clear()
            return
        entry = self._entries[rows[0].row()]
        text = entry.get("text")
        if not text and entry.get("chunk_id") in self._sources:
            text = self._sources[entry["chunk_id"]].get("text")
        where = Path(str(entry.get("path") or "")).name
        if entry.get("page") is not None:
            where += f", page {_page(entry)}"
        header = f"{where}  ·  chunk {entry.get('chunk_id', NONE)}"
        body = text if text else "(The passage's text was not kept with this answer.)"
        self.passage.setPlainText(f"{header}\n\n{body}")


def support_summary(record: dict[str, Any]) -> str:
    """How many of the answer's sentences the cited passages say, and the ones they do not."""
    checked = [s for s in record.get("sentences") or [] if isinstance(s, dict)]
    if not checked or record.get("declined"):
        return ""
    missing = [" ".join(str(s.get("text") or "").split()) for s in checked if not s.get("supported")]
    found = len(checked) - len(missing)
    text = f"Sentence check: {found} of {len(checked)} sentences found in the cited passages."
    if missing:
        text += " Not found: " + "; ".join(f"“{m}”" for m in missing) + "."
    if record.get("wording_unsupported"):
        text += " Most of the model's wording is not in the documents, so the chat leads with the quote."
    return text


def _file_name(entry: dict[str, Any], path: str) -> str:
    """The file a passage is in; an e-mail's attachment as "notes.pdf (attached to papers.eml)"."""
    name = Path(path).name or NONE
    attachment = entry.get("attachment")
    return f"{attachment} (attached to {name})" if attachment else name
