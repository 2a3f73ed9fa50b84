"""What backs an answer up, as the chat shows it: the supporting quotes, the
sentences no passage says, and for a decline what was searched and the
nearest passages found.

Everything here reads the answer's record (``Answer.snapshot()``: the one a
question returns and the one the chat history keeps), so an answer restored
from history shows exactly what it showed when it was written. The HTML is
the chat's (Qt's rich-text subset); every piece of document or model text in
it is escaped, and the only links are the chat's own ``quote:`` and
``near:`` anchors, which open the viewer.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from app.core.documents.model import page_word
from app.core.passages import loose_text

DECLINE_HEADING = "Not found in your documents."
NEAREST_HEADING = "Nearest passages:"
NO_NEAREST_TEXT = "No passage came close."
WORDING_NOTICE = "The model's wording was not found in your documents; here is what they say:"
UNSUPPORTED_TIP = "Not found in the cited passages"

# Fixed colours, dark text on light backgrounds, so a quote reads the same on
# a light or a dark palette (the viewer uses the same pair).
QUOTE_BAR = "#e0a000"
QUOTE_BACKGROUND = "#fff4c4"
QUOTE_INK = "#1a1a1a"
QUOTE_PLACE = "#6b4e00"
UNSUPPORTED_INK = "#8a6d3b"
BAR_FILL = "#4a8fd9"
BAR_EMPTY = "#c8d3df"

_SNIPPET_CHARS = 220
_BAR_PIXELS = 64
# A sentence is found by its opening and ending when the whole does not match
# (the model's markers and markup differ from the rendered text's).
_ANCHOR_CHARS = 60
_HEADING_MARK = re.compile(r"(?:^|(?<=\s))#{1,6}(?=\s)")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
# Tags that end a line as the reader sees it: matching treats them as a space.
_BREAKING_TAGS = re.compile(r"</?(p|br|li|ul|ol|h\d|div|blockquote|pre|hr|table|tr|td)\b", re.IGNORECASE)


# --------------------------------------------------------------------------- places and snippets


def place_text(item: dict[str, Any], source: dict[str, Any] | None = None) -> str:
    """``file, p. P`` (``file, p. P (printed L)``, ``file, section "H"`` or ``file``)."""
    source = source or {}
    name = Path(str(item.get("path") or source.get("path") or "")).name or "(unknown file)"
    attachment = item.get("attachment") or source.get("attachment")
    message, name = (name, str(attachment)) if attachment else (None, name)
    page = item.get("page", source.get("page"))
    label = item.get("label") or source.get("label")
    heading = item.get("heading") or source.get("heading")
    if page is not None:
        name += f", {'slide' if page_word(name) == 'slide' else 'p.'} {page}"
        if label and str(label) != str(page):
            name += f" (printed {label})"
    elif heading:
        name += f', section "{heading}"'
    if message:
        name += f" (attached to {message})"
    return name


def snippet(text: str, limit: int = _SNIPPET_CHARS) -> str:
    """The passage on one line, without Markdown heading marks, cut at a word near ``limit`` characters."""
    flat = " ".join(_HEADING_MARK.sub(" ", str(text)).split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit] + " …"


def similarity_of(hit: dict[str, Any], retrieved: list[dict[str, Any]]) -> float | None:
    """How close a passage came to the question, 0–1: the query–passage cosine
    similarity the answer step judged relevance by, else the vector score."""
    for item in retrieved:
        if item.get("chunk_id") == hit.get("chunk_id") and item.get("similarity") is not None:
            return _unit(item["similarity"])
    for key in ("similarity", "vector_score"):
        if hit.get(key) is not None:
            return _unit(hit[key])
    return None


def _unit(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return max(0.0, min(1.0, number))


# --------------------------------------------------------------------------- quotes


def quote_sources(record: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each supporting quote with the source it was taken from (``None`` when that is missing)."""
    by_n = {s.get("n"): s for s in record.get("sources") or []}
    return [(q, by_n.get(q.get("n"))) for q in record.get("quotes") or [] if str(q.get("text") or "").strip()]


