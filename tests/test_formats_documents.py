"""Slides, OpenDocument, e-books and RTF: real files in, what a reader would see out.

Decks are written with python-pptx; OpenDocument files and e-books are zips
written here (mimetype first, stored) holding minimal valid XML; RTF is a
literal string. Hostile files (zip bombs, encrypted Office files, damaged or
entity-expanding XML) must fail alone with a reason a person can act on.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from pptx import Presentation
from pptx.util import Inches

from app.core.documents import load
from app.core.documents.archive import OLE_MAGIC, PROTECTED
from app.errors import Cancelled, ParseError

# -- helpers ----------------------------------------------------------------

ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
)

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
              for i in range(1, 10))
    + "]>\n"
)

BOMB_MB = 300


def write_zip(path: Path, members: dict[str, bytes | str], mimetype: str | None = None) -> Path:
    """A zip with ``mimetype`` first and stored (as ODF and EPUB require), then ``members``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if mimetype is not None:
            zf.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def add_bomb(path: Path, name: str, megabytes: int = BOMB_MB) -> Path:
    """Append a member of ``megabytes`` MB of zeros (compressed to well under 1 MB)."""
    block = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(name, "w", force_zip64=True) as fh:
            for _ in range(megabytes):
                fh.write(block)
    return path


def replace_member(src: Path, dest: Path, name: str, data: bytes) -> Path:
    """Copy the zip ``src`` to ``dest`` with member ``name`` holding ``data``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, data if info.filename == name else zin.read(info.filename))
    return dest


def make_odt(path: Path, body: str, title: str | None = None, manifest: str | None = None,
             content: str | None = None, omit_content: bool = False) -> Path:
    members: dict[str, bytes | str] = {}
    if not omit_content:
        members["content.xml"] = content if content is not None else (
            f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS}>'
            f"<office:body><office:text>{body}</office:text></office:body></office:document-content>")
    if title is not None:
        members["meta.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {ODF_NS}>'
                               f"<office:meta><dc:title>{title}</dc:title></office:meta></office:document-meta>")
    if manifest is not None:
        members["META-INF/manifest.xml"] = manifest
    return write_zip(path, members, "application/vnd.oasis.opendocument.text")


def make_odp(path: Path, pages: str, title: str | None = None) -> Path:
    members: dict[str, bytes | str] = {
        "content.xml": (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS}>'
                        f"<office:body><office:presentation>{pages}</office:presentation></office:body>"
                        "</office:document-content>"),
    }
    if title is not None:
        members["meta.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {ODF_NS}>'
                               f"<office:meta><dc:title>{title}</dc:title></office:meta></office:document-meta>")
    return write_zip(path, members, "application/vnd.oasis.opendocument.presentation")


def xhtml(body: str, title: str = "Book") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
            f'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>{title}</title></head>'
            f"<body>{body}</body></html>")


def make_epub(path: Path, chapters: dict[str, str], spine: list[str], title: str = "The Field Guide",
              nav: dict[str, str] | None = None, extra: dict[str, bytes | str] | None = None) -> Path:
    """An EPUB 3 with ``chapters`` (file name → body) read in ``spine`` order.

    The manifest lists the chapters in sorted order, so only the spine can
    give the reading order (a spine entry without a chapter is listed, not written). ``nav`` maps chapter file → table-of-contents label.
    """
    manifest = "".join(f'<item id="{name.split(".")[0]}" href="text/{name}" media-type="application/xhtml+xml"/>'
                       for name in sorted(set(chapters) | set(spine)))
    manifest += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    itemrefs = "".join(f'<itemref idref="{name.split(".")[0]}"/>' for name in spine)
    opf = ('<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
           'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
           f'<dc:identifier id="id">urn:test</dc:identifier><dc:title>{title}</dc:title>'
           f"<dc:language>en</dc:language></metadata><manifest>{manifest}</manifest>"
           f"<spine>{itemrefs}</spine></package>")
    links = "".join(f'<li><a href="text/{name}">{label}</a></li>' for name, label in (nav or {}).items())
    members: dict[str, bytes | str] = {
        "META-INF/container.xml": (
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"),
        "OEBPS/content.opf": opf,
        "OEBPS/nav.xhtml": xhtml(f'<nav epub:type="toc"><ol>{links}</ol></nav>'),
        **{f"OEBPS/text/{name}": xhtml(body) for name, body in chapters.items()},
        **(extra or {}),
    }
    return write_zip(path, members, "application/epub+zip")


def make_deck(path: Path) -> Path:
    """Five slides: text boxes out of stacking order, a hidden slide, a blank
    slide, a table with notes, a group."""
    prs = Presentation()
    prs.core_properties.title = "Quarterly Review"
    title_only, blank = prs.slide_layouts[5], prs.slide_layouts[6]

    one = prs.slides.add_slide(title_only)
    one.shapes.title.text = "Harbour   Expansion"
    # Added bottom first, then top-right, then top-left: read top-left, top-right, bottom.
    one.shapes.add_textbox(Inches(1), Inches(5), Inches(8), Inches(1)).text_frame.text = "Bottom line last."
    one.shapes.add_textbox(Inches(5), Inches(2), Inches(4), Inches(1)).text_frame.text = "Right column second."
    one.shapes.add_textbox(Inches(1), Inches(2.05), Inches(4), Inches(1)).text_frame.text = "Left column first."

    two = prs.slides.add_slide(title_only)
    two.shapes.title.text = "Secret Plans"
    two.shapes.add_textbox(Inches(1), Inches(2), Inches(8), Inches(1)).text_frame.text = "Hidden but indexed."
    two._element.set("show", "0")

    prs.slides.add_slide(blank)  # slide 3: nothing at all

    four = prs.slides.add_slide(title_only)
    four.shapes.title.text = "Numbers"
    table = four.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for (r, c), text in {(0, 0): "Region", (0, 1): "Revenue", (1, 0): "North", (1, 1): "42"}.items():
        table.cell(r, c).text = text
    four.notes_slide.notes_text_frame.text = "Remind them about the\nNorth figures."

    five = prs.slides.add_slide(blank)
    group = five.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(3), Inches(3), Inches(1)).text_frame.text = "Grouped lower."
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text_frame.text = "Grouped upper."
    prs.save(str(path))
    return path


def load_or_error(path: Path) -> Any:
    """load(path), or the ParseError it raised. Tests of hostile files call
    it under a ``timeout`` mark: a loader that hangs on one fails the test."""
    try:
        result: object = load(path)
    except ParseError as exc:
        result = exc
    return result


# -- PowerPoint -------------------------------------------------------------


def test_pptx_slides_are_pages_with_titles_tables_and_notes(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    doc = load(make_deck(tmp_path / "review.pptx"), on_page=lambda done, total: seen.append((done, total)))
    assert doc.kind == "pptx" and doc.title == "Quarterly Review"
    # The blank slide is left out; the others keep their numbers; the hidden one is indexed.
    assert [page.number for page in doc.pages] == [1, 2, 4, 5]
    one, two, four, five = doc.pages
    assert one.text == ("Harbour Expansion\n\nLeft column first.\n\nRight column second.\n\n"
                        "Bottom line last.")
    assert one.headings == ((0, "Harbour Expansion"),)
    assert two.headings == ((0, "Secret Plans"),) and "Hidden but indexed." in two.text
    assert four.text == "Numbers\n\nRegion | Revenue\nNorth | 42\n\nNotes:\nRemind them about the\nNorth figures."
    assert five.text == "Grouped upper.\n\nGrouped lower." and five.headings == ()
    assert seen == [(n, 5) for n in range(1, 6)]


def test_pptx_title_falls_back_to_the_first_slide_title(tmp_path: Path) -> None:
    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[0])
    slide.shapes.title.text = "Tidal Energy"
    slide.placeholders[1].text = "A primer"
    prs.save(str(tmp_path / "untitled.pptx"))
    doc = load(tmp_path / "untitled.pptx")
    assert doc.title == "Tidal Energy"
    assert doc.pages[0].text == "Tidal Energy\n\nA primer"


def test_pptx_without_any_text_is_refused(tmp_path: Path) -> None:
    prs = Presentation()
    for _ in range(2):
        prs.slides.add_slide(prs.slide_layouts[6])
    prs.save(str(tmp_path / "pictures.pptx"))
    with pytest.raises(ParseError, match="no text to index"):
        load(tmp_path / "pictures.pptx")


def test_pptx_load_can_be_stopped_between_slides(tmp_path: Path) -> None:
    deck = make_deck(tmp_path / "review.pptx")
    seen: list[int] = []
    with pytest.raises(Cancelled):
        load(deck, on_page=lambda done, total: seen.append(done), should_stop=lambda: len(seen) >= 2)
    assert seen == [1, 2]


def test_password_protected_office_file_is_refused(tmp_path: Path) -> None:
    for name in ("locked.pptx", "locked.odt", "locked.epub"):
        path = tmp_path / name
        path.write_bytes(OLE_MAGIC + bytes(4096))
        with pytest.raises(ParseError) as err:
            load(path)
        assert err.value.reason == "protected: remove the password or export to PDF" == PROTECTED


def test_other_files_named_pptx_are_refused(tmp_path: Path) -> None:
    import docx

    renamed = tmp_path / "letter.pptx"
    document = docx.Document()
    document.add_paragraph("Dear committee")
    document.save(str(renamed))
    junk = tmp_path / "junk.pptx"
    junk.write_bytes(b"this is not a zip archive at all" * 10)
    for path in (renamed, junk):
        with pytest.raises(ParseError) as err:
            load(path)
        assert err.value.reason.startswith("not a valid PowerPoint file")


def test_pptx_with_damaged_slide_xml(tmp_path: Path) -> None:
    deck = make_deck(tmp_path / "review.pptx")
    broken = replace_member(deck, tmp_path / "broken.pptx", "ppt/slides/slide1.xml", b"<p:sld><unclosed>")
    with pytest.raises(ParseError, match="damaged XML") as err:
        load(broken)
    assert "slide1.xml" in err.value.reason


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_pptx_entity_expansion_is_not_expanded(tmp_path: Path) -> None:
    deck = make_deck(tmp_path / "review.pptx")
    with zipfile.ZipFile(deck) as zf:
        slide = zf.read("ppt/slides/slide1.xml").decode("utf-8")
    _, _, rest = slide.partition("?>")
    hostile = BILLION_LAUGHS + rest.replace("Left column first.", "&lol9;", 1)
    path = replace_member(deck, tmp_path / "laughs.pptx", "ppt/slides/slide1.xml", hostile.encode())
    result = load_or_error(path)
    # libxml2 stops the amplification: refused, saying why.
    assert isinstance(result, ParseError)
    assert "expands entities without end" in result.reason


# -- zip bombs, one per zip-based family ------------------------------------


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_zip_bombs_are_refused_quickly(tmp_path: Path) -> None:
    deck = add_bomb(make_deck(tmp_path / "bomb.pptx"), "ppt/slides/slide9.xml")
    text = add_bomb(make_odt(tmp_path / "bomb.odt", "", title="Bomb", omit_content=True), "content.xml")
    # The second chapter of the spine is the bomb, so reading the book inflates it.
    book = add_bomb(make_epub(tmp_path / "bomb.epub", {"c1.xhtml": "<p>Fine</p>"}, ["c1.xhtml", "c2.xhtml"]),
                    "OEBPS/text/c2.xhtml")
    for path in (deck, text, book):
        result = load_or_error(path)
        assert isinstance(result, ParseError) and "zip bomb" in result.reason, result


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_pptx_media_are_never_inflated(tmp_path: Path) -> None:
    """Pictures carry no text: a deck whose media folder holds a bomb still reads, quickly."""
    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Site Photos"
    pixel = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
             + _png_chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + _png_chunk(b"IEND", b""))
    slide.shapes.add_picture(io.BytesIO(pixel), Inches(1), Inches(2))
    prs.save(str(tmp_path / "photos.pptx"))
    deck = add_bomb(tmp_path / "photos.pptx", "ppt/media/huge.png")
    result = load_or_error(deck)
    assert not isinstance(result, ParseError) and result.pages[0].text == "Site Photos"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# -- OpenDocument presentation ----------------------------------------------


ODP_PAGES = """
<draw:page draw:name="one">
  <draw:frame presentation:class="outline" svg:x="2cm" svg:y="10cm">
    <draw:text-box><text:list><text:list-item><text:p>Below the title</text:p></text:list-item>
    </text:list></draw:text-box></draw:frame>
  <draw:frame presentation:class="title" svg:x="2cm" svg:y="1cm">
    <draw:text-box><text:p>Wind <text:span>Farms</text:span></text:p></draw:text-box></draw:frame>
  <draw:frame presentation:class="page-number" svg:x="20cm" svg:y="18cm">
    <draw:text-box><text:p>1</text:p></draw:text-box></draw:frame>
  <presentation:notes><draw:page-thumbnail/>
    <draw:frame presentation:class="notes"><draw:text-box><text:p>Mention the turbines.</text:p>
    </draw:text-box></draw:frame></presentation:notes>
