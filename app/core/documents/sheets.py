"""Spreadsheets (.xlsx/.xlsm, .ods, .csv/.tsv): each sheet one page of rows.

A row is read the way a person reads it, with its column headers::

    Sales, rows 2–21
    Region: North · Quarter: Q3 · Revenue: 4,417
    Region: South · Quarter: Q3 · Revenue: 3,980

The header is the sheet's first non-empty row when it holds only text (a lone
title cell above it is kept as a plain line); without one, columns are named
by their letters ("A: … · B: …"). Empty cells are left out. Every block of
rows starts with its own heading line, "SHEET, rows FIRST–LAST" in the row
numbers the spreadsheet shows, so a citation says which sheet and rows a
passage came from. Hidden sheets are indexed too; their heading says so.

Reading streams: openpyxl's read-only mode for .xlsx, lxml's iterparse for
.ods, the csv module for .csv. A file is read up to :data:`MAX_ROWS` rows and
:data:`MAX_CELLS` cells in all; past that the sheet's text ends with a line
saying which rows were indexed and why the rest were not.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.documents.archive import PROTECTED, SafeArchive, open_archive
from app.core.documents.model import Document, Page
from app.errors import Cancelled, ParseError, SkipFile

OnPage = Callable[[int, int], None]
ShouldStop = Callable[[], bool]

#: The most non-empty rows read from one file, all sheets together.
MAX_ROWS = 200_000
#: The most cell positions (empty ones within a row included) read from one file.
MAX_CELLS = 4_000_000
#: The most row positions (empty ones included) walked in one file: an .xlsx
#: can name row 1,048,576 after row 1, and each row between costs a step.
MAX_SCANNED_ROWS = 10_000_000
#: Excel's own sheet limits; nothing past them is a real cell.
EXCEL_MAX_ROW = 1_048_576
EXCEL_MAX_COL = 16_384

# A block of rows under one heading should fill about one chunk (200 tokens of
# the embedder), so that a chunk starts at or near a heading and its citation
# names the rows it holds. Rendered rows such as "Region: North · Quarter: Q3 ·
# Revenue: 4,417" run at ~2.6 characters a token (numbers and dates split into
# many word pieces; measured with the bundled model's tokenizer): ~500
# characters, or ~20 short rows, make a chunk. Wide rows end a block early.
BLOCK_ROWS = 20
BLOCK_CHARS = 500
# Report progress (and so reset the reader's silence timer) this often.
PROGRESS_ROWS = 1000
# A title line (one text cell) may sit above the header row; look this far.
_MAX_TITLE_ROWS = 3

_SEP = " · "
_WHITESPACE = re.compile(r"\s+")
# Text that a person reads as a number or a date, not as a column name.
_NUMBER_LIKE = re.compile(r"^[-+(]?[$€£¥]?\s*\d[\d\s,.']*%?\)?$")
_DATE_LIKE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
# Years are column names as often as they are data ("Region | 2023 | 2024").
_YEAR = re.compile(r"^(?:19|20)\d\d$")


@dataclass(frozen=True)
class Cell:
    """A cell as shown: its text, and whether it is text (not a number or date)."""

    text: str
    is_text: bool


def _clean(text: str) -> str:
    """One line of text: a cell's line breaks and runs of spaces become single spaces."""
    return _WHITESPACE.sub(" ", text).strip()


def text_cell(text: str) -> Cell | None:
    """A cell read from text (CSV, ODS strings); ``None`` when blank."""
    text = _clean(text)
    if not text:
        return None
    return Cell(text, not (_NUMBER_LIKE.match(text) or _DATE_LIKE.match(text)))


def column_letter(index: int) -> str:
    """Spreadsheet column letters of a 1-based column index (1 → A, 27 → AA)."""
    letters = ""
    while index > 0:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# -- the budget of one file ---------------------------------------------------


@dataclass
class _Budget:
    """What one file may still cost; shared by its sheets."""

    rows: int = 0
    cells: int = 0
    scanned: int = 0
    exhausted: bool = False

    def scan(self) -> bool:
        """Count one row position; False once the file has had its share."""
        self.scanned += 1
        if self.scanned > MAX_SCANNED_ROWS:
            self.exhausted = True
        return not self.exhausted

    def take(self, width: int) -> bool:
        """Count one non-empty row of ``width`` cell positions; False when over."""
        if self.rows + 1 > MAX_ROWS or self.cells + width > MAX_CELLS:
            self.exhausted = True
            return False
        self.rows += 1
        self.cells += width
        return True


