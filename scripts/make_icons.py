"""Draw Docent's icon set into resources/icons/ (PNG sizes, .ico, .icns).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_icons.py

A page with a folded corner and lines of text, and a citation badge "[1]":
documents, answered with their source. Drawn with Qt at 1024 px, scaled down
for each size; Pillow writes the Windows .ico and the macOS .icns. The files
are committed; run this again only to change the design.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QLinearGradient, QPainter, QPainterPath, QPen

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def draw(size: int = 1024) -> QImage:
    """The icon at ``size`` pixels (square, transparent outside the tile)."""
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 1024
    # The tile: a rounded square, deep blue.
    grad = QLinearGradient(0, 0, 0, size)
    grad.setColorAt(0, QColor("#2f6fb5"))
    grad.setColorAt(1, QColor("#1c3f73"))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(grad)
    p.drawRoundedRect(QRectF(40 * s, 40 * s, 944 * s, 944 * s), 200 * s, 200 * s)
    # The page, with its top-right corner folded.
    page = QPainterPath()
    left, top, right, bottom, fold = 250 * s, 170 * s, 720 * s, 850 * s, 150 * s
    page.moveTo(left, top)
    page.lineTo(right - fold, top)
    page.lineTo(right, top + fold)
    page.lineTo(right, bottom)
    page.lineTo(left, bottom)
    page.closeSubpath()
    p.setBrush(QColor("#ffffff"))
    p.drawPath(page)
    corner = QPainterPath()
    corner.moveTo(right - fold, top)
    corner.lineTo(right - fold, top + fold)
    corner.lineTo(right, top + fold)
    corner.closeSubpath()
    p.setBrush(QColor("#c9d6e8"))
    p.drawPath(corner)
    # Lines of text; the third one highlighted: the passage that was cited.
    for i, width in enumerate((300, 380, 340, 380, 260)):
        y = (380 + i * 85) * s
        if i == 2:
            p.setBrush(QColor("#ffd24a"))
            p.drawRoundedRect(QRectF(left + 40 * s, y - 22 * s, 395 * s, 74 * s), 14 * s, 14 * s)
        p.setBrush(QColor("#4a5d78"))
        p.drawRoundedRect(QRectF(left + 60 * s, y, width * s, 30 * s), 15 * s, 15 * s)
    # The citation badge.
    p.setBrush(QColor("#f07c2a"))
    p.setPen(QPen(QColor("#ffffff"), 22 * s))
    centre = QPointF(735 * s, 735 * s)
    p.drawEllipse(centre, 175 * s, 175 * s)
    font = QFont("DejaVu Sans")
    font.setBold(True)
    font.setPixelSize(int(150 * s))
    p.setFont(font)
    p.setPen(QColor("#ffffff"))
    p.drawText(QRectF(centre.x() - 175 * s, centre.y() - 175 * s, 350 * s, 350 * s),
               Qt.AlignmentFlag.AlignCenter, "[1]")
    p.end()
    return img


def to_pil(img: QImage) -> Image.Image:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGBA")


def main() -> int:
    QGuiApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    big = to_pil(draw())
    for size in SIZES:
        big.resize((size, size), Image.Resampling.LANCZOS).save(OUT / f"docent-{size}.png")
    big.save(OUT / "docent.ico", sizes=[(n, n) for n in (16, 24, 32, 48, 64, 128, 256)])
    big.resize((512, 512), Image.Resampling.LANCZOS).save(OUT / "docent.icns")
    print(f"wrote {len(SIZES)} PNGs, docent.ico and docent.icns to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
