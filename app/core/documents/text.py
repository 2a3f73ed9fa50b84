"""Plain text and source code: decoding bytes of unknown encoding, safely.

The decoding helpers here are shared by the Markdown and HTML loaders: every
text-like format goes through :func:`decode_bytes`, so a file in a legacy
encoding is read the same way whatever its extension.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from app.core.documents.model import Document, Page
from app.errors import ParseError, SkipFile

# Checked longest first: the UTF-32 LE BOM begins with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Enough to tell text from binary without reading a large file twice.
_SNIFF_BYTES = 8192

# charset_normalizer is slow on very large inputs; a prefix is enough to guess.
_GUESS_BYTES = 256 * 1024

# How much more "chaos" (charset_normalizer's mess score, 0..1) cp1252 may
# show than the detector's favourite and still be preferred.
_NEAR_TIE = 0.05


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """Return ``(encoding, BOM length)`` when ``data`` starts with a Unicode BOM."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def bomless_utf16(sample: bytes) -> str | None:
    """Recognise UTF-16 without a BOM by its zero high bytes (mostly-ASCII text).

    Such files (written by some Windows tools) are full of NUL bytes and would
    otherwise be mistaken for binary.
    """
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nuls, odd_nuls = even.count(0), odd.count(0)
    if odd_nuls >= 0.9 * len(odd) and even_nuls == 0:
        return "utf-16-le"
    if even_nuls >= 0.9 * len(even) and odd_nuls == 0:
        return "utf-16-be"
    return None


def _usable_codec(name: str | None) -> str | None:
    """Normalise a declared charset name, or ``None`` if Python does not know it."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    # As browsers do: "latin-1"/"ascii" labels really mean windows-1252, and a
    # UTF-16/32 label on bytes we could read as ASCII is wrong.
    if codec.name in {"latin-1", "iso8859-1", "ascii"}:
        return "cp1252"
    if codec.name.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return codec.name


def guess_encoding(sample: bytes) -> str | None:
    """charset_normalizer's guess, nudged towards windows-1252 on near-ties.

    On short Western European texts the detector often ranks cp1250 or cp775
    equal to (or a hair above) cp1252, which turns "naïve" into "naďve". When
    cp1252 is about as plausible as the winner, the far more common encoding
    is the better bet.
    """
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(sample))
    except Exception:  # a guesser failure must not cost us the file
        return None
    if not matches:
        return None
    least_chaos = min(match.chaos for match in matches)
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= least_chaos + _NEAR_TIE:
            return "cp1252"
    best = min(matches, key=lambda match: (match.chaos, -match.coherence))
    return str(best.encoding) if best.encoding else None


def _guess_legacy(data: bytes) -> str:
    """Decode bytes that are not UTF-8: best guess, never raising."""
    guess = guess_encoding(data[:_GUESS_BYTES])
    if guess is not None:
        try:
            return data.decode(guess)
        except (UnicodeDecodeError, LookupError):
            pass  # the guess was made on a prefix; fall through to cp1252
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        # latin-1 maps every byte, so this cannot fail.
        return data.decode("latin-1")


def decode_bytes(path: Path, data: bytes, declared: str | None = None) -> str:
    """Decode a text file's bytes to ``str`` with ``\\n`` line endings.

    Order: a BOM (UTF-8/16/32), the ``declared`` charset (e.g. from an HTML
    meta tag) if it decodes cleanly, strict UTF-8, then a best guess for legacy
    encodings (charset_normalizer, else cp1252, else latin-1).

    Raises:
        SkipFile: the bytes look binary (NUL bytes outside UTF-16/32).
    """
    text: str | None = None
    found = bom_encoding(data)
    if found is not None:
        encoding, skip = found
        # A BOM is a strong signal; replace the odd bad byte rather than fail.
        text = data[skip:].decode(encoding, errors="replace")
    else:
        sample = data[:_SNIFF_BYTES]
        if b"\x00" in sample:
            utf16 = bomless_utf16(sample)
            if utf16 is None:
                raise SkipFile(path, "binary file")
            try:
                text = data.decode(utf16)
            except UnicodeDecodeError:
                raise SkipFile(path, "binary file") from None
    if text is None:
        codec = _usable_codec(declared)
        if codec is not None:
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                text = None  # the declaration lied; detect instead
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _guess_legacy(data)
    # NULs past the sniffed prefix carry no meaning and upset later storage.
    return normalise_newlines(text).replace("\x00", "")


def normalise_newlines(text: str) -> str:
    """Turn CRLF and lone CR into LF, so offsets mean the same on every OS."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path, declared: str | None = None) -> str:
    """Read and decode a text file (see :func:`decode_bytes`)."""
    return decode_bytes(path, path.read_bytes(), declared)


def require_text(path: Path, text: str) -> None:
    """Raise ParseError when a decoded document holds nothing to index."""
    if not text.strip():
        raise ParseError(path, "no text to index (the document is blank)")


def load_text(path: Path, kind: str) -> Document:
    """Load a plain-text or source-code file as one page, text as written.

    ``kind`` is ``"text"`` or ``"code"``; it only labels the document.
    """
    text = read_text(path)
    require_text(path, text)
    return Document(path=path, kind=kind, title=None, pages=[Page(number=None, text=text)])
