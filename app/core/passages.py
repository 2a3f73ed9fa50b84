"""Where a cited passage lies in a document's text, and which words to mark in it.

Shared by the window (the viewer scrolls to the passage, the sources panel
marks the question's words) and the command line; nothing here needs Qt.
Query words come from :mod:`app.core.textnorm`, as the keyword index sees
them, so a Chinese or Japanese question marks the runs and bigrams it was
found by.
"""

from __future__ import annotations

import bisect
import html
import re

from app.core import textnorm

# How much of the passage anchors the search in a text file: long enough to be
# unique, short enough to survive a small edit later in the passage.
_ANCHOR_CHARS = 80
_PUNCTUATION = "\"'()[]{}«»“”‘’.,;:!?…*_-"
# Words shorter than this are not worth marking ("is", "of" that slipped past the stopwords).
_MIN_WORD_LETTERS = 3
_MIN_RUN_LETTERS = 2


# --------------------------------------------------------------------------- passage location


def loose_text(text: str) -> tuple[str, list[int]]:
    """``text`` lower-cased with every run of non-alphanumerics turned into one space.

    Returns the loose text and, for each of its characters, the index of the
    character in ``text`` it came from. Matching in loose text survives
    re-wrapped lines, Markdown markup and punctuation the extractor dropped.
    """
    out: list[str] = []
    origin: list[int] = []
    pending_space = False
    for i, ch in enumerate(text):
        if ch.isalnum():
            if pending_space and out:
                out.append(" ")
                origin.append(i - 1)
            pending_space = False
            low = ch.lower()
            # lower() can lengthen a character ("İ"); every piece maps back to it.
            out.extend(low)
            origin.extend([i] * len(low))
        else:
            pending_space = True
    return "".join(out), origin


