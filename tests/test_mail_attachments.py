"""An e-mail's attachments are documents of their own, linked to their message.

Each is indexed with its own pages (an attached PDF's page 2 is "page 2"),
cited as "notes.pdf, page 2 (attached to mail.eml)", listed under its message
with its status, replaced and removed with its message's file, and given
back as the file it is for the viewer.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from app.core.documents.model import citation_place
from app.core.documents.reading import attachment_request, extract_for_viewing


def pdf_bytes(*pages: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


NOTES = pdf_bytes("Harbour notes. Visitors moor on the west wall and pay at the office.",
                  "The inner harbour lock gates open two hours before high water.")
# A second attachment whose page 1 is about the same thing: a place of its own, not the first's page 1.
FEES = pdf_bytes("Harbour fees. Visitors moor on the west wall for twelve pounds a night.")


def message(path: Path, *attachments: tuple[str, bytes]) -> Path:
    msg = EmailMessage()
    msg["From"] = "Harbour Master <master@porthleven.example>"
    msg["Subject"] = "Harbour papers"
    msg.set_content("The harbour papers are attached.")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    msg.add_attachment(b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="tool.exe")
    path.write_bytes(bytes(msg))
    return path


def test_an_attached_pdf_is_searched_and_cited_at_its_own_page(library, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    mail = message(folder / "papers.eml", ("notes.pdf", NOTES), ("fees.pdf", FEES))
    report = library.indexer.ingest([folder])
    assert report.indexed == 1 and not report.failed

    hit = library.retriever.search("When do the lock gates open?", k=3).hits[0]
    assert (hit.chunk.path, hit.chunk.attachment, hit.chunk.page) == (str(mail), "notes.pdf", 2)
    cited = hit.to_json("citation", n=1, inferred=False)
    assert citation_place(cited) == "notes.pdf, page 2 (attached to papers.eml)"
    assert cited["attachment"] == "notes.pdf" and cited["part"] == "1"
    # The message's file counts its own pages only: an e-mail has none.
    row = library.catalog.file(str(mail))
    assert row.pages is None
    parts = library.catalog.parts(row.id)
    assert [(p.name, p.kind, p.pages, p.reason) for p in parts] == [
        ("notes.pdf", "pdf", 2, None), ("fees.pdf", "pdf", 1, None),
        ("tool.exe", None, None, "unsupported file type .exe")]
    assert {p.message for p in parts} == {"Harbour papers"}

    # Two attachments' first pages are two places, never merged into one passage.
    hits = library.retriever.search("Visitors moor on the west wall", k=5).hits
    firsts = {(h.chunk.attachment, h.chunk.page) for h in hits if h.chunk.page == 1}
    assert firsts == {("notes.pdf", 1), ("fees.pdf", 1)}
    assert all("twelve pounds" not in h.chunk.text for h in hits if h.chunk.attachment == "notes.pdf")


def test_attachments_are_replaced_and_removed_with_their_message(library, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    mail = message(folder / "papers.eml", ("notes.pdf", NOTES))
    library.indexer.ingest([folder])
    assert library.retriever.search("lock gates open", k=1, mode="keyword").hits

    message(mail, ("fees.pdf", FEES))  # the same message sent again with another attachment
    library.indexer.ingest([folder])
    row = library.catalog.file(str(mail))
    assert [p.name for p in library.catalog.parts(row.id) if p.reason is None] == ["fees.pdf"]
    assert library.keyword_retriever.search("lock gates", k=3, mode="keyword").hits == []
    assert library.keyword_retriever.search("twelve pounds", k=3, mode="keyword").hits[0].chunk.attachment == "fees.pdf"

    mail.unlink()
    report = library.indexer.ingest([folder])
    assert report.removed == 1
    assert library.catalog.parts(row.id) == []
    assert library.keyword_retriever.search("twelve pounds", k=3, mode="keyword").hits == []


def test_the_viewer_gets_the_attached_file_back_as_it_was_sent(tmp_path: Path) -> None:
    mail = message(tmp_path / "papers.eml", ("notes.pdf", NOTES))
    out = tmp_path / "private"
    doc = extract_for_viewing(attachment_request(mail, "1", out))
    assert doc.path.name == "notes.pdf" and doc.path.read_bytes() == NOTES
    assert out in doc.path.parents and doc.kind == "pdf"


def test_the_command_line_names_the_attachment_and_lists_it_under_its_message(docent, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    message(folder / "papers.eml", ("notes.pdf", NOTES))
    assert docent("ingest", str(folder)).code == 0

    search = docent("search", "When do the lock gates open?", "--json")
    top = search.json()["hits"][0]
    assert (top["attachment"], top["part"], top["page"]) == ("notes.pdf", "1", 2)
    assert top["path"] == str(folder / "papers.eml")
    plain = docent("search", "When do the lock gates open?")
    assert "1. notes.pdf (attached to papers.eml) · page 2 · score" in plain.out

    status = docent("status", "--files")
    assert "attachment: notes.pdf (2 pages)" in status.out
    assert "attachment: tool.exe — unsupported file type .exe" in status.out
    listed = docent("status", "--files", "--json").json()["documents"][0]["attachments"]
    assert [(a["name"], a["status"]) for a in listed] == [("notes.pdf", "indexed"), ("tool.exe", "skipped")]


def test_mail_indexed_before_attachments_were_documents_is_read_again(tmp_path: Path) -> None:
    import sqlite3

    from app.core.stores.catalog import MIGRATIONS, Catalog
    from app.core.stores.migrations import apply

    path = tmp_path / "catalog.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    apply(db, MIGRATIONS[:4])  # as the previous version left it
    db.execute("INSERT INTO roots (path, added_at) VALUES ('/lib', 'then')")
    for name, kind in (("/lib/papers.eml", "email"), ("/lib/notes.txt", "text")):
        db.execute("""INSERT INTO files (root_id, path, kind, size, mtime_ns, hash, status, chunks)
                      VALUES (1, ?, ?, 10, 5, 'h', 'indexed', 0)""", (name, kind))
    db.execute("""INSERT INTO chunks (id, file_id, ordinal, page, start, "end", text, text_hash)
                  VALUES ('c0', 1, 0, NULL, 0, 5, 'Attachment: notes.pdf', 'x')""")
    db.close()

    # A reader of the old catalog (its writer not started yet) reads it as it is.
    reader = Catalog(path, readonly=True)
    old = reader.chunks(["c0"])["c0"]
    assert (old.part, old.attachment) == (None, None)
    assert reader.parts(1) == []
    reader.close()

    catalog = Catalog(path)  # the writer migrates
    mail, text = catalog.file("/lib/papers.eml"), catalog.file("/lib/notes.txt")
    # Still indexed (searchable as before) but no longer looks unchanged: the next ingest reads it.
    assert (mail.status, mail.size, mail.mtime_ns, mail.hash) == ("indexed", None, None, None)
    assert (text.size, text.mtime_ns, text.hash) == (10, 5, "h")
    assert catalog.parts(mail.id) == []
    catalog.close()


def test_a_mailbox_message_s_attachment_is_found_again_by_its_message_number(tmp_path: Path) -> None:
    from app.core.documents import load
    from app.core.documents.mail import extract_attachment

    box = tmp_path / "harbour.mbox"
    plain = EmailMessage()
    plain["Subject"] = "Berth note"
    plain.set_content("Vessel 1 moved to berth 4.")
    attached = EmailMessage()
    attached["Subject"] = "Harbour papers"
    attached.set_content("The notes are attached.")
    attached.add_attachment(NOTES, maintype="application", subtype="pdf", filename="notes.pdf")
    box.write_bytes(b"".join(b"From clerk@harbour.example Mon Apr  1 10:00:00 2024\n" + bytes(m) + b"\n"
                             for m in (plain, attached)))
    doc = load(box)
    (part,) = doc.parts
    assert (part.locator, part.name, part.pages, part.message) == ("m2/1", "notes.pdf", 2, "Harbour papers")
    assert [p.number for p in doc.pages if p.part == "m2/1"] == [1, 2]
    assert extract_attachment(box, "m2/1") == ("notes.pdf", NOTES)
