"""From an answer's text to the sources it relies on.

Markers like ``[2]`` or ``[1, 3]`` name sources directly. Small models often
write none; then each sentence of the answer is matched to the sources it
restates (by embedding similarity and word overlap), and those citations are
marked ``inferred``.

:func:`cite_answer` is the one citation step both ways of answering take:
markers read, dangling ones removed, unsupported ones dropped, and citations
inferred for an answer that has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from app.core import textnorm
from app.core.answering.outcome import DECLINE_PATTERN, DECLINE_TEXT, Citation, Source

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
# A sentence ends at . ! ? before a space, or at Chinese/Japanese 。！？ even
# with no space after (those scripts put none), past any closing quote.
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])(?![」』”’）)])\s*|(?<=[。！？][」』”’）)])\s*|\n+")

# A sentence restates a source when it is this similar in meaning...
INFER_SIMILARITY = 0.55
# ...or when this share of its content words appear in the source.
INFER_OVERLAP = 0.6

# A sentence's [n] is unsupported when the sentence is this far from source n
# in meaning AND shares fewer than this share of its content words with it:
# the model cited a passage that says nothing of the kind. (Loose on purpose:
# a paraphrase or a partial restatement still counts as supported.)
UNSUPPORTED_SIMILARITY = 0.3
UNSUPPORTED_OVERLAP = 0.2
_SENTENCE_KEEP = re.compile(r"((?<=[.!?。！？])\s+|\n+)")


#: The source numbers an answer may cite: ``n`` means 1..n; a collection
#: names them (a follow-up keeps the numbers its passages had earlier in the
#: conversation, so they need not start at 1 nor be contiguous).
SourceNumbers = int | Collection[int]


def is_source_number(n: int, numbers: SourceNumbers) -> bool:
    """Whether ``[n]`` names one of the sources ``numbers`` describes."""
    return 1 <= n <= numbers if isinstance(numbers, int) else n in numbers


@dataclass(frozen=True)
class Marked:
    """Source numbers an answer's markers name, split by whether they exist."""

    valid: list[int]
    dangling: list[int]


def markers(answer: str, n_sources: SourceNumbers) -> Marked:
    """Source numbers named by ``[n]`` markers, in first-mention order."""
    valid: list[int] = []
    dangling: list[int] = []
    for match in MARKER.finditer(answer):
        for part in re.split(r"[,;]", match.group(1)):
            n = int(part)
            target = valid if is_source_number(n, n_sources) else dangling
            if n not in target:
                target.append(n)
    return Marked(valid, dangling)


def strip_dangling(answer: str, n_sources: SourceNumbers) -> str:
    """Remove markers that point at no source (a model's invention)."""

    def keep(match: re.Match[str]) -> str:
        nums = [int(p) for p in re.split(r"[,;]", match.group(1))]
        good = [str(n) for n in nums if is_source_number(n, n_sources)]
        return f"[{', '.join(good)}]" if good else ""

    return MARKER.sub(keep, answer)


def sentences(text: str) -> list[str]:
    """The answer's sentences that say something (three content words or more)."""
    parts = [s.strip() for s in _SENTENCE.split(MARKER.sub("", text))]
    return [s for s in parts if len(textnorm.content_words(s)) >= 3]


def infer(
    answer_sentences: Sequence[str],
    sentence_vectors: np.ndarray | None,
    source_texts: Sequence[str],
    source_vectors: Sequence[np.ndarray | None],
) -> list[int]:
    """1-based positions in ``source_texts`` of the sources the sentences
    restate, best-supported first."""
    support: dict[int, float] = {}
    source_words = [textnorm.content_words(t) for t in source_texts]
    for si, sentence in enumerate(answer_sentences):
        words = textnorm.content_words(sentence)
        for n, (sw, vec) in enumerate(zip(source_words, source_vectors), 1):
            overlap = len(words & sw) / max(1, len(words))
            sim = 0.0
            if sentence_vectors is not None and vec is not None:
                sim = float(np.dot(sentence_vectors[si], vec))
            if sim >= INFER_SIMILARITY or overlap >= INFER_OVERLAP:
                support[n] = max(support.get(n, 0.0), max(sim, overlap))
    return sorted(support, key=lambda n: -support[n])


