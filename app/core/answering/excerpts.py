"""A prompt budget: the sentences of each passage that matter to the question.

On a laptop CPU the model reads the prompt at one to three hundred tokens a
second, so five whole 200-token passages cost it seconds before its first
word. With a budget, each passage is quoted in the prompt by its sentences
that best answer the question (ranked as supporting quotes are: meaning
blended with shared content words and exact identifiers), in their own
order, with "…" where sentences were left out. Passages are shown, cited and
quoted in full everywhere else: only what the model reads is shortened.

The sentence vectors made here are the ones the citation and support steps
need later (``encode`` is the answer's memo), so ranking costs little extra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.core import textnorm
from app.core.answering import support
from app.core.answering.outcome import Source


@dataclass(frozen=True)
class Excerpt:
    """What the model is given of one passage: the text, and the runs of the
    passage it is made of (offsets in the passage's text, for the audit log)."""

    text: str
    runs: tuple[tuple[int, int], ...]


#: What stands between two sentences of a passage that were not next to each other.
GAP = " … "


def excerpts(
    question: str,
    sources: Sequence[Source],
    budget: int,
    count_tokens: Callable[[str], int],
    encode: support.Encode,
) -> dict[str, Excerpt]:
    """What to quote of each source whose passage is cut down, by chunk id.

    ``budget`` is the number of passage tokens (the model's own) the prompt
    may quote in all; each source gets an equal share, and what a short
    passage leaves unused goes to the ones after it. A passage that fits its
    share is quoted whole (and is not in the result). Otherwise its best
    sentences are kept while they fit; the best one always is, so every
    source has something to be cited for. ``budget`` ≤ 0: no budget.
    """
    if budget <= 0 or not sources:
        return {}
    sizes = [count_tokens(s.hit.chunk.text.strip()) for s in sources]
    if sum(sizes) <= budget:
        return {}
    question_vec = encode([question])[0]
    question_words = textnorm.content_words(question)
    ids = support.identifiers(question)
    out: dict[str, Excerpt] = {}
    left = budget
    for i, (source, size) in enumerate(zip(sources, sizes)):
        share = left // (len(sources) - i)
        text = source.hit.chunk.text.strip()
        if size <= share:
            left -= size
            continue
        spans = support.passage_sentences(text)
        if len(spans) <= 1:
            left -= size  # nothing to choose between: quoted whole (fit() trims if it must)
            continue
        texts = [sp.text for sp in spans]
        sims = encode(texts) @ question_vec
        scores = [support.quote_score(float(sim), question_words, ids, t) for t, sim in zip(texts, sims)]
        order = sorted(range(len(spans)), key=lambda j: -scores[j])
        kept: list[int] = []
        used = 0
        for j in order:
            cost = count_tokens(texts[j]) + 2  # the joining "…" costs a token or two
            if kept and used + cost > share:
                continue
            kept.append(j)
            used += cost
        kept.sort()
        # Neighbouring sentences are quoted as one run, with the text between them as it was.
        runs: list[list[int]] = []
        for j in kept:
            if runs and runs[-1][-1] == j - 1:
                runs[-1].append(j)
            else:
                runs.append([j])
        # Offsets in the stripped text, moved to the passage's own.
        lead = len(source.hit.chunk.text) - len(source.hit.chunk.text.lstrip())
        cuts = tuple((spans[run[0]].start + lead, spans[run[-1]].end + lead) for run in runs)
        pieces = [text[spans[run[0]].start:spans[run[-1]].end] for run in runs]
        quoted = GAP.join(pieces)
        if kept[0] > 0:
            quoted = "… " + quoted
        if kept[-1] < len(spans) - 1:
            quoted += " …"
        out[source.hit.chunk.id] = Excerpt(quoted, cuts)
        left = max(0, left - used)
    return out
