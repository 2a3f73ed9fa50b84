"""Live sync on the real filesystem: every behaviour waits on a condition."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.ingest.sync import FolderSync
from tests import corpus


def drive(sync: FolderSync, until: Callable[[], bool], timeout: float = 60) -> None:
    """Let the sync work (as its loop would) until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the library did not come in line"
        sync.wake.wait(0.05)
        sync.wake.clear()
        sync.tick()


def status_of(library, path: Path) -> str | None:
    row = library.catalog.file(str(path))
    return row.status if row else None


def chunks_of(library, path: Path) -> list[str]:
    row = library.catalog.file(str(path))
    return [c.text for c in library.catalog.chunks(library.catalog.chunk_ids(row.id)).values()] if row else []


@pytest.fixture()
def synced(library, tmp_path):
    """A watched library root with one note, already reconciled."""
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "first.md").write_text("# First\n\nThe harbour master keeps the tide tables.\n")
    library.indexer.ingest([folder])
    sync = FolderSync(library.indexer, debounce_s=0.2)
    sync.start()
    yield library, sync, folder
    sync.stop()


def test_creations_edits_and_deletions_are_followed(synced) -> None:
    library, sync, folder = synced
    new = folder / "new.txt"
    new.write_text("Lamp oil is delivered every Tuesday.")
    drive(sync, lambda: status_of(library, new) == "indexed")
    new.write_text("Lamp oil is now delivered every Friday.")
    drive(sync, lambda: any("Friday" in t for t in chunks_of(library, new)))
    assert not any("Tuesday" in t for t in chunks_of(library, new))
    (folder / "first.md").unlink()
    drive(sync, lambda: status_of(library, folder / "first.md") is None)
    assert library.vectors.ids() == library.catalog.all_chunk_ids()
    assert sync.state.last_sync is not None


def test_an_atomic_save_reindexes_the_real_file_never_the_temp_file(synced) -> None:
    library, sync, folder = synced
    target = folder / "first.md"
    temp = folder / ".goutputstream-XYZ123"
    temp.write_text("# First\n\nThe harbour master retired in spring.\n")
    os.replace(temp, target)
    drive(sync, lambda: any("retired" in t for t in chunks_of(library, target)))
    assert library.catalog.file(str(temp)) is None
    assert [f.path for f in library.catalog.files()] == [str(target)]


def test_renames_and_folder_moves_reembed_nothing(synced, monkeypatch) -> None:
    library, sync, folder = synced
    sub = folder / "old-name"
    sub.mkdir()
    for i in range(3):
        (sub / f"n{i}.md").write_text(f"# Note {i}\n\nBeacon {i} is serviced in March.\n")
    drive(sync, lambda: all(status_of(library, sub / f"n{i}.md") == "indexed" for i in range(3)))
    embedded: list[str] = []
    original = library.embedder.encode
    monkeypatch.setattr(library.embedder, "encode",
                        lambda texts, **kw: embedded.extend(texts) or original(texts, **kw))
    (folder / "first.md").rename(folder / "renamed.md")
    (sub).rename(folder / "new-name")
    moved = [folder / "new-name" / f"n{i}.md" for i in range(3)]
    drive(sync, lambda: status_of(library, folder / "renamed.md") == "indexed"
          and all(status_of(library, p) == "indexed" for p in moved)
          and status_of(library, folder / "first.md") is None
          and status_of(library, sub / "n0.md") is None)
    assert embedded == []
    assert library.vectors.ids() == library.catalog.all_chunk_ids()


