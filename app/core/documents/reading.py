"""The text a document viewer shows, read the way ingest reads: in the reader process.

A cited passage's character span points into the text the indexer
extracted, so the viewer shows that same text (visible text for HTML,
paragraphs for Word, the file itself for plain text and Markdown). The
files are anyone's, so the reading happens in :class:`IsolatedParser`'s child
process under ingest's limits (memory cap, silence limit): a file built to
hang or crash a parser fails with a reason instead of taking the window down.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from app.core.documents import kind_for, load
from app.core.documents.model import Document, Page
from app.core.documents.parsing import IsolatedParser, ParseLimits
from app.errors import DocentError, ParseError

#: The loader the viewer's reader process runs (``module:function``).
VIEW_TARGET = "app.core.documents.reading:load_for_viewing"

_HTML = frozenset({".html", ".htm", ".xhtml"})
# Kinds whose file is its own text (shown as stored); every other kind is
# shown as its loader reads it.
_AS_STORED = frozenset({"text", "code", "markdown", "html", "docx", "pdf", None})
_NEWLINES = re.compile(r"\r\n?")
_NOT_WORD = "it is not a valid Word document (damaged, or not a .docx file)"


def document_text(file: Path) -> str:
    """The file's text as the indexer extracted it, so citation spans point into it.

    Uses the same loader per format (visible text for HTML, paragraphs for
    Word); if that fails (the file changed into something unreadable), falls
    back to the raw bytes as UTF-8. Runs the parser in *this* process: call it
    through :func:`reader` (the reader process) for files anyone could have written.

    Raises:
        ParseError: a Word file that is not one any more, or a file of a
            format with its own loader (slides, sheets, mail …) that it
            cannot read now.
        OSError: the file cannot be read.
    """
    file = Path(file)
    suffix = file.suffix.lower()
    kind = kind_for(file)
    try:
        if suffix == ".docx":
            from app.core.documents.word import load_word

            return "\n\n".join(p.text for p in load_word(file).pages)
        if suffix in _HTML:
            from app.core.documents.webpage import load_html

            return "\n\n".join(p.text for p in load_html(file).pages)
        if kind not in _AS_STORED:
            # Slides, sheets, e-books, mail, pictures: the loader's text, page
            # after page, as the indexer read it (a picture's text is OCR's).
            return "\n\n".join(p.text for p in load(file).pages if p.text)
        from app.core.documents.text import read_text

        return read_text(file)
    except DocentError as exc:
        if kind not in _AS_STORED and suffix != ".docx":
            raise ParseError(file, getattr(exc, "reason", str(exc))) from exc
    if suffix == ".docx":
        raise ParseError(file, _NOT_WORD)
    data = file.read_bytes()
    return _NEWLINES.sub("\n", data.decode("utf-8", errors="replace")).replace("\x00", "")


def load_for_viewing(
    path: Path,
    *,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Document:
    """:func:`document_text` shaped as a loader (one page without a number), for the reader process."""
    path = Path(path)
    try:
        text = document_text(path)
    except OSError as exc:
        raise ParseError(path, f"cannot be read ({exc.strerror or exc})") from exc
    return Document(path, "text", None, [Page(None, text)])


def reader(limits: ParseLimits | None = None, *, target: str = VIEW_TARGET) -> IsolatedParser:
    """A reader process for the viewer, with ingest's limits unless told otherwise.

    ``target`` names another loader, for tests that inject faults.
    """
    return IsolatedParser(limits or ParseLimits(), target=target)


def read_for_viewing(
    parser: IsolatedParser,
    path: Path,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> str:
    """The viewer's text of ``path``, read by ``parser`` (see :func:`reader`).

    Raises:
        ParseError: the file could not be read; ``reason`` says why.
        SkipFile: the loader does not read this kind of file.
        Cancelled: ``should_stop()`` returned True (the reader process is replaced).
    """
    doc = parser.load(Path(path), should_stop=should_stop)
    return "\n\n".join(p.text for p in doc.pages)


# -- an e-mail's attachment, for the viewer -------------------------------------------

#: The loader the viewer's attachment reader runs: it writes an attachment's
#: bytes to a file (see :func:`extract_for_viewing`).
ATTACHMENT_TARGET = "app.core.documents.reading:extract_for_viewing"


def attachment_request(path: Path, part: str, folder: Path) -> Path:
    """What the attachment reader is sent: the mail file, the attachment's locator
    and the folder to write it to, in the one argument a loader takes.

    NUL separates them: no path can hold one.
    """
    return Path(f"{path}\0{part}\0{folder}")


def extract_for_viewing(
    request: Path,
    *,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Document:
    """Write the attachment an :func:`attachment_request` names into its folder.

    Returns a document without pages whose ``path`` is the written file
    (named as the sender named it, in a subfolder per attachment, so two
    attachments of one name never meet). Runs in the reader process, like
    every parsing of mail anyone could have written.
    """
    import hashlib

    from app.core.documents.mail import extract_attachment

    path_text, part, folder_text = str(request).split("\0")
    path = Path(path_text)
    try:
        name, data = extract_attachment(path, part)
    except OSError as exc:
        raise ParseError(path, f"cannot be read ({exc.strerror or exc})") from exc
    key = hashlib.sha256(f"{path}\0{part}".encode()).hexdigest()[:16]
    target = Path(folder_text) / key / name
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.write_bytes(data)
    return Document(target, kind_for(target) or "text", name, [])
