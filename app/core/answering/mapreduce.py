"""Whole-document answers by map-reduce: read every chunk of the named files.

:func:`map_reduce` reads the task's files (:class:`~app.core.answering.wholedoc.WholeDocTask`)
chunk by chunk in document order, packs them into batches that fit the
model's context, asks the model for notes on each batch (the *map* step,
sources numbered and cited), and finally combines the notes into one answer
(the *reduce* step) whose ``[n]`` markers point at the original chunks, with
their file and page.

Every step runs through the same guarded generation step as an ordinary
answer (:func:`app.core.answering.generation.generate`) and the answer
through the same citation step (:func:`app.core.answering.citations.cite_answer`):
a document's planted instructions are screened out of the prompts, an answer
that follows one anyway is replaced by a quoted, cited sentence, and markers a
passage does not support are removed, with the same flags as the ordinary path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.answering import injection
from app.core.answering.citations import MARKER, cite_answer, markers
from app.core.answering.generation import generate, quote_instead
from app.core.answering.outcome import DECLINE_TEXT, Answer, Source
from app.core.answering.prompt import WHOLE_DOCUMENT_SYSTEM_PROMPT as SYSTEM_PROMPT
from app.core.answering.prompt import Screens, user_message
from app.core.answering.retrieval import Hit
from app.core.answering.wholedoc import WholeDocTask
from app.core import textnorm
from app.core.stores.audit import AuditLog
from app.core.stores.catalog import Catalog, StoredChunk
from app.core.models.llm import LocalModel, Message, Sampling

# A model on a CPU reads a 2k-token part in tens of seconds; past this many
# parts an answer would take many minutes, so longer files are sampled.
MAX_BATCHES = 12

def _instruction(task: WholeDocTask, step: str) -> str:
    """What the model is asked to do at ``step`` (``map``, ``final``, ``reduce``)."""
    if task.kind == "list":
        what = task.topic or "item"
        if step == "map":
            return (f"List every {what} these sources mention, one per line, each followed by its source "
                    "number like [1]. If they mention none, reply: None.")
        return f"List every {what} in {task.label}, one per line, each followed by its source number like [1]."
    if task.kind == "compare":
        if step == "map":
            return (f"Note briefly what these sources say that matters for comparing {task.label}, "
                    "naming the file each point comes from and citing its source number like [1].")
        return (f"Compare {task.label}: what they have in common and how they differ, "
                "citing source numbers like [1].")
    if step == "map":
        return "Note the main points of these sources in a few short sentences, citing source numbers like [1]."
    return f"Summarise {task.label} in a few sentences, citing source numbers like [1]."


def _reduce_message(task: WholeDocTask, notes: Sequence[str], final: bool) -> str:
    parts = "\n\n".join(f"Notes on part {i} of {len(notes)}:\n{n}" for i, n in enumerate(notes, 1))
    if final:
        ask = _instruction(task, "final") + " Keep the source numbers exactly as the notes give them."
    else:
        ask = "Combine these notes into one shorter set of notes. Keep the source numbers exactly as they are."
    return f"{parts}\n\nTask: {ask}"


_NOTHING = re.compile(r"^\W*(?:none|nothing|no (?:relevant|such|mention)|n/?a)\b", re.IGNORECASE)


@dataclass
class _Run:
    """One map-reduce: what it runs with, and what was read, said and sent.

    ``screens`` holds each chunk's screening for prompt injection (once per
    chunk for the whole question); ``check`` is the output check every step
    runs under, built from every chunk that is read.
    """

    model: LocalModel
    started: float
    defence: injection.Defence
    should_stop: Callable[[], bool] | None
    screens: Screens = field(default_factory=Screens)
    check: injection.Check | None = None
    prompts: list[str] = field(default_factory=list)
    first_token: float | None = None
    stopped: bool = False
    flags: list[str] = field(default_factory=list)  # why a step's output guard tripped


def _chunks(catalog: Catalog, paths: Sequence[str]) -> list[StoredChunk]:
    """Every chunk of ``paths`` (indexed files only), file by file, in document order."""
    out: list[StoredChunk] = []
    for path in paths:
        row = catalog.file(path)
        if row is None or row.status != "indexed":
            continue
        ids = catalog.chunk_ids(row.id)
        found = catalog.chunks(ids)
        out += sorted(found.values(), key=lambda c: c.ordinal)
    return out


def _batches(run: _Run, chunks: Sequence[StoredChunk], budget: int, overhead: int) -> list[list[StoredChunk]]:
    """``chunks`` packed in order into batches whose prompt fits ``budget`` tokens."""
    room = max(64, budget - overhead)
    batches: list[list[StoredChunk]] = []
    current: list[StoredChunk] = []
    used = 0
    for chunk in chunks:
        # Measured as the prompt shows it (header and quotes), numbered high
        # so the estimate is never short.
        cost = run.model.count_tokens(user_message("", [Source(99, Hit(chunk, 1.0))], run.defence, run.screens)) - 4
        if cost > room:  # one chunk alone is too long: keep what fits (~3 chars a token, cut generously)
            chunk = StoredChunk(**{**chunk.__dict__, "text": chunk.text[: max(200, (room - 40) * 3)]})
            cost = room
        if current and used + cost > room:
            batches.append(current)
            current, used = [], 0
        current.append(chunk)
        used += cost
    if current:
        batches.append(current)
    return batches


def _select(batches: list[list[StoredChunk]], task: WholeDocTask, cap: int) -> tuple[list[int], str | None]:
    """Which batches to read when there are more than ``cap``, and the flag saying so.

    A list is looked for where its topic's words are (the parts that mention
    them most); a summary or comparison reads parts spread evenly over the
    document, so its beginning, middle and end are all seen.
    """
    total = len(batches)
    if total <= cap:
        return list(range(total)), None
    if task.kind == "list" and task.topic:
        words = textnorm.content_words(task.topic)
        scores = [sum(len(words & textnorm.content_words(c.text)) for c in b) for b in batches]
        if any(scores):
            best = sorted(range(total), key=lambda i: (-scores[i], i))[:cap]
            return sorted(best), (f"{task.label} is long: read the {cap} of its {total} parts that mention "
                                  f"{task.topic} most, not all of it")
    picked = sorted({round(i * (total - 1) / (cap - 1)) for i in range(cap)}) if cap > 1 else [0]
    return picked, f"{task.label} is long: read {len(picked)} of its {total} parts, spread evenly, not all of it"


def _generate(run: _Run, messages: list[Message], sampling: Sampling,
              on_token: Callable[[str], None] | None = None) -> str:
    """One guarded model call; tokens go to ``on_token`` (the final step only streams)."""
    prompt = run.model.render(messages)
    run.prompts.append(prompt)
    out = generate(run.model, prompt, sampling, started=run.started, check=run.check, on_token=on_token,
                   should_stop=run.should_stop, cut=run.defence.any)
    if on_token is not None and run.first_token is None:
        run.first_token = out.first_token_ms
    run.stopped = run.stopped or out.stopped
    run.flags += [f for f in out.flags if f not in run.flags]
    return _tidy(out.text)


# Past these lines a small model is echoing this module's own prompt layout.
_OWN_ECHO = re.compile(r"^[ \t]*(?:Task:|Notes on part \d+ of \d+:).*$", re.MULTILINE | re.IGNORECASE)
# A line that is only a marker ("[2]", "- [3]"): small models list these in runs.
_BARE_MARKER = re.compile(r"^[ \t]*(?:[-*•]|\d+[.)])?[ \t]*(?:\[\d+(?:\s*,\s*\d+)*\][ \t]*)+[.,;:]?[ \t]*$")


def _tidy(text: str) -> str:
    """``text`` without an echo of the prompt and without runs of bare
    markers (a run's last marker stays when a line of text follows: it
    labels that line). Never tidies everything away (then ``text`` is kept)."""
    echo = _OWN_ECHO.search(text)
    lines = (text[: echo.start()] if echo else text).strip().split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _BARE_MARKER.match(lines[j]):
            j += 1
        if j - i >= 2:  # a run of bare markers
            if j < len(lines) and lines[j].strip():
                kept.append(lines[j - 1])
            i = j
            continue
        kept.append(lines[i])
        i += 1
    tidy = "\n".join(kept).strip()
    return tidy or text


def _renumber(note: str, mapping: dict[int, int]) -> str:
    """A note's local ``[n]`` markers as final numbers; markers naming no source are dropped."""

    def sub(match: re.Match[str]) -> str:
        nums = [mapping.get(int(p)) for p in re.split(r"[,;]", match.group(1))]
        good = list(dict.fromkeys(n for n in nums if n is not None))
        return f"[{', '.join(map(str, good))}]" if good else ""

    return MARKER.sub(sub, note)