def quotes_html(turn_id: int | None, record: dict[str, Any]) -> str:
    """The supporting quotes as highlighted blocks, each headed ``[n] file, p. P``
    and linked (``quote:turn:i``) to the viewer; "" when there are none."""
    blocks = []
    for i, (quote, source) in enumerate(quote_sources(record)):
        href = f"quote:{turn_id}:{i}" if turn_id is not None else ""
        place = html.escape(f"[{quote.get('n', '?')}] {place_text(quote, source)}")
        text = html.escape(f"“{' '.join(str(quote['text']).split())}”")
        if href:
            place = f"<a href='{href}' style='color:{QUOTE_PLACE}; text-decoration:none'>{place}</a>"
            text = f"<a href='{href}' style='color:{QUOTE_INK}; text-decoration:none'>{text}</a>"
        blocks.append(
            "<table width='100%' cellspacing='0' cellpadding='0' style='margin-top:6px; margin-bottom:4px'>"
            f"<tr><td width='4' bgcolor='{QUOTE_BAR}'></td>"
            f"<td bgcolor='{QUOTE_BACKGROUND}' style='padding:6px 10px 6px 10px; color:{QUOTE_INK}'>"
            f"<span style='font-size:small; font-weight:600; color:{QUOTE_PLACE}'>{place}</span><br>"
            f"<span style='color:{QUOTE_INK}'>{text}</span>"
            "</td></tr></table>"
        )
    return "".join(blocks)


def wording_notice_html() -> str:
    """The notice that leads an answer whose wording the documents do not hold."""
    return f"<p class='notice'>⚠ {html.escape(WORDING_NOTICE)}</p>"


# --------------------------------------------------------------------------- declines


def searched_text(searched: dict[str, Any] | None, question: str = "") -> str:
    """``Searched for “query” (hybrid search, in Manuals)``: what a decline looked for."""
    searched = searched or {}
    query = " ".join(str(searched.get("query") or question).split())
    details = []
    if searched.get("mode"):
        details.append(f"{searched['mode']} search")
    scope = searched.get("scope")
    details.append(f"in {Path(str(scope)).name or scope}" if scope else "in all documents")
    return f"Searched for “{query}” ({', '.join(details)})."


def decline_html(turn_id: int | None, record: dict[str, Any], question: str = "") -> str:
    """A decline: it says what was searched and lists the nearest passages
    (file, page, a snippet, how close each came), each linked (``near:turn:i``)."""
    out = [f"<p class='declined-head'>{html.escape(DECLINE_HEADING)}</p>"]
    missing = (record.get("searched") or {}).get("missing_terms") or []
    if missing:
        # The word the documents lack says more than any score: a synonym or a
        # spelling the user can try, or a subject the library does not cover.
        out.append("<p>" + html.escape("None of your documents mention " + ", ".join(f"“{t}”" for t in missing))
                   + ".</p>")
    out.append(f"<p class='meta'>{html.escape(searched_text(record.get('searched'), question))}</p>")
    nearest = list(record.get("nearest") or [])
    if not nearest:
        out.append(f"<p class='meta'>{html.escape(NO_NEAREST_TEXT)}</p>")
        return "".join(out)
    out.append(f"<p class='near-head'>{html.escape(NEAREST_HEADING)}</p>")
    retrieved = list(record.get("retrieved") or [])
    rows = []
    for i, hit in enumerate(nearest):
        href = f"near:{turn_id}:{i}"
        place = html.escape(place_text(hit, _retrieved(hit, retrieved)))
        link = f"<a href='{href}'>{place}</a>" if turn_id is not None else place
        score = similarity_of(hit, retrieved)
        rows.append(
            "<tr>"
            f"<td style='padding:4px 8px 0px 0px' valign='middle'>{i + 1}.</td>"
            f"<td style='padding:4px 8px 0px 0px' valign='middle'>{link}</td>"
            f"<td style='padding:4px 0px 0px 0px' valign='middle' align='right'>{_bar(score)}</td>"
            "</tr>"
            "<tr><td></td>"
            f"<td colspan='2' class='snippet' style='padding:0px 0px 6px 0px'>"
            f"{html.escape(snippet(hit.get('text') or ''))}</td></tr>"
        )
    out.append(f"<table cellspacing='0' cellpadding='0' width='100%'>{''.join(rows)}</table>")
    return "".join(out)


def _retrieved(hit: dict[str, Any], retrieved: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in retrieved if r.get("chunk_id") == hit.get("chunk_id")), None)


def _bar(score: float | None) -> str:
    """How close a passage came, as a small bar and a percentage."""
    if score is None:
        return ""
    filled = max(1, round(score * _BAR_PIXELS))
    cells = f"<td width='{filled}' bgcolor='{BAR_FILL}'></td>"
    if filled < _BAR_PIXELS:
        cells += f"<td width='{_BAR_PIXELS - filled}' bgcolor='{BAR_EMPTY}'></td>"
    percent = f"{round(score * 100)} %"
    return (
        f"<table cellspacing='0' cellpadding='0' height='8' title='Similarity to the question: {percent}'>"
        f"<tr>{cells}<td width='40' align='right' class='meta'>&nbsp;{percent}</td></tr></table>"
    )


