"""E-books (.epub), read from the zip directly.

An EPUB is a zip of XHTML chapters. ``META-INF/container.xml`` names the
package file (OPF), whose manifest lists the parts and whose spine gives the
reading order. Each chapter in the spine becomes one page (without a number:
e-books reflow), its text read the way the HTML loader reads a web page.
The chapter's title (its first heading, else its label in the book's table
of contents) leads the page as a heading, so passages cite their chapter.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from app.core.documents.archive import SafeArchive, open_archive, parse_xml
from app.core.documents.model import Document, Page
from app.core.documents.text import decode_bytes
from app.core.documents.webpage import declared_charset, html_to_text
from app.errors import Cancelled, ParseError, SkipFile

KIND = "EPUB e-book"
DRM = "protected by DRM: Docent cannot read it (use a DRM-free copy)"

_OPF_TYPE = "application/oebps-package+xml"
_CHAPTER_TYPES = frozenset({"application/xhtml+xml", "text/html", "text/x-oeb1-document"})
_CHAPTER_SUFFIXES = (".xhtml", ".html", ".htm", ".xml")
_NCX_TYPE = "application/x-dtbncx+xml"
_OPS_TYPE = "{http://www.idpf.org/2007/ops}type"
# html.parser ends a declaration at its first ">", so an XHTML DOCTYPE with an
# internal subset (entity definitions) would leak "]>" into the text. Entities
# defined there are never expanded: the references stay as written.
_DOCTYPE = re.compile(r"<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)
_PROLOG_CHARS = 64 * 1024
# Chapters' headings are h1-h3; h4-h6 in e-books are asides and run-in
# headings, too fine to name a passage's section. They are read as paragraphs
# (the same line breaks, so the same text). XHTML forbids a raw "<" in text
# and attribute values, so a tag-shaped match is a tag.
_MINOR_HEADING = re.compile(r"<(/?)h[4-6](?=[\s/>])", re.IGNORECASE)


@dataclass(frozen=True)
class _Package:
    """What the OPF says: the title, the chapters in reading order, the tables of contents."""

    title: str | None
    spine: list[str]
    nav: str | None
    ncx: str | None


def _text(node: Any) -> str:
    return " ".join("".join(node.itertext()).split()) if node is not None else ""


def _resolve(base: str, href: str | None) -> str | None:
    """The archive member an href (relative to member ``base``) points at, or None."""
    if not href:
        return None
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None  # a link out of the book, or to a place in the same file
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(parts.path)))
    return None if joined.startswith("../") or joined == ".." else joined.lstrip("/")


def _package(archive: SafeArchive) -> tuple[str, _Package]:
    """Find and read the OPF: ``(its member name, what it says)``."""
    container = archive.xml("META-INF/container.xml")
    rootfiles = container.findall(".//{*}rootfile")
    chosen = next((rf for rf in rootfiles if rf.get("media-type") == _OPF_TYPE), None)
    chosen = chosen if chosen is not None else (rootfiles[0] if rootfiles else None)
    opf_name = (chosen.get("full-path") or "").lstrip("/") if chosen is not None else ""
    if not opf_name:
        raise ParseError(archive.path, f"not a valid {KIND} (its container.xml names no package file)")
    opf = archive.xml(opf_name)

    title = _text(opf.find("{*}metadata/{*}title")) or None
    items: dict[str, tuple[str | None, str, str]] = {}  # id → (member, media type, properties)
    nav: str | None = None
    for item in opf.iterfind("{*}manifest/{*}item"):
        member = _resolve(opf_name, item.get("href"))
        media = (item.get("media-type") or "").strip().lower()
        properties = (item.get("properties") or "").split()
        items[item.get("id") or ""] = (member, media, " ".join(properties))
        if "nav" in properties and nav is None:
            nav = member

    spine_node = opf.find("{*}spine")
    spine: list[str] = []
    ncx: str | None = None
    if spine_node is not None:
        toc = items.get(spine_node.get("toc") or "")
        ncx = toc[0] if toc else None
        for ref in spine_node.iterfind("{*}itemref"):
            member, media, _ = items.get(ref.get("idref") or "", (None, "", ""))
            if member is None or member in spine:
                continue
            if media in _CHAPTER_TYPES or (not media and member.lower().endswith(_CHAPTER_SUFFIXES)):
                spine.append(member)
    if ncx is None:
        ncx = next((member for member, media, _ in items.values() if media == _NCX_TYPE), None)
    return opf_name, _Package(title=title, spine=spine, nav=nav, ncx=ncx)


def _parse_optional(archive: SafeArchive, member: str | None) -> Any:
    """Member parsed as XML, or None when missing or damaged (tables of contents are optional).

    The member is still read through the archive's limits: a bomb fails the book.
    """
    if member is None or not archive.has(member):
        return None
    data = archive.read(member)
    try:
        return parse_xml(data, archive.path, f"{KIND} ({member})")
    except ParseError:
        return None


def _toc_labels(archive: SafeArchive, package: _Package) -> dict[str, str]:
    """Chapter member → its first label in the EPUB 3 nav document or the EPUB 2 NCX."""
    labels: dict[str, str] = {}
    nav = _parse_optional(archive, package.nav)
    if nav is not None and package.nav is not None:
        navs = list(nav.iter("{*}nav"))
        toc = next((n for n in navs if "toc" in (n.get(_OPS_TYPE) or "").split()), navs[0] if navs else None)
        for link in toc.iter("{*}a") if toc is not None else ():
            member, label = _resolve(package.nav, link.get("href")), _text(link)
            if member and label:
                labels.setdefault(member, label)
    ncx = _parse_optional(archive, package.ncx)
    if ncx is not None and package.ncx is not None:
        for point in ncx.iter("{*}navPoint"):
            content = point.find("{*}content")
            member = _resolve(package.ncx, content.get("src") if content is not None else None)
            label = _text(point.find("{*}navLabel/{*}text"))
            if member and label:
                labels.setdefault(member, label)
    return labels


def _require_no_drm(archive: SafeArchive, spine: list[str]) -> None:
    """Refuse a book whose chapters are encrypted (fonts alone may be obfuscated)."""
    root = _parse_optional(archive, "META-INF/encryption.xml")
    if root is None:
        return
    encrypted = {unquote(ref.get("URI") or "").lstrip("/") for ref in root.iter("{*}CipherReference")}
    if encrypted & set(spine):
        raise ParseError(archive.path, DRM)


def _without_doctype(markup: str) -> str:
    """``markup`` without its DOCTYPE (one bounded attempt: it precedes the root element)."""
    start = markup.find("<!DOCTYPE", 0, _PROLOG_CHARS)
    if start < 0:
        start = markup.find("<!doctype", 0, _PROLOG_CHARS)
    match = _DOCTYPE.match(markup[:_PROLOG_CHARS], start) if start >= 0 else None
    return markup[:match.start()] + markup[match.end():] if match else markup


def _chapter(path: Path, archive: SafeArchive, member: str, label: str | None) -> Page | None:
    """One spine document as a page, led by its title; None when it has no text."""
    if not archive.has(member):
        return None  # listed but missing: the rest of the book is still readable
    data = archive.read(member)
    try:
        markup = decode_bytes(path, data, declared_charset(data))
    except SkipFile:
        return None  # binary junk where a chapter should be
    markup = _MINOR_HEADING.sub(r"<\1p", _without_doctype(markup))
    text, _, headings = html_to_text(markup)
    if not text.strip():
        return None
    if label and (not headings or headings[0][0] > 0):
        # No heading at the top: the table-of-contents label names the chapter.
        prefix = label + "\n\n"
        text = prefix + text
        headings = [(0, label)] + [(offset + len(prefix), heading) for offset, heading in headings]
    return Page(number=None, text=text, headings=tuple(headings))


def load_epub(
    path: Path,
    *,
    on_page: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Document:
    """Load an EPUB e-book: one page per chapter of the spine, in reading order.

    Chapters without text (covers, image pages) are left out. Each page's
    headings are its h1-h3 headings; when a chapter does not open with one, its
    label in the book's table of contents is put first as its heading. The
    title is the package's dc:title.

    Raises:
        ParseError: not an EPUB, damaged, a zip bomb, DRM-protected, or no text.
    """
    if should_stop is not None and should_stop():
        raise Cancelled()
    pages: list[Page] = []
    with open_archive(path, kind=KIND) as archive:
        _, package = _package(archive)
        if not package.spine:
            raise ParseError(path, f"not a valid {KIND} (its reading order lists no chapters)")
        _require_no_drm(archive, package.spine)
        labels = _toc_labels(archive, package)
        total = len(package.spine)
        for done, member in enumerate(package.spine, start=1):
            page = _chapter(path, archive, member, labels.get(member))
            if page is not None:
                pages.append(page)
            if on_page is not None:
                on_page(done, total)
            if should_stop is not None and should_stop():
                raise Cancelled()
    if not pages:
        raise ParseError(path, "no text to index (the e-book holds only pictures, or its chapters are empty)")
    return Document(path=path, kind="epub", title=package.title, pages=pages)
