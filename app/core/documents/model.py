"""What a loader returns: a document as pages of text with their positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


#: One OCR line's place: ``(start, end, left, top, right, bottom)``, a span
#: of its page's text and its box as fractions of the page's width and height
#: (so it holds at any zoom and for any rendering of the page).
LineBox = tuple[int, int, float, float, float, float]


@dataclass(frozen=True)
class Part:
    """A document inside a file: an e-mail's attachment, with its own pages.

    Attributes:
        locator: where in the file it is, as 1-based steps joined by "/":
            ``"2"`` is the message's second attachment, ``"2/1"`` the first
            attachment of the message attached second, ``"m17/2"`` the second
            attachment of a mailbox's 17th message.
        name: its file name, as the sender named it ("report.pdf").
        kind: the kind of document Docent read it as ("pdf"); ``None`` when
            it was not read.
        pages: how many numbered pages (PDF pages, slides) it has; ``None``
            for formats without pages.
        reason: why it was not indexed (``None``: it was).
        message: the subject of the message it is attached to.
    """

    locator: str
    name: str
    kind: str | None = None
    pages: int | None = None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of text.

    Attributes:
        number: 1-based physical page index for PDFs; ``None`` for formats
            without pages (Word, Markdown, text, HTML, code).
        text: the page's text. Citations point at character spans of it.
        label: the printed page label where the PDF defines one (e.g. "iv").
        headings: ``(char offset, heading text)`` pairs, in order, for the
            headings that start within ``text``.
        boxes: for a page read by OCR, where each recognised line was drawn:
            ``(start, end, left, top, right, bottom)``, a span of ``text`` and
            its box as fractions of the page's width and height (see
            :data:`LineBox`); empty for text read from a text layer.
        part: the locator of the attachment this page belongs to (see
            :class:`Part`); ``None`` for the file's own pages. ``number``
            and ``label`` are then the attachment's own.
    """

    number: int | None
    text: str
    label: str | None = None
    headings: tuple[tuple[int, str], ...] = ()
    boxes: tuple[LineBox, ...] = ()
    part: str | None = None


@dataclass(frozen=True)
class Document:
    """A loaded document."""

    path: Path
    kind: str
    title: str | None
    pages: list[Page] = field(default_factory=list)
    #: How many pages were read by OCR (scanned PDF pages, images).
    ocr_pages: int = 0
    #: The documents inside this one (an e-mail's attachments), read or not.
    parts: list[Part] = field(default_factory=list)

    @property
    def char_count(self) -> int:
        return sum(len(p.text) for p in self.pages)


#: Kinds of mail files: their attachments are documents of their own (see :class:`Part`).
MAIL_KINDS = frozenset({"email", "mbox", "msg"})

#: Files whose numbered pages are slides.
SLIDE_SUFFIXES = frozenset({".pptx", ".odp"})


def page_word(path: str | Path | None) -> str:
    """What a numbered page of ``path`` is called: "slide" in a deck, else "page"."""
    return "slide" if Path(str(path or "")).suffix.lower() in SLIDE_SUFFIXES else "page"


def step_word(path: str | Path | None) -> str:
    """What reading ``path`` counts, one by one: "message" in a mailbox, else as :func:`page_word`."""
    return "message" if Path(str(path or "")).suffix.lower() == ".mbox" else page_word(path)


def citation_place(citation: dict[str, Any]) -> str:
    """Where a cited passage is: ``file, page P (printed L)``, ``deck.pptx, slide S``
    or ``file, section "H"``; in an e-mail's attachment,
    ``report.pdf, page 2 (attached to mail.eml)``."""
    name = Path(str(citation.get("path") or "")).name or "(unknown file)"
    attachment = citation.get("attachment")
    if attachment:
        return f"{_place(str(attachment), citation)} (attached to {name})"
    return _place(name, citation)


def _place(name: str, citation: dict[str, Any]) -> str:
    page = citation.get("page")
    label = citation.get("label")
    heading = citation.get("heading")
    if page is not None:
        name += f", {page_word(name)} {page}"
        if label and str(label) != str(page):
            name += f" (printed {label})"
    elif heading:
        name += f', section "{heading}"'
    return name


#: How an indexed file's reason starts when some of its pages were read by OCR.
OCR_NOTE = "OCR"


def ocr_note(ocr_pages: int, pages: int) -> str | None:
    """The indexed file's note when OCR read some of its pages, else ``None``."""
    if ocr_pages <= 0:
        return None
    return f"{OCR_NOTE}: {ocr_pages} of {pages} page{'s' if pages != 1 else ''} read from images"


def status_label(status: str, reason: str | None) -> str:
    """A file's status as people read it: "indexed (OCR)" for files OCR read."""
    if status == "indexed" and reason and reason.startswith(OCR_NOTE):
        return "indexed (OCR)"
    return status
