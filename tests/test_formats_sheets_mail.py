"""Spreadsheets and e-mail: real files in, what a person would read out (or a reason)."""

from __future__ import annotations

import datetime as dt
import io
import mailbox
import re
import shutil
import struct
import zipfile
from email.message import EmailMessage
from pathlib import Path

import docx
import openpyxl
import pytest

from app.core.documents import load, mail, sheets
from app.core.documents.model import citation_place
from app.core.documents.archive import OLE_MAGIC, PROTECTED
from app.errors import Cancelled, ParseError

DATA = Path(__file__).resolve().parent / "data"


def assert_headings_point_at_text(text: str, headings: tuple[tuple[int, str], ...]) -> None:
    for offset, heading in headings:
        assert text[offset:].startswith(heading), (offset, heading, text[offset : offset + 40])


def rewrite_member(path: Path, name: str, edit) -> None:
    """Rewrite one member of a zip file through ``edit(bytes) -> bytes``."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, edit(data) if info.filename == name else data)


# -- .xlsx --------------------------------------------------------------------


def sales_workbook(path: Path, rows: int = 30) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sales"
    ws.append(["Region", "Quarter", "Revenue", "Booked", "Double"])
    regions = ["North", "South", "East", "West"]
    for i in range(rows):
        r = i + 2
        ws.append([regions[i % 4], "Q3", 4417 + i, dt.datetime(2024, 3, 1 + i % 28), f"=C{r}*2"])
        ws.cell(r, 3).number_format = "#,##0"
    hidden = wb.create_sheet("Archive")
    hidden.sheet_state = "hidden"
    hidden.append(["Item", "Share"])
    hidden.append(["Legacy widgets", 0.125])
    hidden.cell(2, 2).number_format = "0.0%"
    wb.properties.title = "Quarterly sales"
    wb.save(path)

    # openpyxl writes formulas without the value Excel caches beside them; add it,
    # as a workbook saved by Excel has it.
    def cache(xml: bytes) -> bytes:
        def value(match: re.Match[bytes]) -> bytes:
            row = int(match.group(1))
            return match.group(0).replace(b"<v></v>", b"<v>%d</v>" % ((4417 + row - 2) * 2))

        return re.sub(rb'<c r="E(\d+)"><f>[^<]*</f><v></v>', value, xml)

    rewrite_member(path, "xl/worksheets/sheet1.xml", cache)
    return path


def test_xlsx_rows_read_with_their_headers_under_sheet_and_row_headings(tmp_path: Path) -> None:
    path = sales_workbook(tmp_path / "sales.xlsx")
    progress: list[tuple[int, int]] = []
    doc = load(path, on_page=lambda done, total: progress.append((done, total)))

    assert doc.kind == "xlsx" and doc.title == "Quarterly sales"
    sales, archive = doc.pages
    assert sales.number is None
    # One line per row, cells named by their header, as shown: thousands
    # separators, ISO dates, the formula's cached value.
    assert "Region: North · Quarter: Q3 · Revenue: 4,417 · Booked: 2024-03-01 · Double: 8834" in sales.text
    assert "Region: South · Quarter: Q3 · Revenue: 4,418 · Booked: 2024-03-02 · Double: 8836" in sales.text
    # The header row is not repeated as a row of its own.
    assert "Region: Region" not in sales.text
    # Headings say the sheet and the spreadsheet's row numbers, and stand in the text.
    assert sales.headings[0] == (0, sales.headings[0][1])
    assert re.fullmatch(r"Sales, rows 2–\d+", sales.headings[0][1])
    assert sales.headings[-1][1].endswith("–31")
    assert_headings_point_at_text(sales.text, sales.headings)
    ranges = [tuple(map(int, re.findall(r"\d+", h))) for _, h in sales.headings]
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))  # contiguous blocks
    assert all(last - first < sheets.BLOCK_ROWS for first, last in ranges)
    # Hidden sheets are read, and say so.
    assert archive.headings == ((0, "Archive (hidden), row 2"),)
    assert "Item: Legacy widgets · Share: 12.5%" in archive.text
    assert progress[-1] == (2, 2)


def test_a_sheet_without_a_header_row_names_columns_by_letter(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append([1, 2.5, None, "x"])
    ws.append([3, 4, "y", True])
    wb.save(tmp_path / "plain.xlsx")
    page = load(tmp_path / "plain.xlsx").pages[0]
    assert page.text.splitlines()[1:] == ["A: 1 · B: 2.5 · D: x", "A: 3 · B: 4 · C: y · D: TRUE"]
    assert page.headings == ((0, "Data, rows 1–2"),)


def test_a_title_line_above_the_header_is_kept_as_text(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Stock count, March"])
    ws.append([])
    ws.append(["Part", "Bin", "Count"])
    ws.append(["Hex bolt M6", "B-12", 40])
    wb.save(tmp_path / "stock.xlsx")
    text = load(tmp_path / "stock.xlsx").pages[0].text
    assert text.splitlines() == ["Sheet, rows 1–4", "Stock count, March", "Part: Hex bolt M6 · Bin: B-12 · Count: 40"]


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_an_xlsx_zip_bomb_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    block = b"<row>" + b"0" * (1024 * 1024 - 5)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            for _ in range(300):  # 300 MB inflated, a few hundred KB on disk
                fh.write(block)
    assert path.stat().st_size < 5 * 1024**2
    with pytest.raises(ParseError) as err:
        load(path)
    assert "zip bomb" in err.value.reason


def test_a_password_protected_workbook_says_so(tmp_path: Path) -> None:
    path = tmp_path / "locked.xlsx"
    path.write_bytes(OLE_MAGIC + b"\0" * 4096)
    with pytest.raises(ParseError) as err:
        load(path)
    assert err.value.reason == PROTECTED == "protected: remove the password or export to PDF"


def test_a_damaged_workbook_fails_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "not a workbook")
    with pytest.raises(ParseError) as err:
        load(path)
    assert "not a valid Excel file" in err.value.reason


def test_rows_past_the_cap_are_not_read_and_the_sheet_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sheets, "MAX_ROWS", 50)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Log"
    ws.append(["Event", "Count"])
    for i in range(200):
        ws.append([f"event {i}", i])
    wb.create_sheet("Later").append(["never", "read"])
    wb.save(tmp_path / "big.xlsx")
    doc = load(tmp_path / "big.xlsx")
    assert len(doc.pages) == 1
    text = doc.pages[0].text
    assert "Event: event 48 · Count: 48" in text and "event 49" not in text
    assert ("[Docent indexed rows 1–50 of this sheet; the rest is not indexed: "
            "the sheet is larger than Docent reads]") in text
    assert "the sheets after this one" in text


def test_a_spreadsheet_read_can_be_stopped(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("n,square\n" + "".join(f"{i},{i * i}\n" for i in range(5000)))
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        load(path, should_stop=should_stop)


# -- .ods ---------------------------------------------------------------------

ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
)


def s(text: str) -> str:
    return f'<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>'


def make_ods(path: Path, tables: str, title: str = "Warehouse") -> Path:
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODS_NS} office:version="1.2">'
        '<office:automatic-styles>'
        '<style:style style:name="ta1" style:family="table"><style:table-properties table:display="true"/></style:style>'
        '<style:style style:name="ta2" style:family="table"><style:table-properties table:display="false"/></style:style>'
        f'</office:automatic-styles><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body>'
        '</office:document-content>'
    )
    meta = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {ODS_NS}><office:meta>'
            f'<dc:title>{title}</dc:title></office:meta></office:document-meta>')
    manifest = (f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest {ODS_NS}>'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                '</manifest:manifest>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        # The OpenDocument rule: "mimetype" first, stored, not compressed.
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        zf.writestr("content.xml", content)
        zf.writestr("meta.xml", meta)
        zf.writestr("META-INF/manifest.xml", manifest)
    return path


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_ods_sheets_with_a_million_repeated_empty_rows_read_fast(tmp_path: Path) -> None:
    empty_tail = '<table:table-cell table:number-columns-repeated="16380"/>'
    tables = (
        '<table:table table:name="Stock" table:style-name="ta1">'
        '<table:table-column table:number-columns-repeated="16384"/>'
        f'<table:table-row>{s("Item")}{s("Count")}{s("Received")}{empty_tail}</table:table-row>'
        f'<table:table-row>{s("Hex bolts")}'
        '<table:table-cell office:value-type="float" office:value="1250"><text:p>1,250</text:p></table:table-cell>'
        '<table:table-cell office:value-type="date" office:date-value="2024-03-01">'
        f'<text:p>03/01/24</text:p></table:table-cell>{empty_tail}</table:table-row>'
        f'<table:table-row table:number-rows-repeated="2">{s("Spare nut")}{empty_tail}</table:table-row>'
        '<table:table-row table:number-rows-repeated="1048572">'
        '<table:table-cell table:number-columns-repeated="16384"/></table:table-row>'
        '</table:table>'
        '<table:table table:name="Old" table:style-name="ta2">'
        f'<table:table-row>{s("Kept anyway")}</table:table-row>'
        '<table:table-row table:number-rows-repeated="1048575"><table:table-cell/></table:table-row>'
        '</table:table>'
    )
    path = make_ods(tmp_path / "stock.ods", tables)
    doc = load(path)
    assert doc.kind == "ods" and doc.title == "Warehouse"
    stock, old = doc.pages
    assert stock.text.splitlines() == [
        "Stock, rows 2–4",
        "Item: Hex bolts · Count: 1,250 · Received: 2024-03-01",
        "Item: Spare nut",
        "Item: Spare nut",
    ]
    assert stock.headings == ((0, "Stock, rows 2–4"),)
    assert old.headings == ((0, "Old (hidden), row 1"),)
    assert "Kept anyway" in old.text


def test_an_encrypted_ods_says_it_is_protected(tmp_path: Path) -> None:
    path = make_ods(tmp_path / "secret.ods", "")

    def encrypt(xml: bytes) -> bytes:
        return xml.replace(b'media-type="text/xml"/>',
                           b'media-type="text/xml"><manifest:encryption-data/></manifest:file-entry>')

    rewrite_member(path, "META-INF/manifest.xml", encrypt)
    with pytest.raises(ParseError) as err:
        load(path)
    assert err.value.reason == PROTECTED


# -- .csv / .tsv --------------------------------------------------------------


def test_csv_delimiter_and_legacy_encoding_are_detected(tmp_path: Path) -> None:
    rows = ["Name;Stadt;Betrag"] + [f"Müller {i};Köln;12,5{i}" for i in range(10)] + ["Café crème;Besançon;3,00"]
    path = tmp_path / "Kunden.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("cp1252"))
    doc = load(path)
    page = doc.pages[0]
    assert doc.kind == "csv" and doc.title is None
    assert "Name: Müller 0 · Stadt: Köln · Betrag: 12,50" in page.text
    assert "Name: Café crème · Stadt: Besançon · Betrag: 3,00" in page.text
    assert page.headings[0] == (0, "Kunden.csv, rows 2–12")


def test_tsv_is_tab_separated_and_quoted_fields_keep_their_commas(tmp_path: Path) -> None:
    path = tmp_path / "people.tsv"
    path.write_text("name\tnote\nAda\tlikes tea, not coffee\n", encoding="utf-8")
    assert "name: Ada · note: likes tea, not coffee" in load(path).pages[0].text
    # Excel's "Unicode text": UTF-16 with a BOM, tab-separated, under a .csv name.
    wide = tmp_path / "unicode.csv"
    wide.write_bytes("Stadt\tEinwohner\r\nZürich\t421878\r\n".encode("utf-16"))
    assert "Stadt: Zürich · Einwohner: 421878" in load(wide).pages[0].text
    comma = tmp_path / "quoted.csv"
    comma.write_text('city,motto\n"Paris, France","Fluctuat, nec mergitur"\n', encoding="utf-8-sig")
    assert "city: Paris, France · motto: Fluctuat, nec mergitur" in load(comma).pages[0].text


# -- .eml ---------------------------------------------------------------------


def docx_bytes(*paragraphs: str) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def board_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Ada Lovelace <ada@example.org>"
    msg["To"] = "Board <board@example.org>"
    msg["Cc"] = "=?utf-8?q?Jos=C3=A9?= <jose@example.org>"
    msg["Date"] = "Tue, 05 Mar 2024 09:30:00 +0000"
    msg["Subject"] = "Board minutes for March"
    msg.set_content(
        "<html><head><style>p{color:red}</style><script>track()</script></head>"
        "<body><p>Hello team,</p><p>the <b>orchard budget</b> was approved.</p></body></html>",
        subtype="html",
    )
    msg.add_attachment(docx_bytes("Minutes", "The committee agreed to plant quince trees."),
                       maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                       filename="minutes.docx")
    msg.add_attachment("Bring rakes on Saturday.\n", filename="notes.txt")
    msg.add_attachment(b"MZ\x90\x00binary", maintype="application", subtype="octet-stream",
                       filename="setup.exe")
    return msg


def test_an_eml_reads_its_html_body_and_its_attachments(tmp_path: Path) -> None:
    path = tmp_path / "board.eml"
    path.write_bytes(bytes(board_message()))
    doc = load(path)
    assert doc.kind == "email" and doc.title == "Board minutes for March"
    message, *attached = doc.pages
    assert message.headings == ((0, "Board minutes for March"),)
    lines = message.text.splitlines()
    assert lines[0] == "Board minutes for March"
    assert "From: Ada Lovelace <ada@example.org>" in lines
    assert "To: Board <board@example.org>" in lines
    assert "Cc: José <jose@example.org>" in lines
    assert "Date: Tue, 05 Mar 2024 09:30:00 +0000" in lines
    assert "Hello team," in message.text and "the orchard budget was approved." in message.text
    assert "track()" not in message.text and "color" not in message.text
    assert "Attachment not indexed: setup.exe (unsupported file type .exe)" in message.text

    # Each attachment is a document of its own: its own text, tied to its message by its part.
    parts = {part.name: part for part in doc.parts}
    assert parts["minutes.docx"].kind == "docx" and parts["minutes.docx"].reason is None
    assert parts["minutes.docx"].message == "Board minutes for March"
    assert parts["notes.txt"].kind == "text"
    assert parts["setup.exe"].reason == "unsupported file type .exe" and parts["setup.exe"].kind is None
    by_part = {page.part: page for page in attached}
    minutes = by_part[parts["minutes.docx"].locator]
    assert minutes.text.startswith("Minutes") and "The committee agreed to plant quince trees." in minutes.text
    assert minutes.number is None
    assert_headings_point_at_text(minutes.text, minutes.headings)
    notes = by_part[parts["notes.txt"].locator]
    assert notes.text.strip() == "Bring rakes on Saturday."
    assert message.part is None


def test_an_attached_pdf_keeps_its_own_page_numbers_and_can_be_extracted(tmp_path: Path, monkeypatch) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in ("Pruning starts in February.", "Grafting follows in April."):
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    msg = EmailMessage()
    msg["Subject"] = "Orchard calendar"
    msg.set_content("The calendar is attached.")
    calendar = bytes(pdf.output())
    msg.add_attachment(calendar, maintype="application", subtype="pdf", filename="calendar.pdf")
    msg.add_attachment(b"x" * (len(calendar) + 1), maintype="text", subtype="plain", filename="huge.txt")
    path = tmp_path / "calendar.eml"
    path.write_bytes(bytes(msg))
    monkeypatch.setattr(mail, "MAX_ATTACHMENT_BYTES", len(calendar))
    doc = load(path)
    message, first, second = doc.pages
    assert (first.number, second.number) == (1, 2)
    assert first.text.strip() == "Pruning starts in February."
    assert second.text.strip() == "Grafting follows in April."
    assert first.part == second.part == "1"
    assert "Attachment not indexed: huge.txt (larger than" in message.text
    calendar_part, huge = doc.parts
    assert (calendar_part.name, calendar_part.kind, calendar_part.pages) == ("calendar.pdf", "pdf", 2)
    assert huge.name == "huge.txt" and huge.reason.startswith("larger than")
    # The viewer gets the attached file back as it was sent.
    assert mail.extract_attachment(path, "1") == ("calendar.pdf", calendar)
    with pytest.raises(ParseError, match="no longer in calendar.eml"):
        mail.extract_attachment(path, "7")


def test_attached_mail_is_read_two_levels_deep_and_no_deeper(tmp_path: Path) -> None:
    def message(subject: str, body: str, inner: EmailMessage | None = None) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = "x@example.org"
        msg.set_content(body)
        if inner is not None:
            msg.add_attachment(inner)
        return msg

    level3 = message("Level three", "too deep to read")
    level2 = message("Level two", "second level body", level3)
    level1 = message("Level one", "first level body", level2)
    top = message("Top", "top body", level1)
    # An .eml attached as a plain file is mail too.
    top.add_attachment(bytes(message("Forwarded file", "forwarded body")), maintype="application",
                       subtype="octet-stream", filename="forward.eml")
    path = tmp_path / "nested.eml"
    path.write_bytes(bytes(top))
    doc = load(path)
    text = "\n".join(page.text for page in doc.pages)
    assert "first level body" in text and "second level body" in text
    assert "forwarded body" in text
    assert "too deep to read" not in text
    assert "Attachment not indexed: Level three.eml (mail attached to mail more than 2 levels deep" in text
    names = {part.locator: part.name for part in doc.parts}
    assert names == {"1": "Level one.eml", "1/1": "Level two.eml", "1/1/1": "Level three.eml",
                     "2": "forward.eml"}
    by_part = {page.part: page for page in doc.pages}
    assert len(doc.pages) == 4  # the message, two levels of attached mail, the attached file
    assert "first level body" in by_part["1"].text and "second level body" in by_part["1/1"].text
    assert "forwarded body" in by_part["2"].text
    # An attached message is shown within its message; a file attached to it can be extracted.
    with pytest.raises(ParseError, match="shown within the message"):
        mail.extract_attachment(path, "1")


def test_a_malformed_eml_still_gives_its_text(tmp_path: Path) -> None:
    path = tmp_path / "odd.eml"
    path.write_bytes(
        b"Subject: =?x-unknown?q?Caf=E9?= menu\r\n"
        b"From: <<broken@@address\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"VGhlIHNvdXAgb2YgdGhlIGRheSBpcyBsZW50aWw=!!not base64\r\n"
    )
    doc = load(path)
    assert "The soup of the day is lentil" in doc.pages[0].text
    assert "menu" in (doc.title or "")


def test_a_binary_file_named_eml_fails_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "photo.eml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ParseError) as err:
        load(path)
    assert "not an e-mail message" in err.value.reason


# -- .mbox --------------------------------------------------------------------


def test_an_mbox_gives_one_headed_page_per_message(tmp_path: Path) -> None:
    path = tmp_path / "Team.mbox"
    box = mailbox.mbox(str(path))
    for i, (sender, subject) in enumerate([("Ada <ada@example.org>", "Orchard"),
                                           ("bob@example.org", "Quinces"),
                                           ("Cy <cy@example.org>", "Rakes")]):
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = "team@example.org"
        msg["Subject"] = subject
        msg["Date"] = f"Mon, 0{i + 1} Apr 2024 10:00:00 +0000"
        msg.set_content(f"Message number {i + 1} about {subject.lower()}.")
        box.add(msg)
    box.close()
    progress: list[tuple[int, int]] = []
    doc = load(path, on_page=lambda done, total: progress.append((done, total)))
    assert doc.kind == "mbox" and doc.title == "Team"
    assert [page.headings for page in doc.pages] == [
        ((0, "Orchard — Ada, 2024-04-01 10:00"),),
        ((0, "Quinces — bob@example.org, 2024-04-02 10:00"),),
        ((0, "Rakes — Cy, 2024-04-03 10:00"),),
    ]
    assert "Message number 2 about quinces." in doc.pages[1].text
    assert progress == [(1, 3), (2, 3), (3, 3)]


def tiny_mbox(path: Path, count: int) -> Path:
    path.write_bytes(b"".join(
        b"From sender@example.org Mon Apr  1 10:00:00 2024\n"
        b"Subject: note %d\n\nbody %d\n\n" % (i, i) for i in range(count)))
    return path


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_a_large_mbox_can_be_stopped_between_messages(tmp_path: Path) -> None:
    path = tiny_mbox(tmp_path / "big.mbox", 10_000)
    progress: list[tuple[int, int]] = []
    with pytest.raises(Cancelled):
        load(path, on_page=lambda done, total: progress.append((done, total)),
             should_stop=lambda: len(progress) >= 25)
    assert progress[-1] == (25, 10_000)


def test_an_mbox_past_the_message_cap_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(mail, "MAX_MESSAGES", 3)
    doc = load(tiny_mbox(tmp_path / "five.mbox", 5))
    assert len(doc.pages) == 3
    assert doc.pages[-1].text.endswith(
        "[Docent indexed messages 1–3 of this mailbox; the rest is not indexed: "
        "the mailbox is larger than Docent reads]")


def test_a_file_with_no_messages_is_not_a_mailbox(tmp_path: Path) -> None:
    path = tmp_path / "empty.mbox"
    path.write_text("just some words\n")
    with pytest.raises(ParseError) as err:
        load(path)
    assert "no messages" in err.value.reason


# -- .msg ---------------------------------------------------------------------


def test_an_outlook_msg_is_read_with_its_attached_message(tmp_path: Path) -> None:
    # A real Outlook file from msg-parser's tests (see tests/data/README).
    path = tmp_path / "outer.msg"
    shutil.copy(DATA / "outer.msg", path)
    doc = load(path)
    assert doc.kind == "msg" and doc.title == "outer subject"
    first, attached = doc.pages
    assert first.headings == ((0, "outer subject"),)
    assert "To: outer@foo.bar <outer@foo.bar>" in first.text and "Outer body" in first.text
    (part,) = doc.parts
    assert (part.name, part.kind, part.message) == ("test.msg", "email", "outer subject")
    assert attached.part == part.locator and attached.headings[0][0] == 0
    assert "test@foobar.com" in attached.text


def build_msg(path: Path, *, subject: str, body: str | None = None, html: bytes | None = None,
              sent: dt.datetime | None = None, attachment: tuple[str, bytes] | None = None) -> Path:
    """An Outlook message laid out as MS-OXMSG says, written by extract-msg's own OLE writer."""
    from extract_msg.ole_writer import OleWriter

    def utf16(text: str) -> bytes:
        return text.encode("utf-16-le")

    def properties(header: bytes, entries: list[tuple[int, int]]) -> bytes:
        # Each fixed-size property: tag (id << 16 | type), flags (readable, writable), value.
        return header + b"".join(struct.pack("<IIQ", tag, 6, value) for tag, value in entries)

    entries = [(0x340D0003, 0x40000)]  # store support mask: strings are Unicode
    if sent is not None:
        entries.append((0x00390040, int((sent.timestamp() + 11_644_473_600) * 10**7)))  # FILETIME
    count = 1 if attachment else 0
    writer = OleWriter()
    writer.addEntry("__properties_version1.0",
                    properties(b"\0" * 8 + struct.pack("<IIII", 0, count, 0, count) + b"\0" * 8, entries))
    writer.addEntry("__substg1.0_001A001F", utf16("IPM.Note"))
    writer.addEntry("__substg1.0_0037001F", utf16(subject))
    writer.addEntry("__substg1.0_0C1A001F", utf16("Ada Lovelace"))
    if body is not None:
        writer.addEntry("__substg1.0_1000001F", utf16(body))
    if html is not None:
        writer.addEntry("__substg1.0_10130102", html)
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    if attachment:
        name, data = attachment
        folder = "__attach_version1.0_#00000000"
        writer.addEntry(folder, storage=True)
        # Attach method 1: the file's bytes are in the message.
        writer.addEntry(f"{folder}/__properties_version1.0", properties(b"\0" * 8, [(0x37050003, 1)]))
        writer.addEntry(f"{folder}/__substg1.0_3707001F", utf16(name))
        writer.addEntry(f"{folder}/__substg1.0_37010102", data)
    writer.write(str(path))
    return path


