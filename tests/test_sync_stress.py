"""The issue's trial: `docent watch` against hundreds of changes, checked with
the read-only commands running alongside it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import sync_stress


@pytest.mark.slow
def test_watch_keeps_up_with_hundreds_of_changes(tmp_path: Path) -> None:
    result = sync_stress.run(tmp_path, deadline_s=240)
    print(f"\nsync trial: in line {result['seconds_after_last_change']} s after the last change")
    assert result["in_line"], result["state"]
    assert result["watch_exit_code"] == 0


def test_watch_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSome text.")
    exe = Path(sys.executable).parent / "docent"
    proc = subprocess.Popen([str(exe), "--data-dir", str(tmp_path / "data"), "watch", str(folder)],
                            stderr=subprocess.PIPE, text=True)
    while "Watching" not in proc.stderr.readline():
        assert proc.poll() is None, "watch exited early"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert "Stopped watching." in proc.stderr.read()
    # The data folder is free again for the next writer.
    again = subprocess.run([str(exe), "--data-dir", str(tmp_path / "data"), "ingest", str(folder), "--json"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
