"""What a loader returns: a document as pages of text with their positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    """

    number: int | None
    text: str
    label: str | None = None
    headings: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Document:
    """A loaded document."""

    path: Path
    kind: str
    title: str | None
    pages: list[Page] = field(default_factory=list)

    @property
    def char_count(self) -> int:
        return sum(len(p.text) for p in self.pages)


def citation_place(citation: dict[str, Any]) -> str:
    """Where a cited passage is: ``file, page P (printed L)`` or ``file, section "H"``."""
    name = Path(str(citation.get("path") or "")).name or "(unknown file)"
    page = citation.get("page")
    label = citation.get("label")
    heading = citation.get("heading")
    if page is not None:
        name += f", page {page}"
        if label and str(label) != str(page):
            name += f" (printed {label})"
    elif heading:
        name += f', section "{heading}"'
    return name
