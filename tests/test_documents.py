"""Loaders: real files in, the text a user would expect out (or a readable reason)."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfWriter

from app.core.documents import kind_for, load
from app.errors import Cancelled, ParseError, SkipFile

SENTENCES = [
    "The aardvark sleeps in its burrow during the day.",
    "Bananas ripen faster when stored next to apples.",
    "Copper conducts electricity better than aluminium.",
]


# -- helpers ----------------------------------------------------------------


def make_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    """Write a PDF with one page per string (an empty string: a blank page)."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    if title:
        pdf.set_title(title)
    pdf.output(str(path))
    return path


@pytest.fixture()
def three_page_pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "facts.pdf", SENTENCES, title="Three Facts")


def assert_headings_point_at_text(text: str, headings: tuple[tuple[int, str], ...]) -> None:
    for offset, heading in headings:
        assert heading in text[offset : offset + len(heading) + 10], (offset, heading)


# -- kinds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.pdf", "pdf"),
        ("A.PDF", "pdf"),
        ("b.docx", "docx"),
        ("c.md", "markdown"),
        ("d.txt", "text"),
        ("e.html", "html"),
        ("e.htm", "html"),
        ("f.py", "code"),
        ("g.yaml", "code"),
        ("README", "text"),
        ("Makefile", "code"),
        ("Dockerfile", "code"),
        ("h.xyz", None),
        ("i.doc", None),
        ("no_extension_file", None),
    ],
)
def test_kind_for(name: str, kind: str | None) -> None:
    assert kind_for(Path(name)) == kind


def test_unsupported_type_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("whatever")
    with pytest.raises(SkipFile) as info:
        load(path)
    assert info.value.reason == "unsupported file type .xyz"
    assert info.value.path == path


def test_old_word_format_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "old.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0 legacy")
    with pytest.raises(SkipFile, match=r"save it as \.docx"):
        load(path)


@pytest.mark.parametrize("name", ["empty.pdf", "empty.docx", "empty.md", "empty.txt", "empty.html", "empty.py"])
def test_zero_byte_file_is_a_parse_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(ParseError) as info:
        load(path)
    assert info.value.reason == "empty file"


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="not found"):
        load(tmp_path / "gone.pdf")


# -- PDF --------------------------------------------------------------------


def test_pdf_text_lands_on_the_right_page(three_page_pdf: Path) -> None:
    progress: list[tuple[int, int]] = []
    doc = load(three_page_pdf, on_page=lambda done, total: progress.append((done, total)))

    assert doc.kind == "pdf"
    assert doc.title == "Three Facts"
    assert [page.number for page in doc.pages] == [1, 2, 3]
    for page, sentence in zip(doc.pages, SENTENCES):
        assert sentence in page.text
        others = [s for s in SENTENCES if s != sentence]
        assert not any(other in page.text for other in others)
        assert page.label is None  # no labels defined: the number says it all
    assert progress == [(1, 3), (2, 3), (3, 3)]


def test_pdf_blank_page_keeps_physical_numbering(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "gap.pdf", [SENTENCES[0], "", SENTENCES[2]])
    doc = load(path)
    assert [page.number for page in doc.pages] == [1, 2, 3]
    assert doc.pages[1].text == ""
    assert SENTENCES[2] in doc.pages[2].text


def test_pdf_with_only_a_blank_page_has_no_text(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "scan.pdf", [""])
    with pytest.raises(ParseError) as info:
        load(path)
    assert info.value.reason.startswith("no extractable text")


def test_pdf_with_user_password_is_refused(three_page_pdf: Path, tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=three_page_pdf)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    path = tmp_path / "locked.pdf"
    writer.write(path)
    with pytest.raises(ParseError) as info:
        load(path)
    assert info.value.reason.startswith("encrypted")
    assert "password" in info.value.reason


def test_pdf_with_only_owner_password_loads(three_page_pdf: Path, tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=three_page_pdf)
    writer.encrypt(user_password="", owner_password="owner")
    path = tmp_path / "restricted.pdf"
    writer.write(path)
    doc = load(path)
    assert SENTENCES[1] in doc.pages[1].text


def test_truncated_pdf_is_damaged(three_page_pdf: Path, tmp_path: Path) -> None:
    data = three_page_pdf.read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ParseError) as info:
        load(path)
    assert info.value.reason == "not a valid PDF (damaged or truncated)"


