"""PDF documents via pypdf: one page of text per physical page.

Page numbers are 1-based physical indexes (what citations show); the printed
label ("iv", "A-3") is kept beside them when the PDF defines one. Work is done
page by page so that progress can be reported and the user can stop it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pypdf.errors import LimitReachedError

from app.core.documents.model import Document, LineBox, Page

from app.errors import Cancelled, ParseError

if TYPE_CHECKING:
    from app.core.documents.ocr import OcrPage

# pypdf logs a warning for every oddity of a damaged file; without a handler of
# the app's own these would land on stderr (Python's last-resort handler).
logging.getLogger("pypdf").addHandler(logging.NullHandler())

ENCRYPTED = "encrypted: the PDF needs a password; remove the password and re-index"
DAMAGED = "not a valid PDF (damaged or truncated)"
NO_TEXT = "no extractable text (a scanned PDF without a text layer?)"
NO_TEXT_OCR_OFF = ("no extractable text: a scanned PDF without a text layer, and OCR is turned off "
                   "in Settings; turn it on to read it")
NO_TEXT_AFTER_OCR = "no text found, not even by OCR (blank pages, or pictures without writing)"
#: A page with fewer letters than this in its text layer is read by OCR when
#: it holds a picture (a scan with a few stray characters of a stamp, say).
OCR_BELOW_CHARS = 16

# Control characters and lone surrogates: pypdf emits both from broken font
# maps, and surrogates cannot even be stored as UTF-8 later on.
_JUNK = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\x0c\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Ligature glyphs split words for keyword search ("ﬁle" is not "file").
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"}
)


def normalise_text(text: str) -> str:
    """Light clean-up of extracted text: keep line breaks, tidy spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _JUNK.sub("", text).translate(_LIGATURES)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def ocr_text(found: OcrPage) -> tuple[str, tuple[LineBox, ...]]:
    """A page's OCR text as :func:`normalise_text` leaves it, with each line's box.

    Normalising the whole text could shift the lines' spans (a ligature
    becomes two letters, a control character goes), so each line is
    normalised alone and the text is put together again from them, keeping
    the breaks OCR put between them: the result is the same text, and each
    box's span still points at its own line.
    """
    parts: list[str] = []
    boxes: list[LineBox] = []
    length = 0
    previous_end: int | None = None
    paragraph = False  # whether a blank line comes before the next line kept
    for line in found.lines:
        if previous_end is not None and "\n\n" in found.text[previous_end:line.start]:
            paragraph = True
        previous_end = line.end
        text = normalise_text(line.text)
        if not text:
            continue  # a line of nothing but junk: its break folds into the next
        if parts:
            separator = "\n\n" if paragraph else "\n"
            parts.append(separator)
            length += len(separator)
        paragraph = False
        boxes.append((length, length + len(text), *line.box))
        parts.append(text)
        length += len(text)
    return "".join(parts), tuple(boxes)


