"""OCR of scanned pages: character error rate and pages per second.

    .venv/bin/python bench/ocr.py [--quick] [--out PATH]

Known text is drawn onto A4 pages (several fonts and sizes, 150-300 dpi,
slight skew and noise), each page wrapped in an image-only PDF (no text
layer, as a scanner writes them) and read by Docent's own PDF loader, which
draws the page with pdfium and reads it with rapidocr. The recognised text is
compared with what was drawn: character error rate = edit distance / length,
with runs of white space made one space on both sides (line breaks are
layout, not characters). One page is Chinese. The raw line beside each: the
same picture read by rapidocr directly (no PDF, no rendering), so the cost of
Docent's path is its own figure.

Fonts come from Debian packages the bench's set-up installs
(fonts-dejavu-core, fonts-liberation2, fonts-wqy-microhei) and Pillow's own
font; a font that is missing is reported, not replaced silently.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

from app.core import documents  # noqa: E402
from app.core.documents import ocr  # noqa: E402
from tests import scans  # noqa: E402

FONTS = {
    "Pillow default (Aileron)": None,
    "DejaVu Sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVu Serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "Liberation Serif": "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
    "Liberation Mono": "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
}
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

LATIN = [
    "The harbour board met on the third Tuesday of March to review",
    "the accounts of the pilot service. Receipts from dues rose by",
    "4,417 pounds against the previous year, while the cost of the",
    "new moorings (contract 2024-117) came to 12,850 pounds in all.",
    "Members asked the clerk to write to the county surveyor about",
    "the silting of the inner basin, and to obtain two quotations",
    "for dredging before the summer season begins on 1 June.",
    "Item 7: the lifeboat station requests a grant of 950 pounds.",
]
CHINESE = [
    "港务委员会于三月第三个星期二开会，",
    "审查引航服务的账目。港口费收入比上年",
    "增加了四千四百一十七英镑，新系泊设施",
    "的合同费用共计一万二千八百五十英镑。",
]

# (font, size in points, dpi, skew in degrees, noise share)
VARIANTS = [
    ("Pillow default (Aileron)", 12, 200, 0.0, 0.0),
    ("DejaVu Sans", 11, 150, 0.0, 0.0),
    ("DejaVu Serif", 12, 300, 0.8, 0.0),
    ("Liberation Serif", 12, 200, -1.2, 0.002),
    ("Liberation Mono", 10, 200, 0.0, 0.002),
    ("DejaVu Sans", 10, 300, 1.5, 0.004),
    ("Liberation Serif", 14, 150, 0.5, 0.001),
    ("Pillow default (Aileron)", 9, 300, -0.6, 0.0),
]


def flat(text: str) -> str:
    """Text with every run of white space as one space (layout is not content)."""
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(truth: str, found: str, *, spaces: bool = True) -> float:
    """Character error rate of ``found`` against ``truth`` (0 = perfect)."""
    truth, found = flat(truth), flat(found)
    if not spaces:  # Chinese is written without spaces; OCR's are not errors
        truth, found = truth.replace(" ", ""), found.replace(" ", "")
    return edit_distance(truth, found) / max(len(truth), 1)


def font_for(name: str | None, path: str | None) -> Any:
    from PIL import ImageFont

    if path is None:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"{name}: {path} (install the bench's font packages: make bench does)")
    return ImageFont.truetype(path, 12)


def measure(quick: bool) -> dict[str, Any]:
    variants = VARIANTS[:2] if quick else VARIANTS
    pages: list[dict[str, Any]] = []
    ocr.engine()  # loaded once, outside every timing
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases: list[tuple[str, list[str], Any, float, int, float, float, bool]] = []
        for name, pt, dpi, skew, noise in variants:
            cases.append((name, LATIN, font_for(name, FONTS[name]), pt, dpi, skew, noise, True))
        if not quick:
            cases.append(("WenQuanYi Micro Hei (Chinese)", CHINESE, font_for("WenQuanYi", CJK_FONT),
                          14, 200, 0.0, 0.0, False))
        for n, (name, lines, font, pt, dpi, skew, noise, latin) in enumerate(cases):
            picture = scans.page_image(lines, dpi=dpi, font_pt=pt, skew_deg=skew, noise=noise, font=font)
            pdf = scans.image_pdf(folder / f"page{n}.pdf", [picture], dpi=dpi)
            started = time.perf_counter()
            doc = documents.load(pdf)
            ours_s = time.perf_counter() - started
            started = time.perf_counter()
            raw = ocr.recognise(picture)
            raw_s = time.perf_counter() - started
            truth = "\n".join(lines)
            pages.append({
                "font": name, "points": pt, "dpi": dpi, "skew_deg": skew, "noise": noise, "latin": latin,
                "cer": round(cer(truth, doc.pages[0].text, spaces=latin), 4),
                "raw_cer": round(cer(truth, raw.text, spaces=latin), 4),
                "docent_s": round(ours_s, 2), "raw_s": round(raw_s, 2),
            })
            print(f"{name:32} {pt:>4} pt {dpi} dpi skew {skew:+.1f}° noise {noise:.3f}: "
                  f"CER {pages[-1]['cer']:.2%} ({ours_s:.1f} s; raw {pages[-1]['raw_cer']:.2%}, {raw_s:.1f} s)",
                  flush=True)
    latin_pages = [p for p in pages if p["latin"]]
    docent_s = sum(p["docent_s"] for p in latin_pages)
    raw_s = sum(p["raw_s"] for p in latin_pages)
    return {
        "pages": pages,
        "latin_cer_mean": round(statistics.mean(p["cer"] for p in latin_pages), 4),
        "latin_cer_max": round(max(p["cer"] for p in latin_pages), 4),
        "chinese_cer": next((p["cer"] for p in pages if not p["latin"]), None),
        "docent_pages_per_s": round(len(latin_pages) / docent_s, 3),
        "raw_pages_per_s": round(len(latin_pages) / raw_s, 3),
        "render_dpi": ocr.RENDER_DPI,
        "target_cer": 0.03,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two pages, no Chinese")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    result = measure(args.quick)
    out = args.out or (None if args.quick else ROOT / "bench" / "ocr.json")
    print(f"Latin CER mean {result['latin_cer_mean']:.2%}, max {result['latin_cer_max']:.2%}; "
          f"Chinese {result['chinese_cer']}; {result['docent_pages_per_s']} pages/s "
          f"(raw {result['raw_pages_per_s']})")
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