def test_random_bytes_named_pdf_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "noise.pdf"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ParseError, match="not a valid PDF"):
        load(path)


def test_pdf_page_labels_and_bookmarks(three_page_pdf: Path, tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=three_page_pdf)
    writer.set_page_label(0, 0, "/r", start=1)  # front matter: "i"
    writer.set_page_label(1, 2, "/D", start=1)  # body: "1", "2"
    writer.add_outline_item(title="Bananas", page_number=1)
    path = tmp_path / "labelled.pdf"
    writer.write(path)

    doc = load(path)
    assert [page.number for page in doc.pages] == [1, 2, 3]
    assert [page.label for page in doc.pages] == ["i", "1", "2"]
    assert doc.pages[1].headings == ((0, "Bananas"),)
    assert doc.pages[0].headings == ()


def test_pdf_load_can_be_stopped_between_pages(three_page_pdf: Path) -> None:
    seen: list[int] = []
    with pytest.raises(Cancelled):
        load(
            three_page_pdf,
            on_page=lambda done, total: seen.append(done),
            should_stop=lambda: len(seen) >= 1,
        )
    assert seen == [1]


# -- Word -------------------------------------------------------------------


def test_docx_keeps_headings_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Quarterly Report", level=0)
    document.add_paragraph("Revenue grew in every region this quarter.")
    document.add_heading("Results by region", level=1)
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate([["Region", "Q1", "Q2"], ["North", "10", "12"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("The table above is unaudited.")
    path = tmp_path / "report.docx"
    document.save(str(path))

    doc = load(path)
    (page,) = doc.pages
    assert doc.kind == "docx"
    assert doc.title == "Quarterly Report"
    assert page.number is None
    text = page.text
    assert "Revenue grew in every region this quarter." in text
    assert "Region | Q1 | Q2\nNorth | 10 | 12" in text
    # Body order: heading, table, then the paragraph written after the table.
    assert text.index("Results by region") < text.index("North | 10") < text.index("unaudited")
    assert [heading for _, heading in page.headings] == ["Quarterly Report", "Results by region"]
    assert_headings_point_at_text(text, page.headings)
    assert "Results by region\n" in text  # a heading is a line of its own


def test_docx_title_from_core_properties(tmp_path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Official Title"
    document.add_paragraph("Body text only.")
    path = tmp_path / "titled.docx"
    document.save(str(path))
    assert load(path).title == "Official Title"


def test_damaged_docx_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ParseError, match="not a valid Word document"):
        load(path)


# -- Markdown ---------------------------------------------------------------


def test_markdown_headings_outside_code_fences(tmp_path: Path) -> None:
    source = (
        "# Install Guide\n"
        "\n"
        "Run the installer first.\n"
        "\n"
        "```bash\n"
        "# this is a shell comment, not a heading\n"
        "./install.sh\n"
        "```\n"
        "\n"
        "Troubleshooting\n"
        "---------------\n"
        "\n"
        "## Uninstall ##\n"
        "Delete the folder.\n"
    )
    path = tmp_path / "guide.md"
    path.write_text(source, encoding="utf-8")

    doc = load(path)
    (page,) = doc.pages
    assert doc.kind == "markdown"
    assert doc.title == "Install Guide"
    assert page.text == source  # kept as written
    assert [heading for _, heading in page.headings] == ["Install Guide", "Troubleshooting", "Uninstall"]
    assert_headings_point_at_text(page.text, page.headings)


# -- plain text and code ----------------------------------------------------

CAFE = "Café naïve – “quoted” résumé, déjà vu."


@pytest.mark.parametrize(
    ("encoded", "label"),
    [
        (CAFE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + CAFE.encode("utf-8"), "utf-8 with BOM"),
        (codecs.BOM_UTF16_LE + CAFE.encode("utf-16-le"), "utf-16 LE with BOM"),
        (codecs.BOM_UTF16_BE + CAFE.encode("utf-16-be"), "utf-16 BE with BOM"),
        (codecs.BOM_UTF32_LE + CAFE.encode("utf-32-le"), "utf-32 LE with BOM"),
        (CAFE.encode("cp1252"), "windows-1252"),
    ],
)
def test_text_encodings_are_decoded(tmp_path: Path, encoded: bytes, label: str) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(encoded)
    doc = load(path)
    assert doc.kind == "text"
    assert doc.pages[0].text == CAFE, label
    assert doc.pages[0].number is None


def test_text_line_endings_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "dos.txt"
    path.write_bytes(b"first line\r\nsecond line\r\n")
    assert load(path).pages[0].text == "first line\nsecond line\n"


def test_code_files_are_read_as_written(tmp_path: Path) -> None:
    source = "def greet(name: str) -> str:\n    return f'hello {name}'\n"
    path = tmp_path / "greet.py"
    path.write_text(source, encoding="utf-8")
    doc = load(path)
    assert doc.kind == "code"
    assert doc.pages[0].text == source


def test_binary_file_named_txt_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "picture.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(SkipFile) as info:
        load(path)
    assert info.value.reason == "binary file"


def test_blank_text_file_has_nothing_to_index(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text("   \n\n  \n")
    with pytest.raises(ParseError, match="no text"):
        load(path)


# -- HTML -------------------------------------------------------------------


def test_html_visible_text_only(tmp_path: Path) -> None:
    markup = """<!DOCTYPE html>
<html><head>
  <meta charset="windows-1252">
  <title>Field   Notes</title>
  <style>body { color: red; }</style>
  <script>var secretToken = "do-not-index";</script>
</head>
<body>
  <h1>Birds of the   Marsh</h1>
  <p>The heron waits
     motionless at dawn.</p>
  <noscript>Please enable JavaScript.</noscript>
  <ul><li>Heron</li><li>Bittern</li></ul>
  <table><tr><th>Bird</th><th>Count</th></tr><tr><td>Heron</td><td>3</td></tr></table>
  <pre>  keep   this
    layout</pre>
  <h2>Caf\xe9 &amp; hide</h2>
  <svg><title>icon</title><text>vector label</text></svg>
</body></html>"""
    path = tmp_path / "notes.html"
    path.write_bytes(markup.encode("cp1252"))

    doc = load(path)
    (page,) = doc.pages
    text = page.text
    assert doc.kind == "html"
    assert doc.title == "Field Notes"
    assert text.startswith("Field Notes\n")
    assert "The heron waits motionless at dawn." in text
    assert "Heron\nBittern" in text
    assert "Bird | Count\nHeron | 3" in text
    assert "  keep   this\n    layout" in text
    for hidden in ("secretToken", "color: red", "enable JavaScript", "vector label", "icon"):
        assert hidden not in text
    assert [heading for _, heading in page.headings] == ["Birds of the Marsh", "Café & hide"]
    assert_headings_point_at_text(text, page.headings)


def test_html_without_closing_head_still_has_body_text(tmp_path: Path) -> None:
    path = tmp_path / "sloppy.htm"
    path.write_text("<html><head><title>T</title><p>Body text survives.</p>", encoding="utf-8")
    doc = load(path)
    assert "Body text survives." in doc.pages[0].text


# -- robustness -------------------------------------------------------------


def test_unexpected_parser_exception_becomes_parse_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.documents import markdown as markdown_module

    def explode(text: str) -> None:
        raise ValueError("parser bug")

    monkeypatch.setattr(markdown_module, "find_headings", explode)
    path = tmp_path / "x.md"
    path.write_text("# Hello\n")
    with pytest.raises(ParseError) as info:
        load(path)
    assert "parser bug" in info.value.reason


def test_markdown_heading_text_is_what_a_reader_sees(tmp_path: Path) -> None:
    source = (
        "# The `load()` call and [its manual](http://example.org/m)\n"
        "\n"
        "Some text.\n"
        "\n"
        "## *Nested* **bold** `timers[Symbol.dispose]()`\n"
        "\n"
        "    # indented code, not a heading\n"
        "\n"
        "<div>\n"
        "# inside a block of HTML, not a heading\n"
        "</div>\n"
    )
    path = tmp_path / "api.md"
    path.write_text(source, encoding="utf-8")
    (page,) = load(path).pages
    assert [heading for _, heading in page.headings] == [
        "The load() call and its manual", "Nested bold timers[Symbol.dispose]()",
    ]
    assert [offset for offset, _ in page.headings] == [0, source.index("## *Nested*")]
