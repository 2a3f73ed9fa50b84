"""Text from pictures of pages: OCR with rapidocr on onnxruntime, offline.

rapidocr's wheel ships its detection, direction and recognition models; they
are named here by path so nothing is ever looked up or downloaded. The
recognised lines are put back in reading order (top to bottom, then left to
right within a line), with a blank line where the gap between lines says a new
paragraph starts, so the chunker sees paragraphs as it does for a text PDF.
Each line keeps its box on the page (as fractions of the page's width and
height), for showing where a cited passage sits on the image.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Scanned pages are rendered at this resolution before OCR: enough for 8-pt
#: text, and rapidocr scales larger pictures down to its own limit anyway.
RENDER_DPI = 200
#: Lines recognised with less confidence than this are dropped (rapidocr's own
#: default): they are mostly specks, stamps and the edges of pictures.
MIN_SCORE = 0.5
#: The largest picture Docent reads (pixels): a 600-dpi A3 scan is about
#: 70 megapixels; a picture of 20,000 × 20,000 is refused rather than decoded.
MAX_PIXELS = 80_000_000

_engine: Any = None
_engine_lock = threading.Lock()


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: its text, its place in the page text, and its box.

    ``box`` is ``(left, top, right, bottom)`` as fractions of the picture's
    width and height, so it holds at any zoom.
    """

    text: str
    start: int
    end: int
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class OcrPage:
    """The text OCR read from one picture, with where each line was."""

    text: str
    lines: tuple[OcrLine, ...]


def _models_dir() -> Path:
    import rapidocr

    return Path(rapidocr.__file__).resolve().parent / "models"


def engine() -> Any:
    """The process's rapidocr engine, created at the first use (about a second)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            # Nothing leaves the machine: the installed app's onnxruntime was
            # seen looking up Microsoft's usage-events server during OCR. The
            # reader process inherits this from Docent (app.config.enforce_offline);
            # set here too for callers that did not run it.
            os.environ["ORT_DISABLE_TELEMETRY"] = "1"
            import onnxruntime
            from rapidocr import RapidOCR

            onnxruntime.disable_telemetry_events()
            models = _models_dir()
            # rapidocr logs every call at INFO on its own handler.
            logging.getLogger("RapidOCR").setLevel(logging.WARNING)
            _engine = RapidOCR(params={
                "Global.log_level": "warning",
                "Global.text_score": MIN_SCORE,
                # The line-direction classifier turned whole lines of upright
                # text upside down (a line with parentheses and digits, read
                # as garbage: bench/ocr.py); scans are upright line by line.
                "Global.use_cls": False,
                "Det.model_path": str(models / "PP-OCRv6_det_small.onnx"),
                "Rec.model_path": str(models / "PP-OCRv6_rec_small.onnx"),
                "Cls.model_path": str(models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
            })
        return _engine


def recognise(image: Any) -> OcrPage:
    """Read the text of ``image`` (a PIL image), in reading order with line boxes."""
    import numpy as np

    picture = image.convert("RGB")
    width, height = picture.size
    result = engine()(np.asarray(picture))
    if result is None or result.boxes is None or result.txts is None:
        return OcrPage("", ())
    found = []
    for box, text, score in zip(result.boxes, result.txts, result.scores or (), strict=False):
        text = " ".join(str(text).split())
        if not text or float(score) < MIN_SCORE:
            continue
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        found.append((min(xs), min(ys), max(xs), max(ys), text, float(score)))
    return _assemble(found, width, height)


def _assemble(found: list[tuple[float, float, float, float, str, float]], width: int, height: int) -> OcrPage:
    """Order recognised boxes into lines and paragraphs, recording each line's span."""
    if not found:
        return OcrPage("", ())
    # Boxes whose vertical middles fall within one another's height are one
    # line (the detector splits a line at wide gaps, e.g. table columns).
    rows: list[list[tuple[float, float, float, float, str, float]]] = []
    for item in sorted(found, key=lambda b: (b[1] + b[3]) / 2):
        middle = (item[1] + item[3]) / 2
        if rows:
            last = rows[-1]
            top = min(b[1] for b in last)
            bottom = max(b[3] for b in last)
            if top <= middle <= bottom:
                last.append(item)
                continue
        rows.append([item])
    heights = [max(b[3] for b in r) - min(b[1] for b in r) for r in rows]
    typical = statistics.median(heights) if heights else 0.0
    parts: list[str] = []
    lines: list[OcrLine] = []
    length = 0
    previous_bottom: float | None = None
    for row in rows:
        row.sort(key=lambda b: b[0])
        text = " ".join(b[4] for b in row)
        top = min(b[1] for b in row)
        bottom = max(b[3] for b in row)
        if previous_bottom is not None:
            # A gap of more than about a line's height starts a new paragraph.
            separator = "\n\n" if top - previous_bottom > 0.8 * typical else "\n"
            parts.append(separator)
            length += len(separator)
        box = (min(b[0] for b in row) / width, top / height, max(b[2] for b in row) / width, bottom / height)
        score = min(b[5] for b in row)
        lines.append(OcrLine(text, length, length + len(text), box, score))
        parts.append(text)
        length += len(text)
        previous_bottom = bottom
    return OcrPage("".join(parts), tuple(lines))


class PdfPictures:
    """Renders pages of one PDF to pictures with pdfium, opening the file once.

    pypdf reads a PDF's text but does not draw it; a scanned page's text is
    only in its picture, so the page is drawn as a reader would show it.
    """

    def __init__(self, path: Path, dpi: int = RENDER_DPI) -> None:
        self.path = path
        self.dpi = dpi
        self._pdf: Any = None

    def page(self, index: int) -> Any:
        """Page ``index`` (0-based) as a PIL image."""
        import pypdfium2 as pdfium

        if self._pdf is None:
            self._pdf = pdfium.PdfDocument(str(self.path))
        page = self._pdf[index]
        try:
            width, height = page.get_size()
            scale = self.dpi / 72
            # A page drawn at a huge size (a poster, or a hostile MediaBox) is
            # drawn smaller instead: OCR needs text of normal size, not pixels.
            if width * height * scale * scale > MAX_PIXELS:
                scale = (MAX_PIXELS / max(width * height, 1.0)) ** 0.5
            return page.render(scale=scale).to_pil()
        finally:
            page.close()

    def close(self) -> None:
        """Close the PDF."""
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None
