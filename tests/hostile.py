"""Broken and hostile files, made by the tests, beside good ones."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

from tests import corpus


def encrypted_pdf(path: Path, user_password: str, owner_password: str = "owner") -> Path:
    from pypdf import PdfReader, PdfWriter

    source = corpus.make_pdf(path.with_suffix(".plain.tmp"), ["Encrypted page about cargo insurance."])
    writer = PdfWriter()
    for page in PdfReader(str(source)).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    with path.open("wb") as fh:
        writer.write(fh)
    source.unlink()
    return path


def bomb_pdf(path: Path, expanded_mb: int = 200) -> Path:
    """A one-page PDF whose content stream inflates to ``expanded_mb`` MB."""
    payload = zlib.compress(b"0 0 m " * (expanded_mb * 1024 * 1024 // 6), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(payload) + payload + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    path.write_bytes(out.getvalue())
    return path


def scanned_pdf(path: Path, text: str | None = "SCANNED INVOICE 4711") -> Path:
    """A PDF page that is only a picture (no text layer) of ``text``, or of a
    drawing without writing when ``text`` is None."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (400, 200), "white")
    draw = ImageDraw.Draw(image)
    if text is None:
        draw.ellipse((60, 40, 340, 160), outline="black", width=6)
    else:
        draw.text((20, 80), text, fill="black", font=ImageFont.load_default(size=28))
    png = path.with_suffix(".png.tmp")
    image.save(png, format="PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(png), x=10, y=10, w=180)
    pdf.output(str(path))
    png.unlink()
    return path


def zip_bomb(path: Path, member: str, inflated_mb: int = 300) -> Path:
    """A zip-based document (``.docx``, ``.pptx`` …) whose ``member`` inflates to ``inflated_mb`` MB."""
    import zipfile

    block = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with zf.open(member, "w", force_zip64=True) as fh:
            for _ in range(inflated_mb):
                fh.write(block)
    return path


def protected_office(path: Path) -> Path:
    """What Office writes for a file with a password to open: an OLE compound file."""
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(4096))
    return path


def many_pages_pdf(path: Path, pages: int = 5000) -> Path:
    """A very long PDF (the same page repeated, so it builds in a moment)."""
    from pypdf import PdfReader, PdfWriter

    one = corpus.make_pdf(path.with_suffix(".one.tmp"), ["A page of the very long maritime regulations."])
    page = PdfReader(str(one)).pages[0]
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_page(page)
    with path.open("wb") as fh:
        writer.write(fh)
    one.unlink()
    return path


def make_mixed_folder(folder: Path) -> dict[str, Path]:
    """Good documents and every kind of broken file, side by side."""
    folder.mkdir(parents=True, exist_ok=True)
    good = corpus.make_library(folder)
    bad: dict[str, Path] = {}
    bad["zero"] = folder / "empty.pdf"
    bad["zero"].write_bytes(b"")
    whole = corpus.make_pdf(folder / "whole.tmp.pdf").read_bytes()
    (folder / "whole.tmp.pdf").unlink()
    bad["truncated"] = folder / "truncated.pdf"
    bad["truncated"].write_bytes(whole[: len(whole) // 2])
    bad["random"] = folder / "random.pdf"
    bad["random"].write_bytes(os.urandom(4096))
    bad["locked"] = encrypted_pdf(folder / "locked.pdf", user_password="secret")
    good["open_encrypted"] = encrypted_pdf(folder / "owner-only.pdf", user_password="")
    bad["bomb"] = bomb_pdf(folder / "bomb.pdf")
    good["scanned"] = scanned_pdf(folder / "scanned.pdf")
    bad["drawing"] = scanned_pdf(folder / "drawing.pdf", text=None)
    bad["bomb_docx"] = zip_bomb(folder / "bomb.docx", "word/document.xml")
    bad["bomb_pptx"] = zip_bomb(folder / "bomb.pptx", "ppt/slides/slide1.xml")
    bad["protected_xlsx"] = protected_office(folder / "budget.xlsx")
    from tests import scans

    bad["huge_png"] = scans.png_header(folder / "huge.png", 20_000, 20_000)
    good["legacy"] = folder / "legacy.txt"
    good["legacy"].write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e recipe from the harbour inn.".encode("cp1252"))
    bad["huge"] = folder / "huge.txt"
    with bad["huge"].open("wb") as fh:  # sparse: over the limit without using the disk
        fh.seek(300 * 1024 * 1024)
        fh.write(b"\n")
    bad["loop"] = folder / "loop"
    bad["loop"].symlink_to(folder / "loop")
    return {**{f"good_{k}": v for k, v in good.items()}, **{f"bad_{k}": v for k, v in bad.items()}}
