"""One guarded generation step, and the fallback when a guard trips.

Every model call that answers (the ordinary answer; each map, reduce and
final step of a whole-document answer) goes through :func:`generate`: tokens
stream to ``on_token`` through the prompt-injection
:class:`~app.core.answering.injection.OutputGuard`, generation stops within a
token of ``should_stop`` or of the guard tripping, and the echo of the
prompt's layout is cut off. A generation that starts repeating itself (the
same sentence or bullet again, a phrase going round) is stopped there and
keeps only what came before (:func:`app.core.answering.support.cut_repetition`). An answer that followed an injection anyway is
then replaced by :func:`quote_instead`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.core.answering import injection
from app.core.answering.support import cut_repetition
from app.core.answering.outcome import DECLINE_TEXT, Answer, Citation, Source
from app.core.answering.prompt import cut_echo
from app.core.models.llm import LocalModel, Sampling
from app.telemetry import instruments, names, span
from app.telemetry.spans import content, set_attributes

Encode = Callable[[list[str]], np.ndarray]

#: The flag (and note) of an answer cut where the model started repeating itself.
FLAG_REPEATING = "cut where the model started repeating itself"
# A repeat can only be complete at the end of a sentence, line or bullet, so
# the text is checked only when a piece ends one (a few dozen times an answer).
_UNIT_END = (".", "!", "?", "\n", "。", "！", "？", ":", ";")


@dataclass
class Generated:
    """What one model call produced.

    Attributes:
        text: the answer as written (leading blank and echoed layout cut off).
        raw: the model's output untouched (what its KV cache holds).
        flags: why the guard stopped it (empty when it did not).
        stopped: whether ``should_stop`` asked it to stop.
        first_token_ms: when the first visible piece came, from ``started``.
        repeated: whether it was cut where it started repeating itself
            (``text`` and ``raw`` then end before the repeat).
    """

    text: str
    raw: str
    flags: list[str] = field(default_factory=list)
    stopped: bool = False
    first_token_ms: float | None = None
    repeated: bool = False
    #: Pieces the model produced (about one token each), for usage counts.
    tokens: int = 0
    #: Pieces written per second after the first (None: fewer than two).
    tokens_per_s: float | None = None


def generate(
    model: LocalModel,
    prompt: str,
    sampling: Sampling,
    *,
    started: float,
    check: injection.Check | None = None,
    on_token: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cut: bool = True,
    cut_repeats: bool = True,
) -> Generated:
    """Run ``prompt`` through ``model``, streaming what is safe to ``on_token``.

    Args:
        started: ``time.perf_counter()`` when the question began (for
            ``first_token_ms``).
        check: the output check; with one, each word is passed on only once
            it is complete and safe, and generation stops at the first unsafe
            word.
        should_stop: checked between tokens (Stop takes effect within one).
        cut: cut the answer where the model starts echoing the prompt's layout.
        cut_repeats: stop when the output starts repeating itself and keep
            the text before the repeat (what was already streamed of the
            repeat stays shown; the answer's text does not hold it).
    """
    attrs = {names.OPERATION: "chat", names.SYSTEM: "llama.cpp", names.REQUEST_MODEL: model.name,
             names.TEMPERATURE: sampling.temperature, names.TOP_P: sampling.top_p, names.TOP_K: sampling.top_k,
             names.MAX_TOKENS: sampling.max_tokens}
    # The GenAI conventions' span name: "{operation} {model}".
    with span(f"chat {model.name}", attrs) as current:
        content(current, names.PROMPT, prompt)
        out = _generate(model, prompt, sampling, started=started, check=check, on_token=on_token,
                        should_stop=should_stop, cut=cut, cut_repeats=cut_repeats, current=current)
        content(current, names.COMPLETION, out.text)
        return out


def _generate(
    model: LocalModel, prompt: str, sampling: Sampling, *, started: float, check: injection.Check | None,
    on_token: Callable[[str], None] | None, should_stop: Callable[[], bool] | None, cut: bool,
    cut_repeats: bool, current: object,
) -> Generated:
    """:func:`generate`'s work, inside its ``chat`` span (``current``)."""
    guard = injection.OutputGuard(check) if check is not None else None
    pieces: list[str] = []
    raw: list[str] = []
    first_token: float | None = None
    first_at = 0.0
    repeated_at: int | None = None  # where the repeat begins in "".join(pieces)
    stream = model.stream(prompt, sampling, should_stop=should_stop)
    try:
        for piece in stream:
            raw.append(piece)
            if not pieces:
                piece = piece.lstrip()  # models often open with a newline
                if not piece:
                    continue
            if first_token is None:
                first_token = (time.perf_counter() - started) * 1000
                first_at = time.perf_counter()
                current.add_event("first_token", {"docent.time_to_first_token_ms": round(first_token, 1)})  # type: ignore[attr-defined]
            pieces.append(piece)
            shown = guard.feed(piece) if guard is not None else piece
            if on_token and shown:
                on_token(shown)
            if guard is not None and guard.tripped:
                break  # no point generating the rest of an injected answer
            if cut_repeats and piece.rstrip(" \t").endswith(_UNIT_END):
                repeated_at = _repeat_start("".join(pieces))
                if repeated_at is not None:
                    break  # the rest would only go round again
    finally:
        stream.close()  # releases the model's lock even when we stop early
    if guard is not None:
        rest = guard.finish()  # the last word, held back until the end
        if rest and on_token:
            on_token(rest)
    written, raw_text = "".join(pieces), "".join(raw)
    if cut_repeats and repeated_at is None:
        repeated_at = _repeat_start(written)  # e.g. a loop cut off by max_tokens
    if repeated_at is not None:
        # ``written`` is ``raw_text`` less what was stripped at its start.
        raw_text = raw_text[:len(raw_text) - len(written) + repeated_at]
        written = written[:repeated_at]
    text = written.strip()
    out = Generated(
        cut_echo(text) if cut else text, raw_text, list(guard.flags) if guard is not None else [],
        should_stop is not None and should_stop(), first_token, repeated_at is not None, len(raw),
    )
    if first_token is not None and len(raw) > 1:
        out.tokens_per_s = (len(raw) - 1) / max(time.perf_counter() - first_at, 1e-6)
    _measure(model, prompt, out, current)
    return out


def _measure(model: LocalModel, prompt: str, out: Generated, current: object) -> None:
    """Put a model call's usage on its span and in the GenAI metrics."""
    reason = "cancelled" if out.stopped else (getattr(model, "finish_reason", None) or "stop")
    input_tokens = model.count_tokens(prompt) if hasattr(model, "count_tokens") else None
    set_attributes(current, {  # type: ignore[arg-type]
        names.INPUT_TOKENS: input_tokens, names.OUTPUT_TOKENS: out.tokens,
        names.FINISH_REASONS: [reason],
        names.TTFT_MS: None if out.first_token_ms is None else round(out.first_token_ms, 1),
        names.TOKENS_PER_S: None if out.tokens_per_s is None else round(out.tokens_per_s, 2),
    })
    m = instruments()
    common = {names.OPERATION: "chat", names.REQUEST_MODEL: model.name}
    if input_tokens is not None:
        m.token_usage.record(input_tokens, {**common, names.TOKEN_TYPE: "input"})
    m.token_usage.record(out.tokens, {**common, names.TOKEN_TYPE: "output"})
    if out.first_token_ms is not None:
        m.time_to_first_token.record(out.first_token_ms / 1000, common)
    if out.tokens_per_s:
        m.time_per_output_token.record(1 / out.tokens_per_s, common)


def _repeat_start(text: str) -> int | None:
    """Where in ``text`` the generation starts repeating itself, or ``None``."""
    kept = cut_repetition(text)
    return None if kept is None else len(kept)


def quote_instead(
    answer: Answer,
    sources: Sequence[Source],
    screened: Sequence[injection.Screened],
    flags: list[str],
    encode: Encode | None,
    on_token: Callable[[str], None] | None,
    *,
    any_sentence: bool = False,
    renumber: bool = False,
) -> Answer:
    """Replace an answer that followed an injection with the best-matching
    ordinary sentence of ``sources``, cited — or decline when none fits.

    Quoting cannot be steered by the document's instructions (they are
    left out of the candidates), and it is still an answer from the
    user's documents rather than a refusal.

    Args:
        sources, screened: the passages to quote from and their screenings.
        any_sentence: when no sentence matches the question (a summary's
            "summarise notes.md" names a file, not a topic), quote the one
            closest to it rather than decline.
        renumber: ``sources`` are not the answer's own: the quoted passage
            becomes the answer's only source, number 1.
    """
    candidates = [(s.n, sent) for s, scr in zip(sources, screened)
                  for sent in injection.candidate_sentences(scr)]
    sims: list[float] = [0.0] * len(candidates)
    if candidates and encode is not None:
        vecs = encode([answer.question] + [c[1] for c in candidates])
        sims = [float(v) for v in vecs[1:] @ vecs[0]]
    quote = injection.best_quote(answer.question, candidates, sims)
    if quote is None and any_sentence and candidates:
        best = max(range(len(candidates)), key=lambda i: (sims[i], -i))
        quote = injection.Quote(candidates[best][0], candidates[best][1], sims[best])
    by_n = {s.n: s for s in sources}
    answer_sources = list(answer.sources)
    if quote is None:
        text, citations, declined = DECLINE_TEXT, [], True
    else:
        n = quote.n
        if renumber:
            answer_sources = [Source(1, by_n[quote.n].hit)]
            n = 1
        cited = answer_sources[0] if renumber else by_n[quote.n]
        body = quote.text.rstrip()
        end = body[-1] if body[-1:] in ".!?" else "."
        body = body[:-1] if body[-1:] in ".!?" else body
        text, citations, declined = f"{body} [{n}]{end}", [Citation(n, cited, False)], False
    text += f"\n\n(Quoted from the source because the model's answer {flags[0]}.)"
    if on_token:
        on_token(f"\n\n{text}")  # after what was shown of the model's answer
    return Answer(answer.question, text, declined, answer_sources, citations, answer.model,
                  answer.timings_ms, answer.retrieved, answer.stopped, flags, replaced=answer.answer,
                  search_query=answer.search_query, usage=answer.usage)
