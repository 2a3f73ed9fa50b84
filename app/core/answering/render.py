"""Safe HTML for the chat view, from a model's Markdown answer.

The model's output is untrusted: a document can carry instructions that make
the model write HTML or links. The answer is parsed as CommonMark
(markdown-it-py) with raw HTML off, and the HTML is written here, token by
token, from a small set of tags: every piece of text is HTML-escaped, no
``<a>`` is ever produced except in-app citation anchors (``cite:n``), and
links, images and autolinks become plain text, so nothing in an answer can
open a page or load remote content.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from app.core import textnorm

HIGHLIGHT_STYLE = "background:#fff0a0;"
_CODE_STYLE = "font-family:monospace;"

# Same shape as app.core.answering.citations.MARKER, so the anchors shown are the
# citations counted: "[2]", "[1, 3]", "[1; 3]".
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")

_HEADING_TAGS = {"h1": "h3", "h2": "h4", "h3": "h5", "h4": "h6", "h5": "h6", "h6": "h6"}
_MAX_QUOTE_DEPTH = 4


def _citation_rule(state: StateInline, silent: bool) -> bool:
    """``[1]``, ``[1, 3]``: one ``citation`` token holding the numbers as written."""
    if state.src[state.pos] != "[":
        return False
    match = _MARKER.match(state.src, state.pos)
    if match is None:
        return False
    if not silent:
        state.push("citation", "", 0).content = match.group(1)
    state.pos = match.end()
    return True


def _answer_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True})
    # Not parsed at all: raw HTML (shown as text), reference definitions (a
    # "[1]: ..." line stays visible), entities (shown as written), indented
    # code (small models indent prose) and setext headings ("---" under a
    # line is a rule, as a model means it).
    md.disable(["html_block", "html_inline", "reference", "entity", "code", "lheading"])
    md.inline.ruler.after("link", "citation", _citation_rule)
    # Links are parsed only to be shown as text with their address, whatever
    # the scheme; no address is ever put in a tag.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    md.normalizeLinkText = lambda url: url  # type: ignore[method-assign]
    return md


_PARSER = _answer_parser()


def query_terms(question: str) -> list[str]:
    """The words of a question worth highlighting: content words, no stopwords,
    at least two characters, each once.

    A long run of Chinese, Japanese, … is a whole question rather than a word;
    keyword search matches its bigrams (see ``textnorm.keyword_clauses``), so those
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


def answer_html(markdown_text: str, n_sources: int | Iterable[int], *, cite_scheme: str = "cite") -> str:
    """The model's Markdown answer as inert HTML for the chat view.

    Supported: paragraphs and line breaks, ``#`` headings (shown small),
    bold, italic, inline code, fenced code blocks, bullet and numbered lists
    (nested items flattened into one level), block quotes and rules.
    Citation markers ``[n]`` naming a source (``1 <= n <= n_sources``, or ``n`` among them) become
    ``<a href="cite:n">[n]</a>``; everything else that could act (HTML,
    links, images) comes out as plain text.
    """
    if not _SCHEME.fullmatch(cite_scheme):
        raise ValueError(f"not a URL scheme: {cite_scheme!r}")
    # A model has no business writing NUL; CommonMark would show it as U+FFFD.
    text = markdown_text.replace("\x00", "")
    return _HtmlWriter(n_sources, cite_scheme).blocks(_PARSER.parse(text))