def test_a_msg_reads_its_sender_date_body_and_attached_file(tmp_path: Path) -> None:
    path = build_msg(tmp_path / "harvest.msg", subject="Harvest plan",
                     body="See the attached plan for the pear harvest.",
                     sent=dt.datetime(2024, 9, 2, 8, 15, tzinfo=dt.timezone.utc),
                     attachment=("plan.txt", b"Pick the Conference pears in the second week of September.\n"))
    doc = load(path)
    assert doc.title == "Harvest plan"
    message, plan = doc.pages
    assert message.text.splitlines() == [
        "Harvest plan", "", "From: Ada Lovelace", "Date: 2024-09-02 08:15 +0000", "",
        "See the attached plan for the pear harvest.",
    ]
    assert plan.part == "1" and [(p.name, p.kind) for p in doc.parts] == [("plan.txt", "text")]
    assert "Conference pears in the second week of September" in plan.text
    assert mail.extract_attachment(path, "1") == (
        "plan.txt", b"Pick the Conference pears in the second week of September.\n")


def test_a_msg_without_a_plain_body_gives_its_html_text(tmp_path: Path) -> None:
    html = b"<html><head><style>p{margin:0}</style></head><body><p>Pears <b>ripen</b> late.</p></body></html>"
    doc = load(build_msg(tmp_path / "html.msg", subject="Ripening", html=html))
    assert doc.pages[0].text.endswith("\n\nPears ripen late.")
    assert "margin" not in doc.pages[0].text


