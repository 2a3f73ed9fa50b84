"""A full disk and a read-only data folder, on a real (small) filesystem:
a clear message, nothing marked indexed that is not, questions keep working,
and everything recovers once the cause is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import corpus


def _can_mount() -> bool:
    probe = Path("/tmp/docent-mount-probe")
    probe.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(probe)], capture_output=True)
    return ok


pytestmark = pytest.mark.skipif(not _can_mount(), reason="needs to mount a small tmpfs (root)")


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB filesystem for the data folder."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the disk to the last byte."""
    filler = disk / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for block in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _run(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "docent"
    return subprocess.run([str(exe), "--data-dir", str(data), *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_a_full_disk_is_explained_and_recovered_from(small_disk: Path, tmp_path: Path) -> None:
    data = small_disk / "data"
    docs = tmp_path / "docs"
    corpus.make_library(docs)
    assert _run(data, "ingest", str(docs)).returncode == 0

    more = tmp_path / "more"
    more.mkdir()
    for i in range(30):
        (more / f"report-{i:02d}.md").write_text(f"# Report {i}\n\n" + f"Quarterly cargo figure {i}. " * 200)
    filler = _fill(small_disk)

    full = _run(data, "ingest", str(more))
    assert full.returncode == 1
    assert "is full" in full.stderr and "Traceback" not in full.stderr
    listing = _run(data, "status", "--files", "--json")
    docs_state = json.loads(listing.stdout)["documents"]
    for d in docs_state:
        if d["path"].startswith(str(more)):
            assert d["status"] != "indexed" or d["chunks"] > 0
    # Questions still work while the disk is full (audit records wait in memory).
    asked = _run(data, "ask", "How many storm warnings did the keepers record?", "--json", "--max-tokens", "30")
    assert asked.returncode == 0, asked.stderr
    assert not json.loads(asked.stdout)["declined"]

    filler.unlink()  # the cause goes away
    again = _run(data, "ingest", str(more), "--json")
    assert again.returncode == 0, again.stderr
    final = json.loads(_run(data, "status", "--json").stdout)
    assert final["files"]["indexed"] == 35 and final["files"]["pending"] == 0
    assert _run(data, "audit", "verify").returncode == 0


def test_a_read_only_data_folder_is_explained_and_reads_keep_working(small_disk: Path, tmp_path: Path) -> None:
    data = small_disk / "data"
    docs = tmp_path / "docs"
    corpus.make_library(docs)
    assert _run(data, "ingest", str(docs)).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        refused = _run(data, "ingest", str(docs))
        assert refused.returncode != 0
        assert "read-only" in refused.stderr and "Traceback" not in refused.stderr
        assert _run(data, "status", "--json").returncode == 0
        keyword = _run(data, "search", "storm warnings", "--mode", "keyword", "--json")
        assert keyword.returncode == 0 and "lighthouse-report.pdf" in keyword.stdout
        assert _run(data, "audit", "verify").returncode == 0
        asked = _run(data, "ask", "How many storm warnings did the keepers record?", "--json",
                     "--max-tokens", "30")
        assert asked.returncode == 0, asked.stderr
        assert "read-only" in asked.stderr and not json.loads(asked.stdout)["declined"]
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert _run(data, "ingest", str(docs)).returncode == 0


def test_a_full_disk_reads_the_same_whichever_store_hits_it(small_disk: Path) -> None:
    """The catalog and the conversation history share one SQLite base: one
    sentence for a full disk, naming the file that could not be written."""
    from app.core.stores.catalog import Catalog
    from app.core.stores.chats import ChatStore
    from app.errors import DISK_FULL, StoreError

    data = small_disk / "data"
    catalog = Catalog(data / "catalog.sqlite3")
    chats = ChatStore(data / "chats.sqlite3")
    try:
        conversation = chats.create()
        filler = _fill(small_disk)
        big = "cargo manifest " * 20_000  # more than SQLite's cache: it must reach the disk
        errors: dict[str, StoreError] = {}
        for name, write in {
            "catalog.sqlite3": lambda: catalog.set_meta("note", big),
            "chats.sqlite3": lambda: chats.add_turn(conversation.id, "What was shipped?", big, {}),
        }.items():
            with pytest.raises(StoreError) as caught:
                for _ in range(50):  # until the WAL grows past the space left
                    write()
            errors[name] = caught.value
        for name, err in errors.items():
            assert err.kind == DISK_FULL
            assert str(data / name) in str(err) and "is full" in str(err) and "Free some space" in str(err)
        sentences = {str(err).replace(str(data / name), "FILE") for name, err in errors.items()}
        assert len(sentences) == 1, sentences
        filler.unlink()  # the space is back: both write again
        catalog.set_meta("note", "short")
        chats.add_turn(conversation.id, "What was shipped?", "Cargo.", {})
    finally:
        catalog.close()
        chats.close()
