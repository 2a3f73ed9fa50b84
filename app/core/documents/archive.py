"""Opening zip-based documents (OOXML, OpenDocument, EPUB) without trusting them.

Office files, OpenDocument files and e-books are zip archives of XML. A
hostile one can claim a small size and inflate to gigabytes (a zip bomb),
hold XML that expands entities without end, or be an encrypted Office file
that is not a zip at all. Every zip-based loader opens its file through
:func:`open_archive` and reads members through :meth:`SafeArchive.read`, so
each of these fails that one file with a reason a person can act on.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from app.errors import ParseError

#: The most one member may inflate to.
MAX_MEMBER_BYTES = 256 * 1024**2
#: The most all members read from one archive may inflate to together.
MAX_TOTAL_BYTES = 1024**3
#: The largest inflated/compressed ratio a member may claim (XML compresses
#: about 10-30×; bombs claim thousands).
MAX_RATIO = 200
#: Members smaller than this are never judged by their ratio: a tiny file of
#: repeated characters compresses far better than 200× and is harmless.
RATIO_FLOOR_BYTES = 1024**2
#: The most members an archive may list (an e-book has hundreds, not millions).
MAX_MEMBERS = 100_000

# An encrypted Office file (Word, Excel, PowerPoint with a password to open)
# is an OLE compound file holding an encrypted package, not a zip.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

PROTECTED = "protected: remove the password or export to PDF"


def is_ole(path: Path) -> bool:
    """True when ``path`` starts with the OLE compound-file signature."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(OLE_MAGIC)) == OLE_MAGIC
    except OSError:
        return False


class SafeArchive:
    """A zip archive whose members are read within size and ratio limits."""

    def __init__(self, path: Path, zf: zipfile.ZipFile, *, kind: str) -> None:
        self.path = path
        self.zip = zf
        self.kind = kind
        self._read_total = 0

    def names(self) -> list[str]:
        """Every member name, in archive order."""
        return self.zip.namelist()

    def has(self, name: str) -> bool:
        """True when the archive holds a member called ``name``."""
        try:
            self.zip.getinfo(name)
        except KeyError:
            return False
        return True

    def read(self, name: str) -> bytes:
        """The inflated bytes of member ``name``.

        Raises:
            ParseError: the member is missing, claims too much, inflates past
                the limits while being read, or is encrypted.
        """
        try:
            info = self.zip.getinfo(name)
        except KeyError as exc:
            raise ParseError(self.path, f"not a valid {self.kind} (its {name} is missing)") from exc
        self.check_claim(info)
        limit = min(MAX_MEMBER_BYTES, MAX_TOTAL_BYTES - self._read_total)
        out = bytearray()
        # Read in blocks and count: the sizes in the header are the archive's
        # own claim, and a bomb can lie about them.
        try:
            with self.zip.open(info) as fh:
                while True:
                    block = fh.read(1024 * 1024)
                    if not block:
                        break
                    out += block
                    if len(out) > limit:
                        raise ParseError(self.path, self._bomb(name))
                    if (len(out) > RATIO_FLOOR_BYTES
                            and len(out) > MAX_RATIO * max(info.compress_size, 1)):
                        raise ParseError(self.path, self._bomb(name))
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
                # A read error of the disk, not of the archive: let load() word it.
                if exc.errno is not None:
                    raise
            raise ParseError(self.path, f"not a valid {self.kind} (damaged: {name} cannot be read)") from exc
        except RuntimeError as exc:  # zipfile's "password required"
            raise ParseError(self.path, PROTECTED) from exc
        self._read_total += len(out)
        return bytes(out)

    def xml(self, name: str) -> Any:
        """Member ``name`` parsed as XML, safely (no entities, no network, no DTD)."""
        return parse_xml(self.read(name), self.path, f"{self.kind} ({name})")

    def check_claims(self) -> None:
        """Refuse the archive if any member is encrypted or claims more than the limits.

        For loaders whose library reads the members itself (python-docx,
        openpyxl): zipfile never inflates a member past the size the archive
        claims for it (it stops there and fails the CRC), so judging every
        claim first bounds what the library can be made to inflate.
        """
        claimed = 0
        for info in self.zip.infolist():
            self.check_claim(info)
            # The library inflates them all: their sum is held to the total too.
            claimed += info.file_size
            if claimed > MAX_TOTAL_BYTES:
                raise ParseError(self.path, self._bomb(info.filename))

    def check_claim(self, info: zipfile.ZipInfo) -> None:
        """Refuse a member that is encrypted or whose own header claims more than the limits allow."""
        if info.flag_bits & 0x1:
            raise ParseError(self.path, PROTECTED)
        if info.file_size > MAX_MEMBER_BYTES or self._read_total + info.file_size > MAX_TOTAL_BYTES:
            raise ParseError(self.path, self._bomb(info.filename))
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ParseError(self.path, self._bomb(info.filename))

    def _bomb(self, name: str) -> str:
        return (f"refused: {name} inside this {self.kind} inflates far beyond its size "
                "(a zip bomb, or a damaged file)")

    def close(self) -> None:
        """Close the archive."""
        self.zip.close()

    def __enter__(self) -> SafeArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_archive(path: Path, *, kind: str) -> SafeArchive:
    """Open ``path`` as a zip-based document of ``kind`` (e.g. "PowerPoint file").

    Raises:
        ParseError: the file is password-protected, not a zip archive, or
            lists more members than any real document does.
    """
    path = Path(path)
    if is_ole(path):
        raise ParseError(path, PROTECTED)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ParseError(path, f"not a valid {kind} (damaged, or another kind of file)") from exc
    if len(zf.infolist()) > MAX_MEMBERS:
        zf.close()
        raise ParseError(path, f"refused: this {kind} lists more than {MAX_MEMBERS:,} parts")
    return SafeArchive(path, zf, kind=kind)


def parse_xml(data: bytes, path: Path, what: str) -> Any:
    """``data`` as an lxml element, refusing entity expansion, DTDs and network access.

    Raises:
        ParseError: the XML is malformed ("not a valid WHAT (damaged XML)").
    """
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, recover=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        if "amplification" in (exc.msg or "").lower():
            raise ParseError(path, f"refused: the XML inside this {what} expands entities without end "
                                   "(a hostile or damaged file)") from exc
        raise ParseError(path, f"not a valid {what}: damaged XML ({exc.msg})") from exc
    if root is None:
        raise ParseError(path, f"not a valid {what}: empty XML")
    return root