def _head(loose: str, limit: int) -> str:
    """The first ``limit`` characters of ``loose``, cut back to a word boundary."""
    if len(loose) <= limit:
        return loose
    cut = loose.rfind(" ", 0, limit + 1)
    return loose[: cut if cut > limit // 2 else limit]


def _tail(loose: str, limit: int) -> str:
    """The last ``limit`` characters of ``loose``, cut forward to a word boundary."""
    if len(loose) <= limit:
        return loose
    start = len(loose) - limit
    cut = loose.find(" ", start)
    return loose[cut + 1 if 0 <= cut < start + limit // 2 else start :]


def _find_near(haystack: str, needle: str, near: int | None) -> int:
    """Index of ``needle`` in ``haystack``, the occurrence nearest ``near`` if given."""
    first = haystack.find(needle)
    if first < 0 or near is None:
        return first
    best, pos = first, first
    while pos >= 0:
        if abs(pos - near) < abs(best - near):
            best = pos
        pos = haystack.find(needle, pos + 1)
    return best


def locate_passage(text: str, passage: str, span: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """Where ``passage`` lies in ``text``, as a ``[start, end)`` range of ``text``.

    The citation's ``span`` is trusted when the text there still reads as the
    passage. Otherwise the passage is searched for, ignoring case, spacing and
    punctuation: whole, else by its opening (extended to its ending when that
    follows), else by its ending. ``None`` when it is not there any more.
    """
    wanted, _ = loose_text(passage)
    wanted = wanted.strip()
    if not wanted:
        return None
    if span is not None:
        start, end = span
        if 0 <= start < end <= len(text):
            here, _ = loose_text(text[start:end])
            probe = min(len(wanted), len(here), 40)
            if probe and here.strip()[:probe] == wanted[:probe]:
                return start, end

    loose, origin = loose_text(text)
    if not loose:
        return None
    near = None
    if span is not None and origin:
        near = bisect.bisect_left(origin, span[0])

    stripped = passage.strip()
    lead = stripped[: len(stripped) - len(stripped.lstrip(_PUNCTUATION))]
    trail = stripped[len(stripped.rstrip(_PUNCTUATION)) :]

    def to_text(lo: int, hi: int) -> tuple[int, int]:
        # hi is exclusive in loose text; map its last character back, inclusive.
        start, end = origin[lo], origin[hi - 1] + 1
        # Loose text drops punctuation; take back the passage's own quotes and stop.
        if lead and text[max(0, start - len(lead)) : start] == lead:
            start -= len(lead)
        if trail and text[end : end + len(trail)] == trail:
            end += len(trail)
        return start, end

    pos = _find_near(loose, wanted, near)
    if pos >= 0:
        return to_text(pos, pos + len(wanted))
    for size in (_ANCHOR_CHARS, _ANCHOR_CHARS // 2):
        head = _head(wanted, size)
        pos = _find_near(loose, head, near)
        if pos < 0:
            continue
        end = pos + len(head)
        tail = _tail(wanted, size)
        tail_pos = loose.find(tail, pos)
        # The ending must follow the opening closely, or it belongs to another passage.
        if 0 <= tail_pos and tail_pos + len(tail) <= pos + 2 * len(wanted):
            end = max(end, tail_pos + len(tail))
        return to_text(pos, end)
    for size in (_ANCHOR_CHARS, _ANCHOR_CHARS // 2):
        tail = _tail(wanted, size)
        pos = _find_near(loose, tail, near)
        if pos >= 0:
            return to_text(pos, pos + len(tail))
    return None


def pdf_search_candidates(passage: str) -> list[str]:
    """Search strings for a passage in a PDF, most distinctive first.

    QtPdf matches case-insensitively and treats a line break as a space, so
    whitespace-normalised runs of words work; shorter runs and runs from the
    middle are fall-backs for hyphenation and ligatures that the indexer's
    extractor read differently from PDFium.
    """
    words = passage.split()
    if not words:
        return []
    candidates: list[str] = []
    for size in (10, 8, 6, 4):
        for start in (0, len(words) // 2, max(0, len(words) - size)):
            run = " ".join(words[start : start + size])
            if len(run) >= 12 and run not in candidates:
                candidates.append(run)
    if not candidates:
        candidates.append(" ".join(words))  # a very short passage: all of it
    return candidates


# --------------------------------------------------------------------------- query words


def query_terms(question: str) -> list[str]:
    """The question's words worth marking in a passage, each once, in order.

    Words of 3+ letters that are not stopwords (``textnorm.STOPWORDS``), and
    runs of scripts written without spaces (Chinese, Japanese, …) as the
    keyword index matches them: a short run whole, a long one (a whole
    question) also as its bigrams.
    """
    terms: list[str] = []
    for term in textnorm.query_terms(question):
        if term in textnorm.STOPWORDS:
            continue
        if textnorm.has_no_space_script(term):
            grams = textnorm.bigrams(term)
            terms.append(term)
            if len(grams) >= textnorm.PHRASE_ONLY_LETTERS:
                terms.extend(grams)
            continue
        if len(term) >= _MIN_WORD_LETTERS and any(c.isalpha() for c in term):
            terms.append(term)
    return [t for t in dict.fromkeys(terms) if len(t) >= _MIN_RUN_LETTERS]


def highlight_terms(text: str, terms: list[str]) -> str:
    """``text`` as HTML with every word that starts with a term wrapped in ``<b>``.

    A term of a space-separated script matches the start of a word ("keeper"
    marks "keepers"); a run of Chinese, Japanese, … matches anywhere, as
    those scripts have no word boundaries. Matches are found in the raw text
    and the pieces escaped afterwards, so a term can never match inside an
    entity such as ``&amp;``.
    """
    words = [t for t in terms if t and not textnorm.has_no_space_script(t)]
    runs = [t for t in terms if t and textnorm.has_no_space_script(t)]
    alternatives: list[str] = []
    # Longest first, so "light" does not cut "lighthouse" short.
    if words:
        alt = "|".join(re.escape(t) for t in sorted(words, key=len, reverse=True))
        alternatives.append(rf"\b(?:{alt})\w*")
    if runs:
        alternatives.append("|".join(re.escape(t) for t in sorted(runs, key=len, reverse=True)))
    if not alternatives:
        return html.escape(text)
    pattern = re.compile("|".join(alternatives), re.IGNORECASE)
    out: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        if not match.group(0):
            continue
        out.append(html.escape(text[last : match.start()]))
        out.append(f"<b>{html.escape(match.group(0))}</b>")
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)
