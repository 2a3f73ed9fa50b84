"""Crash consistency: `docent ingest` is killed with SIGKILL at random points,
then run again; every time the library must be whole.

After each restart: every file on disk is indexed exactly once, the catalog's
chunks and Chroma's vectors are the same set (no orphans, no duplicates), and
the audit chain verifies (a torn last record is quarantined, not fatal).
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import corpus

RUNS = 20
_PROGRESS = re.compile(r"\b\d+/\d+ files\b")


def _docent(data: Path, *args: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).parent / "docent"
    return subprocess.Popen([str(exe), "--data-dir", str(data), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _make_folder(folder: Path, rng: random.Random) -> None:
    corpus.make_library(folder)
    corpus.make_pdf(folder / "long-report.pdf",
                    [f"Section {i}: the harbour board approved budget line {i} for repairs." * 6
                     for i in range(40)])
    for i in range(25):
        (folder / f"note-{i:02d}.md").write_text(
            f"# Note {i}\n\n" + " ".join(rng.choice(["tide", "ferry", "lamp", "cargo", "storm"])
                                        for _ in range(200)), encoding="utf-8")


def _mutate(folder: Path, rng: random.Random, run: int) -> None:
    """Between runs the folder changes, so every run has real work to be
    killed in: re-indexing edited files, indexing new ones, removing some."""
    notes = sorted(folder.glob("note-*.md"))
    for note in notes:
        note.write_text(note.read_text(encoding="utf-8") + f"\nRevised in run {run}: "
                        + " ".join(rng.choice(["tide", "ferry", "lamp", "cargo", "storm"]) for _ in range(30))
                        + ".\n", encoding="utf-8")
    if len(notes) > 10 and rng.random() < 0.5:
        rng.choice(notes).unlink()
    (folder / f"added-{run:02d}.md").write_text(f"# Added {run}\n\nA new note about beacon {run}.\n")


def _check_whole(data: Path, folder: Path) -> None:
    from app.core.stores.audit import AuditLog
    from app.core.stores.catalog import Catalog
    from app.core.stores.vectors import VectorStore

    catalog = Catalog(data / "catalog.sqlite3", readonly=True)
    try:
        files = catalog.files()
        paths = [f.path for f in files]
        assert len(paths) == len(set(paths)), "a file is catalogued twice"
        on_disk = {str(p) for p in folder.rglob("*") if p.is_file()}
        assert {f.path for f in files if f.status == "indexed"} == on_disk
        ids = catalog.all_chunk_ids()
        # The keyword index (derived data) holds every chunk row exactly once
        # and is caught up to the catalog's change log.
        keywords = catalog.keywords
        assert keywords is not None
        keywords.sync()
        rids = keywords.rids()
        assert len(rids) == len(set(rids)), "a passage is in the keyword index twice"
        assert set(rids) == {r[0] for r in catalog._query("SELECT rid FROM chunks")}  # noqa: SLF001
        for f in files:
            chunk_ids = catalog.chunk_ids(f.id)
            assert len(chunk_ids) == f.chunks, f"{f.path}: chunk rows disagree with the count"
        vectors = VectorStore(data / "chroma")
        try:
            assert vectors.ids() == ids, "the vector store and the catalog disagree"
            assert vectors.count() == len(ids)
        finally:
            vectors.close()
    finally:
        catalog.close()
    result = AuditLog(data / "audit", writable=False).verify()
    assert result.ok, result.reason


def _wait_for_work(proc: subprocess.Popen[str]) -> float:
    """Block until the ingest reports progress (imports and model loading are
    done); returns when that was."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if _PROGRESS.search(line):  # the progress bar's "12/40 files"
            return time.monotonic()
    return time.monotonic()


def _restart(data: Path, folder: Path, embedder) -> None:  # noqa: ANN001
    """Open the data folder again, as the next run of Docent would, and finish the work."""
    from app.core.library import Library

    with Library(data, purpose="docent ingest") as lib:
        lib.use_embedder(embedder)
        lib.recover()
        report = lib.indexer.ingest([folder])
        assert not report.cancelled


@pytest.mark.slow
def test_sigkill_at_random_points_never_leaves_a_broken_library(tmp_path: Path, embedder) -> None:
    rng = random.Random(20261126)
    folder, data = tmp_path / "library", tmp_path / "data"
    _make_folder(folder, rng)

    first = _docent(data, "ingest", str(folder))
    assert first.wait(timeout=600) == 0
    _check_whole(data, folder)
    # How long the work of one run takes (a run like those to be killed), to
    # spread the kills over it.
    _mutate(folder, rng, -1)
    calibration = _docent(data, "ingest", str(folder))
    began = _wait_for_work(calibration)
    assert calibration.wait(timeout=600) == 0
    span = time.monotonic() - began
    _check_whole(data, folder)

    killed_mid_work = 0
    for run in range(RUNS):
        _mutate(folder, rng, run)
        proc = _docent(data, "ingest", str(folder))
        _wait_for_work(proc)
        try:
            proc.wait(timeout=rng.uniform(0.0, span))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_mid_work += 1
        _restart(data, folder, embedder)
        _check_whole(data, folder)
    assert killed_mid_work >= RUNS // 2, "most kills must land while work was going on"
