"""Write the sample library's documents of each format into ``resources/samples``.

    .venv/bin/python tools/make_samples.py

The samples are small, made here with the real libraries (python-pptx,
openpyxl, the ``email`` package, Pillow and fpdf2 for the scan; OpenDocument
and EPUB as their zip of XML) and committed, so the installed app ships one
document of each kind Docent reads. Running it again rewrites them.
"""

from __future__ import annotations

import sys
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import scans  # noqa: E402
from tests.test_formats_documents import make_epub, make_odt  # noqa: E402

SAMPLES = ROOT / "resources" / "samples"


def deck(path: Path) -> None:
    from pptx import Presentation

    presentation = Presentation()
    presentation.core_properties.title = "Harbour board, spring meeting"
    slides = (
        ("Harbour board, spring meeting", "Porthleven harbour · March"),
        ("Ferry timetable", "The winter ferry to Scilly sails on Tuesdays and Saturdays at 09:15."),
        ("Moorings", "Forty new visitor moorings are laid in the outer basin before Easter."),
    )
    for n, (title, body) in enumerate(slides):
        slide = presentation.slides.add_slide(presentation.slide_layouts[0 if n == 0 else 1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if n == 2:
            slide.notes_slide.notes_text_frame.text = "Ask the clerk about the mooring fees."
    presentation.save(str(path))


def workbook(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Harbour dues"
    sheet.append(["Month", "Visiting boats", "Dues (GBP)"])
    for row in (["January", 12, 840], ["February", 15, 1050], ["March", 31, 2170], ["April", 58, 4417]):
        sheet.append(row)
    book.properties.title = "Harbour dues"
    book.save(str(path))


def mail(path: Path) -> None:
    message = EmailMessage()
    message["From"] = "Harbour Master <master@harbour.example>"
    message["To"] = "crew@harbour.example"
    message["Subject"] = "Slipway closed for resurfacing"
    message["Date"] = "Tue, 03 Mar 2026 09:00:00 +0000"
    message.set_content("The slipway is closed for resurfacing from 14 to 18 April.\n"
                        "Boats should use the north quay meanwhile.\n")
    message.add_attachment("North quay: high water only, 2 hours either side.\n".encode(),
                           maintype="text", subtype="plain", filename="north-quay.txt")
    path.write_bytes(bytes(message))


def scan(path: Path) -> None:
    page = scans.page_image(["NOTICE TO MARINERS No. 7", "",
                             "The green buoy at the harbour entrance", "has been moved 20 metres east."],
                            dpi=100, font_pt=16)
    scans.image_pdf(path, [page.convert("1").convert("L")], dpi=100)


def main() -> None:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    deck(SAMPLES / "harbour-board.pptx")
    workbook(SAMPLES / "harbour-dues.xlsx")
    mail(SAMPLES / "slipway-closed.eml")
    scan(SAMPLES / "notice-to-mariners-scan.pdf")
    (SAMPLES / "tide-gauge.csv").write_text(
        "date,high water,height (m)\n2026-03-03,06:42,5.1\n2026-03-04,07:20,5.3\n", encoding="utf-8")
    make_odt(SAMPLES / "pilotage-rules.odt",
             "<text:h text:outline-level=\"1\">Pilotage</text:h>"
             "<text:p>Vessels over 30 metres take a pilot from the fairway buoy.</text:p>",
             title="Pilotage rules")
    make_epub(SAMPLES / "lighthouse-keepers.epub",
              {"ch1.xhtml": "<h1>The first keepers</h1><p>The light was first lit in 1843 by two keepers.</p>",
               "ch2.xhtml": "<h1>Automation</h1><p>The lighthouse was automated in 1992.</p>"},
              ["ch1.xhtml", "ch2.xhtml"], title="Lighthouse keepers")
    for path in sorted(SAMPLES.iterdir()):
        print(f"{path.stat().st_size:>8,} B  {path.name}")


if __name__ == "__main__":
    main()