# -- one sheet's text ---------------------------------------------------------


@dataclass
class SheetText:
    """Builds one sheet's page: header detection, rows, block headings, the cap line."""

    name: str
    hidden: bool = False
    parts: list[str] = field(default_factory=list)
    length: int = 0
    headings: list[tuple[int, str]] = field(default_factory=list)
    header: list[str] | None = None
    _header_row: int = 0
    _header_done: bool = False
    _titles: int = 0
    _lines: int = 0
    _pending: list[tuple[int, list[Cell | None]]] = field(default_factory=list)
    _block: list[str] = field(default_factory=list)
    _block_chars: int = 0
    _block_first: int = 0
    _block_last: int = 0
    last_row: int = 0

    # -- rows in ------------------------------------------------------------
    def add_row(self, number: int, cells: Sequence[Cell | None]) -> None:
        """Add spreadsheet row ``number`` (1-based); ``cells[i]`` is column i+1."""
        filled = [c for c in cells if c is not None]
        if not filled:
            return
        self.last_row = number
        if self._header_done:
            self._add_data(number, cells)
            return
        self._pending.append((number, list(cells)))
        self._settle_header(final=False)

    def _settle_header(self, final: bool) -> None:
        """Decide the header once the first rows show it (see the module docstring)."""
        while self._pending and not self._header_done:
            number, cells = self._pending[0]
            filled = [c for c in cells if c is not None]
            if not all(c.is_text or _YEAR.match(c.text) for c in filled):
                # Numbers or dates in the first row: data, named by column letters.
                self._header_done = True
                break
            if len(filled) >= 2:
                self._take_header(number, cells)
                break
            # One text cell: a title above the header, or the header of a
            # one-column list. The next row tells which.
            if len(self._pending) < 2:
                if not final:
                    return
                self._header_done = True  # a sheet of one line: keep it as text
                break
            _, following = self._pending[1]
            wide = sum(c is not None for c in following) >= 2
            if wide and self._titles < _MAX_TITLE_ROWS:
                self._pending.pop(0)
                self._titles += 1
                self._add_line(number, filled[0].text)
                continue
            self._take_header(number, cells)
            break
        if self._header_done:
            pending, self._pending = self._pending, []
            for number, cells in pending:
                self._add_data(number, cells)

    def _take_header(self, number: int, cells: Sequence[Cell | None]) -> None:
        self.header = [c.text if c is not None else "" for c in cells]
        self._header_row = number
        self._header_done = True
        self._pending.pop(0)

    def _add_data(self, number: int, cells: Sequence[Cell | None]) -> None:
        header = self.header or []
        pieces = []
        for i, cell in enumerate(cells):
            if cell is None:
                continue
            name = header[i] if i < len(header) and header[i] else column_letter(i + 1)
            pieces.append(f"{_clean(name)}: {cell.text}")
        self._add_line(number, _SEP.join(pieces))

    def _add_line(self, number: int, line: str) -> None:
        if not self._block:
            self._block_first = number
        self._block.append(line)
        self._lines += 1
        self._block_last = number
        self._block_chars += len(line) + 1
        if len(self._block) >= BLOCK_ROWS or self._block_chars >= BLOCK_CHARS:
            self._flush()

    # -- text out -----------------------------------------------------------
    def heading_for(self, first: int, last: int) -> str:
        """The heading of a block, e.g. ``Sales, rows 2–21``."""
        name = f"{self.name} (hidden)" if self.hidden else self.name
        if first == last:
            return f"{name}, row {first:,}"
        return f"{name}, rows {first:,}–{last:,}"

    def _write(self, text: str) -> None:
        if self.parts:
            self.parts.append("\n\n")  # a blank line: a good place to cut a chunk
            self.length += 2
        self.parts.append(text)
        self.length += len(text)

    def _flush(self) -> None:
        if not self._block:
            return
        heading = self.heading_for(self._block_first, self._block_last)
        offset = self.length + (2 if self.parts else 0)
        self.headings.append((offset, heading))
        self._write(heading + "\n" + "\n".join(self._block))
        self._block = []
        self._block_chars = 0

    def page(self, capped: bool = False, more_sheets: bool = False) -> Page | None:
        """The finished page, or ``None`` for a sheet with nothing in it.

        ``capped``: reading stopped inside this sheet (the file's budget is
        spent); the page ends with a line that says so. ``more_sheets``:
        sheets after this one were not read either.
        """
        self._settle_header(final=True)
        if self.header and self._lines == self._titles:
            # A header and no rows under it: its names are still worth finding.
            self._add_line(self._header_row, _SEP.join(name for name in self.header if name))
        self._flush()
        if capped and self.last_row:
            self._write(
                f"[Docent indexed rows 1–{self.last_row:,} of this sheet; the rest is not indexed: "
                "the sheet is larger than Docent reads]"
            )
            if more_sheets:
                self.parts.append(
                    "\n[Docent did not index the sheets after this one: "
                    "the workbook is larger than Docent reads]"
                )
        if not self.headings:
            return None
        return Page(number=None, text="".join(self.parts), headings=tuple(self.headings))


