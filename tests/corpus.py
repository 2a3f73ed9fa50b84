"""Real documents with known content, made by the tests themselves."""

from __future__ import annotations

import os
from pathlib import Path

# Files the tests read and cannot make themselves (real prose), kept in the repository.
DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parent.parent


def eval_set(name: str) -> Path:
    """The shared development question set ``name`` (``pydocs``, ``pdfdocs``):
    under ``DOCENT_EVAL_DIR``'s parent when it is set, else ``../shared/eval``
    beside the repository. The folder may be missing; callers skip then."""
    env = os.environ.get("DOCENT_EVAL_DIR")
    if env:
        given = Path(env)
        return given if given.name == name else given.parent / name
    return REPO.parent / "shared" / "eval" / name

# Each PDF page talks about one distinct subject, so a search can be checked
# against the page it must find.
PDF_PAGES = [
    "Annual report of the Lighthouse Cooperative. This page introduces the cooperative, "
    "its members and the harbour towns it serves along the northern coast.",
    "Finance. The cooperative's revenue grew to 4.2 million euros in 2025, driven by the "
    "new ferry service. Operating costs stayed flat thanks to cheaper diesel contracts.",
    "Safety. The lighthouse keepers recorded 17 storm warnings during the winter. "
    "Every lamp was converted to LED lighting, which cut maintenance visits by half.",
    "Outlook. Next year the cooperative plans to open a marine biology museum in the old "
    "customs house and to train six new apprentice keepers.",
]


def make_pdf(path: Path, pages: list[str] = PDF_PAGES) -> Path:
    """A PDF with one paragraph per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    """A Word file with a heading, a paragraph and a table."""
    import docx

    d = docx.Document()
    d.add_heading("Beekeeping handbook", level=1)
    d.add_paragraph(
        "Honey bees forage up to five kilometres from the hive. A healthy colony in summer "
        "holds about fifty thousand worker bees."
    )
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Varroa treatment"
    table.cell(0, 1).text = "oxalic acid in December"
    table.cell(1, 0).text = "Swarm season"
    table.cell(1, 1).text = "May and June"
    d.save(str(path))
    return path


def make_markdown(path: Path) -> Path:
    path.write_text(
        "# Sourdough notes\n\nFeed the starter with equal weights of rye flour and water. "
        "The dough should prove for twelve hours in a cool kitchen.\n\n## Baking\n\n"
        "Bake at 240 degrees Celsius in a cast iron pot, lid on for the first twenty minutes.\n",
        encoding="utf-8",
    )
    return path


def make_text(path: Path) -> Path:
    path.write_text(
        "Bicycle maintenance log.\nThe chain was cleaned and lubricated with wax on 3 March. "
        "Tyre pressure for the touring bike is 4.5 bar at the front and 5 bar at the rear.\n",
        encoding="utf-8",
    )
    return path


def make_html(path: Path) -> Path:
    path.write_text(
        "<html><head><title>Orchid care</title><style>body{color:red}</style>"
        "<script>var secret = 'do not index';</script></head><body>"
        "<h1>Orchid care</h1><p>Water Phalaenopsis orchids once a week by soaking the roots "
        "for ten minutes.</p><p>They prefer bright indirect light and 60 percent humidity.</p>"
        "</body></html>",
        encoding="utf-8",
    )
    return path


def make_library(folder: Path) -> dict[str, Path]:
    """A folder with a multi-page PDF, a DOCX, Markdown, text and HTML."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "pdf": make_pdf(folder / "lighthouse-report.pdf"),
        "docx": make_docx(folder / "beekeeping.docx"),
        "md": make_markdown(folder / "sourdough.md"),
        "txt": make_text(folder / "bicycle.txt"),
        "html": make_html(folder / "orchids.html"),
    }


def make_mailbox(path: Path, count: int) -> Path:
    """A harbour office's mbox of ``count`` short messages, one berth note each
    (message ``i`` moves vessel ``i``), as an archive export writes it."""
    path.write_bytes(b"".join(
        b"From clerk@harbour.example Mon Apr  1 10:00:00 2024\n"
        b"From: clerk%d@harbour.example\nSubject: Berth note %d\n\n"
        b"Vessel %d moved to berth %d; the pilot boarded at %d:00.\n\n" % (i % 37, i, i, i % 40, i % 24)
        for i in range(1, count + 1)))
    return path
