"""What the documents say for an answer: the supporting quote, the sentences
they do not back, and the point where a generation starts repeating itself.

A small model's sentence is often vague or simply wrong while the passage it
was given holds the right words. Three checks keep the user from being misled:

- :func:`supporting_quotes` picks, from the cited passages, the exact
  sentence(s) that best support the answer and the question, with their
  character span on the page, so the window and the command line can show
  (and highlight) what the documents themselves say;
- :func:`check_sentences` checks each sentence of the answer against the
  passages it cites and says which ones no passage restates;
- :func:`cut_repetition` finds where a generation starts looping (the same
  sentence, bullet or line again, or a phrase going round), so the answer
  keeps only what came before.

Like :mod:`app.core.answering.citations`, this takes the embedder's
``encode`` as a plain function (normalised vectors, one row per text) and
imports nothing of Qt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.core import textnorm
from app.core.answering import injection
from app.core.answering.citations import MARKER, SourceNumbers, is_source_number
from app.core.answering.outcome import Answer, Citation, Quote, SentenceCheck, Source

Encode = Callable[[list[str]], np.ndarray]

# --- thresholds (MiniLM cosine; content-word shares) --------------------------
# An answer sentence is supported when it restates a sentence of a passage it
# cites: cosine similarity to that passage's best-matching sentence at least
# SUPPORT_SIMILARITY, or at least SUPPORT_OVERLAP of its content words found
# in the passage (a restatement in the passage's own words, which the
# embedding of a long sentence can miss). With MiniLM, paraphrases of one fact
# score about 0.65-0.95 ("recorded 41 storm warnings" / "logged forty-one
# storm warnings" 0.82) and a different claim about the same subject about
# 0.3-0.55 ("use --verbose" against the passage on -v: 0.43). Both start at
# citation inference's values (citations.INFER_*), so "supported" and
# "restates the source" agree; the lead tunes them on the development sets.
SUPPORT_SIMILARITY = 0.55
SUPPORT_OVERLAP = 0.6

# Ranking passage sentences as a quote: the weight of meaning (cosine to the
# answer or the question, whichever is closer) against the share of the
# question's and answer's content words the sentence holds; an identifier the
# question or answer names (--option, ENV_VAR, file.py, snake_case) found
# verbatim in the sentence adds IDENTIFIER_BONUS each (up to two).
QUOTE_SIMILARITY_WEIGHT = 0.6
QUOTE_OVERLAP_WEIGHT = 0.4
IDENTIFIER_BONUS = 0.15
# A second cited source is quoted only when its best sentence scores at least
# this (the first source's best sentence is always quoted). A sentence that
# restates a short answer scores about 0.9; a title that merely names the
# subject ("Annual report of the Lighthouse Cooperative.") about 0.4.
QUOTE_MIN_SCORE = 0.45
# A sentence shorter than this many words may be quoted together with the
# next one ("Default: 8080." says little alone).
SHORT_SENTENCE_WORDS = 8
# A quote is at most about this long; a longer run without a sentence end
# (a table row, a wrapped list) is cut into pieces at word boundaries.
MAX_QUOTE_CHARS = 320

# Repetition: a sentence, bullet or line of at least REPEAT_MIN_WORDS words
# written a second time (ignoring case, punctuation, numbering and [n]), or a
# phrase of LOOP_NGRAM words written LOOP_TIMES times, means the generation
# is looping; it is cut where the repeat begins.
REPEAT_MIN_WORDS = 4
LOOP_NGRAM = 8
LOOP_TIMES = 3

# A passage's sentences end after . ! ? (past a closing quote or bracket)
# before whitespace, after 。！？, and at a blank line. A single line break
# usually only wraps a sentence (PDF text keeps the page's lines), so it ends
# one only before a list item or heading, after a colon, or after a short
# line (a title) when the next line starts a new sentence.
_PASSAGE_BREAK = re.compile(
    r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)\]])\s+|(?<=[。！？])\s*|(?<=[。！？][」』”’）)])\s*"
    r"|\n[ \t]*\n\s*|(?P<wrap>[ \t]*\n[ \t]*)"
)
_LIST_OR_HEADING = re.compile(r"(?:[-*•·+]|\d{1,3}[.)]|#{1,6}|[A-Z]\))\s|\|")
_TITLE_CHARS = 50  # a line shorter than this, before a capital, is a title
# Sentences within a line of an answer, for spotting a repeat.
_ANSWER_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\n+")
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,3}[.)]|[a-z][.)])\s+", re.IGNORECASE)
_IDENTIFIER = re.compile(
    r"(?<![\w-])--?[A-Za-z][\w-]*"          # command-line options
    r"|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b"        # ENVIRONMENT_VARIABLES
    r"|\b[A-Z]{2,}[A-Z0-9]{2,}\b"            # PYTHONSTARTUP
    r"|\b\w+(?:[._/]\w+)+\b"                 # file.py, snake_case, dotted.names, paths
)
_WORD = re.compile(r"\w+")


def memo(encode: Encode) -> Encode:
    """``encode`` remembering what it has embedded, so the sentence check and
    the quote share one embedding of each passage sentence."""
    seen: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in seen))
        if new:
            for text, vec in zip(new, encode(new)):
                seen[text] = vec
        if not texts:
            return encode([])
        return np.stack([seen[t] for t in texts])

    return cached


@dataclass(frozen=True)
class _Span:
    """A piece of a passage: its text and where it lies in the passage."""

    text: str
    start: int
    end: int


def _is_break(text: str, match: re.Match[str]) -> bool:
    """Whether a single line break in a passage ends a sentence (see _PASSAGE_BREAK)."""
    line_start = text.rfind("\n", 0, match.start()) + 1
    line = text[line_start:match.start()]
    after = text[match.end():match.end() + 8]
    if _LIST_OR_HEADING.match(after) or _LIST_OR_HEADING.match(line) or line.endswith(":"):
        return True
    return len(line) < _TITLE_CHARS and after[:1].isupper()


def _pieces(text: str, breaks: re.Pattern[str]) -> list[_Span]:
    """``text`` cut at ``breaks``, each piece stripped, with its offsets."""
    out: list[_Span] = []
    at = 0
    matches = [m for m in breaks.finditer(text)
               if "wrap" not in m.re.groupindex or m.group("wrap") is None or _is_break(text, m)]
    for match in [*matches, None]:
        end = match.start() if match is not None else len(text)
        raw = text[at:end]
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        if body:
            out.append(_Span(body, at + lead, at + lead + len(body)))
        if match is not None:
            at = match.end()
    return out


def passage_sentences(text: str) -> list[_Span]:
    """A passage's sentences (lines, for a list or a table), as exact spans of
    ``text``; a run longer than :data:`MAX_QUOTE_CHARS` is cut at word
    boundaries so no quote is a whole page."""
    out: list[_Span] = []
    for piece in _pieces(text, _PASSAGE_BREAK):
        if len(piece.text) <= MAX_QUOTE_CHARS:
            out.append(piece)
            continue
        lo = piece.start
        while lo < piece.end:
            hi = min(piece.end, lo + MAX_QUOTE_CHARS)
            if hi < piece.end:
                space = text.rfind(" ", lo + MAX_QUOTE_CHARS // 2, hi)
                hi = space if space > lo else hi
            chunk = text[lo:hi].strip()
            if chunk:
                first = text.index(chunk, lo)
                out.append(_Span(chunk, first, first + len(chunk)))
            lo = hi
            while lo < piece.end and text[lo].isspace():
                lo += 1
    return out


def _answer_sentences(answer_text: str, n_sources: SourceNumbers) -> list[tuple[str, tuple[int, ...]]]:
    """The answer's sentences worth checking (three content words or more),
    without markers or bullets, each with the source numbers it cites.

    A marker written just after a sentence's full stop ("… 8080. [2]") belongs
    to that sentence, not the next.
    """
    out: list[tuple[str, list[int]]] = []
    # Split like a passage: small models wrap their lines mid-sentence too.
    for piece in _pieces(answer_text, _PASSAGE_BREAK):
        text = " ".join(piece.text.split())
        lead = re.match(r"^(\s*\[[\d,;\s]+\]\s*)+", text)
        if lead and out:
            out[-1][1].extend(_numbers(lead.group(0), n_sources))
            text = text[lead.end():]
        nums = _numbers(text, n_sources)
        plain = _BULLET.sub("", MARKER.sub("", text))
        plain = re.sub(r"[ \t]+(?=[.,;:!?])", "", plain).strip()
        out.append((plain, nums))
    return [(s, tuple(dict.fromkeys(n))) for s, n in out if len(textnorm.content_words(s)) >= 3]


def _numbers(text: str, n_sources: SourceNumbers) -> list[int]:
    return [n for m in MARKER.finditer(text) for p in re.split(r"[,;]", m.group(1))
            if is_source_number(n := int(p), n_sources)]


def _overlap(words: set[str], other: set[str]) -> float:
    return len(words & other) / max(1, len(words))


def check_sentences(answer_text: str, sources: Sequence[Source], encode: Encode) -> list[SentenceCheck]:
    """Check every sentence of the answer against the passages it relies on.

    A sentence (three content words or more) is supported when it restates
    one of the passages it cites with its ``[n]`` markers — or, when it has
    none, any of ``sources``: cosine similarity to that passage's
    best-matching sentence of at least :data:`SUPPORT_SIMILARITY`, or at
    least :data:`SUPPORT_OVERLAP` of its content words in the passage.
    ``SentenceCheck.sources`` names the passages that support it.
    """
    sents = _answer_sentences(answer_text, {s.n for s in sources})
    if not sents or not sources:
        return [SentenceCheck(s, False, ()) for s, _ in sents]
    by_n = {s.n: s for s in sources}
    spans = {s.n: passage_sentences(s.hit.chunk.text) for s in sources}
    words = {s.n: textnorm.content_words(s.hit.chunk.text) for s in sources}
    flat = [(n, sp.text) for n in spans for sp in spans[n]]
    vectors = encode([s for s, _ in sents] + [t for _, t in flat])
    answer_vecs, passage_vecs = vectors[:len(sents)], vectors[len(sents):]
    rows = {n: [i for i, (m, _) in enumerate(flat) if m == n] for n in spans}
    checks: list[SentenceCheck] = []
    for (sentence, cited), vec in zip(sents, answer_vecs):
        sentence_words = textnorm.content_words(sentence)
        backing: list[int] = []
        for n in cited or tuple(by_n):
            sims = passage_vecs[rows[n]] @ vec if rows[n] else np.zeros(0)
            best = float(sims.max()) if len(sims) else 0.0
            if best >= SUPPORT_SIMILARITY or _overlap(sentence_words, words[n]) >= SUPPORT_OVERLAP:
                backing.append(n)
        checks.append(SentenceCheck(sentence, bool(backing), tuple(backing)))
    return checks


def identifiers(text: str) -> set[str]:
    """The exact identifiers ``text`` names: options, environment variables,
    file, module and function names."""
    return {m.group(0).rstrip(".") for m in _IDENTIFIER.finditer(text)}


def quote_score(similarity: float, asked_words: set[str], asked_ids: set[str], text: str) -> float:
    """How well a passage sentence ``text`` answers what was asked: its cosine
    ``similarity`` blended with the share of ``asked_words`` it holds, plus a
    bonus for each identifier of ``asked_ids`` it names verbatim (up to two)."""
    score = QUOTE_SIMILARITY_WEIGHT * similarity
    score += QUOTE_OVERLAP_WEIGHT * _overlap(asked_words, textnorm.content_words(text))
    return score + IDENTIFIER_BONUS * min(2, sum(1 for ident in asked_ids if ident in text))


def supporting_quotes(
    question: str,
    answer_text: str,
    citations: Sequence[Citation],
    encode: Encode,
    limit: int = 2,
    *,
    sources: Sequence[Source] = (),
) -> list[Quote]:
    """The passage sentence(s) that best support the answer, one per cited
    source (best first), at most ``limit``.

    Each cited passage's sentences (and pairs of a short sentence with the
    next) are ranked by meaning (cosine to the answer or to the question,
    whichever is closer) blended with the share of the question's and
    answer's content words they hold; an identifier the question or answer
    names that the sentence holds verbatim counts extra. Sentences that read
    like instructions to the model are never quoted. An answer without
    citations is quoted from its top source (the first of ``sources``).

    The quote's text is an exact substring of the passage, and its span is
    on the page's text (the passage's own ``start`` plus the offset in it).
    """
    cited = [c.source for c in citations] or list(sources[:1])
    cited = list({s.n: s for s in cited}.values())  # each source once, in order
    if not cited or limit < 1:
        return []
    plain_answer = MARKER.sub("", answer_text).strip()
    asked = f"{question} {plain_answer}"
    asked_words = textnorm.content_words(asked)
    asked_ids = identifiers(asked)
    candidates: list[tuple[Source, _Span]] = []
    for source in cited:
        text = source.hit.chunk.text
        spans = passage_sentences(text)
        for i, span in enumerate(spans):
            if injection.looks_like_instructions(span.text):
                continue
            candidates.append((source, span))
            if i + 1 < len(spans) and len(_WORD.findall(span.text)) < SHORT_SENTENCE_WORDS:
                nxt = spans[i + 1]
                joined = text[span.start:nxt.end]
                if len(joined) <= MAX_QUOTE_CHARS and not injection.looks_like_instructions(joined):
                    candidates.append((source, _Span(joined, span.start, nxt.end)))
    if not candidates:
        return []
    targets = [t for t in (plain_answer, question) if t]
    vectors = encode(targets + [span.text for _, span in candidates])
    target_vecs, cand_vecs = vectors[:len(targets)], vectors[len(targets):]
    sims = (cand_vecs @ target_vecs.T).max(axis=1)
    best: dict[int, tuple[float, _Span]] = {}
    for (source, span), sim in zip(candidates, sims):
        score = quote_score(float(sim), asked_words, asked_ids, span.text)
        if source.n not in best or score > best[source.n][0]:
            best[source.n] = (score, span)
    quotes: list[Quote] = []
    for rank, source in enumerate(cited):
        if source.n not in best or len(quotes) >= limit:
            continue
        score, span = best[source.n]
        if rank > 0 and score < QUOTE_MIN_SCORE:
            continue
        start = source.hit.chunk.start + span.start
        quotes.append(Quote(source.n, span.text, start, start + len(span.text)))
    return quotes


def _unit_key(text: str) -> tuple[str, ...]:
    """What makes two sentences or lines "the same": their words, lower-cased,
    without markers, bullets or numbering."""
    return tuple(w.lower() for w in _WORD.findall(_BULLET.sub("", MARKER.sub("", text))))


def cut_repetition(text: str) -> str | None:
    """``text`` up to where it starts repeating itself, or ``None`` when it does not.

    A repeat is a sentence, bullet or line (of :data:`REPEAT_MIN_WORDS` words
    or more) written again, or a phrase of :data:`LOOP_NGRAM` words written
    :data:`LOOP_TIMES` times (a loop with no sentence ends). The text is cut
    at the start of the first repeat; the first occurrence is kept.
    """
    cut: int | None = None
    seen: set[tuple[str, ...]] = set()
    in_code = False
    for line in _pieces(text, re.compile(r"\n+")):
        if line.text.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue  # code repeats lines legitimately (closing braces, calls)
        for unit in _pieces(line.text, _ANSWER_BREAK):
            key = _unit_key(unit.text)
            if len(key) < REPEAT_MIN_WORDS:
                continue
            if key in seen:
                cut = line.start + unit.start
                break
            seen.add(key)
        if cut is not None:
            break
    words = list(_WORD.finditer(text))
    first: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(words) - LOOP_NGRAM + 1):
        gram = tuple(w.group(0).lower() for w in words[i:i + LOOP_NGRAM])
        where = first.setdefault(gram, [])
        where.append(i)
        if len(where) >= LOOP_TIMES:
            at = words[where[1]].start()
            cut = at if cut is None else min(cut, at)
            break
    if cut is None:
        return None
    # Drop a bullet or number left dangling where the repeat began.
    return re.sub(r"(?:^|\n)[ \t]*(?:[-*•·]|\d{1,3}[.)])?[ \t]*$", "", text[:cut].rstrip()).rstrip()


# A note the answering step itself appends in parentheses ("(Quoted from the
# source because …)"): not a claim about the documents, so not checked.
_OWN_NOTE = re.compile(r"\n\n\([^()]*\)\s*$")


def back_up(answer: Answer, encode: Encode, *, limit: int = 2) -> Answer:
    """Fill in what backs ``answer`` up: its supporting ``quotes``, each
    sentence's check, and ``wording_unsupported`` when more than half the
    checked sentences are unsupported and there is a quote to lead with.

    A declined answer is left as it is. Returns ``answer`` (changed in place).
    """
    if answer.declined or not answer.answer.strip():
        return answer
    text = _OWN_NOTE.sub("", answer.answer)
    answer.sentences = check_sentences(text, answer.sources, encode)
    answer.quotes = supporting_quotes(answer.question, text, answer.citations, encode, limit,
                                      sources=answer.sources)
    unsupported = sum(1 for s in answer.sentences if not s.supported)
    answer.wording_unsupported = bool(answer.quotes) and unsupported * 2 > len(answer.sentences)
    return answer
