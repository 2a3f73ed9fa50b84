"""Whether the library holds an answer at all: the decision to decline.

Two signals, measured on both development sets (``bench/tune.py``; the
README's tuning table shows what each set alone would choose):

1. **Closeness**: the best retrieved passage's cosine similarity to the
   question. Below ``min_relevance`` nothing retrieved is about the question.
2. **A term the library never uses**: a question about "debcargo" or
   "consteval" over documents that never mention either retrieves the
   nearest passages about neighbouring things, often quite similar ones,
   and a small model then answers from them. When a word of the question
   appears in no indexed passage (in any simple inflection: "diffs" counts as
   found when "diff" is there) and is not an ordinary word (the embedder's
   tokenizer knows it as a whole word: "quickly", "ticket"), the question is
   about something the documents do not cover, unless a passage is very close
   to it anyway (``FOREIGN_SIMILARITY``: then the word is probably a synonym
   the documents spell differently).

A decline names the missing word, so the user can judge, and the answer
still carries the nearest passages found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app import config
from app.core import textnorm
from app.core.answering.retrieval import Hit

#: A question with a term the library never uses is declined unless a passage
#: is at least this similar to it (chosen on both development sets:
#: bench/tune.py, README "Tuning").
FOREIGN_SIMILARITY = 0.6

# Words a term check looks at: Latin letters and digits (identifiers too),
# at least three characters; no-space scripts are matched as bigrams, which
# says little about whether a word is covered.
_CHECKED = re.compile(r"^[a-z0-9_][a-z0-9_.+#-]{2,}$")
_INFLECTIONS = (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"))


@dataclass(frozen=True)
class Relevance:
    """What the decision found.

    Attributes:
        relevant: the passages to give the model (empty: decline).
        best_similarity: the closest passage's similarity to the question.
        missing_terms: question words no indexed passage uses (only those
            that are not ordinary words).
        reason: why it declined, in a sentence for the user (None: it did not).
    """

    relevant: list[Hit]
    best_similarity: float
    missing_terms: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def declined(self) -> bool:
        return not self.relevant


def inflections(word: str) -> set[str]:
    """``word`` and its plain stems ("switches" → "switch", "switche"; "negating" → "negat", "negate")."""
    out = {word}
    for suffix, repl in _INFLECTIONS:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            out.add(word[: -len(suffix)] + repl)
    return out


def missing_terms(
    query: str, has_term: Callable[[str], bool], is_word: Callable[[str], bool]
) -> tuple[str, ...]:
    """The query's content words that no indexed passage uses in any simple
    inflection and that are not ordinary words (see the module docstring).

    Args:
        has_term: whether the keyword index holds a term (``Catalog.has_term``).
        is_word: whether the embedder's tokenizer knows a term as one whole word.
    """
    out = []
    for term in dict.fromkeys(textnorm.query_terms(query)):
        if not _CHECKED.match(term) or term.isdigit() or is_word(term):
            continue
        if not any(has_term(v) for v in inflections(term)):
            out.append(term)
    return tuple(out)


def judge(
    query: str,
    hits: Sequence[Hit],
    *,
    closest: float | None = None,
    has_term: Callable[[str], bool] | None,
    is_word: Callable[[str], bool] | None,
    min_relevance: float = config.MIN_RELEVANCE,
    scoped_file: bool = False,
) -> Relevance:
    """Decide whether ``hits`` can answer ``query``, and which to give the model.

    Args:
        closest: the nearest passage's similarity when the search saw one
            closer than any of ``hits`` (``SearchResult.closest``).
        has_term, is_word: the term check's look-ups (None: closeness only).
        scoped_file: the user asked about one file and it was retrieved ("Ask
            about this file"): a terse question is then about that file even
            when it shares few words with it, so only the source floor applies.
    """
    best = max([closest or 0.0, *((h.similarity or 0.0) for h in hits)])
    floor = min(config.SOURCE_FLOOR, min_relevance)
    gate = floor if scoped_file else min_relevance
    missing: tuple[str, ...] = ()
    if has_term is not None and is_word is not None:
        missing = missing_terms(query, has_term, is_word)
    if best < gate or (missing and best < FOREIGN_SIMILARITY):
        # Name the word the documents lack whenever there is one: it says more
        # than "nothing was close enough".
        reason = ("none of your documents mention " + ", ".join(f"“{t}”" for t in missing) if missing
                  else "nothing in your documents is close to the question")
        return Relevance([], best, missing, reason=reason)
    # The model also gets the passages down to a lower floor: a supporting
    # passage is often less similar than the best one.
    return Relevance([h for h in hits if (h.similarity or 0.0) >= floor], best, missing)
