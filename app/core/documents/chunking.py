"""Pages → chunks that fit the embedder, with their position kept.

Chunks are cut by the embedder's own tokenizer so each fits its maximum
sequence length; a chunk never spans two pages, and it keeps the character
span on its page so a citation can highlight exactly that passage.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from app.core import textnorm
from app.core.documents.model import Page

TokenSpans = Callable[[str], Sequence[tuple[int, int]]]
"""Maps a text to the ``(start, end)`` character span of each of its tokens."""

_SENTENCE_END = ".!?;:。！？；："
# Full-width marks end a sentence with no space after them (Chinese and
# Japanese put none); ASCII ones only before a space ("3.14", "a:b" are not ends).
_UNSPACED_END = "。！？；："
# Full-width punctuation that closes a clause: a poor first character for a chunk.
_CLOSING = "。！？；：，、）」』】〕》〉”’"

# A tokenizer without a script's letters in its vocabulary (the bundled
# English model on Thai, Lao, Khmer …) returns a whole unspaced run as one
# [UNK] token, so "200 tokens" could be pages of text. Such tokens are counted
# as one per this many characters instead: the chunk then holds fewer real
# tokens than the limit (never more), and stays a passage one can cite.
_LONG_TOKEN_CHARS = 8


@dataclass(frozen=True)
class Chunk:
    """A passage of one page."""

    ordinal: int
    page: int | None
    label: str | None
    start: int
    end: int
    text: str
    heading: str | None
    #: The attachment the passage is in (a :class:`~app.core.documents.model.Part`'s locator).
    part: str | None = None


def _is_boundary(text: str, prev_end: int, next_start: int) -> int:
    """How good a cut between two tokens is: 2 paragraph/line, 1 sentence, 0 none."""
    gap = text[prev_end:next_start]
    if "\n" in gap:
        return 2
    if prev_end > 0 and text[prev_end - 1] in _SENTENCE_END and (gap or text[prev_end - 1] in _UNSPACED_END):
        return 1
    return 0


def _mid_word(text: str, spans: Sequence[tuple[int, int]], i: int) -> bool:
    """True when token ``i`` continues the previous token's word (a word piece)."""
    if i == 0:
        return False
    prev_end, start = spans[i - 1][1], spans[i][0]
    return start == prev_end and text[start - 1].isalnum() and text[start].isalnum()


def _windows(
    text: str, spans: Sequence[tuple[int, int]], max_tokens: int, overlap: int
) -> Iterator[tuple[int, int]]:
    """Token windows ``[i, j)`` covering all tokens, ending at natural breaks."""
    n = len(spans)
    i = 0
    while i < n:
        j = min(i + max_tokens, n)
        if j < n:
            # Prefer ending at a paragraph or sentence break in the last 40 %
            # of the window: passages that end mid-sentence cite badly.
            floor = i + max(1, int(max_tokens * 0.6))
            best, best_quality = j, 0
            for b in range(j, floor, -1):
                quality = _is_boundary(text, spans[b - 1][1], spans[b][0])
                if quality > best_quality:
                    best, best_quality = b, quality
                    if quality == 2:
                        break
            if best_quality == 0:
                # No sentence break: at least do not cut a word in half.
                b = j
                while b > floor and _mid_word(text, spans, b):
                    b -= 1
                best = b
            j = best
        yield i, j
        if j >= n:
            return
        nxt = max(j - overlap, i + 1)
        while nxt < j and _mid_word(text, spans, nxt):
            nxt += 1
        # Nor with the full stop or comma that ended the previous clause: in
        # Chinese or Japanese it is a token of its own, with no space after.
        while nxt < j - 1 and text[spans[nxt][0]] in _CLOSING:
            nxt += 1
        i = nxt


def _split_long_tokens(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans with over-long tokens of a no-space script cut into pieces (see ``_LONG_TOKEN_CHARS``).

    Pieces never start on a combining mark, so a Thai vowel or tone sign stays
    with its letter. Other tokens (a long English word piece) are kept as they are.
    """
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if end - start <= _LONG_TOKEN_CHARS or not textnorm.has_no_space_script(text[start:end]):
            out.append((start, end))
            continue
        lo = start
        while lo < end:
            hi = min(lo + _LONG_TOKEN_CHARS, end)
            while hi < end and unicodedata.category(text[hi]).startswith("M"):
                hi += 1
            out.append((lo, hi))
            lo = hi
    return out


def _heading_at(page: Page, offset: int) -> str | None:
    heading = None
    for pos, title in page.headings:
        if pos > offset:
            break
        heading = title
    return heading


def chunk_pages(
    pages: Iterable[Page], token_spans: TokenSpans, *, max_tokens: int, overlap: int
) -> list[Chunk]:
    """Cut pages into chunks of at most ``max_tokens`` tokens.

    Args:
        pages: the document's pages, in order.
        token_spans: the embedder tokenizer's character spans (no special tokens).
        max_tokens: the most tokens in one chunk (leave room for special tokens).
        overlap: how many tokens consecutive chunks of a page share.
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[Chunk] = []
    for page in pages:
        text = page.text
        if not text.strip():
            continue
        spans = _split_long_tokens(text, token_spans(text))
        if not spans:
            continue
        for i, j in _windows(text, spans, max_tokens, overlap):
            start, end = spans[i][0], spans[j - 1][1]
            piece = text[start:end]
            if not piece.strip():
                continue
            chunks.append(
                Chunk(
                    ordinal=len(chunks),
                    page=page.number,
                    label=page.label,
                    start=start,
                    end=end,
                    text=piece,
                    heading=_heading_at(page, start),
                    part=page.part,
                )
            )
    return chunks
