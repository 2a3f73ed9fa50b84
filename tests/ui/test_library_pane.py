"""The library pane keeps up with indexing without rebuilding itself."""

from __future__ import annotations

from app.ui.library_pane import LibraryPane


def test_status_changes_update_rows_in_place_and_keep_the_selection(qtbot, library, docs) -> None:
    library.indexer.ingest([docs["pdf"].parent])
    pane = LibraryPane(library.catalog)
    qtbot.addWidget(pane)
    pane.select_path(str(docs["md"]))
    row = pane.tree.selectedItems()[0]

    pane.set_indexing(str(docs["md"]))
    assert ("sourdough.md", "indexing…") in pane.visible_files()
    pane.set_indexing(str(docs["txt"]))
    assert ("sourdough.md", "indexed") in pane.visible_files()
    assert ("bicycle.txt", "indexing…") in pane.visible_files()

    # A file is re-read: its status changes, the listing does not move.
    library.catalog.mark_file(str(docs["md"]), "pending", root_id=None)
    pane.refresh()
    assert ("sourdough.md", "waiting") in pane.visible_files()
    assert pane.tree.selectedItems() == [row], "the same row stays selected"

    # A new file appears: the listing is rebuilt with it, the selection kept.
    (docs["md"].parent / "extra.md").write_text("# Extra\n\nA new note.", encoding="utf-8")
    library.indexer.ingest([docs["pdf"].parent])
    pane.set_indexing(None)
    pane.refresh()
    assert ("extra.md", "indexed") in pane.visible_files()
    assert pane.selected_path() == str(docs["md"])
    assert "6 indexed" in pane.counts.text()
