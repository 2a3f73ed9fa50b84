"""Question → retrieve → prompt with numbered sources → streamed answer + citations.

The documents' text goes into the prompt as quoted, numbered data, apart
from the instructions, and the model is told to treat it as such. When
nothing relevant is retrieved the assistant declines without asking the
model, so it cannot guess.

Documents may carry instructions of their own (prompt injection); the
defences in :mod:`app.core.answering.injection` keep them from steering the answer:
control tokens and fences are neutralised, instruction-like passages are
marked and left out, and an answer that follows one anyway is stopped and
replaced by the source's own sentence, cited, with ``Answer.flags`` saying why.

A question about whole files ("summarise report.pdf") is answered by
:mod:`app.core.answering.mapreduce` instead, through the same guarded
generation step (:mod:`app.core.answering.generation`) and the same citation
step (:func:`app.core.answering.citations.cite_answer`). Callers ask
:meth:`Answerer.plan` once and pass the task to :meth:`Answerer.ask`, so a
question is recognised once however it is answered.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from enum import Enum
from typing import Any

from opentelemetry import trace

from app import config
from app.core import textnorm
from app.core.answering import citations as cite
from app.core.answering import excerpts, injection, mapreduce, relevance, support, wholedoc
from app.core.answering.generation import FLAG_REPEATING, generate, quote_instead
from app.core.answering.outcome import DECLINE_PATTERN, DECLINE_TEXT, Answer, Citation, Source
from app.core.answering.prompt import SYSTEM_PROMPT, Screens, fit
from app.core.answering.retrieval import Hit, Retriever
from app.core.answering.wholedoc import WholeDocTask
from app.core.models.embedder import Embedder
from app.core.models.llm import LocalModel, Sampling
from app.core.stores.answer_cache import AnswerCache, cache_key
from app.core.stores.audit import AuditLog
from app.telemetry import current_trace_id, instruments, names, span
from app.telemetry.spans import content, set_attributes


class _Plan(Enum):
    DETECT = "detect"


#: ``Answerer.ask(task=DETECT)``: recognise a whole-document question there
#: (the default, for callers that did not ask :meth:`Answerer.plan` first).
DETECT = _Plan.DETECT

_KEPT_TURNS = 32  # conversations whose prompts are remembered for KV-cache reuse

# A follow-up leans on the conversation when it refers back ("its second
# argument", "what about…", "and the other one?") or says too little to be
# searched on its own.
_REFERS_BACK = re.compile(
    r"^\W*(and|but|also|so|then|what about|how about|same)\b"
    r"|\b(it|its|it's|this|that|these|those|they|them|their|theirs|he|she|his|her|him|"
    r"former|latter|the same|the other|above|previous|earlier)\b",
    re.IGNORECASE,
)
_SELF_CONTAINED_WORDS = 5  # content words from which a question stands alone if it does not refer back
_EXPANSION_CHARS = 300  # of the previous answer, added to the search query


def search_query(question: str, history: Sequence[tuple[str, str]]) -> str:
    """What to search for: the question, completed by the conversation when it
    is a follow-up that cannot be searched on its own.

    "and what about its second argument?" finds nothing by itself; searched
    together with the previous question (and the start of its answer, which
    often names the thing "it" refers to) it finds the same passages the
    conversation is about. A self-contained question is searched as asked,
    so a change of subject is not dragged back to the old one.
    """
    if not history:
        return question
    words = textnorm.content_words(question)
    if not _REFERS_BACK.search(question) and len(words) >= _SELF_CONTAINED_WORDS:
        return question
    parts = [question]
    for prev_q, prev_a in reversed(history[-2:]):
        answer = cite.MARKER.sub("", prev_a).strip()
        if answer and not DECLINE_PATTERN.search(answer) and answer != DECLINE_TEXT:
            parts.append(answer[:_EXPANSION_CHARS])
        parts.append(prev_q)
        # A previous question that stood alone is enough context.
        if not _REFERS_BACK.search(prev_q) and len(textnorm.content_words(prev_q)) >= _SELF_CONTAINED_WORDS:
            break
    return " ".join(reversed(parts))


class Answerer:
    """Answers questions over a library with a local model."""

    def __init__(
        self,
        retriever: Retriever,
        model: Callable[[], LocalModel],
        model_name: str,
        audit: AuditLog,
        embedder: Embedder,
        *,
        min_relevance: float = config.MIN_RELEVANCE,
        system_prompt: str = "",
        defence: injection.Defence = injection.Defence(),
        cache: AnswerCache | None = None,
        cache_salt: Mapping[str, Any] | None = None,
        prompt_budget: int = config.PROMPT_BUDGET,
    ) -> None:
        """
        Args:
            prompt_budget: passage tokens the model is given in all; a longer
                passage is quoted by its sentences that matter to the
                question (see :mod:`excerpts`). 0: whole passages.
            cache: where answers already given are kept (None: no cache).
            cache_salt: what else shapes an answer that this object cannot
                see, for the cache key (the model's context size, its file).
        """
        self.retriever = retriever
        self._model = model
        self.model_name = model_name
        self.audit = audit
        self.embedder = embedder
        self.min_relevance = min_relevance
        self.system_prompt = system_prompt.strip() or SYSTEM_PROMPT
        # Prompt-injection defences; all on unless a benchmark turns some off.
        self.defence = defence
        # Each answered turn as the model saw it: the user message with its
        # sources and the model's words verbatim. A follow-up repeats them
        # unchanged, so llama.cpp reuses the KV cache of the whole earlier
        # conversation and only reads the new sources and question.
        self._sent: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._numbers: dict[tuple[str, str], dict[str, tuple[int, str]]] = {}
        self.cache = cache
        self.cache_salt = dict(cache_salt or {})
        self.prompt_budget = prompt_budget

    def plan(self, question: str, scope: str | None = None) -> WholeDocTask | None:
        """The whole-document task ``question`` asks for ("summarise report.pdf",
        "compare A and B", "list every X in …"), or ``None`` for an ordinary question.

        Pass the result to :meth:`ask` as ``task``: the question is then
        recognised once, and the caller can name what is read in its progress.
        """
        return wholedoc.detect(question, self.retriever.catalog, scope)

    def ask(
        self,
        question: str,
        *,
        k: int = config.SOURCES_PER_ANSWER,
        mode: str = "hybrid",
        scope: str | None = None,
        history: Sequence[tuple[str, str]] = (),
        sampling: Sampling = Sampling(),
        on_token: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        rerank: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
        task: WholeDocTask | None | _Plan = DETECT,
        use_cache: bool = True,
        on_sources: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> Answer:
        """Answer ``question`` from the library, streaming tokens to ``on_token``.

        Args:
            history: the conversation's earlier (question, answer) pairs; a
                follow-up that refers back to them is searched together with
                them (see :func:`search_query`).
            rerank: use the configured reranker, if any.
            on_progress: ``(done, total)`` steps of a whole-document answer.
            task: what :meth:`plan` made of ``question`` (``None``: an
                ordinary question); by default it is worked out here.
            use_cache: return the stored answer when the same question was
                answered over the same passages with the same settings
                (False: write it again, as Regenerate does; the new answer
                is stored). Whole-document answers are never cached.
            on_sources: called once retrieval has found the passages worth
                answering from, before the model reads them: each source's
                ``ask --json`` record, the top one with its best sentence for
                the question as ``quote`` (see :func:`found_sources`), so a window can show
                them while the answer is written. Not called on a decline.
        """
        # One trace per question: retrieval, prompt, generation, citation, audit.
        with span("answer", {names.KIND: "answer", names.LABEL: "question", names.MODE: mode, names.K: k}) as op:
            content(op, names.QUESTION, question)
            # "Summarise report.pdf", "compare A and B", "list every X in …" are
            # about whole files: read them all (map-reduce), not the top snippets.
            if task is DETECT:
                task = self.plan(question, scope)
            if isinstance(task, WholeDocTask):
                op.set_attribute(names.LABEL, f"whole-document {task.kind}")
                answer = self.ask_whole(task, sampling=sampling, on_token=on_token,
                                        on_progress=on_progress, should_stop=should_stop)
            else:
                answer = self._ask(question, k=k, mode=mode, scope=scope, history=history, sampling=sampling,
                                   on_token=on_token, should_stop=should_stop, rerank=rerank,
                                   use_cache=use_cache, on_sources=on_sources)
            _summarise(op, answer)
            return answer

    def _ask(
        self, question: str, *, k: int, mode: str, scope: str | None, history: Sequence[tuple[str, str]],
        sampling: Sampling, on_token: Callable[[str], None] | None, should_stop: Callable[[], bool] | None,
        rerank: bool, use_cache: bool = True,
        on_sources: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> Answer:
        """An ordinary question's answer (see :meth:`ask`)."""
        started = time.perf_counter()
        query = search_query(question, history)
        record: dict[str, Any] = {"question": question, "k": k, "mode": mode, "scope": scope}
        if query != question:
            record["search_query"] = query
        # What a decline says was searched, so the user can judge it.
        searched: dict[str, Any] = {"query": query, "mode": mode, "scope": scope}
        self.audit.append("ask", record)
        extra = {} if rerank else {"rerank": False}
        result = self.retriever.search(query, k=k, mode=mode, scope=scope, **extra)
        retrieve_ms = (time.perf_counter() - started) * 1000
        # Decline when nothing retrieved is close to the question, or when it
        # asks about a term the library never uses (see relevance.judge).
        catalog = self.retriever.catalog
        with span("relevance") as step:
            decision = relevance.judge(
                query, result.hits, closest=result.closest, has_term=catalog.has_term,
                is_word=lambda term: len(self.embedder.token_spans(term)) == 1,
                min_relevance=self.min_relevance,
                scoped_file=bool(scope) and any(h.chunk.path == scope for h in result.hits))
            step.set_attribute("docent.relevant", len(decision.relevant))
        relevant = decision.relevant
        timings: dict[str, float | None] = {"retrieve": retrieve_ms, "first_token": None, "total": None}
        if not relevant:
            text = DECLINE_TEXT
            if decision.missing_terms:
                # Say which word the documents lack: the user can then judge
                # (a synonym, a spelling) rather than guess why.
                searched["missing_terms"] = list(decision.missing_terms)
                text = f"{DECLINE_TEXT[:-1]}: {decision.reason}."
            answer = Answer(question, text, True, [], [], self.model_name, timings, result.hits,
                            search_query=record.get("search_query"), searched=searched)
            if on_token:
                on_token(text)
            return self._audit_answer(answer, started, prompt=None, sampling=sampling)

        # A passage quoted earlier in the conversation keeps its number and is
        # not quoted again: the model's KV cache still holds it.
        numbered, given = number_sources(relevant, self._earlier_sources(history))
        # One embedding of each sentence for the early quotes, the citation
        # step, the support check and the final quotes.
        encode = support.memo(self.embedder.encode)
        if on_sources is not None:
            # Something to read at once: what was found and its best sentence,
            # while the model (seconds on a laptop) reads the prompt.
            with span("sources shown") as step:
                found = found_sources(question, numbered, encode)
                on_sources(found)
                timings["sources"] = (time.perf_counter() - started) * 1000
                step.set_attribute(names.SOURCES, len(found))

        # The passages are known now and the model not yet loaded: the moment
        # to look for this very answer among those already given.
        key = None
        if self.cache is not None:
            key = self._cache_key(question, history, k=k, mode=mode, scope=scope, rerank=rerank,
                                  sampling=sampling, relevant=relevant)
            if use_cache:
                cached = self._cached(key, result.hits, started, retrieve_ms, on_token)
                if cached is not None:
                    return self._audit_answer(cached, started, prompt=None, sampling=sampling)

        with span("load model"):  # the first question's: later ones find it loaded
            model = self._model()
        with span("prompt") as step:
            screens = Screens()  # each passage screened once for this question
            # Passages quoted earlier are only named, so the budget goes to the new ones.
            cut = excerpts.excerpts(question, [s for s in numbered if s.hit.chunk.id not in given],
                                    self.prompt_budget, model.count_tokens, encode)
            messages, sources = fit(model, self.system_prompt, question, numbered,
                                    history, self._sent, sampling.max_tokens, self.defence, screens, given, cut)
            prompt = model.render(messages)
            screened = screens.of(sources)
            check = injection.Check.build(screened, question) if self.defence.check_output else None
            step.set_attribute(names.SOURCES, len(sources))
            step.set_attribute("docent.prompt.excerpted", len(cut))
            step.set_attribute("docent.prompt.turns_reused", sum(1 for m in messages if m["role"] == "assistant"))
        out = generate(model, prompt, sampling, started=started, check=check, on_token=on_token,
                       should_stop=should_stop, cut=self.defence.any)
        timings["first_token"] = out.first_token_ms
        with span("citation") as step:
            cited = cite.cite_answer(out.text, sources, encode)
            notes = cited.notes + ([FLAG_REPEATING] if out.repeated else [])
            answer = Answer(question, cited.text, cited.declined, cited.sources, cited.citations, self.model_name,
                            timings, result.hits, out.stopped, notes, search_query=record.get("search_query"))
            answer.usage = {"prompt_tokens": model.count_tokens(prompt), "completion_tokens": out.tokens}
            answer.tokens_per_s = out.tokens_per_s
            if check is not None:
                flags = list(dict.fromkeys(out.flags + check.text_flags(answer.answer)))
                if flags:
                    answer = quote_instead(answer, answer.sources, screened, flags, encode, on_token)
            if answer.declined:
                answer.searched = searched
            support.back_up(answer, encode)
            step.set_attribute("docent.citations", len(answer.citations))
            step.set_attribute("docent.quotes", len(answer.quotes))
        suspicious = [s.hit.chunk.id for s, scr in zip(sources, screened) if scr.flagged]
        if not answer.declined and answer.replaced is None and not out.stopped:
            self._remember(question, answer.answer, messages[-1]["content"], out.raw, sources)
        # Only an answer the model finished on its own is kept: not one the
        # user stopped, nor one replaced because it followed a document's instructions.
        if key is not None and self.cache is not None and not out.stopped and answer.replaced is None:
            self._store(key, answer)
        return self._audit_answer(answer, started, prompt=prompt, sampling=sampling, suspicious=suspicious,
                                  excerpted={s.hit.chunk.id: cut[s.hit.chunk.id] for s in sources
                                             if s.hit.chunk.id in cut})

    def _cache_key(
        self, question: str, history: Sequence[tuple[str, str]], *, k: int, mode: str, scope: str | None,
        rerank: bool, sampling: Sampling, relevant: Sequence[Hit],
    ) -> str:
        """The answer cache's key: everything that determines the answer.

        The passages enter as (chunk id, text hash) in order, so a changed
        document, another ranking or another scope misses by construction.
        """
        return cache_key({
            "question": question,
            "history": [list(pair) for pair in history],
            "scope": list(scope) if isinstance(scope, tuple) else scope,
            "mode": mode, "k": k, "rerank": rerank,
            "model": self.model_name,
            "sampling": sampling.to_json(),
            "system_prompt": AuditLog.hash_text(self.system_prompt),
            "defence": asdict(self.defence),
            "min_relevance": self.min_relevance,
            "prompt_budget": self.prompt_budget,
            "passages": [[h.chunk.id, h.chunk.text_hash] for h in relevant],
            "salt": self.cache_salt,
        })

    def _cached(
        self, key: str, retrieved: list[Hit], started: float, retrieve_ms: float,
        on_token: Callable[[str], None] | None,
    ) -> Answer | None:
        """The stored answer for ``key``, streamed to ``on_token`` at once; None on a miss."""
        assert self.cache is not None
        with span("answer cache") as step:
            stored = self.cache.get(key)
            answer = Answer.from_snapshot(stored.record, retrieved) if stored is not None else None
            hit = answer is not None
            step.set_attribute(names.CACHE_HIT, hit)
        # On the answer span too (the current one again): `docent stats` counts hits from it.
        trace.get_current_span().set_attribute(names.CACHE_HIT, hit)
        instruments().cache.add(1, {names.CACHE: "answer", names.CACHE_HIT: hit})
        if answer is None or stored is None:
            return None
        answer.cached_from = stored.created_at
        answer.timings_ms = {"retrieve": retrieve_ms, "first_token": None, "total": None}
        if on_token and answer.answer:
            on_token(answer.answer)  # the whole text at once: nothing is being written
        answer.timings_ms["first_token"] = (time.perf_counter() - started) * 1000
        return answer

    def _store(self, key: str, answer: Answer) -> None:
        """Keep ``answer`` for the same question asked again."""
        assert self.cache is not None
        record = answer.snapshot()
        # The passages are the next search's (the key guarantees they are
        # the same): only the answer's own part is kept.
        record.pop("retrieved", None)
        record.pop("trace_id", None)
        with span("answer cache") as step:
            step.set_attribute(names.CACHE_STORED, self.cache.put(key, record) is not None)

    def ask_whole(
        self,
        task: WholeDocTask,
        *,
        sampling: Sampling = Sampling(),
        on_token: Callable[[str], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Answer:
        """Answer a whole-document ``task`` by map-reduce over its files' chunks;
        audited like any answer, plus ``whole_document`` (files, batches read)."""
        started = time.perf_counter()
        self.audit.append("ask", {"question": task.question, "scope": task.scope,
                                  "whole_document": {"kind": task.kind, "files": list(task.files)}})
        trace: dict[str, Any] = {}
        answer = mapreduce.map_reduce(
            task, self._model(), self.retriever.catalog, model_name=self.model_name, sampling=sampling,
            defence=self.defence, embedder=self.embedder, vectors=self.retriever.vectors,
            on_token=on_token, on_progress=on_progress, should_stop=should_stop, trace=trace,
        )
        prompts = trace.get("prompts") or [None]
        support.back_up(answer, support.memo(self.embedder.encode))
        return self._audit_answer(answer, started, prompt=prompts[-1], sampling=sampling,
                                  suspicious=trace.get("instruction_like", ()),
                                  whole_document=mapreduce.whole_document_note(task, trace))

    def _remember(self, question: str, answer: str, sent: str, generated: str, sources: Sequence[Source]) -> None:
        """Keep how a turn was put to the model, for the next follow-up's prompt."""
        self._sent[(question, answer)] = (sent, generated)
        self._sent.move_to_end((question, answer))
        # Each passage the turn's message holds (quoted, or named as quoted
        # earlier), by chunk id: its number and the text the model read.
        self._numbers[(question, answer)] = {s.hit.chunk.id: (s.n, s.hit.chunk.text) for s in sources}
        while len(self._sent) > _KEPT_TURNS:
            dropped, _ = self._sent.popitem(last=False)
            self._numbers.pop(dropped, None)

    def _earlier_sources(self, history: Sequence[tuple[str, str]]) -> dict[str, tuple[int, str]]:
        """The passages the conversation's earlier turns gave the model as it
        saw them (see :meth:`_remember`): chunk id → (number, text)."""
        earlier: dict[str, tuple[int, str]] = {}
        for turn in history:
            earlier.update(self._numbers.get(tuple(turn), {}))  # type: ignore[arg-type]
        return earlier

    def _audit_answer(
        self, answer: Answer, started: float, *, prompt: str | None, sampling: Sampling,
        suspicious: Sequence[str] = (), whole_document: dict[str, Any] | None = None,
        excerpted: Mapping[str, excerpts.Excerpt] | None = None,
    ) -> Answer:
        """Time the answer and write its ``answer`` audit record.

        Args:
            prompt: the prompt sent (the last one, for a whole-document answer).
            suspicious: the chunk ids of the sources that contained
                instruction-like text.
            whole_document: a whole-document answer's note (files, batches,
                every step's prompt hash; see ``mapreduce.whole_document_note``).
            excerpted: the sources the prompt budget cut down to some of
                their sentences, by chunk id: recorded as the page-text spans
                the model was given.
        """
        answer.timings_ms["total"] = (time.perf_counter() - started) * 1000
        by_n = {s.n: s for s in answer.sources}
        record: dict[str, Any] = {
            "question": answer.question,
            "search_query": answer.search_query,
            "retrieved": answer.retrieved_json("audit"),
            "sources": [s.hit.chunk.id for s in answer.sources],
            "citations": [{"n": c.n, "chunk_id": c.source.hit.chunk.id, "inferred": c.inferred}
                          for c in answer.citations],
            "model": answer.model,
            "sampling": sampling.to_json(),
            "prompt_hash": AuditLog.hash_text(prompt) if prompt is not None else None,
            "answer_hash": AuditLog.hash_text(answer.answer),
            "declined": answer.declined,
            "stopped": answer.stopped,
            "flags": list(answer.flags),
            "instruction_like_sources": list(suspicious),
            "replaced_answer_hash": AuditLog.hash_text(answer.replaced) if answer.replaced is not None else None,
            # What backs the answer up. The record keeps the question in clear,
            # so the sentences the documents do not support are kept in clear too.
            "quotes": [{"n": q.n, "chunk_id": by_n[q.n].hit.chunk.id, "span": [q.start, q.end]}
                       for q in answer.quotes if q.n in by_n],
            "unsupported": answer.unsupported,
            "wording_unsupported": answer.wording_unsupported,
        }
        if answer.declined:
            record["searched"] = answer.searched
        if excerpted:
            # Only these parts of these passages reached the model (spans on
            # the page's text, as quotes are), the rest of them did not.
            start = {h.chunk.id: h.chunk.start for h in answer.retrieved}
            record["excerpts"] = [
                {"chunk_id": cid, "spans": [[start.get(cid, 0) + a, start.get(cid, 0) + b] for a, b in cut.runs]}
                for cid, cut in excerpted.items()]
        if whole_document is not None:
            record["whole_document"] = whole_document
        if answer.cached_from is not None:
            # Not written again: given from the cache, as first given then.
            record["cache"] = {"hit": True, "from": answer.cached_from}
        with span("audit"):
            self.audit.append("answer", record)
        return answer


def number_sources(
    relevant: Sequence[Hit], earlier: Mapping[str, tuple[int, str]],
) -> tuple[list[Source], set[str]]:
    """Number the passages an answer is written from, in retrieval order.

    A passage an earlier turn of the conversation gave the model (``earlier``:
    chunk id → number, text) keeps that number when its text is unchanged,
    and is returned among the chunk ids already given; the others take the
    next numbers unused in the conversation. A new conversation numbers 1, 2, ….
    """
    used = {n for n, _ in earlier.values()}
    following = max(used, default=0) + 1
    sources: list[Source] = []
    given: set[str] = set()
    for hit in relevant:
        known = earlier.get(hit.chunk.id)
        if known is not None and known[1] == hit.chunk.text:
            sources.append(Source(known[0], hit))
            given.add(hit.chunk.id)
        else:
            sources.append(Source(following, hit))
            following += 1
    return sources, given


def found_sources(question: str, sources: Sequence[Source], encode: support.Encode) -> list[dict[str, Any]]:
    """The passages an answer will be written from, as shown before it is:
    each source's ``ask --json`` record, the top one with the sentence that
    best answers ``question`` as ``quote`` (see :func:`support.supporting_quotes`).

    Only the top passage is quoted: ranking every sentence of every passage
    took 0.86 s on this machine (bench: answer), all of it before the model
    starts reading, while the top passage's dozen sentences take a fraction
    of that. The answer's own quotes, made once it is written, cover the rest.
    """
    quotes = support.supporting_quotes(question, "", [Citation(s.n, s, False) for s in sources[:1]],
                                       encode, limit=1)
    by_n = {q.n: q for q in quotes}
    found: list[dict[str, Any]] = []
    for source in sources:
        item = source.to_json()
        if source.n in by_n:
            item["quote"] = by_n[source.n].to_json(source)
        found.append(item)
    return found


def _summarise(op: object, answer: Answer) -> None:
    """Put an answer's figures on its operation span (the Activity panel's
    charts and the answers objective read them) and in the metrics."""
    answer.trace_id = current_trace_id()
    timings = answer.timings_ms
    outcome = "stopped" if answer.stopped else "declined" if answer.declined else "ok"
    set_attributes(op, {  # type: ignore[arg-type]
        names.OUTCOME: outcome,
        names.TTFT_MS: None if timings.get("first_token") is None else round(timings["first_token"] or 0, 1),
        names.RETRIEVAL_MS: None if timings.get("retrieve") is None else round(timings["retrieve"] or 0, 1),
        names.TOKENS_PER_S: None if answer.tokens_per_s is None else round(answer.tokens_per_s, 2),
        names.SOURCES: len(answer.sources),
        names.INPUT_TOKENS: (answer.usage or {}).get("prompt_tokens"),
        names.OUTPUT_TOKENS: (answer.usage or {}).get("completion_tokens"),
    })
    if timings.get("total") is not None:
        instruments().operation_duration.record((timings["total"] or 0) / 1000, {names.OPERATION: "chat"})
