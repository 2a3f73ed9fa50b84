"""The window's conversations: the chats list, asking, and what an answer offers.

A mixin of :class:`app.ui.main_window.MainWindow`, apart so the window's
module holds the layout and the workers' wiring. Painting reads the history
through the window's own connection (``self.chats``); every write goes to the
chat writer's thread as a request (:mod:`app.workers.chat_worker`), and the
window repaints when it is in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from app.ui.chat_panel import TurnView
from app.workers.chat_worker import ChatRequest, CreateChat, DeleteChat, RenameChat, SaveTurn
from app.workers.model_worker import AskRequest

if TYPE_CHECKING:
    from app.core.stores.chats import ChatStore


class ConversationsMixin:
    """Conversations and questions, for the main window (which provides the widgets)."""

    chats: ChatStore
    conversation_id: int | None
    _pending: tuple[int, str, int | None] | None
    #: Set when the window shuts down: a write's answer arriving later repaints nothing.
    chats_closed: bool = False

    # --- conversations --------------------------------------------------------

    def _write_chats(self, request: ChatRequest) -> None:
        """Send one write to the chat writer; ``_chat_written`` repaints when it is in."""
        self.requests.chat_write.emit(request)

    def _chat_written(self, request: ChatRequest, result: object) -> None:
        if self.chats_closed:
            return  # the window is closing: the history it would repaint is gone
        if isinstance(request, CreateChat):
            self.conversation_id = result.id  # type: ignore[attr-defined]
            self._reload_chats_list()
            self._show_conversation()
            if request.focus:
                self.chat.question.setFocus()
        elif isinstance(request, RenameChat):
            self._reload_chats_list()
            if request.conversation_id == self.conversation_id:
                self.chat.set_title(request.title)
        elif isinstance(request, DeleteChat):
            if request.conversation_id == self.conversation_id:
                self.conversation_id = None
            self._load_conversations()
        elif isinstance(request, SaveTurn):
            self._turn_saved(int(result))  # type: ignore[call-overload]

    def _chat_write_failed(self, request: ChatRequest, message: str) -> None:
        if self.chats_closed:
            return
        if isinstance(request, SaveTurn):
            self._pending = None
            self.chat.set_busy(False)
            self._show_conversation()
        self.banner.show_message("The conversation could not be saved.", details=message, level="error")

    def _load_conversations(self) -> None:
        convs = self.chats.conversations()
        if not convs:
            self._write_chats(CreateChat())  # shown once it is made
            self.chats_list.set_conversations([], None)
            self._refresh_library()
            return
        if self.conversation_id is None:
            self.conversation_id = convs[0].id
        self.chats_list.set_conversations([(c.id, c.title) for c in convs], self.conversation_id)
        self._show_conversation()
        self._refresh_library()

    def _show_conversation(self) -> None:
        conv = self.chats.get(self.conversation_id) if self.conversation_id else None
        self.chat.set_title(conv.title if conv else "New chat")
        turns = self.chats.turns(self.conversation_id) if self.conversation_id else []
        self.chat.set_turns([TurnView(t.id, t.question, t.answer, t.record) for t in turns])
        if turns:
            self.show_sources(turns[-1].id)
        else:
            self.sources.show_answer("", [], [])

    def new_chat(self) -> None:
        if self._pending:
            return
        self._write_chats(CreateChat(focus=True))

    def open_chat(self, conversation_id: int) -> None:
        if self._pending or conversation_id == self.conversation_id:
            return
        self.conversation_id = conversation_id
        self._show_conversation()

    def rename_chat(self, conversation_id: int) -> None:
        conv = self.chats.get(conversation_id)
        if conv is None:
            return
        title, ok = QInputDialog.getText(self, "Rename chat", "Name:", text=conv.title)
        if ok and title.strip():
            self._write_chats(RenameChat(conversation_id, title.strip()))

    def delete_chat(self, conversation_id: int) -> None:
        if self._pending:
            return
        answer = QMessageBox.question(self, "Delete chat", "Delete this conversation? This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._write_chats(DeleteChat(conversation_id))

    def _reload_chats_list(self) -> None:
        self.chats_list.set_conversations(
            [(c.id, c.title) for c in self.chats.conversations()], self.conversation_id)

    def export_chat(self) -> None:
        if self.conversation_id is None:
            return
        conv = self.chats.get(self.conversation_id)
        name = (conv.title if conv else "conversation").replace("/", "-")[:60] + ".md"
        path, _ = QFileDialog.getSaveFileName(self, "Export conversation", str(Path.home() / name),
                                              "Markdown (*.md)")
        if path:
            Path(path).write_text(self.chats.export_markdown(self.conversation_id), encoding="utf-8")
            self.flash(f"Exported to {path}", 8000)

    # --- asking ---------------------------------------------------------------

    def ask(self, question: str, scope: str | None = None, *, replace_turn: int | None = None) -> None:
        """Send ``question`` to the model worker; the answer streams into the chat."""
        if self._pending is not None or self.conversation_id is None:
            return
        request_id = next(self._request_ids)
        self._pending = (request_id, question, replace_turn)
        history = tuple(self.chats.history(self.conversation_id, before_turn=replace_turn))
        if replace_turn is not None:
            self.chat.turns = [t for t in self.chat.turns if t.turn_id != replace_turn]
        self.chat.start_answer(question)
        self.chat.set_busy(True)
        # Regenerate asks for a new answer, not the one already given from the cache.
        self.requests.ask.emit(AskRequest(
            request_id, question, k=self.library.settings.sources_per_answer, scope=scope, history=history,
            use_cache=replace_turn is None))

    def stop(self) -> None:
        """Stop the answer being written (Esc); the chat stays usable."""
        if self._pending is not None:
            self.model_worker.stop()

    def _token(self, request_id: int, piece: str) -> None:
        if self._pending and self._pending[0] == request_id:
            self.chat.append_token(piece)

    def _sources_found(self, request_id: int, found: list) -> None:
        """Retrieval is done: show what the answer will be written from, at once."""
        if self._pending and self._pending[0] == request_id:
            self.sources.show_found(self._pending[1], found)
            self.chat.show_found(found)
            self.tabs.setCurrentWidget(self.sources)

    def _answer_progress(self, request_id: int, done: int, total: int, label: str) -> None:
        if self._pending and self._pending[0] == request_id:
            self.chat.show_progress(label, done, total)

    def _answered(self, request_id: int, record: dict) -> None:
        if not self._pending or self._pending[0] != request_id:
            return
        _, question, replace_turn = self._pending
        # Still pending until the turn is saved: no other question, chat switch or delete meanwhile.
        self._write_chats(SaveTurn(self.conversation_id, question, record["answer"], record, replace_turn))

    def _turn_saved(self, turn_id: int) -> None:
        self._pending = None
        self.chat.set_busy(False)
        self._reload_chats_list()
        self._show_conversation()
        self.show_sources(turn_id)

    def _answer_failed(self, request_id: int, message: str) -> None:
        if not self._pending or self._pending[0] != request_id:
            return
        self._pending = None
        self.chat.set_busy(False)
        self._show_conversation()
        self.banner.show_message("The question could not be answered.", details=message, level="error")

    def _turn(self, turn_id: int):  # noqa: ANN202
        return next((t for t in self.chats.turns(self.conversation_id) if t.id == turn_id), None)

    def show_sources(self, turn_id: int) -> None:
        turn = self._turn(turn_id)
        if turn is None:
            return
        self.chat.selected_turn = turn_id
        self.chat.render()
        # Each card carries its supporting quote: shown on it, highlighted in the viewer.
        quotes: dict[int, dict] = {}
        for quote in turn.record.get("quotes") or []:
            quotes.setdefault(quote.get("n"), quote)

        def with_quote(items: list[dict]) -> list[dict]:
            return [{**item, "quote": quotes[item["n"]]} if item.get("n") in quotes else item for item in items]

        self.sources.show_answer(turn.question, with_quote(turn.record.get("citations", [])),
                                 with_quote(turn.record.get("sources", [])), self._nearest(turn.record))
        self.tabs.setCurrentWidget(self.sources)

    def show_why(self, turn_id: int) -> None:
        from app.ui.why_dialog import WhyDialog

        turn = self._turn(turn_id)
        if turn is not None:
            dialog = WhyDialog(turn.record, self, paths=self.library.paths)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.show()
            self.why_dialog = dialog

    def copy_answer(self, turn_id: int) -> None:
        turn = self._turn(turn_id)
        if turn is None:
            return
        lines = [turn.answer, ""]
        # The supporting quotes travel with the answer, as the chat shows them.
        for q in turn.record.get("quotes") or []:
            where = f", page {q['page']}" if q.get("page") is not None else ""
            lines.append(f"> “{' '.join(str(q.get('text') or '').split())}” [{q.get('n')}]{where}")
        if turn.record.get("quotes"):
            lines.append("")
        for c in turn.record.get("citations", []):
            where = f", page {c['page']}" if c.get("page") is not None else ""
            lines.append(f"[{c['n']}] {Path(c['path']).name}{where}")
        QApplication.clipboard().setText("\n".join(lines).strip())
        self.flash("Answer copied", 3000)

    def regenerate(self, turn_id: int) -> None:
        turn = self._turn(turn_id)
        if turn is not None:
            self.ask(turn.question, self.chat.scope.currentData(), replace_turn=turn_id)

    def open_citation(self, turn_id: int, n: int) -> None:
        """Show source ``n`` of an answer in the viewer, with its supporting quote when it has one."""
        turn = self._turn(turn_id)
        if turn is None:
            return
        self.show_sources(turn_id)
        source = next((s for s in turn.record.get("sources", []) if s["n"] == n), None)
        if source is not None:
            quote = next((q for q in turn.record.get("quotes") or [] if q.get("n") == n), None)
            self.open_passage(source, quote)

    def open_quote(self, turn_id: int, index: int) -> None:
        """Show an answer's supporting quote in the viewer, inside its highlighted passage."""
        turn = self._turn(turn_id)
        quotes = (turn.record.get("quotes") or []) if turn is not None else []
        if not 0 <= index < len(quotes):
            return
        quote = quotes[index]
        source = next((s for s in turn.record.get("sources", []) if s["n"] == quote.get("n")), None)
        # A quote whose source is missing from the record still opens at its page.
        self.open_passage(source or {**quote, "text": quote.get("text", "")}, quote)

    @staticmethod
    def _nearest(record: dict) -> list[dict]:
        """A decline's nearest passages, each with its printed page label (kept in the record's retrieved list)."""
        labels = {r.get("chunk_id"): r.get("label") for r in record.get("retrieved") or []}
        return [{**hit, "label": hit.get("label") or labels.get(hit.get("chunk_id"))}
                for hit in record.get("nearest") or []] if record.get("declined") else []

    def open_nearest(self, turn_id: int, index: int) -> None:
        """Show one of a decline's nearest passages in the viewer, so the user can judge it."""
        turn = self._turn(turn_id)
        nearest = self._nearest(turn.record) if turn is not None else []
        if 0 <= index < len(nearest):
            self.open_passage(nearest[index])
