"""Rich Text Format (.rtf) documents via striprtf.

RTF is 7-bit text with control words; striprtf turns it into plain text.
Two things are done first, both for speed and safety: the file's size is
capped, and picture and embedded-object groups (hex or binary data that make
up most of a large RTF file) are cut out, since striprtf would otherwise step
through them one character at a time only to ignore them.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from pathlib import Path

from app.core.documents.model import Document, Page
from app.core.documents.blocks import TextBuilder
from app.errors import Cancelled, ParseError

#: The largest RTF file Docent reads (pictures make RTF files big; text rarely does).
MAX_RTF_BYTES = 200 * 1024**2

NOT_RTF = "not a valid RTF file (another kind of file with an .rtf name?)"
BINARY = "not a valid RTF file (damaged: it holds binary data)"

# Groups holding pictures, embedded objects and other data, never text.
_DATA_GROUP = re.compile(
    rb"\{(?:\\\*)?\\(?:pict|shppict|nonshppict|object|objdata|datastore|themedata|"
    rb"colorschememapping|fontemb|fontfile|blipuid|passwordhash)(?![a-zA-Z])"
)
# What moves the group depth: braces, escaped braces and backslashes, \binN.
_GROUP_TOKEN = re.compile(rb"\\bin(\d{1,10}) ?|\\[\\{}]|[{}]")
_CODEPAGE = re.compile(rb"\\ansicpg(\d{1,5})")
_TITLE = re.compile(rb"\{\\title[ ]?((?:[^{}\\]|\\[^{}]|\\[{}])*)\}")
# Where a line break may go without changing the text: before a group or a
# font switch (escaped characters are matched first, so they are left alone).
# RTF ignores raw line breaks; striprtf's own regular expressions (hyperlinks,
# the font table) scan to the end of the line from each field or font switch,
# which takes quadratic time on a long single-line file.
_BREAKABLE = re.compile(rb"\\[\\{}]|(\{|\\f\d)")
# Control characters that never appear in real RTF text (tabs and newlines do).
_JUNK = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_JUNK_SHARE = 0.01


def _drop_data_groups(data: bytes) -> bytes:
    """``data`` without its picture/object groups (braces matched, ``\\binN`` skipped)."""
    out: list[bytes] = []
    pos = 0
    while True:
        start = _DATA_GROUP.search(data, pos)
        if start is None:
            out.append(data[pos:])
            return b"".join(out)
        # An empty group stands in for the dropped one: removing it outright
        # could join "\\par" to the next word into one control word.
        out.append(data[pos:start.start()] + b"{}")
        depth, cursor = 0, start.start()
        while True:
            token = _GROUP_TOKEN.search(data, cursor)
            if token is None:
                return b"".join(out)  # unclosed to the end: the rest is data
            cursor = token.end()
            if token.group(1) is not None:
                cursor += int(token.group(1))  # raw bytes that may hold braces
            elif token.group() == b"{":
                depth += 1
            elif token.group() == b"}":
                depth -= 1
                if depth == 0:
                    break
        pos = cursor


def _break_lines(data: bytes) -> bytes:
    """``data`` with a line break before every group and font switch (see ``_BREAKABLE``)."""
    return _BREAKABLE.sub(lambda m: b"\n" + m.group(1) if m.group(1) else m.group(0), data)


def _codepage(data: bytes) -> str:
    match = _CODEPAGE.search(data, 0, 4096)
    if match:
        name = f"cp{int(match.group(1))}"
        try:
            codecs.lookup(name)
            return name
        except LookupError:
            pass
    return "cp1252"


def _looks_binary(data: bytes) -> bool:
    sample = data[: 1024 * 1024]
    return bool(sample) and len(_JUNK.findall(sample)) > _JUNK_SHARE * len(sample)


def _title(data: bytes, encoding: str) -> str | None:
    from striprtf.striprtf import rtf_to_text

    match = _TITLE.search(data)
    if match is None:
        return None
    inner = match.group(1).decode(encoding, errors="replace")
    title = " ".join(rtf_to_text("{\\rtf1 " + inner + "}", encoding=encoding, errors="replace").split())
    return title or None


def _blocks(text: str) -> list[str]:
    """Paragraphs as blocks; consecutive table rows (cells end in "|") as one block."""
    result: list[str] = []
    rows: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.strip()
        if line.endswith("|") and line.strip("| "):
            cells = [" ".join(cell.split()) for cell in line.rstrip("|").split("|")]
            rows.append(" | ".join(cell for cell in cells if cell))
            continue
        if rows:
            result.append("\n".join(rows))
            rows = []
        if line.strip("| "):
            result.append(line)
    if rows:
        result.append("\n".join(rows))
    return result


def load_rtf(
    path: Path,
    *,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Document:
    """Load an RTF document as one page of paragraphs, tables as " | " rows.

    The title is the one in the document's information group, if any.

    Raises:
        ParseError: not RTF, binary data, larger than ``MAX_RTF_BYTES``, or no text.
    """
    from striprtf.striprtf import rtf_to_text

    if should_stop is not None and should_stop():
        raise Cancelled()
    size = path.stat().st_size
    if size > MAX_RTF_BYTES:
        raise ParseError(path, f"too large to read ({size // 1024**2:,} MB; Docent reads RTF files "
                               f"up to {MAX_RTF_BYTES // 1024**2} MB): save it as .docx or PDF")
    data = path.read_bytes()
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf"):
        raise ParseError(path, NOT_RTF)
    encoding = _codepage(data)
    title = _title(data, encoding)
    data = _drop_data_groups(data)
    if _looks_binary(data):
        raise ParseError(path, BINARY)
    data = _break_lines(data)
    # RTF escapes everything beyond ASCII; a stray raw byte is in the document's codepage.
    text = rtf_to_text(data.decode(encoding, errors="replace"), encoding=encoding, errors="replace")
    builder = TextBuilder()
    for block in _blocks(text):
        builder.add_block(block)
    if not builder.text:
        raise ParseError(path, "no text to index (the document is blank or holds only images)")
    if on_page is not None:
        on_page(1, 1)
    return Document(path=path, kind="rtf", title=title,
                    pages=[Page(number=None, text=builder.text)])
