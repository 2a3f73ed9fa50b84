"""Text normalisation shared by keyword indexing and matching.

Scripts written without spaces between words (Chinese, Japanese, Korean,
Thai, …) would otherwise be one giant "word" to the keyword index (a
word tokenizer keeps a whole run of Han or kana letters as one token), so a word inside a sentence could never be found. As Lucene's CJK
analyzer does, every run of such characters is indexed as its overlapping
character bigrams ("数据库" → "数据 据库"), and a query's run becomes a phrase
of its own bigrams, so the word must occur contiguously. Bigrams rather than
single characters: each bigram is far rarer than its characters, which gives
BM25 meaningful weights and keeps phrase matching off the huge position lists
of common characters (的, の, 是 …).

The last character of each run is also indexed on its own (a run of one
character is just that character), so every character starts some token and
a one-character query can match as a prefix (``"库"*``). Latin text passes
through untouched, so English ranking is exactly what it was.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

# Letters of scripts written without spaces (or, for Hangul, with particles
# glued to words). Punctuation inside these blocks (・, ฯ's neighbours ๏ ๚ ๛,
# Khmer and Myanmar full stops …) is left out so it splits runs, as the index's tokenizer does.
_NO_SPACE_RANGES = (
    "\u3005-\u3007"  # 々 〆 〇
    "\u3041-\u309a\u309d-\u309f"  # Hiragana (without the spacing sound marks ゛゜)
    "\u30a1-\u30fa\u30fc-\u30ff"  # Katakana (without ・ and ゠)
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003134f"  # CJK Extensions B–G
    "\u1100-\u11ff\u3131-\u318e"  # Hangul Jamo, compatibility Jamo
    "\uac00-\ud7af"  # Hangul syllables
    "\u0e01-\u0e3a\u0e40-\u0e4e\u0e50-\u0e59"  # Thai
    "\u0e81-\u0edf"  # Lao
    "\u1780-\u17d3\u17d7\u17dc\u17dd\u17e0-\u17e9"  # Khmer
    "\u1000-\u1049\u1050-\u109f"  # Myanmar
)
_NO_SPACE_RUN = re.compile(f"[{_NO_SPACE_RANGES}]+")
# A query's terms: a run of no-space script, or a word of anything else.
_TERM = re.compile(f"[{_NO_SPACE_RANGES}]+|[^\\W{_NO_SPACE_RANGES}]+")

STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have how i if in
    into is it its me my no not of on or our should so than that the their them then there
    these they this to was we were what when where which who whom why will with would you your
    about any all also been being both each few more most other same some such only own very
    just tell please explain describe""".split()
)

#: A query run of more letters than this (most Chinese and Japanese words have
#: two to four) is taken for a phrase of several words; see ``keyword_clauses``.
PHRASE_ONLY_LETTERS = 4

#: Bumped when the keyword index's segmentation changes; the keyword index
#: records it (see ``stores.keywords.FORMAT``) and is rebuilt when it differs.
SEGMENTATION = "bigram-1"


def _letters(run: str) -> list[str]:
    """The run's characters without combining marks.

    Marks (Thai vowel and tone signs, Myanmar medials …) vary in how people
    type them; dropping them on both the index and the query side folds them
    away, as the index's ASCII folding does for Latin accents.
    """
    return [c for c in run if not unicodedata.category(c).startswith("M")]


def bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a no-space run ("数据库" → ["数据", "据库"]).

    A run of one character is that character; marks are dropped (see ``_letters``).
    """
    chars = _letters(run)
    if len(chars) <= 1:
        return ["".join(chars)] if chars else []
    return [a + b for a, b in zip(chars, chars[1:])]


def _index_run(match: re.Match[str]) -> str:
    chars = _letters(match.group(0))
    grams = bigrams(match.group(0))
    if len(chars) > 1:
        grams.append(chars[-1])  # every character starts a token: see the module docstring
    return " " + " ".join(grams) + " "


def for_index(text: str) -> str:
    """Text as the keyword index stores it: NFKC, no-space runs as bigrams.

    Only the keyword index's body is segmented; the chunk text shown to users stays as written.
    """
    text = unicodedata.normalize("NFKC", text)
    return _NO_SPACE_RUN.sub(_index_run, text)


def has_no_space_script(text: str) -> bool:
    """Whether ``text`` holds letters of a script written without spaces."""
    return _NO_SPACE_RUN.search(unicodedata.normalize("NFKC", text)) is not None


def query_terms(query: str) -> list[str]:
    """Search terms of a query: words (minus stopwords) and runs of no-space script.

    Runs are returned whole (as written, for highlighting); ``keyword_clauses`` and
    ``content_words`` cut them into bigrams.
    """
    query = unicodedata.normalize("NFKC", query).lower()
    # A word may mix scripts ("python中文"): runs and words are separate terms.
    terms = [m.group(0) for m in _TERM.finditer(query)]
    content = [t for t in terms if t not in STOPWORDS and t != "_"]
    return content or terms


@dataclass(frozen=True)
class Clause:
    """One alternative of a keyword query (the alternatives are OR-ed).

    ``words`` must occur together, in order (a phrase: an identifier such as
    ``read_csv`` the index splits into ``read csv``, or the bigrams of a
    no-space word); ``prefix`` matches any token starting with the single
    word (one character of a no-space script).
    """

    words: tuple[str, ...]
    prefix: bool = False


def keyword_clauses(query: str) -> list[Clause]:
    """The keyword query for ``query``: its terms as OR-ed clauses.

    A no-space run of up to ``PHRASE_ONLY_LETTERS`` letters (a word) becomes
    the phrase of its bigrams, so it must occur contiguously; a longer run
    (a whole question) is that phrase OR any of its bigrams. A single
    character becomes a prefix clause, which matches it at the start of any
    bigram (and, through the run-final unigram, anywhere). Other words are
    one clause each; the index's tokenizer splits them as it split the text.
    """
    clauses: list[Clause] = []
    for term in dict.fromkeys(query_terms(query)):
        if not _NO_SPACE_RUN.fullmatch(term):
            clauses.append(Clause((term,)))
            continue
        grams = bigrams(term)
        if len(grams) == 1 and len(grams[0]) == 1:
            clauses.append(Clause((grams[0],), prefix=True))
        elif grams:
            clauses.append(Clause(tuple(grams)))
            if len(grams) >= PHRASE_ONLY_LETTERS:
                # A long run is a sentence, not a word ("数据库的索引是什么"):
                # as a phrase alone it would find nothing unless written
                # verbatim, so its bigrams count too, OR-ed like English
                # words; the phrase still ranks verbatim passages first.
                clauses.extend(Clause((g,)) for g in dict.fromkeys(grams))
    return clauses


def text_hash(text: str) -> str:
    """Stable hash of a passage's text (the embedding cache key)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_words(text: str) -> set[str]:
    """Lower-cased content words (no stopwords); no-space scripts as bigrams.

    Bigrams, not single characters: two Chinese passages share most common
    characters (的, 是, 在 …) whatever they say, but rarely their bigrams.
    """
    words = set()
    for term in query_terms(text):
        if _NO_SPACE_RUN.fullmatch(term):
            words.update(g for g in bigrams(term) if g)
        elif len(term) > 1:
            words.add(term)
    return words
