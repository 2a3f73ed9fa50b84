"""In the window, an e-mail's attachment is a document of its own: listed under its
message, and opened at its cited page as the file it is."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

from tests.test_mail_attachments import FEES, NOTES, message  # noqa: E402

PASSAGE = "The inner harbour lock gates open two hours before high water."


def test_a_cited_attachment_opens_at_its_page_marked_and_is_listed_under_its_message(
        qtbot, open_window, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    mail = message(folder / "papers.eml", ("notes.pdf", NOTES), ("fees.pdf", FEES))
    window = open_window(tmp_path / "data")
    report = window.library.indexer.ingest([folder])
    assert report.indexed == 1
    window.library_pane.refresh()

    # The library lists the message's attachments under it, the unread one with its reason.
    (row,) = [window.library_pane.tree.topLevelItem(0).child(i)
              for i in range(window.library_pane.tree.topLevelItem(0).childCount())]
    assert row.text(0) == "papers.eml"
    children = [(row.child(i).text(0), row.child(i).text(1)) for i in range(row.childCount())]
    assert children == [("notes.pdf", "attachment"), ("fees.pdf", "attachment"), ("tool.exe", "skipped")]
    assert "unsupported file type .exe" in row.child(2).toolTip(0)
    assert 'Attached to "Harbour papers" in papers.eml, 2 pages' in row.child(0).toolTip(0)

    # A source of the attachment opens the attached PDF itself, at its page 2, the passage marked.
    hit = window.library.retriever.search("When do the lock gates open?", k=1).hits[0]
    source = hit.to_json("source", n=1)
    assert (source["attachment"], source["page"]) == ("notes.pdf", 2)
    window.open_passage(source)
    viewer = window.viewer.viewer
    qtbot.waitUntil(lambda: viewer.current_page() == 2, timeout=60_000)
    assert viewer.highlight_found()
    assert " ".join(viewer.highlighted_text().split()) in PASSAGE
    assert viewer.attached_to == mail
    assert "notes.pdf" in viewer.header.text() and "attached to papers.eml" in viewer.header.text()
    assert "page 2 of 2" in viewer.header.text()
    assert window.viewer.windowTitle().startswith("notes.pdf (attached to papers.eml)")
    # Written out for the viewer in a private folder, never beside the user's mail.
    shown = Path(viewer.path())
    assert shown.read_bytes() == NOTES and folder not in shown.parents


def test_an_attachment_no_longer_in_its_message_says_so(qtbot, make_viewer, tmp_path: Path) -> None:
    mail = message(tmp_path / "papers.eml", ("notes.pdf", NOTES))
    viewer = make_viewer()
    with qtbot.waitSignal(viewer.reading_done, timeout=60_000):
        viewer.show_passage(str(mail), 2, None, PASSAGE, part="4", attachment="minutes.pdf")
    assert "minutes.pdf" in viewer.header.text()
    assert viewer.message_text() == (
        "The attachment could not be opened from papers.eml: the attachment is no longer in papers.eml "
        "(the file changed since it was indexed).")

    # The viewer stays usable: the next citation, a real one, is shown.
    with qtbot.waitSignal(viewer.reading_done, timeout=60_000):
        viewer.show_passage(str(mail), 2, None, PASSAGE, part="1", attachment="notes.pdf")
    assert viewer.current_page() == 2 and viewer.highlight_found()
