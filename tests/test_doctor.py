"""``docent doctor``: a healthy library passes; a damaged store, a broken
audit chain, a full disk and vectors missing for catalog chunks are each
reported with what to do; and the data folder is never changed.

Real SQLite, real Chroma and the real bundled models: the point is what
doctor finds in a real data folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from app import cli
from app.config import DataPaths, Settings
from app.core import doctor
from app.core.library import Library
from tests import corpus


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # noqa: ANN001
    """A small indexed library, built once and copied by each test."""
    root = tmp_path_factory.mktemp("doctor")
    docs = corpus.make_library(root / "docs")
    lib = Library(root / "data", purpose="tests")
    lib.use_embedder(embedder)
    try:
        report = lib.indexer.ingest([next(iter(docs.values())).parent])
        assert report.indexed == 5 and not report.failed
    finally:
        lib.close()
    return root / "data"


@pytest.fixture()
def data(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def _doctor(data: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.run(["--data-dir", str(data), "doctor", *args], out=out)
    return code, out.getvalue()


def _check(report: doctor.DoctorReport, name: str) -> doctor.Check:
    return next(c for c in report.checks if c.name == name)


def _state(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every file's hash, size and mtime, and every folder's presence."""
    out: dict[str, tuple[str, int, int]] = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[path.relative_to(folder).as_posix()] = (digest, st.st_size, st.st_mtime_ns)
    return out


# --- healthy ---------------------------------------------------------------


def test_a_healthy_library_passes_with_the_real_models(data: Path) -> None:
    code, out = _doctor(data, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True, out
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["Embedding model"]["status"] == "ok"
    assert "loads and encodes" in checks["Embedding model"]["detail"]
    assert checks["Language model"]["status"] == "ok"
    assert "loads" in checks["Language model"]["detail"]
    assert checks["Stores"]["status"] == "ok"
    assert checks["Catalog and vectors"]["status"] == "ok"
    assert checks["Audit log"]["status"] == "ok" and "intact" in checks["Audit log"]["detail"]
    assert all(c["status"] != "problem" for c in report["checks"])


def test_the_text_report_has_one_line_per_check_and_a_verdict(data: Path) -> None:
    code, out = _doctor(data)
    lines = out.strip().splitlines()
    assert code == 0
    assert any(line.startswith("ok") and "Audit log:" in line for line in lines)
    assert lines[-1].startswith("Healthy")


def test_a_new_data_folder_is_not_a_problem(tmp_path: Path) -> None:
    report = doctor.run(DataPaths(tmp_path / "nothing-here"), Settings(), models=False)
    assert report.ok, report.to_json()
    assert "no library yet" in _check(report, "Data folder").detail
    assert not (tmp_path / "nothing-here").exists()


# --- what it finds -----------------------------------------------------------


def test_a_damaged_catalog_is_a_problem_with_a_fix(data: Path) -> None:
    catalog = data / "catalog.sqlite3"
    os.truncate(catalog, catalog.stat().st_size // 2)

    code, out = _doctor(data)
    assert code == 1
    problem = next(line for line in out.splitlines() if line.startswith("PROBLEM") and "Stores" in line)
    assert "catalog is damaged" in problem
    fix = out.splitlines()[out.splitlines().index(problem) + 1]
    assert "what to do" in fix and "docent ingest" in fix
    assert out.strip().splitlines()[-1].startswith("1 problem found")


def test_a_damaged_vector_store_is_a_problem(data: Path) -> None:
    db = data / "chroma" / "chroma.sqlite3"
    os.truncate(db, db.stat().st_size // 2)

    report = doctor.run(DataPaths(data), Settings(), models=False)
    stores = _check(report, "Stores")
    assert not report.ok and stores.status == "problem"
    assert "vector store is damaged" in stores.detail and stores.fix


def test_a_broken_audit_chain_names_the_record(data: Path) -> None:
    log = data / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    rec = json.loads(lines[1])
    rec["data"]["edited"] = True  # one record changed, its hash left as it was
    lines[1] = json.dumps(rec).encode() + b"\n"
    log.write_bytes(b"".join(lines))

    code, out = _doctor(data, "--json")
    report = json.loads(out)
    audit = next(c for c in report["checks"] if c["name"] == "Audit log")
    assert code == 1 and report["ok"] is False
    assert audit["status"] == "problem" and "record 2" in audit["detail"]
    assert audit["fix"]


def test_a_full_disk_is_a_problem_with_a_fix(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "disk_usage", lambda path: doctor.DiskUsage(10 << 30, 10 << 30, 4096))
    report = doctor.run(DataPaths(data), Settings(), models=False, probe=False)
    disk = _check(report, "Disk space")
    assert not report.ok and disk.status == "problem"
    assert "4.0 KB free" in disk.detail and "Free up space" in (disk.fix or "")


def test_little_free_space_is_only_a_warning(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "disk_usage", lambda path: doctor.DiskUsage(10 << 30, 9 << 30, 1 << 30))
    report = doctor.run(DataPaths(data), Settings(), models=False, probe=False)
    assert report.ok and _check(report, "Disk space").status == "warning"
    assert report.summary()["status"] == "degraded"


def test_a_really_full_disk_is_found(tmp_path: Path) -> None:
    """The same on a real filesystem filled to the last byte (tests/test_disk.py's helpers)."""
    test_disk = pytest.importorskip("tests.test_disk")
    if not test_disk._can_mount():
        pytest.skip("needs to mount a small tmpfs (root)")
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "data").mkdir()
        test_disk._fill(mount)
        report = doctor.run(DataPaths(mount / "data"), Settings(), models=False)
        disk = _check(report, "Disk space")
        assert not report.ok and disk.status == "problem" and "0 B free" in disk.detail
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_vectors_missing_for_catalog_chunks_are_reported(data: Path, embedder) -> None:  # noqa: ANN001
    lib = Library(data, purpose="tests")
    lib.use_embedder(embedder)
    try:
        some = sorted(lib.catalog.all_chunk_ids())[:2]
        lib.vectors.delete(some)
    finally:
        lib.close()

    report = doctor.run(DataPaths(data), Settings(), models=False)
    agreement = _check(report, "Catalog and vectors")
    assert agreement.status == "problem"
    assert "0 vectors without a catalog entry, 2 chunks without vectors" in agreement.detail
    assert "docent ingest" in (agreement.fix or "")
    assert report.summary()["status"] == "problems"
    assert {"name": "Catalog and vectors", "status": "problem", "detail": agreement.detail} in \
        report.summary()["issues"]


def test_a_low_inotify_limit_is_a_problem(data: Path, tmp_path: Path) -> None:
    limit = tmp_path / "max_user_watches"
    limit.write_text("0\n")
    check = doctor.check_inotify(DataPaths(data), limit_file=limit)
    if check is None:
        pytest.skip("inotify is Linux only")
    assert check.status == "problem" and "sysctl fs.inotify.max_user_watches" in (check.fix or "")


def test_a_processor_without_avx2_is_a_warning() -> None:
    check = doctor.check_cpu(cpuinfo="flags\t: fpu sse sse2 avx\n", meminfo="MemTotal: 16000000 kB\n")
    assert check.status == "warning" and "AVX2" in check.detail and check.fix


# --- read-only -------------------------------------------------------------


def test_doctor_never_changes_the_data_folder(data: Path) -> None:
    before = _state(data)
    code, _ = _doctor(data)
    assert code == 0
    doctor.run(DataPaths(data), Settings(), models=False, probe=False)
    assert _state(data) == before
