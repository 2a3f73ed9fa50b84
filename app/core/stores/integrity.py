"""Start-up integrity of the derived stores: is either of them damaged?

The detecting half of the recovery story (``app.core.stores.recovery``
sets aside and rebuilds what this finds damaged): the clean-shutdown
marker, a cheap in-process check, and the probe in a child process.

Why a child process: chromadb's Rust core reports some damage as a pyo3
panic (a ``BaseException``), and a vector segment with flipped bytes can
crash the interpreter outright (SIGSEGV/abort) on the first query. Neither
can be caught in-process, so :func:`probe` opens both stores in
``python -m app.core.stores.integrity --probe DATA_DIR`` and reads the verdict from
its output; a child that crashes or hangs marks the store it was checking as
damaged. The probe costs a process start and a chromadb import (1-3 s, plus
about a second per 50k vectors, which it reads all), so
:func:`~app.core.stores.recovery.open_writer_stores` runs it only after an unclean shutdown or
when :func:`looks_sane` (stats and header reads) finds that a store changed
since the last clean close or no longer looks like SQLite.

Only damage of the data counts: a full disk, a read-only folder or a lock
gives an ``unknown`` verdict, and a store is never moved aside when fresh
ones could not be created in its place (``recovery.room_to_rebuild``).

The child prints one JSON line per stage, flushed at once, so a crash in the
Chroma stage still leaves the catalog's verdict behind::

    {"started": true}
    {"store": "catalog", "verdict": "ok" | "missing" | "damaged: ..."}
    {"store": "chroma", "verdict": ...}
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from app.config import DataPaths
from app.durable import atomic_write_text
from app.errors import StoreError
from app.resources import is_frozen

#: Written by the writer on a clean close, removed as soon as a writer opens.
CLEAN_MARKER = ".clean-shutdown"

STORES = ("catalog", "chroma")
SQLITE_HEADER = b"SQLite format 3\x00"
# hnswlib segment files that are never empty once written (link_lists.bin is
# legitimately empty for small indexes, so it is not listed).
_HNSW_NONEMPTY = ("header.bin", "data_level0.bin", "length.bin", "index_metadata.pickle")
# Reading speed assumed when giving a large store more time than timeout_s:
# a slow disk must not make a healthy library look damaged.
_BYTES_PER_S = 50 * 1024 * 1024


# --------------------------------------------------------------------------
# Results


def _is_damaged(verdict: str) -> bool:
    return verdict.startswith("damaged")


@dataclass(frozen=True)
class ProbeResult:
    """The verdict on each store.

    Each verdict is ``"ok"``, ``"missing"`` (first run: nothing to check),
    ``"damaged: <why>"`` or ``"unknown: <why>"`` (the probe could not tell:
    Python failed to start, or the disk is full, the folder read-only, the
    file locked; the stores are then opened as before).
    """

    catalog: str
    chroma: str

    @property
    def catalog_damaged(self) -> bool:
        return _is_damaged(self.catalog)

    @property
    def chroma_damaged(self) -> bool:
        return _is_damaged(self.chroma)

    @property
    def damaged(self) -> bool:
        return self.catalog_damaged or self.chroma_damaged

    def reason(self, store: str) -> str:
        """Why ``store`` is damaged, without the ``damaged:`` prefix."""
        verdict = getattr(self, store)
        return verdict.partition(":")[2].strip() or verdict


# --------------------------------------------------------------------------
# The cheap in-process check


def _has_sqlite_header(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def fingerprint(paths: DataPaths) -> dict[str, list[int]]:
    """Size and mtime of every store file, keyed by path inside the data folder.

    Kept in the clean-shutdown marker: a store file that changed while no
    writer had the folder open (a disk error, a sync tool, a restore from an
    old backup) then gets the full probe.
    """
    files = [paths.catalog, paths.catalog.with_name(paths.catalog.name + "-wal")]
    if paths.chroma.is_dir():
        try:
            files += sorted(paths.chroma.rglob("*"))
        except OSError:
            pass
    out: dict[str, list[int]] = {}
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            out[f.relative_to(paths.root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def looks_sane(paths: DataPaths, expected: dict[str, list[int]] | None = None) -> bool:
    """A few stats and header reads: False when a probe is needed.

    Runs on every writer start after a clean shutdown, so it reads at most
    16 bytes per file. It catches a store that changed since the last clean
    close (``expected``: the fingerprint saved then), truncation to nothing
    and a file that is no longer SQLite; damage that leaves size and mtime
    alone (silent bit rot) is left to SQLite's own errors and the next
    unclean start.
    """
    if expected is not None and fingerprint(paths) != expected:
        return False
    if paths.catalog.exists() and not _has_sqlite_header(paths.catalog):
        return False
    if paths.chroma.exists():
        sqlite_file = paths.chroma / "chroma.sqlite3"
        if not _has_sqlite_header(sqlite_file):
            return False
        try:
            segments = [d for d in paths.chroma.iterdir() if d.is_dir()]
            for seg in segments:
                for name in _HNSW_NONEMPTY:
                    f = seg / name
                    if f.exists() and f.stat().st_size == 0:
                        return False
        except OSError:
            return False
    return True


def write_clean_marker(paths: DataPaths) -> None:
    """Record a clean shutdown, with the stores' fingerprint (atomic write)."""
    data = {"closed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "files": fingerprint(paths)}
    atomic_write_text(paths.root / CLEAN_MARKER, json.dumps(data, indent=1))


def take_clean_marker(paths: DataPaths) -> dict[str, list[int]] | None:
    """Remove the clean-shutdown marker; the fingerprint it held, or None.

    None means the last writer did not close cleanly (or its marker cannot
    be trusted): the caller probes. Called with the writer lock held, so
    from now until this writer closes, a crash leaves no marker behind.
    """
    marker = paths.root / CLEAN_MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = None
    try:
        marker.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        return None  # a marker that cannot be removed would vouch for a crash
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    return {str(k): list(v) for k, v in files.items() if isinstance(v, list)}


def stores_exist(paths: DataPaths) -> bool:
    """Whether there is anything to check (a new data folder has neither store)."""
    return paths.catalog.exists() or paths.chroma.exists()


# --------------------------------------------------------------------------
# The probe (parent side)


#: The installed app's own flag for running a probe child (see probe_command).
PROBE_FLAG = "--integrity-probe"


def _project_root() -> Path:
    import app

    return Path(app.__file__).resolve().parent.parent


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Offline and quiet, as in the app itself (these are read at import time).
    env.update({
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "TOKENIZERS_PARALLELISM": "false",
        # A segfault then leaves a Python traceback on stderr, which names
        # where it died in the reason kept in the audit record.
        "PYTHONFAULTHANDLER": "1",
        "PYTHONIOENCODING": "utf-8",
        "RUST_BACKTRACE": "0",
    })
    root = str(_project_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _store_bytes(paths: DataPaths) -> int:
    total = 0
    for f in [paths.catalog, *(paths.chroma.rglob("*") if paths.chroma.is_dir() else [])]:
        try:
            if f.is_file():
                total += f.stat().st_size
        except OSError:
            pass
    return total


def _describe_exit(code: int | None, stderr: str) -> str:
    if code is None:
        return "the check did not finish in time"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = f"the check crashed ({name})"
    else:
        what = f"the check stopped with exit code {code}"
    last = [line.strip() for line in stderr.splitlines() if line.strip()]
    # Skip faulthandler's frame list; its first line names the fault.
    fault = next((line for line in last if line.startswith("Fatal Python error")), None)
    detail = fault or (last[-1] if last else "")
    return f"{what}: {detail[:300]}" if detail else what


def probe_command(data_dir: Path, stores: tuple[str, ...]) -> list[str]:
    """The command line of a probe child.

    From source it is this module run by the same Python; the installed app
    (PyInstaller) has no Python to run modules with, so it runs itself with
    ``--integrity-probe``, which ``app.__main__`` hands to :func:`main`.
    """
    args = ["--probe", str(data_dir), "--only", ",".join(stores)]
    if is_frozen():
        return [sys.executable, PROBE_FLAG, *args]
    return [sys.executable, "-m", "app.core.stores.integrity", *args]


def _run_child(data_dir: Path, stores: tuple[str, ...], timeout_s: float) -> tuple[dict[str, str], bool, str]:
    """Run one probe child; returns (verdicts it printed, whether it started, why it ended)."""
    cmd = probe_command(data_dir, stores)
    started_at = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, encoding="utf-8", errors="replace",
            timeout=timeout_s, env=_child_env(), cwd=str(_project_root()), stdin=subprocess.DEVNULL,
        )
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        # subprocess.run has killed the child; keep what it said before.
        def _text(v: object) -> str:
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or "")  # type: ignore[return-value]

        stdout, stderr, code = _text(exc.stdout), _text(exc.stderr), None
    except OSError as exc:
        return {}, False, f"the check could not start: {exc}"
    verdicts: dict[str, str] = {}
    started = False
    for line in stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue  # a library's stray print; not ours
        if not isinstance(msg, dict):
            continue
        if msg.get("started"):
            started = True
        if msg.get("store") in STORES and isinstance(msg.get("verdict"), str):
            verdicts[msg["store"]] = msg["verdict"]
    if code == 0:
        return verdicts, started, "finished"
    why = _describe_exit(code, stderr)
    if code is None:
        why += f" ({time.monotonic() - started_at:.0f} s)"
    return verdicts, started, why