</draw:page>
<draw:page draw:name="empty"/>
<draw:page draw:name="three">
  <draw:frame svg:x="1in" svg:y="1in"><table:table>
    <table:table-row><table:table-cell><text:p>Site</text:p></table:table-cell>
      <table:table-cell><text:p>MW</text:p></table:table-cell></table:table-row>
    <table:table-row><table:table-cell><text:p>Dogger</text:p></table:table-cell>
      <table:table-cell><text:p>1200</text:p></table:table-cell></table:table-row>
  </table:table></draw:frame>
  <draw:g><draw:custom-shape svg:x="1in" svg:y="5in"><text:p>Shape text</text:p></draw:custom-shape></draw:g>
</draw:page>
"""


def test_odp_slides_are_numbered_pages(tmp_path: Path) -> None:
    doc = load(make_odp(tmp_path / "wind.odp", ODP_PAGES))
    assert doc.kind == "odp" and doc.title == "Wind Farms"
    assert [page.number for page in doc.pages] == [1, 3]
    one, three = doc.pages
    assert one.text == "Wind Farms\n\nBelow the title\n\nNotes:\nMention the turbines."
    assert one.headings == ((0, "Wind Farms"),)
    assert three.text == "Site | MW\nDogger | 1200\n\nShape text" and three.headings == ()
    assert load(make_odp(tmp_path / "titled.odp", ODP_PAGES, title="Energy Deck")).title == "Energy Deck"


# -- OpenDocument text ------------------------------------------------------


ODT_BODY = """
<text:sequence-decls><text:sequence-decl text:name="Table"/></text:sequence-decls>
<text:table-of-content><text:index-body><text:p>Contents 1</text:p></text:index-body></text:table-of-content>
<text:h text:outline-level="1">Soil  Types</text:h>
<text:p>Clay holds<text:s text:c="3"/>water.<text:note text:note-class="footnote">
  <text:note-citation>1</text:note-citation><text:note-body><text:p>Mostly.</text:p></text:note-body>