def _open(path: Path) -> Any:
    """Open the PDF and unlock it if it only has an owner password."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(path)
    except OSError:
        raise
    except Exception as exc:  # pypdf raises many types for broken files
        raise ParseError(path, DAMAGED) from exc

    if reader.is_encrypted:
        try:
            # PDFs with only an owner password (print/copy restrictions) open
            # with the empty user password; readers show them without asking.
            unlocked = reader.decrypt("")
        except DependencyError as exc:
            raise ParseError(
                path, "encrypted with AES, which needs the 'cryptography' package to read"
            ) from exc
        except Exception as exc:
            raise ParseError(path, ENCRYPTED) from exc
        if not unlocked:
            raise ParseError(path, ENCRYPTED)
    return reader


def _labels(reader: Any, count: int) -> list[str | None]:
    """Printed page labels, or None where a label just repeats the number."""
    try:
        labels = list(reader.page_labels)
    except Exception:  # a malformed /PageLabels tree: numbers are enough
        return [None] * count
    if len(labels) != count:
        return [None] * count
    return [None if (not label or label == str(i + 1)) else str(label) for i, label in enumerate(labels)]


def _outline_titles(reader: Any) -> dict[int, list[str]]:
    """Map a 0-based page index to the bookmark titles that point at it."""
    found: dict[int, list[str]] = {}

    def walk(items: list[Any], depth: int) -> None:
        if depth > 32:  # cyclic outlines exist in the wild
            return
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                index = reader.get_destination_page_number(item)
                title = " ".join(str(item.title or "").split())
            except Exception:
                continue
            if index is not None and index >= 0 and title:
                found.setdefault(index, []).append(title)

    try:
        walk(list(reader.outline), 0)
    except Exception:  # outlines are a nicety; never fail a PDF over them
        return {}
    return found


def _headings(text: str, titles: list[str]) -> tuple[tuple[int, str], ...]:
    """Place bookmark titles at the offset where they appear in the text, else 0."""
    if not text:
        return ()
    placed = []
    lowered = text.lower()
    for title in titles:
        offset = lowered.find(title.lower())
        placed.append((max(offset, 0), title))
    return tuple(sorted(placed, key=lambda pair: pair[0]))


def _title(reader: Any) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # undecodable metadata: the file name will do
        return None
    if not title:
        return None
    title = " ".join(_JUNK.sub("", str(title)).split())
    return title or None


BOMB = ("a compressed stream in it expands far beyond any real page "
        "(a decompression bomb?); it was not read")


def _is_bomb(page: Any) -> bool:
    """True when a page's content stream inflates past pypdf's safety limit.

    ``extract_text`` swallows that error and returns no text, which would
    read as a scanned page; asking for the stream itself tells them apart.
    """
    try:
        contents = page.get_contents()
        if contents is not None:
            contents.get_data()
    except LimitReachedError:
        return True
    except Exception:  # noqa: BLE001 - any other trouble is not a bomb
        return False
    return False


def _has_picture(page: Any) -> bool:
    """True when the page draws an external object (a scan is an image XObject)."""
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else None
        xobjects = resources.get("/XObject") if resources is not None else None
        return bool(xobjects is not None and len(xobjects.get_object()) > 0)
    except Exception:  # noqa: BLE001 - a broken resource tree: nothing to read
        return False


def load_pdf(
    path: Path,
    *,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    ocr: bool = True,
) -> Document:
    """Load a PDF as one :class:`Page` per physical page (1-based numbers).

    ``on_page(done, total)`` is called after each page; ``should_stop()`` is
    polled before each page and, when it returns True, :class:`Cancelled` is
    raised. Pages without text are kept (empty) so numbering stays physical.
    With ``ocr``, a page whose text layer is (nearly) empty but which holds a
    picture is drawn and read by OCR (:mod:`app.core.documents.ocr`).

    Raises:
        ParseError: encrypted with a password, damaged, or no text at all.
        Cancelled: ``should_stop()`` returned True.
    """
    reader = _open(path)
    try:
        pdf_pages = reader.pages
        total = len(pdf_pages)
    except Exception as exc:
        raise ParseError(path, DAMAGED) from exc
    if total == 0:
        raise ParseError(path, "the PDF has no pages")

    labels = _labels(reader, total)
    outline = _outline_titles(reader)
    pages: list[Page] = []
    failures = 0
    bombs = 0  # pages whose streams expand past pypdf's safety limits
    read_by_ocr = 0
    scanned = 0  # pages that only a picture could tell
    pictures = None
    for index in range(total):
        if should_stop is not None and should_stop():
            raise Cancelled()
        try:
            text = normalise_text(pdf_pages[index].extract_text() or "")
            if not text and _is_bomb(pdf_pages[index]):
                raise LimitReachedError("content stream over the decompression limit")
        except LimitReachedError:
            bombs += 1
            text = ""
            failures += 1
        except Exception:
            # One broken page (bad font, bad stream) must not lose the others.
            text = ""
            failures += 1
        boxes: tuple[LineBox, ...] = ()
        if len(text.strip()) < OCR_BELOW_CHARS and _has_picture(pdf_pages[index]):
            scanned += 1
            if ocr:
                from app.core.documents.ocr import PdfPictures, recognise

                if pictures is None:
                    pictures = PdfPictures(path)
                try:
                    found, found_boxes = ocr_text(recognise(pictures.page(index)))
                except Exception:  # noqa: BLE001 - one unreadable picture must not lose the others
                    found, found_boxes = "", ()
                if len(found) > len(text):
                    text, boxes = found, found_boxes
                    read_by_ocr += 1
        pages.append(
            Page(
                number=index + 1,
                text=text,
                label=labels[index],
                headings=_headings(text, outline.get(index, [])),
                boxes=boxes,
            )
        )
        if on_page is not None:
            on_page(index + 1, total)

    if pictures is not None:
        pictures.close()
    if not any(page.text for page in pages):
        if bombs:
            raise ParseError(path, BOMB)
        if failures == total:
            raise ParseError(path, DAMAGED)
        if scanned and not ocr:
            raise ParseError(path, NO_TEXT_OCR_OFF)
        raise ParseError(path, NO_TEXT_AFTER_OCR if scanned else NO_TEXT)
    return Document(path=path, kind="pdf", title=_title(reader), pages=pages, ocr_pages=read_by_ocr)
