"""What the installer puts on a desktop: an entry a launcher accepts, icons at every size."""

from __future__ import annotations

import configparser
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_desktop_entry_launches_docent_with_its_icon() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(ROOT / "resources" / "linux" / "docent.desktop", encoding="utf-8")
    e = entry["Desktop Entry"]
    assert e["Type"] == "Application" and e["Name"] == "Docent" and e["Terminal"] == "false"
    assert e["Exec"] == "@EXEC@ %F"  # filled in by packaging/install-linux.sh
    assert e["Icon"] == "docent" and "application/pdf" in e["MimeType"]
    assert e["Categories"].endswith(";") and e["MimeType"].endswith(";")


def test_every_icon_size_is_a_png_of_that_size() -> None:
    icons = ROOT / "resources" / "icons"
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        data = (icons / f"docent-{size}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (size, size)
    assert (icons / "docent.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"  # Windows icon
    assert (icons / "docent.icns").read_bytes()[:4] == b"icns"  # macOS icon