</text:note></text:p>
<text:tracked-changes><text:changed-region><text:deletion><text:p>Deleted words</text:p>
</text:deletion></text:changed-region></text:tracked-changes>
<text:list><text:list-item><text:p>Loam</text:p></text:list-item>
  <text:list-item><text:p>Sand<office:annotation><text:p>a comment</text:p></office:annotation></text:p>
  </text:list-item></text:list>
<text:section><text:h text:outline-level="2">Drainage</text:h>
<table:table><table:table-header-rows><table:table-row>
  <table:table-cell><text:p>Soil</text:p></table:table-cell><table:table-cell><text:p>Rate</text:p></table:table-cell>
</table:table-row></table:table-header-rows>
<table:table-row><table:table-cell><text:p>Sand</text:p></table:table-cell>
  <table:table-cell><text:p>Fast</text:p></table:table-cell></table:table-row></table:table>
</text:section>
"""


def test_odt_headings_paragraphs_lists_and_tables(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    doc = load(make_odt(tmp_path / "soil.odt", ODT_BODY), on_page=lambda d, t: seen.append((d, t)))
    page = doc.pages[0]
    assert doc.kind == "odt" and page.number is None and doc.title == "Soil Types"
    assert page.text == ("Soil Types\n\nClay holds water.\n\nMostly.\n\nLoam\n\nSand\n\n"
                         "Drainage\n\nSoil | Rate\nSand | Fast")
    assert [text for _, text in page.headings] == ["Soil Types", "Drainage"]
    for offset, heading in page.headings:
        assert page.text[offset:offset + len(heading)] == heading
    assert seen == [(1, 1)]


def test_odt_title_from_meta(tmp_path: Path) -> None:
    assert load(make_odt(tmp_path / "soil.odt", ODT_BODY, title="Field Notes")).title == "Field Notes"


def test_odt_damaged_xml_and_encryption(tmp_path: Path) -> None:
    broken = make_odt(tmp_path / "broken.odt", "", content="<office:document-content><oops")
    with pytest.raises(ParseError, match="damaged XML"):
        load(broken)
    manifest = (f'<?xml version="1.0"?><manifest:manifest {ODF_NS}>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
                "<manifest:encryption-data/></manifest:file-entry></manifest:manifest>")
    locked = make_odt(tmp_path / "locked.odt", "", manifest=manifest, content="\x8f\x02 ciphertext")
    with pytest.raises(ParseError) as err:
        load(locked)
    assert err.value.reason == PROTECTED
    empty = make_odt(tmp_path / "empty.odt", "<text:p>   </text:p>")
    with pytest.raises(ParseError, match="no text to index"):
        load(empty)


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_odt_entity_expansion_is_not_expanded(tmp_path: Path) -> None:
    content = (BILLION_LAUGHS + f"<office:document-content {ODF_NS}><office:body><office:text>"
               "<text:p>Before &lol9; after</text:p></office:text></office:body></office:document-content>")
    result = load_or_error(make_odt(tmp_path / "laughs.odt", "", content=content))
    assert isinstance(result, ParseError)
    assert "expands entities without end" in result.reason


# -- EPUB -------------------------------------------------------------------


CHAPTERS = {
    "a_cover.xhtml": '<div><img src="cover.jpg" alt=""/></div>',
    "b_second.xhtml": ("<h1>Chapter Two: Rivers</h1><p>Rivers carve valleys.</p><H4 class='x'>Aside</H4><p>Deltas.</p>"
                       "<h3>River Mouths</h3>"),
    "c_first.xhtml": "<p>Mountains rise slowly.</p><script>var hidden = 1;</script>",
}


def test_epub_chapters_in_spine_order_with_titles(tmp_path: Path) -> None:
    book = make_epub(tmp_path / "guide.epub", CHAPTERS, ["a_cover.xhtml", "c_first.xhtml", "b_second.xhtml"],
                     nav={"c_first.xhtml": "Chapter One: Mountains", "b_second.xhtml": "Rivers"})
    seen: list[tuple[int, int]] = []
    doc = load(book, on_page=lambda d, t: seen.append((d, t)))
    assert doc.kind == "epub" and doc.title == "The Field Guide"
    assert all(page.number is None for page in doc.pages)
    first, second = doc.pages  # the cover has no text
    assert first.text == "Chapter One: Mountains\n\nMountains rise slowly."
    assert first.headings == ((0, "Chapter One: Mountains"),)
    # An h4 is read as a paragraph: chapters are named by h1-h3.
    assert second.text == "Chapter Two: Rivers\n\nRivers carve valleys.\n\nAside\n\nDeltas.\n\nRiver Mouths"
    assert second.headings == ((0, "Chapter Two: Rivers"), (second.text.index("River Mouths"), "River Mouths"))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_epub2_ncx_labels_name_chapters(tmp_path: Path) -> None:
    ncx = ('<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>'
           '<navPoint id="p1"><navLabel><text>Prologue</text></navLabel><content src="text/c1.xhtml#top"/>'
           "</navPoint></navMap></ncx>")
    book = make_epub(tmp_path / "old.epub", {"c1.xhtml": "<p>It began at sea.</p>"}, ["c1.xhtml"],
                     extra={"OEBPS/toc.ncx": ncx})
    opf = zipfile.ZipFile(book).read("OEBPS/content.opf").replace(
        b'properties="nav"', b"").replace(
        b"</manifest>", b'<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/></manifest>')
    book = replace_member(book, tmp_path / "old2.epub", "OEBPS/content.opf", opf.replace(b"<spine>", b'<spine toc="ncx">'))
    doc = load(book)
    assert doc.pages[0].text == "Prologue\n\nIt began at sea." and doc.pages[0].headings == ((0, "Prologue"),)


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_epub_hostile_and_broken(tmp_path: Path) -> None:
    laughs = xhtml("<p>Safe &lol9; text</p>").replace('<?xml version="1.0" encoding="utf-8"?>\n', BILLION_LAUGHS)
    book = make_epub(tmp_path / "laughs.epub", {"c1.xhtml": "<p>x</p>"}, ["c1.xhtml"],
                     extra={"OEBPS/text/c1.xhtml": laughs})
    # html.parser never expands entities the document defines: the reference stays as written.
    result = load_or_error(book)
    assert not isinstance(result, ParseError) and result.pages[0].text == "Safe &lol9; text"

    broken = replace_member(book, tmp_path / "broken.epub", "OEBPS/content.opf", b"<package><manifest>")
    with pytest.raises(ParseError, match="damaged XML"):
        load(broken)

    encryption = ('<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                  'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
                  '<enc:CipherReference URI="OEBPS/text/c1.xhtml"/></enc:CipherData></enc:EncryptedData>'
                  "</encryption>")
    drm = make_epub(tmp_path / "drm.epub", {"c1.xhtml": "<p>x</p>"}, ["c1.xhtml"],
                    extra={"META-INF/encryption.xml": encryption})
    with pytest.raises(ParseError, match="DRM"):
        load(drm)

    not_a_book = write_zip(tmp_path / "plain.epub", {"readme.txt": "hello"})
    with pytest.raises(ParseError, match=r"container\.xml is missing"):
        load(not_a_book)


# -- RTF --------------------------------------------------------------------


RTF = (r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times;}}{\info{\title Garden \'e9t\'e9 Plan}}"
       r"\pard Tomatoes need sun.\par "
       r"{\*\shppict{\pict\pngblip 89504e470d0a1a0a0000000d49484452 deadbeef}}"
       r"Caf\'e9 \u8364? prices.\par\par "
       r"\trowd\cellx1000\cellx2000 Plant\cell Water\cell\row "
       r"\trowd\cellx1000\cellx2000 Basil\cell Daily\cell\row "
       r'\pard Last line: {\field{\*\fldinst{HYPERLINK "https://example.org/"}}{\fldrslt{seed list}}}.\par}')


def test_rtf_text_tables_and_title(tmp_path: Path) -> None:
    path = tmp_path / "garden.rtf"
    path.write_text(RTF, encoding="ascii")
    doc = load(path)
    page = doc.pages[0]
    assert doc.kind == "rtf" and doc.title == "Garden été Plan" and page.number is None
    assert page.text == "Tomatoes need sun.\n\nCafé € prices.\n\nPlant | Water\nBasil | Daily\n\nLast line: seed list."
    assert "deadbeef" not in page.text and "Times" not in page.text


def test_rtf_not_rtf_binary_and_oversized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.documents import rtf

    fake = tmp_path / "fake.rtf"
    fake.write_text("Just some plain text saved with the wrong name.")
    with pytest.raises(ParseError) as err:
        load(fake)
    assert err.value.reason == "not a valid RTF file (another kind of file with an .rtf name?)"

    junk = tmp_path / "junk.rtf"
    junk.write_bytes(b"{\\rtf1 " + bytes(range(256)) * 64 + b"}")
    with pytest.raises(ParseError, match="binary data"):
        load(junk)

    big = tmp_path / "big.rtf"
    big.write_text(RTF)
    monkeypatch.setattr(rtf, "MAX_RTF_BYTES", 100)
    with pytest.raises(ParseError, match="too large"):
        load(big)


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_rtf_large_pictures_are_skipped_quickly(tmp_path: Path) -> None:
    picture = "0123456789abcdef" * (4 * 1024 * 1024)  # 64 MB of hex
    path = tmp_path / "pictures.rtf"
    path.write_text(r"{\rtf1\ansi Before.\par{\pict\pngblip " + picture + r"}After.\par}", encoding="ascii")
    doc = load(path)
    assert doc.pages[0].text == "Before.\n\nAfter."


@pytest.mark.timeout(60)  # a hostile file must not hang its loader
def test_rtf_on_one_long_line_is_read_in_linear_time(tmp_path: Path) -> None:
    # striprtf's hyperlink pattern scans to the end of the line from every field.
    path = tmp_path / "fields.rtf"
    path.write_text(r"{\rtf1 " + r"{\field{\*\fldinst{HYPERLINK " * 20_000 + "x" + "}" * 60_000
                    + r" Plain words.\par}")
    result = load_or_error(path)
    assert not isinstance(result, ParseError) and "Plain words." in result.pages[0].text


# -- end to end: ingest and search -----------------------------------------


def test_a_fact_on_slide_three_is_cited_as_page_three(library, tmp_path: Path) -> None:
    folder = tmp_path / "talks"
    folder.mkdir()
    prs = Presentation()
    facts = ["Our cafeteria serves lunch at noon.", "The parking garage has four levels.",
             "The observatory telescope mirror is made of polished beryllium.",
             "Quarterly reports are due in March."]
    for n, fact in enumerate(facts, start=1):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"Topic {n}"
        slide.placeholders[1].text = fact
    prs.save(str(folder / "talk.pptx"))
    epub = make_epub(folder / "guide.epub", {
        "c1.xhtml": "<h1>Glaciers</h1><p>Glaciers move a few metres each year.</p>",
        "c2.xhtml": "<h1>Volcanic Islands</h1><p>Basalt lava builds shield volcanoes above hotspots.</p>",
    }, ["c1.xhtml", "c2.xhtml"])

    report = library.indexer.ingest([folder])
    assert report.indexed == 2 and not report.failed

    hit = library.retriever.search("telescope mirror beryllium", k=1).hits[0]
    assert (Path(hit.chunk.path), hit.chunk.page, hit.chunk.heading) == (folder / "talk.pptx", 3, "Topic 3")
    hit = library.retriever.search("shield volcanoes basalt hotspots", k=1).hits[0]
    assert (Path(hit.chunk.path), hit.chunk.page, hit.chunk.heading) == (epub, None, "Volcanic Islands")
