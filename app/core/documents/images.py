"""Pictures of documents (PNG, JPEG, TIFF, WebP) read by OCR, one page per frame.

A photo of a receipt or a scanned letter saved as an image is a document
too. A multi-page TIFF (the usual output of office scanners and fax) is one
page per frame, numbered from 1, so citations point at the page as in a PDF.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.core.documents.model import Document, Page
from app.core.documents.ocr import MAX_PIXELS, recognise
from app.core.documents.pdf import ocr_text
from app.errors import Cancelled, ParseError

#: The most frames Docent reads from one TIFF (a fax archive, not a film).
MAX_FRAMES = 2000
NO_TEXT = "no text found by OCR (a photo or drawing without writing?)"


def load_image(
    path: Path,
    *,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Document:
    """Read the text of an image file by OCR; every frame of a TIFF is a page.

    Raises:
        ParseError: not an image Docent can decode, too many pixels to read
            safely, or no text found in it.
        Cancelled: ``should_stop()`` returned True between frames.
    """
    from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

    # Opening reads only the header; the size is checked here, before a
    # single pixel is decoded, so the reason can name it (Pillow's own check
    # would refuse without saying how large the picture is).
    Image.MAX_IMAGE_PIXELS = None
    try:
        image = Image.open(path)
    except (PermissionError, FileNotFoundError):
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # Pillow reports a broken header as any of these.
        raise ParseError(path, "not a picture Docent can read (damaged, or another kind of file)") from exc
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ParseError(path, _too_large(path, width, height))
        total = min(getattr(image, "n_frames", 1), MAX_FRAMES)
        pages: list[Page] = []
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if number > total:
                break
            if should_stop is not None and should_stop():
                raise Cancelled()
            if frame.size[0] * frame.size[1] > MAX_PIXELS:
                raise ParseError(path, _too_large(path, *frame.size))
            try:
                # A phone photo is stored sideways with a note to turn it.
                upright = ImageOps.exif_transpose(frame.copy())
            except (OSError, ValueError, SyntaxError) as exc:
                raise ParseError(path, "the picture is damaged (it cannot be decoded)") from exc
            text, boxes = ocr_text(recognise(upright))
            pages.append(Page(number=number, text=text, boxes=boxes))
            if on_page is not None:
                on_page(number, total)
    if not any(page.text for page in pages):
        raise ParseError(path, NO_TEXT)
    return Document(path=path, kind="image", title=None, pages=pages, ocr_pages=len(pages))


def _too_large(path: Path, width: int | None = None, height: int | None = None) -> str:
    size = f"{width:,} × {height:,} pixels" if width and height else "too many pixels"
    return (f"refused: the picture is {size}; Docent reads pictures of up to "
            f"{MAX_PIXELS // 1_000_000} megapixels (scan it at a lower resolution)")
