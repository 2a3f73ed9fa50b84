"""``docent remove`` and ``docent reindex``, run as a user would run them."""

from __future__ import annotations

import json

from app.core.stores.lock import WriterLock


def _paths(status: dict) -> set[str]:
    return {d["path"] for d in status["documents"]}


def test_remove_takes_a_folder_out_of_the_library_and_leaves_the_files(docent, docs, tmp_path) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    note = other / "harbour.txt"
    note.write_text("The harbour master logs every ferry departure in a green ledger.\n", encoding="utf-8")
    folder = docs["pdf"].parent
    assert docent("ingest", str(folder)).code == 0
    assert docent("ingest", str(note)).code == 0
    assert docent("search", "green ledger ferry departure", "--mode", "keyword", "--json").json()["hits"]

    removed = docent("remove", str(note), "--json")

    assert removed.code == 0, removed.err
    result = removed.json()
    assert result["removed"] == [str(note)] and result["files"] == 1 and result["chunks"] >= 1
    assert note.exists()  # the file on disk is untouched
    status = docent("status", "--files", "--json").json()
    assert str(note) not in _paths(status)
    assert _paths(status) == {str(p) for p in docs.values()}
    for mode in ("keyword", "hybrid"):
        hits = docent("search", "green ledger ferry departure", "--mode", mode, "--json").json()["hits"]
        assert all(h["path"] != str(note) for h in hits)

    # Human output by default; the audit log records the removal and stays intact.
    text = docent("remove", str(folder))
    assert text.code == 0, text.err
    assert "Removed 1 item(s)" in text.out and "5 file(s)" in text.out
    assert all(p.exists() for p in docs.values())
    status = docent("status", "--files", "--json").json()
    assert status["documents"] == [] and status["chunks"] == 0
    assert docent("search", "storm warnings", "--mode", "keyword", "--json").json()["hits"] == []
    records = docent("audit", "show", "--json").json()
    roots = [r["data"]["path"] for r in records if r["event"] == "remove_root"]
    assert roots == [str(note), str(folder)]
    assert {r["data"]["path"] for r in records if r["event"] == "remove"} >= {str(p) for p in docs.values()}
    assert docent("audit", "verify").code == 0


def test_remove_refuses_paths_that_are_not_library_items_and_removes_nothing(docent, docs) -> None:
    folder = docs["pdf"].parent
    assert docent("ingest", str(folder)).code == 0

    inside = docent("remove", str(docs["md"]), str(folder))
    assert inside.code == 1
    assert "part of the library folder" in inside.err and "Traceback" not in inside.err
    stranger = docent("remove", "/no/such/folder")
    assert stranger.code == 1 and "not in the library" in stranger.err
    assert docent("status", "--json").json()["files"]["indexed"] == 5
    assert docent("remove").code == 2  # PATH is required


def test_reindex_reads_the_files_again_with_the_same_chunks(docent, docs, data_dir) -> None:
    folder = docs["pdf"].parent
    first = docent("ingest", str(folder), "--json").json()
    assert docent("ingest", str(folder), "--json").json()["indexed"] == 0  # unchanged: nothing read

    whole = docent("reindex", "--json")
    assert whole.code == 0, whole.err
    report = whole.json()
    assert report["indexed"] == 5 and report["chunks"] == first["chunks"] and report["failed"] == []
    assert "Re-indexing the whole library" in whole.err

    one = docent("reindex", str(docs["md"]), "--json").json()
    assert one["indexed"] == 1 and one["unchanged"] == 4
    status = docent("status", "--files", "--json").json()
    assert status["chunks"] == first["chunks"]
    hits = docent("search", "storm warnings recorded", "--json").json()["hits"]
    assert hits and hits[0]["path"] == str(docs["pdf"])

    stray = docent("reindex", str(data_dir.parent / "elsewhere"))
    assert stray.code == 1 and "not in the library" in stray.err
    text = docent("reindex", str(docs["txt"]))
    assert text.code == 0 and "Re-indexed 1 file(s)" in text.out


def test_remove_and_reindex_wait_for_no_other_writer(docent, docs, data_dir) -> None:
    folder = docs["pdf"].parent
    assert docent("ingest", str(folder)).code == 0
    with WriterLock(data_dir, "docent watch"):
        for args in (("remove", str(folder)), ("reindex",)):
            refused = docent(*args)
            assert refused.code == 3, refused.err
            assert "docent watch" in refused.err and "Traceback" not in refused.err
    assert json.loads(docent("status", "--json").out)["files"]["indexed"] == 5