def probe(paths: DataPaths, timeout_s: float = 60, stores: tuple[str, ...] = STORES) -> ProbeResult:
    """Check both stores in a child process; never raises, never crashes the caller.

    A child that crashes (signal, non-zero exit) or runs past the time limit
    marks the store it was checking as damaged: the first one without a
    verdict, since the stages print in order. Stores it had not reached yet
    are probed again on their own. A child that could not even start Python
    yields ``unknown`` verdicts: the probe is then no help, not evidence.

    Args:
        timeout_s: time allowed for a small library; large stores get more,
            at an assumed 50 MB/s, so a slow disk is not taken for damage.
        stores: the stores to check; the others are not in use (vectors kept
            in a Chroma server) and are reported as such, never as damaged.
    """
    limit = timeout_s + _store_bytes(paths) / _BYTES_PER_S
    pending = tuple(s for s in STORES if s in stores)
    verdicts: dict[str, str] = {s: "ok: not in use" for s in STORES if s not in stores}
    while pending:
        got, started, why = _run_child(paths.root, pending, limit)
        verdicts.update({k: v for k, v in got.items() if k in pending})
        rest = tuple(s for s in pending if s not in verdicts)
        if not rest:
            break
        if why == "finished" or not started:
            # It ended normally without a verdict, or Python itself failed:
            # nothing here says the data is at fault.
            for s in rest:
                verdicts[s] = f"unknown: {why if why != 'finished' else 'the check gave no answer'}"
            break
        # It died inside rest[0]'s stage; the others were never looked at.
        verdicts[rest[0]] = f"damaged: {why}"
        pending = rest[1:]
    return ProbeResult(catalog=verdicts["catalog"], chroma=verdicts["chroma"])


