"""Removing library folders and re-reading files, as the window and the CLI both do (no Qt)."""

from __future__ import annotations

from pathlib import Path

from app.core.ingest.maintenance import (
    mark_for_reindex,
    normal_path,
    not_removable,
    outside_library,
    reindex,
    remove_paths,
)
from tests import corpus


def test_remove_takes_out_passages_vectors_and_rows_and_reindex_rebuilds_them(library, tmp_path: Path) -> None:
    docs = corpus.make_library(tmp_path / "docs")
    folder = str(docs["pdf"].parent)
    first = library.indexer.ingest([Path(folder)])
    chunk_ids = library.catalog.all_chunk_ids()
    assert first.indexed == 5 and len(chunk_ids) == first.chunks
    assert library.vectors.ids() == chunk_ids

    # A file inside the folder is not a library item on its own; nothing happens to it.
    assert not_removable(library.catalog, [str(docs["md"]), folder]) == [{
        "path": str(docs["md"]),
        "reason": f"it is part of the library folder {folder}; remove that folder, "
                  "or add an ignore rule there to leave this out",
    }]
    assert outside_library(library.catalog, [str(docs["md"]), str(tmp_path / "elsewhere")]) == [
        str(tmp_path / "elsewhere")]

    # Re-reading one file marks it pending and reads it again, with the same chunk ids.
    assert mark_for_reindex(library.catalog, [str(docs["md"])]) == [folder]
    assert library.catalog.file(str(docs["md"])).status == "pending"
    again = reindex(library.indexer, [docs["md"]])
    assert (again.indexed, again.unchanged) == (1, 4)
    assert library.catalog.all_chunk_ids() == chunk_ids

    report = remove_paths(library.indexer, [folder + "/"])
    assert report.to_json() == {"removed": [folder], "files": 5, "chunks": first.chunks, "not_found": []}
    assert library.catalog.roots() == [] and library.catalog.files() == []
    assert library.vectors.ids() == set()
    assert all(p.exists() for p in docs.values())
    events = [r["event"] for r in library.audit.records()]
    assert events.count("remove") == 5 and events[-1] == "remove_root"

    # The whole library, empty: nothing to read.
    assert reindex(library.indexer).to_json()["indexed"] == 0
    assert normal_path("~") == str(Path.home().resolve())
