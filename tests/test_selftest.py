"""`docent --selftest`: an installation proves itself end to end, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import resources

DOCENT = str(Path(sys.executable).parent / "docent")


def test_selftest_indexes_searches_answers_with_a_page_and_verifies_the_audit(tmp_path) -> None:
    proc = subprocess.run([DOCENT, "--selftest"], capture_output=True, text=True, timeout=600,
                          env={**_env(), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Docent ") and "self-test (from source)" in lines[0]
    steps = [line.split(":")[0].strip() for line in lines[1:-1]]
    assert steps == ["PASS  Open a data folder", "PASS  Index the sample report", "PASS  Search",
                     "PASS  Answer with a page citation", "PASS  Verify the audit log"]
    assert "citing page 3" in proc.stdout and "hash chain intact" in proc.stdout
    assert lines[-1].startswith("Self-test passed")
    # It used a temporary folder: the user's data folder was never created.
    assert not any(tmp_path.rglob("catalog.sqlite3"))


@pytest.mark.skipif(shutil.which("unshare") is None
                    or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0,
                    reason="needs `unshare -n` (root or user namespaces)")
def test_selftest_passes_with_no_network_at_all(tmp_path) -> None:
    proc = subprocess.run(["unshare", "-n", DOCENT, "--selftest"], capture_output=True, text=True,
                          timeout=600, env={**_env(), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_installation_fails_the_selftest_with_the_missing_file(monkeypatch, tmp_path, capsys) -> None:
    # Fault injection: an install whose resources folder lost the sample.
    empty = tmp_path / "resources"
    empty.mkdir()
    monkeypatch.setattr(resources, "resources_dir", lambda: empty)
    from app.cli import run

    code = run(["--selftest"])
    out = capsys.readouterr().out
    assert code != 0
    assert "FAIL  Open a data folder" in out
    assert "lighthouse-report.pdf is missing" in out and "Reinstall Docent" in out
    assert out.splitlines()[-1].startswith("Self-test FAILED:")


def _env() -> dict[str, str]:
    """This environment without a data folder override: the self-test must not need one."""
    return {k: v for k, v in os.environ.items() if k != "DOCENT_DATA_DIR"}
