"""One writer per data folder, across processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.stores.lock import WriterLock
from app.errors import DataDirLocked

ROOT = Path(__file__).resolve().parents[1]

# Holds the lock until it reads a line on stdin (or is killed).
HOLDER = """
import sys
from pathlib import Path
from app.core.stores.lock import WriterLock
lock = WriterLock(Path(sys.argv[1]), sys.argv[2])
lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""


class Holder:
    """A child process that holds the writer lock of a data folder."""

    def __init__(self, data_dir: Path, purpose: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data_dir), purpose],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None
        # Blocks until the child holds the lock: no timing guesses.
        line = self.proc.stdout.readline()
        assert line.strip() == "locked", f"holder did not start: {line!r}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "released"
        assert self.proc.wait(timeout=30) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL if os.name == "posix" else signal.SIGTERM)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def holder_factory() -> Iterator[type[Holder]]:
    started: list[Holder] = []

    class Tracked(Holder):
        def __init__(self, data_dir: Path, purpose: str) -> None:
            super().__init__(data_dir, purpose)
            started.append(self)

    yield Tracked
    for h in started:
        h.close()


def test_acquire_release_and_holder_details(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert WriterLock.holder(data) is None
    lock = WriterLock(data, "docent ingest")
    lock.acquire()
    try:
        assert lock.held
        info = WriterLock.holder(data)
        assert info is not None
        assert info["pid"] == os.getpid()
        assert info["purpose"] == "docent ingest"
        assert isinstance(info["since"], str)
    finally:
        lock.release()
    assert not lock.held
    assert WriterLock.holder(data) is None
    assert not (data / "writer.json").exists()
    lock.release()  # harmless twice


def test_context_manager(tmp_path: Path) -> None:
    with WriterLock(tmp_path, "the Docent window") as lock:
        assert lock.held
        assert WriterLock.holder(tmp_path) is not None
    assert WriterLock.holder(tmp_path) is None


def test_two_locks_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    with WriterLock(tmp_path, "the Docent window"):
        with pytest.raises(DataDirLocked):
            WriterLock(tmp_path, "docent ingest").acquire()
    with WriterLock(tmp_path, "docent ingest"):
        pass


def test_acquiring_twice_on_one_object_is_a_bug(tmp_path: Path) -> None:
    with WriterLock(tmp_path, "docent ingest") as lock:
        with pytest.raises(RuntimeError):
            lock.acquire()


def test_second_process_is_refused_with_a_clear_message(
    tmp_path: Path, holder_factory: type[Holder]
) -> None:
    held = holder_factory(tmp_path, "docent watch")

    with pytest.raises(DataDirLocked) as caught:
        WriterLock(tmp_path, "docent ingest").acquire()
    err = caught.value
    assert err.exit_code == 3
    message = str(err)
    assert f"(docent watch, pid {held.pid})" in message
    assert str(tmp_path.resolve()) in message
    assert "read-only command" in message
    info = WriterLock.holder(tmp_path)
    assert info is not None
    assert (info["pid"], info["purpose"]) == (held.pid, "docent watch")
    assert getattr(err, "holder", None) == info

    held.release()
    assert WriterLock.holder(tmp_path) is None
    with WriterLock(tmp_path, "docent ingest"):
        pass


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_lock_of_a_killed_process_does_not_block(
    tmp_path: Path, holder_factory: type[Holder]
) -> None:
    held = holder_factory(tmp_path, "docent watch")
    with pytest.raises(DataDirLocked):
        WriterLock(tmp_path, "docent ingest").acquire()

    held.kill()
    # Its files are still there, with a pid that is gone: only the OS lock counts.
    assert (tmp_path / "writer.lock").exists()
    assert json.loads((tmp_path / "writer.json").read_text())["pid"] == held.pid
    assert WriterLock.holder(tmp_path) is None
    with WriterLock(tmp_path, "docent ingest"):
        info = WriterLock.holder(tmp_path)
        assert info is not None and info["pid"] == os.getpid()


def test_stale_details_with_a_live_pid_do_not_block(tmp_path: Path) -> None:
    # Even a pid that is alive (ours) in a left-over writer.json must not
    # keep anyone out when nobody holds the OS lock.
    (tmp_path / "writer.lock").write_text("")
    (tmp_path / "writer.json").write_text(
        json.dumps({"pid": os.getpid(), "purpose": "docent watch", "since": "x"})
    )
    assert WriterLock.holder(tmp_path) is None
    with WriterLock(tmp_path, "docent ingest"):
        info = WriterLock.holder(tmp_path)
        assert info is not None and info["purpose"] == "docent ingest"


def test_holder_in_another_process_sees_this_one(tmp_path: Path) -> None:
    with WriterLock(tmp_path, "the Docent window"):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import json, sys\n"
                "from pathlib import Path\n"
                "from app.core.stores.lock import WriterLock\n"
                "print(json.dumps(WriterLock.holder(Path(sys.argv[1]))))",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            check=True,
        ).stdout
    info = json.loads(out)
    assert info["pid"] == os.getpid() and info["purpose"] == "the Docent window"
