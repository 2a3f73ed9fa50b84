"""The sources sidebar lists each page once: passages of one page that all
match the question are one source, not the same page three times."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt

from tests.test_places import PAGES, make_pdf

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

QUESTION = "How often was the lighthouse lamp serviced and its lens cleaned?"


def test_the_sidebar_shows_each_page_once(qtbot, open_window, tmp_path, embedder) -> None:
    from app.core.library import Library

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "keepers.pdf", PAGES)
    library = Library(tmp_path / "data", purpose="tests")
    library.use_embedder(embedder)
    try:
        library.indexer.ingest([docs])
        # The long page is several passages, and more than one matches.
        on_page = [c for c in library.catalog.chunks(sorted(library.catalog.all_chunk_ids())).values() if c.page == 2]
        assert len(on_page) >= 3
        widest_chunk = max(c.end - c.start for c in on_page)
    finally:
        library.close()

    window = open_window(tmp_path / "data")
    window.chat.question.setPlainText(QUESTION)
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None and window.chat.turns
                    and window.chat.turns[-1].turn_id is not None, timeout=180_000)
    record = window.chat.turns[-1].record
    assert not record["declined"], record["answer"]

    cards = window.sources.cards()
    assert cards
    places = [(c["path"], c["page"]) for c in cards]
    assert len(places) == len(set(places)), places
    # The lamp page is there once, as one passage wider than any one chunk.
    lamp = [c for c in cards if c["page"] == 2]
    assert len(lamp) == 1
    span = lamp[0]["span"]
    assert span[1] - span[0] > widest_chunk
