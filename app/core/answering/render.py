"""Safe HTML for the chat view, from a model's Markdown answer.

The model's output is untrusted: a document can carry instructions that make
the model write HTML or links. So every piece of text is HTML-escaped before
any formatting is applied, and the only markup in the result is the small
set of tags this module writes itself. No ``<a>`` is ever produced except
in-app citation anchors (``cite:n``); links, images and autolinks become
plain text, so nothing in an answer can open a page or load remote content.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable

from app.core import textnorm

HIGHLIGHT_STYLE = "background:#fff0a0;"
_CODE_STYLE = "font-family:monospace;"

# Same shape as app.core.answering.citations.MARKER, so the anchors shown are the
# citations counted: "[2]", "[1, 3]", "[1; 3]".
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")

# Block patterns, matched on the raw (unescaped) line.
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*(\d{1,9})[.)]\s+(.*)$")

# Inline patterns, matched on escaped text (so "<" is already "&lt;").
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*([^)\s]*)(?:\s+[^)]*)?\)")
_AUTOLINK = re.compile(r"&lt;((?:[a-zA-Z][a-zA-Z0-9+.-]*:|www\.)[^\s]*?)&gt;")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_ITALIC = re.compile(r"\*(?=\S)(.+?)(?<=\S)\*|(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
_TOKEN = re.compile("\x00(\\d+)\x00")

_HEADING_TAGS = {1: "h3", 2: "h4", 3: "h5", 4: "h6", 5: "h6", 6: "h6"}
_MAX_QUOTE_DEPTH = 4


def query_terms(question: str) -> list[str]:
    """The words of a question worth highlighting: content words, no stopwords,
    at least two characters, each once.

    A long run of Chinese, Japanese, … is a whole question rather than a word;
    keyword search matches its bigrams (see ``textnorm.fts_query``), so those
    are highlighted too.
    """
    terms: list[str] = []
    for term in textnorm.query_terms(question):
        terms.append(term)
        grams = textnorm.bigrams(term) if textnorm.has_no_space_script(term) else []
        if len(grams) >= textnorm.PHRASE_ONLY_LETTERS:
            terms.extend(grams)
    return [t for t in dict.fromkeys(terms) if len(t) >= 2]


def highlight_html(text: str, terms: Iterable[str]) -> str:
    """``text`` HTML-escaped, with matches of ``terms`` marked in bold on a
    highlight colour; newlines become ``<br>``.

    Matching ignores case and is whole-word-ish: a term matches a whole word
    or the word with a common English ending ("index" → "indexes",
    "indexed"). Terms in scripts written without spaces match anywhere.
    Terms shorter than two characters are ignored.
    """
    words, runs = [], []
    for term in dict.fromkeys(t.strip() for t in terms):
        if len(term) < 2:
            continue
        (runs if _no_space_script(term) else words).append(term)
    alternatives = []
    if words:
        words.sort(key=len, reverse=True)  # longest first, so "data set" beats "data"
        alt = "|".join(re.escape(w) for w in words)
        alternatives.append(rf"(?<!\w)(?:{alt})(?:s|es|ed|ing|'s)?(?!\w)")
    if runs:
        runs.sort(key=len, reverse=True)
        alternatives.append("|".join(re.escape(r) for r in runs))
    if not alternatives:
        return _escape_lines(text)
    pattern = re.compile("|".join(alternatives), re.IGNORECASE)
    # Match on the raw text, escape each piece: matching escaped text would
    # find "amp" inside "&amp;".
    out, pos = [], 0
    for match in pattern.finditer(text):
        if not match.group(0):
            continue
        out.append(_escape_lines(text[pos : match.start()]))
        out.append(f'<b style="{HIGHLIGHT_STYLE}">{_escape_lines(match.group(0))}</b>')
        pos = match.end()
    out.append(_escape_lines(text[pos:]))
    return "".join(out)


def answer_html(markdown_text: str, n_sources: int, *, cite_scheme: str = "cite") -> str:
    """The model's Markdown answer as inert HTML for the chat view.

    Supported: paragraphs and line breaks, ``#`` headings (shown small),
    bold, italic, inline code, fenced code blocks, bullet and numbered lists
    (one level), block quotes and rules. Citation markers ``[n]`` with
    ``1 <= n <= n_sources`` become ``<a href="cite:n">[n]</a>``; everything
    else that could act (HTML, links, images) comes out as plain text.
    """
    if not _SCHEME.fullmatch(cite_scheme):
        raise ValueError(f"not a URL scheme: {cite_scheme!r}")
    # NUL is the placeholder delimiter below; a model has no business writing it.
    text = markdown_text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    inline = _InlineRenderer(n_sources, cite_scheme)
    return "".join(_blocks(text.split("\n"), inline, 0))


# --- blocks -------------------------------------------------------------------


def _is_block_start(line: str) -> bool:
    return bool(
        _FENCE.match(line) or _HEADING.match(line) or _RULE.match(line) or _QUOTE.match(line)
        or _BULLET.match(line) or _NUMBERED.match(line)
    )


def _blocks(lines: list[str], inline: _InlineRenderer, depth: int) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end of an unclosed block)
            code = html.escape("\n".join(body), quote=True)
            out.append(f'<pre style="{_CODE_STYLE}">{code}</pre>')
            continue
        if _RULE.match(line):
            out.append("<hr>")
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            tag = _HEADING_TAGS[len(heading.group(1))]
            out.append(f"<{tag}>{inline(heading.group(2) or '')}</{tag}>")
            i += 1
            continue
        if _QUOTE.match(line):
            inner: list[str] = []
            while i < len(lines) and (m := _QUOTE.match(lines[i])):
                inner.append(m.group(1))
                i += 1
            if depth >= _MAX_QUOTE_DEPTH:
                # Deeper nesting adds nothing readable; flatten it to a paragraph.
                out.append(f"<blockquote><p>{_lines_html(inner, inline)}</p></blockquote>")
            else:
                out.append(f"<blockquote>{''.join(_blocks(inner, inline, depth + 1))}</blockquote>")
            continue
        if _BULLET.match(line) or _NUMBERED.match(line):
            html_list, i = _list(lines, i, inline)
            out.append(html_list)
            continue
        para: list[str] = []
        while i < len(lines) and lines[i].strip() and (not para or not _is_block_start(lines[i])):
            para.append(lines[i].strip())
            i += 1
        out.append(f"<p>{_lines_html(para, inline)}</p>")
    return out


def _list(lines: list[str], i: int, inline: _InlineRenderer) -> tuple[str, int]:
    """One list starting at ``lines[i]``; nested items are flattened into it."""
    first = _NUMBERED.match(lines[i])
    numbered = first is not None and not _BULLET.match(lines[i])
    item_pattern = _NUMBERED if numbered else _BULLET
    start = int(first.group(1)) if first is not None and numbered else 1
    items: list[list[str]] = []
    while i < len(lines):
        line = lines[i]
        m = item_pattern.match(line)
        other = (_BULLET if numbered else _NUMBERED).match(line)
        if m:
            items.append([m.group(m.lastindex or 1)])
        elif other and line[:1].isspace() and items:
            # An indented item of the other kind: a nested list, flattened.
            items.append([other.group(other.lastindex or 1)])
        elif not line.strip():
            # A blank line ends the list unless the next line is another item.
            nxt = i + 1
            if nxt < len(lines) and item_pattern.match(lines[nxt]):
                i += 1
                continue
            break
        elif items and not _is_block_start(line):
            items[-1].append(line.strip())  # a continuation line of the item
        else:
            break
        i += 1
    tag = "ol" if numbered else "ul"
    attrs = f' start="{start}"' if numbered and start != 1 else ""
    body = "".join(f"<li>{_lines_html(item, inline)}</li>" for item in items)
    return f"<{tag}{attrs}>{body}</{tag}>", i


def _lines_html(lines: list[str], inline: _InlineRenderer) -> str:
    # Each line's breaks are kept: small models format with single newlines.
    return inline("\n".join(lines)).replace("\n", "<br>")


# --- inline -------------------------------------------------------------------


class _InlineRenderer:
    """Escapes a run of text, then applies inline formatting to the escaped text.

    Code spans and citation anchors are swapped for NUL-delimited tokens
    while the other rules run, so nothing inside them is reformatted.
    """

    def __init__(self, n_sources: int, scheme: str) -> None:
        self.n_sources = n_sources
        self.scheme = scheme

    def __call__(self, raw: str) -> str:
        saved: list[str] = []

        def keep(fragment: str) -> str:
            saved.append(fragment)
            return f"\x00{len(saved) - 1}\x00"

        text = html.escape(raw, quote=True)
        text = _CODE_SPAN.sub(lambda m: keep(f"<code>{m.group(2).strip()}</code>"), text)
        text = _IMAGE.sub(lambda m: m.group(1), text)
        text = _LINK.sub(_link_text, text)
        text = _AUTOLINK.sub(lambda m: m.group(1), text)
        text = _MARKER.sub(lambda m: keep(self._citations(m)), text)
        text = _BOLD.sub(_wrap("b"), text)
        text = _ITALIC.sub(_wrap("i"), text)
        return _TOKEN.sub(lambda m: saved[int(m.group(1))], text)

    def _citations(self, match: re.Match[str]) -> str:
        """``[1, 2]`` → one anchor per source number that exists; others stay text."""
        parts = []
        for number in re.findall(r"\d+", match.group(1)):
            n = int(number)
            if 1 <= n <= self.n_sources:
                parts.append(f'<a href="{self.scheme}:{n}">[{n}]</a>')
            else:
                parts.append(f"[{number}]")
        return "".join(parts)


def _link_text(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if not url or url == label:
        return label
    return f"{label} ({url})"


def _wrap(tag: str) -> Callable[[re.Match[str]], str]:
    def sub(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return f"<{tag}>{inner}</{tag}>"

    return sub


def _escape_lines(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")


def _no_space_script(term: str) -> bool:
    # The keyword index spaces out characters of such scripts; so does this test.
    normal = unicodedata.normalize("NFKC", term)
    return textnorm.for_index(normal) != normal
