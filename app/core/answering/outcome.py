"""What answering produces: the answer, the sources it was given, the
citations it relies on, and the words for "not in your documents".

Both ways of answering (a question over the top passages,
:mod:`app.core.answering.answer`; a whole-document task,
:mod:`app.core.answering.mapreduce`) return these, and every reader (the
``ask --json`` contract, the audit record, the window's snapshot) reads them
through the methods here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.core.answering.retrieval import Hit

DECLINE_TEXT = "I could not find this in your documents."
# How models (and people) say the documents do not hold the answer.
DECLINE_PATTERN = re.compile(
    r"(could ?n[o']t|cannot|can't|unable to) find (this|that|it|the answer|any(thing)?)"
    r"|not (found|mentioned|covered) in (your|the) (documents|sources)",
    re.IGNORECASE,
)


@dataclass
class Source:
    """A passage given to the model, numbered as in the prompt."""

    n: int
    hit: Hit

    def to_json(self) -> dict[str, object]:
        """The ``ask --json`` contract's source (plus position and per-stage scores)."""
        return self.hit.to_json("source", n=self.n)


@dataclass
class Citation:
    """A source the answer relies on."""

    n: int
    source: Source
    inferred: bool

    def to_json(self) -> dict[str, object]:
        """The ``ask --json`` contract's citation (plus the passage's position)."""
        return self.source.hit.to_json("citation", n=self.n, inferred=self.inferred)


@dataclass
class Answer:
    """The outcome of one question."""

    question: str
    answer: str
    declined: bool
    sources: list[Source]
    citations: list[Citation]
    model: str
    timings_ms: dict[str, float | None]
    retrieved: list[Hit] = field(default_factory=list)
    stopped: bool = False
    # Why the answer was not the model's own (e.g. it followed instructions
    # found in a document); empty for an ordinary answer.
    flags: list[str] = field(default_factory=list)
    # The model's text when it was replaced, kept for the record, never shown.
    replaced: str | None = None
    # What was searched for, when it was not the question itself (a follow-up
    # completed by the conversation).
    search_query: str | None = None

    def to_json(self) -> dict[str, object]:
        """The command-line contract's shape, plus ``flags`` when there are any.

        ``flags`` is left out of an ordinary answer so the contract's key set
        stays exactly as documented for the common case.
        """
        data: dict[str, object] = {
            "question": self.question,
            "answer": self.answer,
            "declined": self.declined,
            "sources": [s.to_json() for s in self.sources],
            "citations": [c.to_json() for c in self.citations],
            "model": self.model,
            "timings_ms": self.timings_ms,
        }
        if self.flags:
            data["flags"] = list(self.flags)
        return data

    def retrieved_json(self, form: str) -> list[dict[str, object]]:
        """Every retrieved passage in ``form`` (``audit`` or ``snapshot``),
        each saying whether it was ``given`` to the model."""
        given = {s.hit.chunk.id for s in self.sources}
        return [h.to_json(form, given=h.chunk.id in given) for h in self.retrieved]

    def snapshot(self) -> dict[str, Any]:
        """What the window keeps of an answer (the chat history's record):
        the contract JSON plus what the model saw (every retrieved passage
        with its scores), whether it was stopped, and what was searched for."""
        record: dict[str, Any] = self.to_json()
        record["retrieved"] = self.retrieved_json("snapshot")
        record["stopped"] = self.stopped
        if self.search_query:
            record["search_query"] = self.search_query
        return record