# --------------------------------------------------------------------------
# The probe (child side): python -m app.core.stores.integrity --probe DATA_DIR


def _say(**msg: object) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


# SQLite result codes that mean the file itself is bad: SQLITE_CORRUPT,
# SQLITE_NOTADB, and the read errors of a file cut short or on a bad sector
# (SQLITE_IOERR_READ, SQLITE_IOERR_SHORT_READ). Anything else (a full disk, a
# read-only folder, a lock, SQLITE_IOERR_SHMOPEN...) is the surroundings, and
# moving a healthy store aside for it would cost a full rebuild for nothing.
_SQLITE_DAMAGE = {11, 26, 266, 522}
# The same distinction for errors that arrive as text (chromadb wraps SQLite
# and the OS in its own exceptions): these words mean "not the data".
_ENVIRONMENT = (
    "disk is full", "no space left", "readonly database", "read-only file system",
    "permission denied", "database is locked", "unable to open database file", "too many open files",
    "cannot allocate memory", "out of memory",
)


def _sqlite_verdict(path: Path, what: str, exc: sqlite3.Error) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    damaged = code in _SQLITE_DAMAGE or (code is not None and (code & 0xFF) in (11, 26))
    if code is None:  # Python < 3.11 names no code: judge by the words
        damaged = not _environmental(str(exc))
    return f"{'damaged' if damaged else 'unknown'}: {path.name} {what} ({exc})"