@pytest.mark.parametrize("content", [OLE_MAGIC + b"\0" * 2048, b"Subject: not outlook\n\nhello"])
def test_a_damaged_msg_fails_with_a_reason(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.msg"
    path.write_bytes(content)
    with pytest.raises(ParseError) as err:
        load(path)
    assert err.value.reason == "not a valid Outlook message (damaged, or another kind of file)"


# -- through the library ------------------------------------------------------


def test_a_spreadsheet_hit_is_cited_by_sheet_and_rows(library, tmp_path: Path) -> None:
    folder = tmp_path / "books"
    folder.mkdir()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sales"
    ws.append(["Region", "Product", "Units"])
    for i in range(2, 61):
        product = "Zanzibar saffron tins" if i == 7 else f"Standard widget {i}"
        ws.append([["North", "South"][i % 2], product, 100 + i])
    wb.save(folder / "ledger.xlsx")
    report = library.indexer.ingest([folder])
    assert report.indexed == 1 and not report.failed
    hit = library.retriever.search("Zanzibar saffron tins", k=1).hits[0]
    heading = hit.chunk.heading or ""
    assert heading.startswith("Sales, rows ")
    first, last = map(int, re.findall(r"\d+", heading))
    assert first <= 7 <= last
    assert "Product: Zanzibar saffron tins" in hit.chunk.text


def test_an_email_hit_is_cited_by_subject_or_attachment(library, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "board.eml").write_bytes(bytes(board_message()))
    report = library.indexer.ingest([folder])
    assert report.indexed == 1 and not report.failed
    body_hit = library.retriever.search("orchard budget approved", k=1).hits[0]
    assert body_hit.chunk.heading == "Board minutes for March"
    assert body_hit.chunk.attachment is None
    attachment_hit = library.retriever.search("plant quince trees committee", k=1).hits[0]
    # The attachment is a document of its own, linked to its message's file.
    assert attachment_hit.chunk.attachment == "minutes.docx"
    assert attachment_hit.chunk.path == str(folder / "board.eml")
    place = citation_place(attachment_hit.to_json("citation", n=1, inferred=False))
    assert place == "minutes.docx (attached to board.eml)"  # a Word file without headings
    row = library.catalog.file(str(folder / "board.eml"))
    assert [(p.name, p.reason) for p in library.catalog.parts(row.id)] == [
        ("minutes.docx", None), ("notes.txt", None), ("setup.exe", "unsupported file type .exe")]