def drop_unsupported(
    answer: str,
    source_texts: Sequence[str],
    source_vectors: Sequence[np.ndarray | None],
    encode: Callable[[list[str]], np.ndarray],
    numbers: Sequence[int] | None = None,
) -> tuple[str, list[int]]:
    """Remove ``[n]`` markers from sentences that source ``n`` does not support.

    ``numbers``: each text's source number (default 1, 2, …).

    Only sentences with three content words or more are judged (a bare
    "UTF-8 [1]" says too little to check), and only against sources whose
    vector is known. Returns the answer without those markers and the
    numbers removed, in order.
    """
    pieces = _SENTENCE_KEEP.split(answer)
    judged: list[tuple[int, str, set[int]]] = []
    for i, piece in enumerate(pieces):
        nums = {int(p) for m in MARKER.finditer(piece) for p in re.split(r"[,;]", m.group(1))}
        plain = MARKER.sub("", piece).strip()
        if nums and len(textnorm.content_words(plain)) >= 3:
            judged.append((i, plain, nums))
    if not judged:
        return answer, []
    vectors = encode([plain for _, plain, _ in judged])
    position = {n: i for i, n in enumerate(numbers if numbers is not None else range(1, len(source_texts) + 1))}
    source_words = [textnorm.content_words(t) for t in source_texts]
    removed: list[int] = []
    for (i, plain, nums), vec in zip(judged, vectors):
        words = textnorm.content_words(plain)
        bad: set[int] = set()
        for n in sorted(nums):
            at = position.get(n)
            if at is None or source_vectors[at] is None:
                continue
            overlap = len(words & source_words[at]) / max(1, len(words))
            similarity = float(np.dot(vec, source_vectors[at]))
            if similarity < UNSUPPORTED_SIMILARITY and overlap < UNSUPPORTED_OVERLAP:
                bad.add(n)
        if bad:
            def keep(match: re.Match[str], bad: set[int] = bad) -> str:
                good = [p.strip() for p in re.split(r"[,;]", match.group(1)) if int(p) not in bad]
                return f"[{', '.join(good)}]" if good else ""

            # "uses UTF-8 [3]." → "uses UTF-8." (no space left before the stop)
            pieces[i] = re.sub(r"[ \t]+(?=[.,;:!?。！？]|$)", "", MARKER.sub(keep, pieces[i]))
            removed += [n for n in sorted(bad) if n not in removed]
    return "".join(pieces), removed


@dataclass
class Cited:
    """An answer's text with its citations resolved.

    Attributes:
        text: the answer without markers that name no source or an unsupporting one.
        declined: whether the answer says the documents do not hold it.
        sources: the sources (renumbered from ``pool`` when there were none).
        citations: what the answer relies on.
        notes: why markers were removed (the answer's flags).
    """

    text: str
    declined: bool
    sources: list[Source]
    citations: list[Citation]
    notes: list[str]


def cite_answer(
    text: str,
    sources: list[Source],
    encode: Callable[[list[str]], np.ndarray] | None,
    *,
    pool: Sequence[Source] = (),
    stopped: bool = False,
) -> Cited:
    """Resolve ``text``'s citations against ``sources``.

    ``[n]`` markers naming no source are removed, and those on a sentence
    that source ``n`` does not support (judged against each source's
    ``hit.vector``; ``encode`` embeds the sentences) are dropped. An answer
    without markers is matched to the sources it restates (``inferred``); with
    no ``sources`` at all it is matched against ``pool``, and the passages
    found become the sources, numbered afresh in ``pool``'s order. An answer
    that is empty, or that declines (unless it was ``stopped`` part-way), is
    declined.
    """
    numbers = [s.n for s in sources]
    marked = markers(text, set(numbers))
    text = strip_dangling(text, set(numbers))
    by_n = {s.n: s for s in sources}
    notes = [f"removed [{n}]: no source has that number" for n in marked.dangling]
    if not marked.valid and (not text or (DECLINE_PATTERN.search(text) and not stopped)):
        return Cited(text or DECLINE_TEXT, True, sources, [], [])
    if marked.valid and encode is not None:
        # Every [n] must point at a passage that says what the sentence says.
        text, unsupported = drop_unsupported(
            text, [s.hit.chunk.text for s in sources], [s.hit.vector for s in sources], encode, numbers)
        notes += [f"removed [{n}]: that source does not support the sentence it was on" for n in unsupported]
        marked = markers(text, set(numbers))
    if marked.valid:
        return Cited(text, False, sources, [Citation(n, by_n[n], False) for n in marked.valid], notes)
    among = sources or list(pool)
    sents = sentences(text)
    vecs = encode(sents) if sents and among and encode is not None else None
    inferred = infer(sents, vecs, [s.hit.chunk.text for s in among], [s.hit.vector for s in among]) if among else []
    if sources:  # infer() counts from 1 in list order; the sources keep their own numbers
        found_in = [sources[i - 1] for i in inferred]
        return Cited(text, False, sources, [Citation(s.n, s, True) for s in found_in], notes)
    # The answer names no numbers, so the inferred passages are numbered afresh, in order.
    found = [Source(i, among[n - 1].hit) for i, n in enumerate(sorted(inferred), 1)]
    return Cited(text, False, found, [Citation(s.n, s, True) for s in found], notes)
