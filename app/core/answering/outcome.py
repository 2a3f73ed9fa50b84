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
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class Quote:
    """The exact sentence(s) of source ``n``'s passage that support an answer.

    ``text`` is a verbatim substring of the passage; ``start``/``end`` are
    character offsets on the page's text, in the same frame as the chunk's
    own ``start``/``end`` (the chunk's start plus the offset inside it), so a
    viewer can highlight the quote inside the highlighted passage.
    """

    n: int
    text: str
    start: int
    end: int

    def to_json(self, source: Source) -> dict[str, object]:
        """The quote as ``ask --json`` and the snapshot give it (``source`` is source ``n``)."""
        return {"n": self.n, "text": self.text, "path": source.hit.chunk.path,
                "page": source.hit.chunk.page, "span": [self.start, self.end]}


@dataclass(frozen=True)
class SentenceCheck:
    """One sentence of an answer, checked against the passages it relies on.

    ``sources`` are the numbers of the passages that say what it says (empty
    when none does).
    """

    text: str
    supported: bool
    sources: tuple[int, ...]

    def to_json(self) -> dict[str, object]:
        """The snapshot's form: ``{"text", "supported", "sources"}``."""
        return {"text": self.text, "supported": self.supported, "sources": list(self.sources)}


# How many of the retrieved passages a decline shows as the nearest found.
NEAREST_SHOWN = 3


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
    # The passage sentence(s) that best support the answer, best first.
    quotes: list[Quote] = field(default_factory=list)
    # Every checked sentence of the answer (three content words or more).
    sentences: list[SentenceCheck] = field(default_factory=list)
    # Most of the checked sentences are unsupported: the quote leads, and the
    # user is told the model's wording was not found in the documents.
    wording_unsupported: bool = False
    # For a decline: what was searched ({"query", "mode", "scope"}).
    searched: dict[str, Any] | None = None
    # Tokens the model read and wrote ({"prompt_tokens", "completion_tokens"});
    # None when no model ran (a decline before generation).
    usage: dict[str, int] | None = None
    # The model's writing speed after its first token (None: no model ran).
    tokens_per_s: float | None = None
    # The OpenTelemetry trace of this answer (its waterfall in the Activity
    # panel); None when nothing was traced.
    trace_id: str | None = None
    # When this answer was first given (ISO date-time, UTC), if it was
    # returned from the answer cache instead of being written again.
    cached_from: str | None = None

    @property
    def unsupported(self) -> list[str]:
        """The answer's sentences that none of the passages they rely on say."""
        return [s.text for s in self.sentences if not s.supported]

    def quotes_json(self) -> list[dict[str, object]]:
        """The supporting quotes, each with its source's file and page."""
        by_n = {s.n: s for s in self.sources}
        return [q.to_json(by_n[q.n]) for q in self.quotes if q.n in by_n]

    def nearest_json(self) -> list[dict[str, object]]:
        """For a decline: the nearest passages found (best first), as ``search --json`` hits."""
        return [h.to_json("search") for h in self.retrieved[:NEAREST_SHOWN]]

    def to_json(self) -> dict[str, object]:
        """The command-line contract's shape, plus what backs the answer up.

        Added to the contract's keys: ``quotes`` (the supporting passage
        sentences), ``unsupported`` (the answer's sentences no cited passage
        says), ``wording_unsupported`` (most of them are), for a decline
        ``searched`` and ``nearest`` (the best passages found), ``flags``
        when there are any (left out of an ordinary answer), and ``usage``
        (the model's prompt and completion tokens) when the model ran,
        and ``cached_from`` (when a stored answer was first given; null
        for a new one).
        """
        data: dict[str, object] = {
            "question": self.question,
            "answer": self.answer,
            "declined": self.declined,
            "sources": [s.to_json() for s in self.sources],
            "citations": [c.to_json() for c in self.citations],
            "model": self.model,
            "timings_ms": self.timings_ms,
            "quotes": self.quotes_json(),
            "unsupported": self.unsupported,
            "wording_unsupported": self.wording_unsupported,
            "cached_from": self.cached_from,
        }
        if self.declined:
            data["searched"] = self.searched
            data["nearest"] = self.nearest_json()
        if self.flags:
            data["flags"] = list(self.flags)
        if self.usage is not None:
            data["usage"] = dict(self.usage)
        return data

    def retrieved_json(self, form: str) -> list[dict[str, object]]:
        """Every retrieved passage in ``form`` (``audit`` or ``snapshot``),
        each saying whether it was ``given`` to the model."""
        given = {s.hit.chunk.id for s in self.sources}
        return [h.to_json(form, given=h.chunk.id in given) for h in self.retrieved]

    def snapshot(self) -> dict[str, Any]:
        """What the window keeps of an answer (the chat history's record):
        the contract JSON plus what the model saw (every retrieved passage
        with its scores), whether it was stopped, what was searched for, and
        every checked sentence (``sentences``)."""
        record: dict[str, Any] = self.to_json()
        record["sentences"] = [s.to_json() for s in self.sentences]
        record["retrieved"] = self.retrieved_json("snapshot")
        record["stopped"] = self.stopped
        if self.trace_id:
            record["trace_id"] = self.trace_id
        if self.search_query:
            record["search_query"] = self.search_query
        return record

    @classmethod
    def from_snapshot(cls, record: dict[str, Any], retrieved: list[Hit]) -> Answer | None:
        """The answer a :meth:`snapshot` describes, its sources bound to
        ``retrieved`` (this search's hits, which hold the same passages).

        The answer cache stores snapshots; the passages themselves come from
        the current search, so they carry today's scores and positions.
        Returns None when a source is not among ``retrieved`` (then the
        snapshot is not this search's answer).
        """
        by_id = {h.chunk.id: h for h in retrieved}
        try:
            sources: list[Source] = []
            for s in record["sources"]:
                hit = by_id.get(s["chunk_id"])
                if hit is None:
                    return None
                if s.get("text") is not None and s["text"] != hit.chunk.text:
                    # The prompt had the passage cut to fit (prompt.fit): keep what the model saw.
                    hit = replace(hit, chunk=replace(hit.chunk, text=s["text"]))
                sources.append(Source(int(s["n"]), hit))
            by_n = {s.n: s for s in sources}
            citations = [Citation(int(c["n"]), by_n[int(c["n"])], bool(c.get("inferred")))
                         for c in record["citations"]]
            quotes = [Quote(int(q["n"]), q["text"], int(q["span"][0]), int(q["span"][1]))
                      for q in record.get("quotes") or []]
            sentences = [SentenceCheck(s["text"], bool(s["supported"]), tuple(int(n) for n in s["sources"]))
                         for s in record.get("sentences") or []]
            return cls(
                question=record["question"], answer=record["answer"], declined=bool(record["declined"]),
                sources=sources, citations=citations, model=record["model"],
                timings_ms={"retrieve": None, "first_token": None, "total": None}, retrieved=list(retrieved),
                stopped=bool(record.get("stopped")), flags=list(record.get("flags") or []),
                search_query=record.get("search_query"), quotes=quotes, sentences=sentences,
                wording_unsupported=bool(record.get("wording_unsupported")),
                searched=record.get("searched"),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None  # a snapshot of another shape (an older version): not usable
