"""From an answer's text to the sources it relies on.

Markers like ``[2]`` or ``[1, 3]`` name sources directly. Small models often
write none; then each sentence of the answer is matched to the sources it
restates (by embedding similarity and word overlap), and those citations are
marked ``inferred``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core import textnorm

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|\n+")

# A sentence restates a source when it is this similar in meaning...
INFER_SIMILARITY = 0.55
# ...or when this share of its content words appear in the source.
INFER_OVERLAP = 0.6


@dataclass(frozen=True)
class Marked:
    """Source numbers an answer's markers name, split by whether they exist."""

    valid: list[int]
    dangling: list[int]


def markers(answer: str, n_sources: int) -> Marked:
    """Source numbers named by ``[n]`` markers, in first-mention order."""
    valid: list[int] = []
    dangling: list[int] = []
    for match in MARKER.finditer(answer):
        for part in re.split(r"[,;]", match.group(1)):
            n = int(part)
            target = valid if 1 <= n <= n_sources else dangling
            if n not in target:
                target.append(n)
    return Marked(valid, dangling)


def strip_dangling(answer: str, n_sources: int) -> str:
    """Remove markers that point at no source (a model's invention)."""

    def keep(match: re.Match[str]) -> str:
        nums = [int(p) for p in re.split(r"[,;]", match.group(1))]
        good = [str(n) for n in nums if 1 <= n <= n_sources]
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
    """1-based numbers of the sources the sentences restate, best-supported first."""
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
