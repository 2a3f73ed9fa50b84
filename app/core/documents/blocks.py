"""Text built block by block, a blank line apart, with where headings start.

Shared by the loaders that walk a document's structure (Word, OpenDocument,
RTF, slides): the blank line between blocks marks paragraph boundaries for
the chunker, and each heading's offset points at its exact text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")


def tidy(text: str) -> str:
    """Collapse runs of spaces in each line and drop empty lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\v", "\n").replace("\u00ad", "")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


class TextBuilder:
    """Accumulates blocks of text, a blank line apart, and where headings start."""

    def __init__(self, tidy_block: Callable[[str], str] | None = None) -> None:
        """``tidy_block`` cleans a body block (default: :func:`tidy`)."""
        self.tidy_block = tidy_block or tidy
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[tuple[int, str]] = []

    def add_block(self, block: str, heading: bool = False) -> None:
        """Append ``block`` (tidied; nothing if empty), recording it as a heading if asked.

        A heading is kept on one line so its recorded text is exactly the text
        at its offset.
        """
        block = " ".join(block.split()) if heading else self.tidy_block(block)
        if not block:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        if heading:
            self.headings.append((self.length, block))
        self.parts.append(block)
        self.length += len(block)

    @property
    def text(self) -> str:
        return "".join(self.parts)
