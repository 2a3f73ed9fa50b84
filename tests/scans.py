"""Pictures of pages with known text, as a scanner would make them.

Used by the OCR tests and by ``bench/ocr.py`` (character error rate): the
text is drawn with Pillow's own scalable font (no system fonts needed), at a
chosen resolution, optionally turned a little and sprinkled with noise, then
saved as an image or wrapped in an image-only PDF (fpdf2), which has no text
layer at all.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

A4_INCHES = (8.27, 11.69)

#: A two-page harbour report the OCR tests read (its answer only on page 2).
PAGE_ONE = ["Harbour Authority of Porthleven", "Annual report on the pilot boats"]
PAGE_TWO = ["The pilot cutter Morwenna was", "rebuilt in the spring with", "a new larch hull and oak frames."]


def page_image(lines: Sequence[str], *, dpi: int = 200, font_pt: float = 12, skew_deg: float = 0.0,
               noise: float = 0.0, font: Any = None, seed: int = 7) -> Any:
    """An A4 page at ``dpi`` with ``lines`` of text at ``font_pt`` points, as a PIL image.

    ``noise`` is the share of pixels flipped to a random grey (0.01 = 1 %).
    """
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(A4_INCHES[0] * dpi), int(A4_INCHES[1] * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    size = max(8, round(font_pt * dpi / 72))
    face = font if font is not None else ImageFont.load_default(size=size)
    if font is not None and hasattr(font, "font_variant"):
        face = font.font_variant(size=size)
    x, y = int(0.9 * dpi), int(0.9 * dpi)
    for line in lines:
        if line:
            draw.text((x, y), line, fill=0, font=face)
        y += int(size * 1.6)
    if skew_deg:
        image = image.rotate(skew_deg, resample=Image.BICUBIC, expand=False, fillcolor=255)
    if noise:
        rng = random.Random(seed)
        pixels = image.load()
        for _ in range(int(width * height * noise)):
            pixels[rng.randrange(width), rng.randrange(height)] = rng.randrange(0, 256)
    return image


def line_top(i: int, *, dpi: int, font_pt: float) -> float:
    """Where :func:`page_image` draws line ``i``'s top, as a fraction of the page height."""
    size = max(8, round(font_pt * dpi / 72))
    return (int(0.9 * dpi) + i * int(size * 1.6)) / int(A4_INCHES[1] * dpi)


def harbour_report(path: Path, *, dpi: int = 150, font_pt: float = 16) -> Path:
    """The image-only PDF of :data:`PAGE_ONE` and :data:`PAGE_TWO`."""
    return image_pdf(path, [page_image(PAGE_ONE, dpi=dpi, font_pt=font_pt),
                            page_image(PAGE_TWO, dpi=dpi, font_pt=font_pt)])


def image_pdf(path: Path, images: Sequence[Any], dpi: int = 200) -> Path:
    """An image-only PDF: one page per picture, no text layer (as a scanner writes)."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=(A4_INCHES[0] * 72, A4_INCHES[1] * 72))
    pdf.set_auto_page_break(False)
    for image in images:
        pdf.add_page()
        pdf.image(image, x=0, y=0, w=A4_INCHES[0] * 72, h=A4_INCHES[1] * 72)
    pdf.output(str(path))
    return path


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width`` × ``height`` pixels (header only, no pixel data).

    A picture of 20,000 × 20,000 is refused by its header; building a real one
    would cost the test a gigabyte for nothing.
    """
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def index_with_boxes(path: Path, catalog_path: Path, *, kind: str) -> tuple[Any, Any]:
    """Read ``path`` (by OCR) and record it in a new catalog at ``catalog_path``
    as ingest does: a chunk per page, with every line's box. Returns the
    catalog (its ``page_boxes`` is what the viewer asks) and the document."""
    from app.core import documents
    from app.core.stores.catalog import Catalog, ChunkRow

    doc = documents.load(path)
    catalog = Catalog(catalog_path)
    fid = catalog.mark_file(str(path), "pending", root_id=None)
    rows = [ChunkRow(id=f"c{p.number}", ordinal=p.number, page=p.number, label=None, start=0, end=len(p.text),
                     heading=None, text=p.text, text_hash=f"h{p.number}") for p in doc.pages]
    stat = path.stat()
    catalog.replace_chunks(fid, rows, size=stat.st_size, mtime_ns=stat.st_mtime_ns, hash="h", kind=kind,
                           title=None, pages=len(doc.pages), boxes={p.number: p.boxes for p in doc.pages})
    return catalog, doc