def test_a_file_still_being_written_waits_until_it_is_stable(library, tmp_path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    library.indexer.ingest([folder])
    sync = FolderSync(library.indexer, debounce_s=0.0)
    growing = folder / "copy-in-progress.txt"
    with growing.open("w") as fh:
        for part in range(5):
            fh.write(f"Part {part} of a long transfer about cargo manifests.\n")
            fh.flush()
            sync.note(folder, growing, is_dir=False)
            sync.tick()  # the size changed since the last look: not yet
            assert status_of(library, growing) is None
    sync.note(folder, growing, is_dir=False)
    drive(sync, lambda: status_of(library, growing) == "indexed")
    assert any("Part 4" in t for t in chunks_of(library, growing))


def test_a_parse_failure_while_writing_is_retried_once_complete(synced) -> None:
    library, sync, folder = synced
    source = corpus.make_pdf(folder.parent / "whole.pdf")
    data = source.read_bytes()
    target = folder / "report.pdf"
    target.write_bytes(data[: len(data) // 3])  # a copy that stalls half-way
    drive(sync, lambda: status_of(library, target) == "failed")
    target.write_bytes(data)  # the copy completes
    drive(sync, lambda: status_of(library, target) == "indexed")
    assert library.catalog.file(str(target)).pages == 4


def test_ignore_rules_list_skipped_files_with_their_rule(library, tmp_path) -> None:
    from dataclasses import replace

    folder = tmp_path / "lib"
    (folder / "node_modules" / "pkg").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "drafts").mkdir()
    (folder / "node_modules" / "pkg" / "README.md").write_text("dependency docs")
    (folder / ".hidden" / "secret.md").write_text("hidden notes")
    (folder / "drafts" / "wip.md").write_text("a draft")
    (folder / "keep.md").write_text("# Keep\n\nIndexed normally.")
    (folder / "debug.log").write_text("noise")
    (folder / "~$report.docx").write_bytes(b"lock")
    (folder / "download.pdf.crdownload").write_bytes(b"partial")
    (folder / "huge.txt").write_text("x" * (2 * 1024 * 1024))
    (folder / ".docentignore").write_text("# not these\n*.log\ndrafts/\n")
    library.indexer.limits = replace(library.indexer.limits, max_file_bytes=1024 * 1024)
    library.indexer._rules.clear()
    report = library.indexer.ingest([folder])
    skipped = dict(report.skipped)
    assert 'rule "*.log"' in skipped[str(folder / "debug.log")]
    assert "Office lock file" in skipped[str(folder / "~$report.docx")]
    assert "partial download" in skipped[str(folder / "download.pdf.crdownload")]
    assert "1 MB limit" in skipped[str(folder / "huge.txt")]
    assert status_of(library, folder / "keep.md") == "indexed"
    for inside in ("node_modules/pkg/README.md", ".hidden/secret.md", "drafts/wip.md"):
        assert library.catalog.file(str(folder / inside)) is None
    # Un-ignoring re-includes on the next sync.
    (folder / ".docentignore").write_text("*.log\n!debug.log\n")
    library.indexer.ingest([folder])
    assert status_of(library, folder / "debug.log") == "indexed"
    assert status_of(library, folder / "drafts" / "wip.md") == "indexed"


def test_symlinks_are_not_followed_by_default_and_loops_never_hang(library, tmp_path) -> None:
    from dataclasses import replace

    folder = tmp_path / "lib"
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "a.md").write_text("# A\n\nAnchor chains are inspected yearly.")
    (folder / "real" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "link.md").symlink_to(folder / "real" / "a.md")
    report = library.indexer.ingest([folder])
    assert report.indexed == 1
    assert "not followed" in dict(report.skipped)[str(folder / "link.md")]

    library.indexer.limits = replace(library.indexer.limits, follow_symlinks=True)
    library.indexer._rules.clear()
    report = library.indexer.ingest([folder])  # the loop back to the root is entered once
    indexed = [f.path for f in library.catalog.files(status="indexed")]
    assert str(folder / "real" / "a.md") in indexed
    assert len(indexed) <= 3


def test_a_missing_root_is_unavailable_until_it_returns(synced, tmp_path) -> None:
    library, sync, folder = synced
    away = tmp_path / "unmounted"
    folder.rename(away)
    sync._next_availability = 0
    drive(sync, lambda: status_of(library, folder / "first.md") == "unavailable")
    assert str(folder) in sync.state.unavailable
    away.rename(folder)
    sync._next_availability = 0
    drive(sync, lambda: status_of(library, folder / "first.md") == "indexed")
    (folder / "after.md").write_text("# After\n\nWatched again after coming back.")
    drive(sync, lambda: status_of(library, folder / "after.md") == "indexed")


def test_when_the_os_refuses_more_watches_the_root_is_polled(library, tmp_path, monkeypatch) -> None:
    from watchdog.observers import Observer

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Observer, "schedule", refuse)
    folder = tmp_path / "lib"
    folder.mkdir()
    library.indexer.ingest([folder])
    sync = FolderSync(library.indexer, debounce_s=0.1, poll_interval_s=0.2)
    sync.start()
    try:
        assert sync.state.polling == [str(folder)]
        assert "limit on watched folders" in sync.state.warnings[0]
        note = folder / "polled.md"
        note.write_text("# Polled\n\nFound without inotify.")
        drive(sync, lambda: status_of(library, note) == "indexed")
    finally:
        sync.stop()


def test_reopening_an_unchanged_library_reads_nothing(library, docs, monkeypatch) -> None:
    folder = docs["pdf"].parent
    library.indexer.ingest([folder])
    loads: list[Path] = []
    parser = library.indexer.parser
    original_load, original_read = parser.load, parser.read
    monkeypatch.setattr(parser, "load", lambda path, **kw: loads.append(path) or original_load(path, **kw))
    monkeypatch.setattr(parser, "read", lambda path, spec, **kw: loads.append(path) or original_read(path, spec, **kw))
    sync = FolderSync(library.indexer)
    report = sync.reconcile()
    assert loads == [] and report.unchanged == 5
    # Changed while "closed": brought in line on the next start.
    docs["txt"].write_text("Bicycle log: new tyres fitted in May.")
    docs["md"].unlink()
    report = sync.reconcile()
    assert loads == [docs["txt"]] and report.removed == 1


def test_new_ignore_rules_take_effect_live(synced) -> None:
    library, sync, folder = synced
    (folder / "drafts").mkdir()
    draft = folder / "drafts" / "wip.md"
    draft.write_text("# WIP\n\nUnfinished thoughts about buoys.")
    drive(sync, lambda: status_of(library, draft) == "indexed")
    (folder / ".docentignore").write_text("drafts/\n")
    drive(sync, lambda: status_of(library, draft) is None)
