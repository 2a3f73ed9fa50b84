"""The worker that writes conversations (``chats.sqlite3``), off the GUI thread.

The window reads the history through its own connection (quick, local) and
sends every write here as a request object over a queued signal; the
result comes back as a signal carrying the request, so the window repaints
once the write is in. Requests are served in the order sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.core.stores.chats import ChatStore
from app.errors import DocentError


@dataclass(frozen=True)
class CreateChat:
    """Start a new, empty conversation; the result is its :class:`Conversation`.

    ``focus``: the person asked for it (New chat), so the question box takes the focus.
    """

    focus: bool = False


@dataclass(frozen=True)
class RenameChat:
    """Give a conversation a new title."""

    conversation_id: int
    title: str


@dataclass(frozen=True)
class DeleteChat:
    """Delete a conversation and its turns."""

    conversation_id: int


@dataclass(frozen=True)
class SaveTurn:
    """Keep an answer: a new turn, or the answer of ``replace_turn`` replaced (Regenerate).

    The result is the turn's id.
    """

    conversation_id: int
    question: str
    answer: str
    record: dict[str, Any] = field(default_factory=dict)
    replace_turn: int | None = None


ChatRequest = CreateChat | RenameChat | DeleteChat | SaveTurn


class ChatWriter(QObject):
    """Owns the writes to the conversation history; lives on its own QThread."""

    done = Signal(object, object)  # the request, its result (Conversation, turn id or None)
    failed = Signal(object, str)  # the request, what went wrong (a sentence)

    def __init__(self, store: ChatStore) -> None:
        super().__init__()
        self.store = store

    @Slot(object)
    def write(self, request: ChatRequest) -> None:
        """Carry out one request; ``done`` or ``failed`` follows."""
        try:
            result = self._apply(request)
        except DocentError as exc:
            self.failed.emit(request, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a failed write must reach the window, not end the thread
            self.failed.emit(request, f"The conversation could not be saved ({type(exc).__name__}: {exc}).")
            return
        self.done.emit(request, result)

    def _apply(self, request: ChatRequest) -> object:
        store = self.store
        if isinstance(request, CreateChat):
            return store.create()
        if isinstance(request, RenameChat):
            store.rename(request.conversation_id, request.title)
            return None
        if isinstance(request, DeleteChat):
            store.delete(request.conversation_id)
            return None
        if isinstance(request, SaveTurn):
            if request.replace_turn is not None:
                store.update_turn(request.replace_turn, request.answer, request.record)
                return request.replace_turn
            return store.add_turn(request.conversation_id, request.question, request.answer, request.record).id
        raise TypeError(f"not a chat request: {request!r}")

    @Slot()
    def close(self) -> None:
        """Close the store; called last, after every request sent before it."""
        self.store.close()