# -- shared driver --------------------------------------------------------------


class _Progress:
    """Reports progress every :data:`PROGRESS_ROWS` rows and polls for a stop."""

    def __init__(self, on_page: OnPage | None, should_stop: ShouldStop | None, total: int) -> None:
        self.on_page = on_page
        self.should_stop = should_stop
        self.total = max(total, 1)
        self.done = 0
        self.rows = 0

    def row(self) -> None:
        self.rows += 1
        if self.rows % PROGRESS_ROWS == 0:
            self.tick()

    def tick(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled()
        if self.on_page is not None:
            self.on_page(min(self.done, self.total), self.total)

    def sheet_done(self) -> None:
        self.done += 1
        self.tick()


def _read_sheet(
    sheet: SheetText, rows: Iterable[tuple[int, Sequence[Cell | None]]], budget: _Budget,
    progress: _Progress,
) -> bool:
    """Feed ``(row number, cells)`` into ``sheet``; False when the file's budget ran out."""
    for number, cells in rows:
        progress.row()
        if number > EXCEL_MAX_ROW:
            return True  # past the last row a spreadsheet can have: nothing real
        if not budget.scan():
            return False
        if not any(c is not None for c in cells):
            continue
        if not budget.take(len(cells)):
            return False
        sheet.add_row(number, cells)
    return True


def _document(path: Path, kind: str, title: str | None, pages: list[Page], what: str) -> Document:
    if not pages:
        raise ParseError(path, f"no text to index (the {what} is empty)")
    return Document(path=path, kind=kind, title=title, pages=pages)


# -- .xlsx ------------------------------------------------------------------------


def _number_text(value: float, number_format: str | None) -> str:
    """A number as Excel would show it, for the common formats (thousands, decimals, %)."""
    fmt = (number_format or "General").split(";")[0]
    fmt = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", fmt)  # quoted text, [colours], escapes
    if fmt in ("General", "@", "") or "E" in fmt.upper():
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
            return str(int(value))
        return repr(round(value, 10))
    percent = fmt.endswith("%")
    if percent:
        value *= 100
        fmt = fmt.rstrip("%")
    integer_part, _, decimals = fmt.partition(".")
    places = decimals.count("0") + decimals.count("#") if decimals else 0
    group = "," if "," in integer_part else ""
    text = f"{value:{group}.{places}f}"
    return text + ("%" if percent else "")


def excel_cell(value: Any, number_format: str | None = None) -> Cell | None:
    """A cell value from openpyxl as the user sees it; ``None`` when empty.

    Integers lose their ".0", dates are ISO (a time only when there is one),
    booleans read TRUE/FALSE, numbers keep their format's thousands
    separators, decimals and percent sign.
    """
    if value is None:
        return None
    if isinstance(value, str):
        cell = text_cell(value)
        return Cell(cell.text, True) if cell is not None else None  # typed as text by Excel
    if isinstance(value, bool):
        return Cell("TRUE" if value else "FALSE", False)
    if isinstance(value, dt.datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return Cell(value.date().isoformat(), False)
        spec = "minutes" if value.second == 0 and value.microsecond == 0 else "seconds"
        return Cell(value.isoformat(sep=" ", timespec=spec), False)
    if isinstance(value, dt.date):
        return Cell(value.isoformat(), False)
    if isinstance(value, dt.time):
        spec = "minutes" if value.second == 0 and value.microsecond == 0 else "seconds"
        return Cell(value.isoformat(timespec=spec), False)
    if isinstance(value, dt.timedelta):
        return Cell(str(value), False)
    if isinstance(value, (int, float)):
        try:
            return Cell(_number_text(value, number_format), False)
        except (ValueError, OverflowError):  # inf, nan, or a format we misread
            return Cell(str(value), False)
    return text_cell(str(value))


def _xlsx_cells(row: Sequence[Any]) -> list[Cell | None]:
    cells: list[Cell | None] = []
    for cell in row[:EXCEL_MAX_COL]:
        value = cell.value
        if value is None:
            cells.append(None)
            continue
        number_format = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number_format = cell.number_format
            except (AttributeError, IndexError, KeyError):  # a style the file does not define
                number_format = None
        cells.append(excel_cell(value, number_format))
    return cells


def load_xlsx(path: Path, *, on_page: OnPage | None = None, should_stop: ShouldStop | None = None) -> Document:
    """Load an Excel workbook (.xlsx/.xlsm): one page per worksheet.

    Cells hold their cached values (what Excel showed when the file was last
    saved; a formula never calculated has none and is left out). Chart sheets
    hold no cells and give no page. Title: the workbook's core properties.
    """
    with open_archive(path, kind="Excel file") as archive:
        archive.check_claims()

    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except (ParseError, MemoryError, PermissionError, FileNotFoundError):
        raise
    except Exception as exc:  # openpyxl raises many kinds on a broken package
        raise ParseError(path, "not a valid Excel file (damaged, or another kind of file)") from exc
    try:
        title = None
        try:
            title = (workbook.properties.title or "").strip() or None
        except Exception:  # a broken core.xml must not cost us the cells
            title = None
        sheets = list(workbook.worksheets)
        budget = _Budget()
        progress = _Progress(on_page, should_stop, len(sheets))
        pages: list[Page] = []
        for index, ws in enumerate(sheets):
            hidden = getattr(ws, "sheet_state", "visible") in ("hidden", "veryHidden")
            sheet = SheetText(name=str(ws.title), hidden=hidden)
            # The <dimension> an .xlsx declares is the file's claim; read the
            # rows as they are (each padded only to its own last cell).
            ws.reset_dimensions()
            rows = ((number, _xlsx_cells(row)) for number, row in enumerate(ws.iter_rows(), start=1))
            try:
                complete = _read_sheet(sheet, rows, budget, progress)
            except (Cancelled, ParseError, MemoryError):
                raise
            except Exception as exc:
                raise ParseError(
                    path, f"not a valid Excel file (damaged: sheet {ws.title!r} cannot be read)"
                ) from exc
            page = sheet.page(capped=not complete, more_sheets=not complete and index + 1 < len(sheets))
            if page is not None:
                pages.append(page)
            progress.sheet_done()
            if not complete:
                break
    finally:
        workbook.close()
    return _document(path, "xlsx", title, pages, "workbook")


# -- .ods -------------------------------------------------------------------------

_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
_DC = "http://purl.org/dc/elements/1.1/"


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


T_TABLE, T_ROW = _q(_TABLE, "table"), _q(_TABLE, "table-row")
T_CELL, T_COVERED = _q(_TABLE, "table-cell"), _q(_TABLE, "covered-table-cell")
T_P = _q(_TEXT, "p")
_SPACERS = frozenset({_q(_TEXT, "s"), _q(_TEXT, "tab"), _q(_TEXT, "line-break")})
_NOT_SHOWN = frozenset({_q(_OFFICE, "annotation"), _q(_TEXT, "note")})
S_STYLE, S_TABLE_PROPS = _q(_STYLE, "style"), _q(_STYLE, "table-properties")


def _repeat(element: Any, attribute: str) -> int:
    """A repeat count, read defensively (a hostile file may say anything)."""
    raw = element.get(_q(_TABLE, attribute))
    if not raw:
        return 1
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def _odf_text(element: Any) -> str:
    """The text of a ``text:p`` with its spaces, tabs and breaks, notes left out."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if node.tag in _SPACERS:
            parts.append(" ")
        elif node.tag not in _NOT_SHOWN:
            if node.text:
                parts.append(node.text)
            for child in node:
                walk(child)
                if child.tail:
                    parts.append(child.tail)

    walk(element)
    return "".join(parts)


def ods_cell(cell: Any) -> Cell | None:
    """An .ods cell as shown: the displayed text, dates in ISO; ``None`` when empty."""
    kind = cell.get(_q(_OFFICE, "value-type"))
    if kind == "date":
        value = cell.get(_q(_OFFICE, "date-value")) or ""
        date, _, time = value.partition("T")
        time = time[:5] if time and not time.startswith("00:00:00") else ""
        text = f"{date} {time}".strip()
        return Cell(text, False) if text else None
    shown = " ".join(_odf_text(p) for p in cell.iterchildren(T_P))
    if not _clean(shown):
        value = cell.get(_q(_OFFICE, "value")) or cell.get(_q(_OFFICE, "string-value")) or ""
        shown = value
    found = text_cell(shown)
    if found is None:
        return None
    return Cell(found.text, kind in (None, "string"))


def _ods_row(row: Any) -> list[Cell | None]:
    """A row's cells, repeats expanded only where they hold something."""
    cells: list[Cell | None] = []
    column = 0
    trailing_empty = 0
    for cell in row.iterchildren(T_CELL, T_COVERED):
        if column >= EXCEL_MAX_COL:
            break
        repeat = min(_repeat(cell, "number-columns-repeated"), EXCEL_MAX_COL - column)
        value = ods_cell(cell) if cell.tag == T_CELL else None
        if value is None:
            # Empty cells (often "16,000 more to the right"): count, never expand.
            trailing_empty += repeat
            column += repeat
            continue
        cells.extend([None] * trailing_empty)
        trailing_empty = 0
        cells.extend([value] * repeat)
        column += repeat
    return cells


def _hidden_table_style(style: Any) -> str | None:
    """The name of a table style that hides its sheet (``table:display="false"``)."""
    if style.get(_q(_STYLE, "family")) != "table":
        return None
    props = style.find(S_TABLE_PROPS)
    if props is not None and props.get(_q(_TABLE, "display")) == "false":
        name = style.get(_q(_STYLE, "name"))
        return str(name) if name else None
    return None


def _ods_title(archive: SafeArchive) -> str | None:
    if not archive.has("meta.xml"):
        return None
    try:
        meta = archive.xml("meta.xml")
    except ParseError:
        return None  # a broken meta.xml must not cost us the cells
    found = meta.find(f".//{_q(_DC, 'title')}")
    return _clean(found.text or "") or None if found is not None else None


def _ods_protected(archive: SafeArchive) -> bool:
    """True when the manifest says content.xml is encrypted (a password to open)."""
    if not archive.has("META-INF/manifest.xml"):
        return False
    return b"encryption-data" in archive.read("META-INF/manifest.xml")


def load_ods(path: Path, *, on_page: OnPage | None = None, should_stop: ShouldStop | None = None) -> Document:
    """Load an OpenDocument spreadsheet (.ods): one page per sheet.

    content.xml is read with a streaming parser and each row is let go once
    read, so memory stays near the size of the inflated XML. Repeated rows
    and cells (``number-rows-repeated``; a sheet often ends with a million
    "repeated" empty rows) are counted, never expanded, when empty.
    """
    from lxml import etree

    with open_archive(path, kind="OpenDocument spreadsheet") as archive:
        if _ods_protected(archive):
            raise ParseError(path, PROTECTED)
        title = _ods_title(archive)
        data = archive.read("content.xml")

    budget = _Budget()
    progress = _Progress(on_page, should_stop, 1)
    pages: list[Page] = []
    hidden_styles: set[str] = set()
    sheet: SheetText | None = None
    depth = 0  # tables inside tables (old ODF sub-tables) belong to their sheet
    row_number = 0
    complete = True
    events = etree.iterparse(
        io.BytesIO(data), events=("start", "end"), tag=(T_TABLE, T_ROW, S_STYLE),
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=True,
    )
    try:
        for event, element in events:
            if element.tag == S_STYLE:
                if event == "end" and (name := _hidden_table_style(element)):
                    hidden_styles.add(name)
                continue
            if element.tag == T_TABLE:
                depth += 1 if event == "start" else -1
                if event == "start" and depth == 1:
                    name = element.get(_q(_TABLE, "name")) or f"Sheet{len(pages) + 1}"
                    hidden = element.get(_q(_TABLE, "style-name")) in hidden_styles
                    sheet, row_number = SheetText(name=name, hidden=hidden), 0
                elif event == "end" and depth == 0 and sheet is not None:
                    page = sheet.page()
                    if page is not None:
                        pages.append(page)
                    sheet = None
                    progress.sheet_done()
                    element.clear()
                continue
            if event != "end" or sheet is None or depth != 1:
                continue
            repeat = _repeat(element, "number-rows-repeated")
            cells = _ods_row(element)
            element.clear()
            # Rows read already: free them, or the tree keeps the whole sheet.
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
            if not cells:
                row_number += repeat  # empty rows: counted, never expanded
                progress.row()
                if not budget.scan():
                    complete = False
                    break
                continue
            feed = ((row_number + i + 1, cells) for i in range(min(repeat, EXCEL_MAX_ROW)))
            complete = _read_sheet(sheet, feed, budget, progress)
            row_number += repeat
            if not complete:
                break
    except etree.XMLSyntaxError as exc:
        raise ParseError(path, f"not a valid OpenDocument spreadsheet: damaged XML ({exc.msg})") from exc
    if not complete and sheet is not None:
        page = sheet.page(capped=True)
        if page is not None:
            pages.append(page)
    return _document(path, "ods", title, pages, "spreadsheet")


# -- .csv / .tsv ------------------------------------------------------------------

# Enough text to detect the encoding and the delimiter, read once.
_SAMPLE_BYTES = 256 * 1024
_SNIFF_CHARS = 64 * 1024
# What a BOM says, as the codec that also skips it.
_BOM_CODECS = {"utf-8": "utf-8-sig", "utf-16-le": "utf-16", "utf-16-be": "utf-16",
               "utf-32-le": "utf-32", "utf-32-be": "utf-32"}


def csv_encoding(path: Path, sample: bytes) -> str:
    """The encoding of a CSV file judged from its first bytes (as text.py judges text).

    Raises:
        SkipFile: the bytes look binary.
    """
    from app.core.documents import text

    found = text.bom_encoding(sample)
    if found is not None:
        return _BOM_CODECS.get(found[0], found[0])
    if b"\x00" in sample[:8192]:
        utf16 = text.bomless_utf16(sample[:8192])
        if utf16 is None:
            raise SkipFile(path, "binary file")
        return utf16
    try:
        # Incremental: a character cut in two at the sample's end is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return text.guess_encoding(sample) or "cp1252"


def csv_dialect(path: Path, sample: str) -> type[csv.Dialect] | csv.Dialect:
    """Tab for .tsv; otherwise the delimiter csv.Sniffer finds (, ; tab |), else comma."""
    if path.suffix.lower() == ".tsv":
        return csv.excel_tab
    cut = sample[:_SNIFF_CHARS]
    if len(sample) > _SNIFF_CHARS and "\n" in cut:
        cut = cut[: cut.rindex("\n")]  # whole lines only: a cut line misleads the sniffer
    try:
        return csv.Sniffer().sniff(cut, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _csv_rows(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[Cell | None]]]:
    for number, record in enumerate(reader, start=1):
        yield number, [text_cell(value) for value in record[:EXCEL_MAX_COL]]


def load_csv(path: Path, *, on_page: OnPage | None = None, should_stop: ShouldStop | None = None) -> Document:
    """Load a .csv or .tsv file as one sheet named after the file.

    The encoding is judged from the first 256 KB (BOM, UTF-8, else a guess
    for legacy encodings) and the delimiter sniffed from the first 64 KB; the
    rest is streamed. Row numbers are record numbers, as a spreadsheet shows them.
    """
    with open(path, "rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    encoding = csv_encoding(path, sample)
    dialect = csv_dialect(path, sample.decode(encoding, errors="replace"))
    budget = _Budget()
    progress = _Progress(on_page, should_stop, 1)
    sheet = SheetText(name=path.name)
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        reader = csv.reader(fh, dialect)
        try:
            complete = _read_sheet(sheet, _csv_rows(reader), budget, progress)
        except csv.Error as exc:
            raise ParseError(path, f"not a valid CSV file (record {reader.line_num:,}: {exc})") from exc
    page = sheet.page(capped=not complete)
    progress.sheet_done()
    return _document(path, "csv", None, [page] if page is not None else [], "file")