# --------------------------------------------------------------------------- unsupported sentences


def unsupported_sentences(record: dict[str, Any]) -> list[str]:
    """The answer's sentences no cited passage says, in order."""
    checked = record.get("sentences")
    if checked:
        return [str(s.get("text") or "") for s in checked if not s.get("supported", True)]
    return [str(s) for s in record.get("unsupported") or []]


def mark_sentences(answer_html: str, sentences: list[str]) -> str:
    """``answer_html`` with each of ``sentences`` wrapped in a muted, wavy-underlined
    ``<span class='unsupported'>`` whose tooltip says it was not found.

    The sentences are the model's own text (Markdown, ``[n]`` markers); they
    are found in the rendered text ignoring case, spacing and punctuation, in
    order, each after the one before (so a sentence the model repeated is
    marked once per repeat). A sentence that cannot be found stays unmarked.
    """
    visible, origin = _visible_text(answer_html)
    loose, loose_origin = loose_text(visible)
    if not loose:
        return answer_html
    ranges: list[tuple[int, int]] = []
    cursor = 0
    for sentence in sentences:
        found = _find_loose(loose, loose_text(sentence)[0].strip(), cursor)
        if found is None:
            continue
        lo, hi = found
        cursor = hi
        ranges.append((loose_origin[lo], loose_origin[hi - 1] + 1))
    return _wrap(answer_html, visible, origin, ranges)


def _find_loose(loose: str, wanted: str, start: int) -> tuple[int, int] | None:
    """Where ``wanted`` lies in ``loose`` at or after ``start``: whole, else from its opening to its ending."""
    if not wanted:
        return None
    pos = loose.find(wanted, start)
    if pos >= 0:
        return pos, pos + len(wanted)
    head, tail = wanted[:_ANCHOR_CHARS].strip(), wanted[-_ANCHOR_CHARS:].strip()
    pos = loose.find(head, start)
    if pos < 0:
        return None
    end = loose.find(tail, pos)
    # The ending must follow closely, or it is another sentence's.
    if end < 0 or end + len(tail) > pos + 2 * len(wanted):
        return pos, pos + len(head)
    return pos, end + len(tail)


def _visible_text(markup: str) -> tuple[str, list[tuple[int, int] | None]]:
    """The text a reader sees in ``markup``, and for each character its
    ``(start, end)`` in the markup (``None`` for a line break a tag makes)."""
    text: list[str] = []
    origin: list[tuple[int, int] | None] = []
    pos = 0
    while pos < len(markup):
        if markup[pos] == "<":
            close = markup.find(">", pos)
            close = len(markup) - 1 if close < 0 else close
            if _BREAKING_TAGS.match(markup, pos):
                text.append(" ")
                origin.append(None)
            pos = close + 1
            continue
        if markup[pos] == "&":
            entity = _ENTITY.match(markup, pos)
            if entity:
                for ch in html.unescape(entity.group(0)):
                    text.append(ch)
                    origin.append((pos, entity.end()))
                pos = entity.end()
                continue
        text.append(markup[pos])
        origin.append((pos, pos + 1))
        pos += 1
    return "".join(text), origin


def _wrap(markup: str, visible: str, origin: list[tuple[int, int] | None], ranges: list[tuple[int, int]]) -> str:
    """Wrap each visible range in spans, one per run of text between tags, so the markup stays well nested."""
    inserts: list[tuple[int, str]] = []
    opening = f"<span class='unsupported' title='{UNSUPPORTED_TIP}'>"
    for start, end in ranges:
        run: tuple[int, int] | None = None
        for i in range(start, end):
            where = origin[i]
            if where is None:
                if run:
                    inserts += [(run[0], opening), (run[1], "</span>")]
                run = None
                continue
            if run is not None and where[0] == run[1]:
                run = (run[0], where[1])
            else:
                if run:
                    inserts += [(run[0], opening), (run[1], "</span>")]
                run = where
        if run:
            inserts += [(run[0], opening), (run[1], "</span>")]
    if not inserts:
        return markup
    out, pos = [], 0
    # Closing tags before opening ones at the same place keep neighbours apart.
    for at, piece in sorted(inserts, key=lambda item: (item[0], item[1] != "</span>")):
        out.append(markup[pos:at])
        out.append(piece)
        pos = at
    out.append(markup[pos:])
    return "".join(out)