def _environmental(message: str) -> bool:
    text = message.lower()
    return any(words in text for words in _ENVIRONMENT)


def _sqlite_check(path: Path, tables: tuple[str, ...]) -> str:
    """``ok``, ``damaged: ...`` or ``unknown: ...`` for an SQLite file, opened read-only."""
    if not _has_sqlite_header(path):
        size = path.stat().st_size if path.exists() else 0
        return f"damaged: {path.name} is not an SQLite database ({size} bytes)"
    try:
        # immutable=1: no lock, no -shm or -wal created, nothing written, so
        # the evidence is moved aside as it was found and a full disk is not
        # made worse. It reads the main file only: after a crash the WAL's
        # frames are checksummed by SQLite itself, and a bad one is dropped
        # (the transaction it held is redone by the ingest protocol).
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=10)
    except sqlite3.Error as exc:
        return _sqlite_verdict(path, "cannot be opened", exc)
    try:
        rows = [str(r[0]) for r in db.execute("PRAGMA quick_check(5)")]
        if rows != ["ok"]:
            return f"damaged: {path.name} failed SQLite's check ({'; '.join(rows)[:300]})"
        for table in tables:
            db.execute(f"SELECT count(*) FROM {table}").fetchone()
    except sqlite3.Error as exc:
        return _sqlite_verdict(path, "cannot be read", exc)
    finally:
        db.close()
    return "ok"


def _check_catalog(paths: DataPaths) -> str:
    if not paths.catalog.exists():
        return "missing"
    # The keyword index is not checked here: it is derived from the catalog
    # and rebuilt from it when it cannot be read (see stores.keywords).
    return _sqlite_check(paths.catalog, ("roots", "files", "chunks", "meta"))


def _check_chroma(paths: DataPaths) -> str:
    folder = paths.chroma
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return "missing"
    sqlite_file = folder / "chroma.sqlite3"
    if not sqlite_file.exists():
        return "damaged: chroma.sqlite3 is missing"
    verdict = _sqlite_check(sqlite_file, ("embeddings", "segments", "collections"))
    if verdict != "ok":
        return verdict
    try:
        # Imported here, in the child only: it brings numpy, and chromadb with it.
        from app.core.stores import vectors

        vectors.read_everything(folder)
    except ImportError as exc:
        return f"unknown: chromadb cannot be imported ({exc})"
    except StoreError as exc:
        return f"damaged: {exc}"
    except BaseException as exc:  # noqa: BLE001 - pyo3 panics are BaseExceptions
        if isinstance(exc, KeyboardInterrupt):
            raise
        verdict = "unknown" if _environmental(str(exc)) else "damaged"
        return f"{verdict}: {type(exc).__name__}: {str(exc)[:300]}"
    return "ok"


def _child(data_dir: Path, only: tuple[str, ...]) -> int:
    paths = DataPaths(data_dir)
    _say(started=True)
    checks = {"catalog": _check_catalog, "chroma": _check_chroma}
    for store in STORES:
        if store in only:
            try:
                verdict = checks[store](paths)
            except Exception as exc:  # noqa: BLE001 - report, do not die without a verdict
                verdict = f"damaged: {type(exc).__name__}: {str(exc)[:300]}"
            _say(store=store, verdict=verdict)
    sys.stdout.flush()
    # Skip interpreter teardown: chromadb's background threads have nothing
    # to save, and a crash while tearing down must not blur the verdict.
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """``python -m app.core.stores.integrity --probe DATA_DIR [--only catalog,chroma]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m app.core.stores.integrity")
    parser.add_argument("--probe", type=Path, required=True, metavar="DATA_DIR")
    parser.add_argument("--only", default=",".join(STORES))
    args = parser.parse_args(argv)
    only = tuple(s for s in args.only.split(",") if s in STORES)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    return _child(args.probe, only)


if __name__ == "__main__":
    sys.exit(main())
