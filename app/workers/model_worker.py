"""The worker that owns the chat model (llama.cpp is not thread-safe).

It lives on its own QThread; requests arrive as queued signals, results leave
as signals. ``stop()`` is the one method called from the GUI thread directly:
it only sets an event, which the generation loop checks between tokens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from app import config
from app.core.library import Library
from app.errors import DocentError


@dataclass(frozen=True)
class AskRequest:
    """One question for the model worker; built on the GUI thread, immutable."""

    request_id: int
    question: str
    k: int = config.SOURCES_PER_ANSWER
    scope: str | None = None
    history: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # False: write the answer again even if it is in the answer cache (Regenerate).
    use_cache: bool = True


class ModelWorker(QObject):
    """Loads the model in the background and answers questions, streaming tokens."""

    state_changed = Signal(str, str)  # state: loading | ready | answering | error; detail
    token = Signal(int, str)  # request id, text piece
    answered = Signal(int, dict)  # request id, answer record
    #: request id, the passages found (each with its best sentence), before the model reads them
    sources_found = Signal(int, list)
    failed = Signal(int, str)  # request id, human message
    # request id, steps done, steps in all, what is being read ("report.pdf"):
    # a whole-document answer reads its files in parts before it answers.
    progress = Signal(int, int, int, str)

    def __init__(self, library: Library) -> None:
        super().__init__()
        self.library = library
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop the answer being generated (thread-safe; takes effect within a token)."""
        self._stop.set()

    @Slot()
    def load(self) -> None:
        """Load the embedder and chat model now, so the first question is quick."""
        name = self.library.model_path.name
        self.state_changed.emit("loading", f"Loading {name}…")
        try:
            self.library.model()
            self.library.answerer  # noqa: B018 - builds retriever + embedder
            reranker = self.library.reranker
            if reranker is not None:
                reranker.load()  # the first question should not wait for it either
        except DocentError as exc:
            self.state_changed.emit("error", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the window must hear about any failure
            self.state_changed.emit("error", f"The model could not be loaded: {exc}")
            return
        self.state_changed.emit("ready", name)

    @Slot(object)
    def ask(self, request: AskRequest) -> None:
        """Answer ``request``; emits token… then answered, or failed."""
        self._stop.clear()
        self.state_changed.emit("answering", request.question)
        try:
            answerer = self.library.answerer
            on_token = lambda piece: self.token.emit(request.request_id, piece)  # noqa: E731
            # Recognised once, here, so progress can name what a whole-document answer reads.
            task = answerer.plan(request.question, request.scope)
            label = task.label if task is not None else ""
            answer = answerer.ask(
                request.question,
                k=request.k,
                scope=request.scope,
                history=request.history,
                sampling=self.library.sampling(),
                on_token=on_token,
                should_stop=self._stop.is_set,
                on_progress=lambda done, total: self.progress.emit(request.request_id, done, total, label),
                task=task,
                use_cache=request.use_cache,
                on_sources=lambda found: self.sources_found.emit(request.request_id, found),
            )
        except DocentError as exc:
            self.failed.emit(request.request_id, str(exc))
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(request.request_id, f"Answering failed unexpectedly: {exc}")
        else:
            self.answered.emit(request.request_id, answer.snapshot())
        self.state_changed.emit("ready", self.library.model_path.name)
