"""Text normalisation shared by keyword indexing and matching.

Scripts written without spaces between words (Chinese, Japanese, Thai, …)
would otherwise be one giant "word" to a keyword index; each of their
characters is made a token of its own, and queries become phrase searches
over those characters, so any run of characters can be found.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# CJK ideographs, kana, Hangul syllables, Thai, Lao, Khmer, Myanmar.
_NO_SPACE_RANGES = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1780-\u17ff"  # Khmer
    "\u1000-\u109f"  # Myanmar
)
_NO_SPACE_CHAR = re.compile(f"([{_NO_SPACE_RANGES}])")
_NO_SPACE_RUN = re.compile(f"[{_NO_SPACE_RANGES}]+")
_WORD = re.compile(r"\w+")

STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have how i if in
    into is it its me my no not of on or our should so than that the their them then there
    these they this to was we were what when where which who whom why will with would you your
    about any all also been being both each few more most other same some such only own very
    just tell please explain describe""".split()
)


def for_index(text: str) -> str:
    """Text as the keyword index stores it: NFKC, no-space scripts split per character."""
    text = unicodedata.normalize("NFKC", text)
    return _NO_SPACE_CHAR.sub(r" \1 ", text)


def query_terms(query: str) -> list[str]:
    """Search terms of a query: words (minus stopwords) and runs of no-space script."""
    query = unicodedata.normalize("NFKC", query).lower()
    terms: list[str] = []
    for match in _WORD.finditer(query):
        word = match.group(0)
        # A word may mix scripts ("python中文"): split out the no-space runs.
        pos = 0
        for run in _NO_SPACE_RUN.finditer(word):
            if run.start() > pos:
                terms.append(word[pos : run.start()])
            terms.append(run.group(0))
            pos = run.end()
        if pos < len(word):
            terms.append(word[pos:])
    content = [t for t in terms if t not in STOPWORDS and t != "_"]
    return content or terms


def fts_query(query: str) -> str | None:
    """An FTS5 MATCH expression for ``query`` (terms OR-ed, each quoted), or None."""
    parts: list[str] = []
    for term in dict.fromkeys(query_terms(query)):
        if _NO_SPACE_RUN.fullmatch(term):
            parts.append('"' + " ".join(term) + '"')
        else:
            parts.append('"' + term.replace('"', "") + '"')
    return " OR ".join(parts) if parts else None


def text_hash(text: str) -> str:
    """Stable hash of a passage's text (the embedding cache key)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_words(text: str) -> set[str]:
    """Lower-cased content words (no stopwords); no-space scripts as characters."""
    words = set()
    for term in query_terms(text):
        if _NO_SPACE_RUN.fullmatch(term):
            words.update(term)
        elif len(term) > 1:
            words.add(term)
    return words
