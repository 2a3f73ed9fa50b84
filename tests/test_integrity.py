"""Damaged stores at start-up: detected in a child process, moved aside, rebuilt.

Real SQLite, real Chroma and the real embedder throughout: the point is what
these libraries do with a truncated or scribbled-over file, which no fake
can tell.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.config import DataPaths
from app.core.stores import integrity, recovery
from app.core.stores.chats import ChatStore
from app.core.library import Library

QUESTION = "How many storm warnings were recorded?"
# Chroma keeps every vector in its write-ahead log (and rebuilds a damaged
# HNSW segment from it) until a collection passes its sync threshold of 1000;
# past that it persists the segment and purges the log, and the files on disk
# are all there is. Enough filler vectors get a small test library there.
FILLER = 1200


# --- helpers -----------------------------------------------------------------


def _open(data_dir: Path, embedder) -> Library:  # noqa: ANN001
    lib = Library(data_dir, purpose="tests")
    lib.use_embedder(embedder)
    return lib


def _build(data_dir: Path, folder: Path, embedder, *, filler: int = 0) -> int:  # noqa: ANN001
    """Index ``folder``, keep one conversation, close cleanly; the conversation's id."""
    lib = _open(data_dir, embedder)
    try:
        report = lib.indexer.ingest([folder])
        assert report.indexed == 5 and not report.failed
        if filler:
            vectors = np.random.default_rng(7).normal(size=(filler, lib.embedder.dim)).astype(np.float32)
            lib.vectors.upsert(
                [f"filler-{i:05d}" for i in range(filler)], vectors,
                [{"file_id": 0, "page": -1, "text_hash": "filler"}] * filler,
            )
    finally:
        lib.close()
    chats = ChatStore(DataPaths(data_dir).chats)
    try:
        conversation = chats.create()
        chats.add_turn(conversation.id, QUESTION, "17 storm warnings [1].", {"question": QUESTION})
    finally:
        chats.close()
    assert (data_dir / integrity.CLEAN_MARKER).exists()
    return conversation.id


def _truncate_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _empty(path: Path) -> None:
    os.truncate(path, 0)