def map_reduce(
    task: WholeDocTask,
    model: LocalModel,
    catalog: Catalog,
    *,
    model_name: str,
    sampling: Sampling = Sampling(),
    defence: injection.Defence = injection.Defence(),
    embedder: Any = None,
    vectors: Any = None,
    on_token: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_batches: int = MAX_BATCHES,
    trace: dict[str, Any] | None = None,
) -> Answer:
    """Answer ``task`` by reading its files' chunks batch by batch (map), then
    combining the notes (reduce).

    Args:
        model: the chat model; its ``n_ctx`` and ``count_tokens`` size the batches.
        embedder, vectors: check that a chunk supports the sentence citing it,
            match an answer without ``[n]`` markers to the chunks it restates,
            and pick the sentence to quote when an answer followed a
            document's instructions (either may be ``None``: then words alone
            are compared).
        on_token: the final step's text as it is written.
        on_progress: ``(done, total)`` steps: one per map batch, plus one for
            the reduce step when there is more than one batch (a file that fits
            in one batch is answered in one step).
        should_stop: checked between tokens; when it returns true the answer
            stops within a token and holds what was done (``stopped=True``).
        max_batches: at most this many batches are read; longer files are
            sampled and the answer's ``flags`` say so.
        trace: filled with what the audit record needs (batches, prompts,
            ``instruction_like``: the read chunks with instruction-like text).

    Returns:
        An :class:`~app.core.answering.answer.Answer` whose sources are numbered chunks of
        the task's files and whose citations point at them.
    """
    started = time.perf_counter()
    timings: dict[str, float | None] = {"retrieve": None, "first_token": None, "total": None}
    trace = trace if trace is not None else {}
    trace.update({"batches": 0, "read_batches": 0, "chunks": 0, "prompts": []})
    if task.candidates:
        names = "\n".join(f"- {p}" for p in task.candidates)
        text = (f"Several indexed files or folders are called {task.label}; which one do you mean?\n{names}\n"
                "Name it with its folder (for example folder/name), or choose it as the chat's scope "
                "and ask about “this file”.")
        if on_token:
            on_token(text)
        return Answer(task.question, text, True, [], [], model_name, timings, [],
                      flags=[f"ambiguous name: {len(task.candidates)} matches"])

    chunks = _chunks(catalog, task.files)
    timings["retrieve"] = (time.perf_counter() - started) * 1000
    run = _Run(model, started, defence, should_stop)
    if not chunks:
        if on_token:
            on_token(DECLINE_TEXT)
        return Answer(task.question, DECLINE_TEXT, True, [], [], model_name, timings, [])

    # Room for the model's notes; the rest of the context holds the sources.
    note_tokens = max(32, min(sampling.max_tokens, model.n_ctx // 6))
    note_sampling = Sampling(**{**sampling.to_json(), "max_tokens": note_tokens})
    budget = model.n_ctx - max(note_tokens, min(sampling.max_tokens, model.n_ctx // 3)) - 8
    empty = [{"role": "system", "content": SYSTEM_PROMPT},
             {"role": "user", "content": user_message(_instruction(task, "map"), [], defence, run.screens)}]
    overhead = model.count_tokens(model.render(empty)) + 8
    batches = _batches(run, chunks, budget, overhead)
    chosen, sample_flag = _select(batches, task, max(1, max_batches))
    # One output check for every step, from every chunk to be read.
    to_read = [c for bi in chosen for c in batches[bi]]
    screened = run.screens.of([Source(0, Hit(c, 1.0)) for c in to_read])
    trace["instruction_like"] = [c.id for c, scr in zip(to_read, screened) if scr.flagged]
    if defence.check_output:
        run.check = injection.Check.build(screened, task.question)
    flags = [sample_flag] if sample_flag else []
    trace.update({"batches": len(batches), "chunks": len(chunks), "sampled": sample_flag is not None})
    single = len(chosen) == 1
    total = 1 if single else len(chosen) + 1
    done = 0

    def progress() -> None:
        if on_progress is not None:
            on_progress(min(done, total), total)

    def stop_now() -> bool:
        return should_stop is not None and should_stop()

    progress()
    if single:
        # It all fits: one step answers the task from the sources themselves.
        batch = batches[chosen[0]]
        sources = [Source(i, Hit(c, 1.0)) for i, c in enumerate(batch, 1)]
        msgs: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT},
                               {"role": "user", "content": user_message(_instruction(task, "final"), sources, defence, run.screens)}]
        text = "" if stop_now() else _generate(run, msgs, sampling, on_token)
        run.stopped = run.stopped or stop_now()
        done = 1
        progress()
        trace.update({"read_batches": 1, "prompts": run.prompts})
        timings["first_token"] = run.first_token
        return _answer(task, text, sources, batch, run, model_name, timings, flags, embedder, vectors, on_token)

    # Map: notes on each batch, their local [n] renumbered to chunk positions.
    notes: list[tuple[str, dict[int, int]]] = []  # note, local n -> index in ``chunks``
    position = {c.id: i for i, c in enumerate(chunks)}
    for bi in chosen:
        if stop_now():
            run.stopped = True
            break
        batch = batches[bi]
        sources = [Source(i, Hit(c, 1.0)) for i, c in enumerate(batch, 1)]
        msgs = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_message(_instruction(task, "map"), sources, defence, run.screens)}]
        note = _generate(run, msgs, note_sampling)
        local = {s.n: position[s.hit.chunk.id] for s in sources}
        if note and not (_NOTHING.match(note) and len(note) < 60):
            notes.append((note, local))
        if run.stopped:
            break
        done += 1
        progress()
    read = done

    # The chunks the notes cite, numbered in document order: the final sources.
    cited = sorted({local[n] for note, local in notes for n in markers(note, len(local)).valid})
    final_n = {idx: i for i, idx in enumerate(cited, 1)}
    sources = [Source(final_n[idx], Hit(chunks[idx], 1.0)) for idx in cited]
    texts = [_renumber(note, {n: final_n[idx] for n, idx in local.items() if idx in final_n})
             for note, local in notes]
    read_chunks = [c for bi in chosen[:max(read, 1)] for c in batches[bi]]
    trace["read_batches"] = read

    if run.stopped:
        text = "\n\n".join(texts)
        if text:
            text += "\n\n"
        text += f"(Stopped after reading {read} of {len(chosen)} parts of {task.label}.)"
        _show(run, text, on_token)  # nothing was streamed yet: the notes were not shown
        flags.append(f"stopped after reading {read} of {len(chosen)} parts")
        trace["prompts"] = run.prompts
        return _answer(task, text, sources, read_chunks, run, model_name, timings, flags, embedder, vectors,
                       on_token)
    if not texts:
        if on_token:
            on_token(DECLINE_TEXT)
        done = total
        progress()
        trace["prompts"] = run.prompts
        return _answer(task, DECLINE_TEXT, sources, read_chunks, run, model_name, timings, flags, embedder,
                       vectors, on_token)

    # Reduce: notes that do not fit together are first combined in groups
    # (each group one more step), then the final answer is written from them.
    def fits(group: Sequence[str]) -> bool:
        msgs = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": _reduce_message(task, group, True)}]
        return model.count_tokens(model.render(msgs)) <= budget

    while not fits(texts) and len(texts) > 1 and not run.stopped:
        groups: list[list[str]] = [[]]
        for t in texts:
            if groups[-1] and not fits(groups[-1] + [t]):
                groups.append([])
            groups[-1].append(t)
        if len(groups) == len(texts):  # no two notes fit together: shorten them instead
            texts = [t[: max(200, len(t) // 2)] for t in texts]
            continue
        total += len(groups)
        merged = []
        for g in groups:
            if stop_now():
                run.stopped = True
                break
            msgs = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": _reduce_message(task, g, False)}]
            merged.append(_generate(run, msgs, note_sampling) if len(g) > 1 else g[0])
            done += 1
            progress()
        texts = merged or texts
    if len(texts) == 1 and not fits(texts):
        texts = [texts[0][: max(200, (budget - overhead) * 3)]]
    msgs = [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": _reduce_message(task, texts, True)}]
    text = "" if stop_now() else _generate(run, msgs, sampling, on_token)
    run.stopped = run.stopped or stop_now()
    if (not text or _OWN_ECHO.match(text)) and not run.stopped:
        # The model wrote nothing usable from its notes (nothing, or only an
        # echo of the task, whose "like [1]" no passage supports): the notes
        # are the answer.
        text = "\n\n".join(texts)
        _show(run, text, on_token)
    if run.stopped:
        flags.append("stopped while writing the answer")
    else:
        done = total
    progress()
    trace["prompts"] = run.prompts
    timings["first_token"] = run.first_token
    return _answer(task, text, sources, read_chunks, run, model_name, timings, flags, embedder, vectors, on_token)


def _show(run: _Run, text: str, on_token: Callable[[str], None] | None) -> None:
    """Stream notes shown as the answer, unless the output check finds them
    unsafe (then only the quote that replaces them is shown)."""
    unsafe = run.flags or (run.check is not None and run.check.text_flags(text))
    if on_token and not unsafe:
        on_token(text)


def _with_vectors(sources: list[Source], vectors: Any) -> None:
    """Give ``sources``' hits their stored vectors (to judge citations by
    meaning); without the vector store, words alone are compared."""
    if vectors is None or not sources:
        return
    try:
        stored = vectors.get(list(dict.fromkeys(s.hit.chunk.id for s in sources)))
    except Exception:  # noqa: BLE001 - without vectors, word overlap still matches
        return
    for s in sources:
        s.hit.vector = stored.get(s.hit.chunk.id)


def _answer(task: WholeDocTask, text: str, sources: list[Source], read: list[StoredChunk], run: _Run,
            model_name: str, timings: dict[str, float | None], flags: list[str],
            embedder: Any, vectors: Any, on_token: Callable[[str], None] | None) -> Answer:
    """The answer, its citations resolved and its text checked, as in the ordinary path.

    ``[n]`` markers name ``sources``; an answer without any is matched to the
    chunks it restates (the cited sources, or failing those every chunk read),
    marked ``inferred``. An answer that followed a document's instructions
    (any step's guard tripped, or the check finds the final text unsafe) is
    replaced by a quoted, cited sentence of the chunks read.
    """
    pool = [Source(i, Hit(c, 1.0)) for i, c in enumerate(read, 1)]
    _with_vectors(sources + pool, vectors)
    encode = embedder.encode if embedder is not None else None
    cited = cite_answer(text, sources, encode, pool=pool, stopped=run.stopped)
    answer = Answer(task.question, cited.text, cited.declined, cited.sources, cited.citations, model_name,
                    timings, [s.hit for s in cited.sources], run.stopped, flags + cited.notes)
    if run.check is not None:
        unsafe = list(dict.fromkeys(run.flags + run.check.text_flags(answer.answer)))
        if unsafe:
            own = [s.hit.chunk.id for s in answer.sources] == [c.id for c in read]
            quoted_from = answer.sources if own else pool
            answer = quote_instead(answer, quoted_from, run.screens.of(quoted_from), unsafe + flags, encode,
                                   on_token, any_sentence=True, renumber=not own)
            answer.retrieved = [s.hit for s in answer.sources]
    return answer


def whole_document_note(task: WholeDocTask, trace: dict[str, Any]) -> dict[str, Any]:
    """What the audit record adds for a whole-document answer: its files,
    how many batches were read (and how many the files make), and every
    step's prompt hash (the record's own ``prompt_hash`` is the last step's)."""
    return {
        "kind": task.kind,
        "files": list(task.files),
        "batches": int(trace.get("read_batches", 0)),
        "batches_in_files": int(trace.get("batches", 0)),
        "chunks_in_files": int(trace.get("chunks", 0)),
        "sampled": bool(trace.get("sampled", False)),
        "prompt_hashes": [AuditLog.hash_text(p) for p in trace.get("prompts", [])],
    }