class _HtmlWriter:
    """Writes the parsed answer with this module's own tags only."""

    def __init__(self, n_sources: int | Iterable[int], scheme: str) -> None:
        # The numbers the answer's sources carry (n: 1..n).
        self.numbers = set(range(1, n_sources + 1)) if isinstance(n_sources, int) else set(n_sources)
        self.scheme = scheme

    # --- blocks ---------------------------------------------------------------

    def blocks(self, tokens: Sequence[Token]) -> str:
        out: list[str] = []
        lists = 0  # list nesting: nested lists are flattened into the outer one
        item_open = False  # a <li> is open
        item_paragraphs = 0  # paragraphs written in the open <li>
        quotes = 0
        for token in tokens:
            kind = token.type
            if kind in ("bullet_list_open", "ordered_list_open"):
                lists += 1
                if lists == 1:
                    tag = "ol" if kind == "ordered_list_open" else "ul"
                    if out and out[-1] == f"</{tag}>":
                        out.pop()  # "- a" then "* b": one list, as a reader sees it
                    else:
                        start = token.attrGet("start")
                        attrs = f' start="{int(start)}"' if tag == "ol" and start not in (None, 1, "1") else ""
                        out.append(f"<{tag}{attrs}>")
            elif kind in ("bullet_list_close", "ordered_list_close"):
                lists -= 1
                if lists == 0:
                    out.append("</ol>" if kind == "ordered_list_close" else "</ul>")
            elif kind == "list_item_open":
                if item_open:
                    out.append("</li>")
                out.append("<li>")
                item_open, item_paragraphs = True, 0
            elif kind == "list_item_close":
                if item_open:
                    out.append("</li>")
                item_open = False
            elif kind == "paragraph_open":
                if item_open:
                    # An item's lines read as one: no paragraph inside a <li>.
                    if item_paragraphs:
                        out.append("<br>")
                    item_paragraphs += 1
                else:
                    out.append("<p>")
            elif kind == "paragraph_close":
                if not item_open:
                    out.append("</p>")
            elif kind == "heading_open":
                out.append(f"<{_HEADING_TAGS[token.tag]}>")
            elif kind == "heading_close":
                out.append(f"</{_HEADING_TAGS[token.tag]}>")
            elif kind == "blockquote_open":
                quotes += 1
                if quotes <= _MAX_QUOTE_DEPTH:  # deeper nesting adds nothing readable
                    out.append("<blockquote>")
            elif kind == "blockquote_close":
                if quotes <= _MAX_QUOTE_DEPTH:
                    out.append("</blockquote>")
                quotes -= 1
            elif kind == "hr":
                out.append("<hr>")
            elif kind in ("fence", "code_block"):
                code = token.content[:-1] if token.content.endswith("\n") else token.content
                out.append(f'<pre style="{_CODE_STYLE}">{_escape(code)}</pre>')
            elif kind == "inline":
                out.append(self.inline(token.children or []))
        return "".join(out)

    # --- inline ---------------------------------------------------------------

    def inline(self, tokens: Sequence[Token]) -> str:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if kind == "text":
                out.append(_escape(token.content))
            elif kind in ("softbreak", "hardbreak"):
                out.append("<br>")
            elif kind == "code_inline":
                out.append(f"<code>{_escape(token.content)}</code>")
            elif kind == "strong_open":
                out.append("<b>")
            elif kind == "strong_close":
                out.append("</b>")
            elif kind == "em_open":
                out.append("<i>")
            elif kind == "em_close":
                out.append("</i>")
            elif kind == "citation":
                out.append(self._citations(token.content))
            elif kind == "image":
                out.append(self.inline(token.children or []))  # the alt text, never the address
            elif kind == "link_open":
                end = _closing(tokens, i)
                label = tokens[i + 1 : end]
                out.append(self.inline(label))
                url = str(token.attrGet("href") or "")
                shown = "".join(t.content for t in label if t.type in ("text", "code_inline"))
                if token.markup != "autolink" and url and url != shown:
                    out.append(f" ({_escape(url)})")
                i = end
            i += 1
        return "".join(out)

    def _citations(self, numbers: str) -> str:
        """``1, 2`` → one anchor per source number that exists; others stay text."""
        parts = []
        for number in re.findall(r"\d+", numbers):
            n = int(number)
            if n in self.numbers:
                parts.append(f'<a href="{self.scheme}:{n}">[{n}]</a>')
            else:
                parts.append(f"[{number}]")
        return "".join(parts)


def _closing(tokens: Sequence[Token], i: int) -> int:
    """Index of the ``link_close`` that ends the link opened at ``tokens[i]``."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].type == "link_open":
            depth += 1
        elif tokens[j].type == "link_close":
            depth -= 1
            if depth == 0:
                return j
    return len(tokens)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _escape_lines(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")


def _no_space_script(term: str) -> bool:
    # The keyword index spaces out characters of such scripts; so does this test.
    normal = unicodedata.normalize("NFKC", term)
    return textnorm.for_index(normal) != normal