def _flip_middle(path: Path) -> None:
    """Scramble the middle third of a file, as a bad sector or a stray write would."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 3)
        block = fh.read(size // 3)
        fh.seek(size // 3)
        fh.write(bytes(b ^ 0xA5 for b in block))


def _segment_file(data_dir: Path, name: str) -> Path:
    found = sorted((data_dir / "chroma").glob(f"*/{name}"))
    assert found, f"no HNSW segment file {name}"
    return found[0]


def _rebuilt_records(lib: Library) -> list[dict]:
    return [r for r in lib.audit.records() if r["event"] == "store_rebuilt"]


def _answers_again(lib: Library, docs: dict[str, Path]) -> None:
    """After the rebuild, keyword and hybrid search find the known passage again."""
    report = lib.indexer.ingest(lib.rebuild_roots())
    # After a repair every file is read again; a healed store has nothing to redo.
    assert (report.indexed, report.unchanged) == ((5, 0) if lib.repair else (0, 5))
    assert not report.failed
    for mode in ("keyword", "hybrid"):
        hits = lib.retriever.search("storm warnings LED lighting", k=3, mode=mode).hits
        assert hits, mode
        assert (Path(hits[0].chunk.path), hits[0].chunk.page) == (docs["pdf"], 3), mode
    assert lib.catalog.all_chunk_ids() == lib.vectors.ids()
    assert lib.vectors.count() == lib.catalog.indexed_chunk_count()


# --- damage of each kind -----------------------------------------------------

CATALOG = "catalog.sqlite3"
CHROMA_DB = "chroma/chroma.sqlite3"

# (damage, file to damage, filler vectors, catalog damaged, chroma damaged)
CASES: dict[str, tuple[Callable[[Path], None], str, int, bool, bool]] = {
    "catalog-truncated": (_truncate_half, CATALOG, 0, True, False),
    "catalog-emptied": (_empty, CATALOG, 0, True, False),
    "catalog-flipped": (_flip_middle, CATALOG, 0, True, False),
    "chroma-sqlite-truncated": (_truncate_half, CHROMA_DB, 0, False, True),
    "chroma-sqlite-flipped": (_flip_middle, CHROMA_DB, 0, False, True),
    "hnsw-data-truncated": (_truncate_half, "data_level0.bin", FILLER, False, True),
    "hnsw-header-emptied": (_empty, "header.bin", FILLER, False, True),
    # Scrambled graph links: a query reads out of bounds and the process dies
    # (SIGSEGV) or chromadb reports the embeddings unreadable, depending on
    # where the scramble lands; either must end in a repair, never a crash.
    "hnsw-data-flipped": (_flip_middle, "data_level0.bin", FILLER, False, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_store_is_moved_aside_and_rebuilt(case: str, docs, data_dir, embedder) -> None:
    damage, target, filler, catalog_damaged, chroma_damaged = CASES[case]
    conversation_id = _build(data_dir, docs["pdf"].parent, embedder, filler=filler)
    victim = data_dir / target if "/" in target or target == CATALOG else _segment_file(data_dir, target)
    damage(victim)

    lib = _open(data_dir, embedder)  # must not crash, whatever the damage
    try:
        repair = lib.repair
        assert repair is not None
        assert (repair.catalog_damaged, repair.chroma_damaged) == (catalog_damaged, chroma_damaged)
        assert "Your conversations are safe" in repair.message
        assert all(p.parent == data_dir / recovery.DAMAGED_DIR and p.is_dir() for p in repair.moved)
        # Nothing deleted: the damaged files are under damaged/, as they were found.
        kept = {p.relative_to(m).as_posix() for m in repair.moved for p in m.rglob("*") if p.is_file()}
        if catalog_damaged:
            assert "catalog.sqlite3" in kept
            assert "search index" in repair.message or "catalog" in repair.message
        # A damaged catalog takes the Chroma folder along (its vectors belong to it).
        assert "chroma/chroma.sqlite3" in kept
        if chroma_damaged:
            assert "search index was damaged" in repair.message
        moved_victim = victim.relative_to(data_dir).as_posix()
        assert moved_victim in kept
        assert str(repair.moved[0]) in repair.message

        records = _rebuilt_records(lib)
        stores = {r["data"]["store"]: r["data"] for r in records}
        assert set(stores) == ({"catalog", "chroma"} if catalog_damaged else {"chroma"})
        assert all(Path(d["moved_to"]).is_dir() and d["reason"] for d in stores.values())
        assert stores["catalog" if catalog_damaged else "chroma"]["damaged"] is True
        assert lib.audit.verify().ok

        chats = ChatStore(DataPaths(data_dir).chats)
        try:
            turns = chats.turns(conversation_id)
            assert [t.question for t in turns] == [QUESTION]
        finally:
            chats.close()

        # The roots survive a lost catalog; a lost Chroma makes every file pending.
        assert lib.rebuild_roots() == [docs["pdf"].parent]
        if not catalog_damaged:
            assert lib.status().files["pending"] == 5 and lib.status().chunks == 0
        _answers_again(lib, docs)
    finally:
        lib.close()

    # Rebuilt and closed cleanly: the next start finds nothing to repair.
    again = _open(data_dir, embedder)
    try:
        assert again.repair is None
        assert again.retriever.search("storm warnings", k=1, mode="hybrid").hits
    finally:
        again.close()


def test_damaged_hnsw_files_of_a_small_store_are_healed_or_repaired(docs, data_dir, embedder) -> None:
    """Below the sync threshold Chroma rebuilds its segment from its log: no crash either way."""
    _build(data_dir, docs["pdf"].parent, embedder)
    for name in ("data_level0.bin", "header.bin", "length.bin"):
        f = _segment_file(data_dir, name)
        _truncate_half(f) if name == "data_level0.bin" else _empty(f)
    lib = _open(data_dir, embedder)
    try:
        if lib.repair is not None:
            assert lib.repair.chroma_damaged and not lib.repair.catalog_damaged
        _answers_again(lib, docs)
    finally:
        lib.close()


# --- when the probe runs -------------------------------------------------------


def _forbid_probe(monkeypatch) -> None:  # noqa: ANN001
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        pytest.fail(f"a probe process was started: {args[:1]}")

    monkeypatch.setattr(integrity.subprocess, "run", refuse)
    monkeypatch.setattr(integrity.subprocess, "Popen", refuse)


def _count_probes(monkeypatch) -> list[list[str]]:  # noqa: ANN001
    calls: list[list[str]] = []
    original = integrity.subprocess.run

    def spy(cmd, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(list(cmd))
        return original(cmd, *args, **kwargs)

    monkeypatch.setattr(integrity.subprocess, "run", spy)
    return calls


def test_a_clean_reopen_starts_no_probe(docs, data_dir, embedder, monkeypatch) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    _forbid_probe(monkeypatch)
    lib = _open(data_dir, embedder)
    try:
        # The marker is gone while the writer runs, so a crash now would be noticed.
        assert not (data_dir / integrity.CLEAN_MARKER).exists()
        assert lib.repair is None
        assert lib.retriever.search("storm warnings", k=1).hits
    finally:
        lib.close()
    assert (data_dir / integrity.CLEAN_MARKER).exists()


def test_a_new_data_folder_starts_no_probe(data_dir, monkeypatch) -> None:
    _forbid_probe(monkeypatch)
    with Library(data_dir, purpose="tests") as lib:
        assert lib.repair is None


def test_after_a_crash_the_stores_are_probed(docs, data_dir, embedder, monkeypatch) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    # A writer that dies without closing (kill -9, power cut) leaves no marker.
    script = textwrap.dedent(f"""
        import os
        from app.core.library import Library
        lib = Library({str(data_dir)!r}, purpose="crashing writer")
        lib.vectors.count()
        os._exit(9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert not (data_dir / integrity.CLEAN_MARKER).exists()
    calls = _count_probes(monkeypatch)
    lib = _open(data_dir, embedder)
    try:
        assert len(calls) == 1 and "app.core.stores.integrity" in calls[0]
        assert lib.repair is None  # probed, found healthy
        assert lib.retriever.search("storm warnings", k=1, mode="hybrid").hits
    finally:
        lib.close()


def test_a_store_changed_while_closed_is_probed(docs, data_dir, embedder, monkeypatch) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    catalog = data_dir / "catalog.sqlite3"
    os.utime(catalog, ns=(catalog.stat().st_atime_ns, catalog.stat().st_mtime_ns + 10**9))
    calls = _count_probes(monkeypatch)
    lib = _open(data_dir, embedder)
    try:
        assert len(calls) == 1 and lib.repair is None
    finally:
        lib.close()


def test_readers_never_probe_or_repair(docs, data_dir, embedder, monkeypatch) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    (data_dir / integrity.CLEAN_MARKER).unlink()
    _forbid_probe(monkeypatch)
    with Library(data_dir, writer=False) as reader:
        assert reader.repair is None and reader.status().files["indexed"] == 5
    assert not (data_dir / integrity.CLEAN_MARKER).exists()  # only the writer vouches


# --- the probe's verdicts when its child misbehaves ------------------------------


def _fake_python(tmp_path: Path, body: str) -> Path:
    """A stand-in for ``sys.executable`` that plays a probe child."""
    exe = tmp_path / "fake-python"
    exe.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for Python")
def test_a_child_killed_by_a_signal_marks_the_store_it_was_checking(tmp_path, monkeypatch) -> None:
    paths = DataPaths(tmp_path / "data")
    exe = _fake_python(tmp_path, """
        echo '{"started": true}'
        echo '{"store": "catalog", "verdict": "ok"}'
        echo 'Fatal Python error: Segmentation fault' >&2
        kill -SEGV $$
    """)
    monkeypatch.setattr(sys, "executable", str(exe))
    result = integrity.probe(paths, timeout_s=30)
    assert result.catalog == "ok"
    assert result.chroma_damaged and "SIGSEGV" in result.chroma and "Segmentation fault" in result.chroma


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for Python")
def test_stores_after_a_crash_are_probed_again_alone(tmp_path, monkeypatch) -> None:
    paths = DataPaths(tmp_path / "data")
    log = tmp_path / "calls"
    exe = _fake_python(tmp_path, f"""
        echo "$*" >> {log}
        echo '{{"started": true}}'
        case "$*" in
          *"--only chroma") echo '{{"store": "chroma", "verdict": "ok"}}' ;;
          *) kill -ABRT $$ ;;
        esac
    """)
    monkeypatch.setattr(sys, "executable", str(exe))
    result = integrity.probe(paths, timeout_s=30)
    assert result.catalog_damaged and "SIGABRT" in result.catalog
    assert result.chroma == "ok"
    assert [line.split("--only ")[1] for line in log.read_text().splitlines()] == ["catalog,chroma", "chroma"]


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for Python")
def test_a_hanging_child_is_a_damaged_store(tmp_path, monkeypatch) -> None:
    paths = DataPaths(tmp_path / "data")
    exe = _fake_python(tmp_path, """
        echo '{"started": true}'
        echo '{"store": "catalog", "verdict": "ok"}'
        exec sleep 30
    """)
    monkeypatch.setattr(sys, "executable", str(exe))
    result = integrity.probe(paths, timeout_s=1)
    assert result.catalog == "ok"
    assert result.chroma_damaged and "did not finish in time" in result.chroma


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for Python")
def test_a_probe_that_cannot_start_blames_no_store(docs, data_dir, embedder, tmp_path, monkeypatch) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    (data_dir / integrity.CLEAN_MARKER).unlink()
    exe = _fake_python(tmp_path, """
        echo 'python: cannot import app' >&2
        exit 1
    """)
    monkeypatch.setattr(sys, "executable", str(exe))
    result = integrity.probe(DataPaths(data_dir), timeout_s=30)
    assert result.catalog.startswith("unknown") and result.chroma.startswith("unknown")
    assert not result.damaged
    lib = Library(data_dir, purpose="tests")
    try:
        assert lib.repair is None and lib.status().files["indexed"] == 5
    finally:
        lib.close()
    assert not (data_dir / recovery.DAMAGED_DIR).exists()


# --- a full disk is not damage ----------------------------------------------------


def test_a_damaged_store_on_a_full_disk_is_left_in_place(docs, data_dir, embedder, monkeypatch) -> None:
    """Moving it aside would only leave no store at all: refuse, say why, move nothing."""
    from app.errors import StoreError

    _build(data_dir, docs["pdf"].parent, embedder)
    _truncate_half(data_dir / "catalog.sqlite3")
    size = (data_dir / "catalog.sqlite3").stat().st_size
    monkeypatch.setattr(recovery, "room_to_rebuild", lambda root: "No space left on device")
    with pytest.raises(StoreError, match="nothing was moved"):
        Library(data_dir, purpose="tests")
    assert not (data_dir / recovery.DAMAGED_DIR).exists()
    assert (data_dir / "catalog.sqlite3").stat().st_size == size
    monkeypatch.undo()  # the space is back
    lib = _open(data_dir, embedder)
    try:
        assert lib.repair is not None and lib.repair.catalog_damaged
    finally:
        lib.close()


def test_errors_of_the_surroundings_are_no_verdict_of_damage(tmp_path) -> None:
    import sqlite3

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    corrupt = sqlite3.DatabaseError("database disk image is malformed")
    corrupt.sqlite_errorcode = 11  # type: ignore[attr-defined]
    path = tmp_path / "catalog.sqlite3"
    assert integrity._sqlite_verdict(path, "cannot be read", full).startswith("unknown")
    assert integrity._sqlite_verdict(path, "cannot be read", corrupt).startswith("damaged")
    assert integrity._environmental("error returned from database: (code: 13) database or disk is full")
    assert integrity._environmental("attempt to write a readonly database")
    assert not integrity._environmental("Error executing plan: Internal error: Error getting embedding")


# --- the pieces ----------------------------------------------------------------


def test_quarantine_moves_a_database_with_its_wal_and_never_deletes(tmp_path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for name in ("catalog.sqlite3", "catalog.sqlite3-wal", "catalog.sqlite3-shm"):
        (root / name).write_bytes(name.encode())
    first = recovery.quarantine(root / "catalog.sqlite3", root)
    assert sorted(p.name for p in first.iterdir()) == [
        "catalog.sqlite3", "catalog.sqlite3-shm", "catalog.sqlite3-wal",
    ]
    assert not any(root.glob("catalog.sqlite3*"))
    # A second repair in the same second gets a folder of its own.
    (root / "catalog.sqlite3").write_bytes(b"again")
    second = recovery.quarantine(root / "catalog.sqlite3", root)
    assert second != first and (second / "catalog.sqlite3").read_bytes() == b"again"
    assert (first / "catalog.sqlite3").read_bytes() == b"catalog.sqlite3"


def test_roots_are_kept_outside_the_catalog(docs, data_dir, embedder) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    roots_file = data_dir / recovery.ROOTS_FILE
    assert json.loads(roots_file.read_text())["roots"] == [str(docs["pdf"].parent)]
    lib = _open(data_dir, embedder)
    try:
        root = lib.catalog.root(str(docs["pdf"].parent))
        lib.catalog.remove_root(root.id)
        assert recovery.read_roots_file(roots_file) == []
        lib.catalog.add_root(str(docs["md"]))
        assert recovery.read_roots_file(roots_file) == [str(docs["md"])]
        # Readable even from a catalog that lost roots.json (folders from before it).
        assert recovery.salvage_roots(data_dir / "catalog.sqlite3") == [str(docs["md"])]
    finally:
        lib.close()


def test_a_lost_catalog_without_roots_json_salvages_its_roots(docs, data_dir, embedder) -> None:
    """A data folder from before roots.json: its roots are read from the damaged catalog."""
    _build(data_dir, docs["pdf"].parent, embedder)
    (data_dir / recovery.ROOTS_FILE).unlink()
    # Scramble the chunks table's first page (page 10: the tables are created
    # in a fixed order); the roots table (page 4) stays readable.
    with open(data_dir / "catalog.sqlite3", "r+b") as fh:
        fh.seek(9 * 4096)
        block = fh.read(4096)
        fh.seek(9 * 4096)
        fh.write(bytes(b ^ 0xA5 for b in block))
    lib = _open(data_dir, embedder)
    try:
        assert lib.repair is not None and lib.repair.catalog_damaged
        assert lib.rebuild_roots() == [docs["pdf"].parent]
        assert "being rebuilt from your 1 library folder" in lib.repair.message
    finally:
        lib.close()


def test_a_lost_catalog_with_no_trace_of_its_roots_says_so(docs, data_dir, embedder) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    (data_dir / recovery.ROOTS_FILE).unlink()
    _empty(data_dir / "catalog.sqlite3")
    lib = _open(data_dir, embedder)
    try:
        assert lib.repair is not None and lib.repair.catalog_damaged
        assert lib.rebuild_roots() == []
        assert "add them again" in lib.repair.message
    finally:
        lib.close()


def test_the_installed_app_probes_by_running_itself(docs, data_dir, embedder, monkeypatch) -> None:
    # A PyInstaller build has no Python to run `-m app.core.stores.integrity` with:
    # it runs its own executable with --integrity-probe.
    _build(data_dir, docs["pdf"].parent, embedder)
    launcher = str(Path(sys.executable).parent / "docent")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", launcher)
    cmd = integrity.probe_command(data_dir, ("catalog", "chroma"))
    assert cmd[:2] == [launcher, "--integrity-probe"]
    monkeypatch.undo()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    verdicts = {m["store"]: m["verdict"] for m in map(json.loads, proc.stdout.splitlines())
                if isinstance(m, dict) and "store" in m}
    assert set(verdicts) == {"catalog", "chroma"}
    assert set(verdicts.values()) == {"ok"}


# --- crash reconciliation is a step of its own -----------------------------------


def test_crash_repair_runs_when_the_owner_calls_recover(docs, data_dir, embedder) -> None:
    _build(data_dir, docs["pdf"].parent, embedder)
    lib = _open(data_dir, embedder)
    try:
        # A crash between the two stores left a vector no catalog chunk names.
        lib.vectors.upsert(["orphan-00000"], np.ones((1, lib.embedder.dim), dtype=np.float32),
                           [{"file_id": 999, "page": -1, "text_hash": "x"}])
    finally:
        lib.close()
    (data_dir / integrity.CLEAN_MARKER).unlink()  # as a kill -9 would leave it
    lib = _open(data_dir, embedder)
    try:
        assert lib.unclean and lib.repair is None
        lib.indexer  # noqa: B018 - opening the indexer repairs nothing by itself
        assert "orphan-00000" in lib.vectors.ids()
        assert lib.recover() == {"orphan_vectors": 1, "files_to_redo": 0, "pending": 0}
        assert "orphan-00000" not in lib.vectors.ids()
        assert lib.recover() is None  # once
        assert [r["data"]["orphan_vectors"] for r in lib.audit.records() if r["event"] == "repair"] == [1]
    finally:
        lib.close()
    with Library(data_dir, writer=False) as reader:
        assert reader.recover() is None  # readers never repair
