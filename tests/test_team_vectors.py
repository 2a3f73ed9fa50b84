"""A team library keeps its vectors in a Chroma server (``--vectors URL``, the
``vectors_url`` setting), against a real ``chroma run`` process.

The library then writes nothing under ``DATA_DIR/chroma/``; a URL naming
another machine is refused unless allowed (Chroma's server has no
authentication); a server that is down is a StoreError naming the URL; and a
writer killed mid-ingest, with the server killed and restarted too, is
reconciled against the server by the next ingest.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import DataPaths, Settings
from app.errors import StoreError
from tests import corpus

ROOT = Path(__file__).resolve().parent.parent
CHROMA = Path(sys.executable).parent / "chroma"

#: How long a Chroma server may take to answer its first heartbeat (it is
#: usually ready within a second; a loaded CI machine gets slack).
READY_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _heartbeat(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/api/v2/heartbeat", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


class ChromaServer:
    """A ``chroma run`` subprocess on a folder and a loopback port of its own."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = path.parent / f"chroma-{self.port}.log"

    def start(self) -> "ChromaServer":
        """Start the server and wait, bounded, until it answers its heartbeat."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if _heartbeat(self.url):
                return self
            try:
                # Doubles as the pause between polls, and notices a server that died.
                code = self.proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"chroma run exited with {code}: {self.log.read_text(errors='replace')[-2000:]}")
        self.kill()
        raise AssertionError(f"chroma run did not answer within {READY_S} s")

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown: a crash, or a power cut)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture()
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    if not CHROMA.exists():
        pytest.skip(f"no chroma command beside {sys.executable}")
    server = ChromaServer(tmp_path / "chroma-server").start()
    try:
        yield server
    finally:
        server.kill()


def _settings(url: str, **extra: object) -> Settings:
    return Settings(vectors_url=url, **extra)  # type: ignore[arg-type]


def _collection(data: Path) -> str:
    """The library's own collection on the server (named by its catalog's id)."""
    from app.core.stores.catalog import Catalog

    catalog = Catalog(data / "catalog.sqlite3", readonly=True)
    try:
        ident = catalog.get_meta("library_id")
    finally:
        catalog.close()
    assert ident, "the library never used a server"
    return f"docent-{ident}"


def _server_ids(url: str, data: Path) -> set[str]:
    from app.core.stores.vectors import VectorStore

    store = VectorStore.connect(url, collection=_collection(data))
    try:
        return store.ids()
    finally:
        store.close()


# --------------------------------------------------------------------------
# (a) ingest and search with the vectors on the server


def test_a_library_keeps_its_vectors_in_the_chroma_server(docs, data_dir, embedder, chroma_server) -> None:
    from app.core.library import Library

    with Library(data_dir, purpose="tests", settings=_settings(chroma_server.url)) as lib:
        lib.use_embedder(embedder)
        assert lib.vectors.address is not None and lib.vectors.address.url == chroma_server.url
        report = lib.indexer.ingest([docs["pdf"].parent])
        assert report.indexed == len(docs) and not report.failed
        for mode in ("vector", "hybrid"):
            hits = lib.retriever.search("How many storm warnings did the keepers record?", k=3, mode=mode).hits
            assert hits, mode
            assert hits[0].chunk.path == str(docs["pdf"]) and hits[0].chunk.page == 3, mode
        catalog_ids = lib.catalog.all_chunk_ids()
    assert _server_ids(chroma_server.url, data_dir) == catalog_ids
    # The data folder holds the catalog and the rest, but no vector store.
    assert not DataPaths(data_dir).chroma.exists()
    assert (data_dir / "catalog.sqlite3").exists()


def test_a_server_emptied_while_the_library_was_closed_is_caught_up(docs, data_dir, embedder,
                                                                     chroma_server) -> None:
    """The data folder's clean-shutdown marker cannot vouch for a server that
    was reset while Docent was closed; recover() compares and redoes the files."""
    from app.core.library import Library
    from app.core.stores.vectors import VectorStore

    settings = _settings(chroma_server.url)
    with Library(data_dir, purpose="tests", settings=settings) as lib:
        lib.use_embedder(embedder)
        lib.indexer.ingest([docs["pdf"].parent])
    store = VectorStore.connect(chroma_server.url, collection=_collection(data_dir))
    store.clear()
    store.close()
    with Library(data_dir, purpose="tests", settings=settings) as lib:
        lib.use_embedder(embedder)
        assert not lib.unclean
        done = lib.recover()
        assert done is not None and done["files_to_redo"] == len(docs)
        assert lib.indexer.ingest([docs["pdf"].parent]).indexed == len(docs)
        assert lib.vectors.ids() == lib.catalog.all_chunk_ids()


def test_two_libraries_share_a_server_without_touching_each_other(tmp_path: Path, docs, embedder,
                                                                    chroma_server) -> None:
    from app.core.library import Library

    first, second = tmp_path / "first", tmp_path / "second"
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "kiln.md").write_text("# Kiln log\n\nThe celadon glaze crazed on the third firing.\n")
    for data, folder in ((first, docs["pdf"].parent), (second, notes)):
        with Library(data, purpose="tests", settings=_settings(chroma_server.url)) as lib:
            lib.use_embedder(embedder)
            assert not lib.indexer.ingest([folder]).failed
    assert _collection(first) != _collection(second)
    # The second library's start-up reconciliation saw only its own vectors:
    # the first's are all still there.
    with Library(first, purpose="tests", settings=_settings(chroma_server.url)) as lib:
        lib.use_embedder(embedder)
        assert lib.recover() is None
        assert lib.vectors.ids() == lib.catalog.all_chunk_ids()
        hits = lib.retriever.search("celadon glaze crazed", k=3, mode="vector").hits
        assert hits and all(h.chunk.path.startswith(str(docs["pdf"].parent)) for h in hits)


def test_a_library_remembers_its_server(docs, data_dir: Path, chroma_server) -> None:
    """`docent --vectors URL ingest` once; every later command finds the vectors there."""
    docent = str(Path(sys.executable).parent / "docent")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([docent, "--data-dir", str(data_dir), "--vectors", chroma_server.url, "ingest",
                           str(docs["md"])], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    found = subprocess.run([docent, "--data-dir", str(data_dir), "search", "--mode", "vector", "--json",
                            "How long does sourdough proof?"], capture_output=True, text=True, timeout=600,
                           env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["path"] == str(docs["md"])
    assert not DataPaths(data_dir).chroma.exists()
    assert _server_ids(chroma_server.url, data_dir)


def test_the_search_depth_is_kept_on_the_server(chroma_server) -> None:
    from app.core.stores.vectors import SEARCH_EF, VectorStore

    store = VectorStore.connect(chroma_server.url)
    try:
        assert store.search_ef == SEARCH_EF
        store.set_search_ef(123)
    finally:
        store.close()
    again = VectorStore.connect(chroma_server.url)  # an older collection is brought to SEARCH_EF
    try:
        assert again.search_ef == SEARCH_EF
    finally:
        again.close()


# --------------------------------------------------------------------------
# (b) only this machine, unless allowed


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "https://chroma.example.org:443", "http://[fe80::1]:8000"])
def test_a_server_on_another_machine_is_refused_with_the_reason(url: str, data_dir: Path) -> None:
    from app.core.library import Library
    from app.core.stores.vectors import server_address

    with pytest.raises(StoreError) as refused:
        server_address(url)
    message = str(refused.value)
    assert url in message and "no authentication" in message and "--vectors-allow-network" in message
    # The library refuses it the same way, before connecting to anything.
    with Library(data_dir, purpose="tests", settings=_settings(url)) as lib:
        with pytest.raises(StoreError, match="no authentication"):
            lib.vectors
    # Allowed, the address is accepted as it is (no connection is made here).
    allowed = server_address(url, allow_network=True)
    assert not allowed.loopback and allowed.port in (8000, 443)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.9.9.9:8000", "http://localhost:8000/",
                                 "http://[::1]:8000"])
def test_loopback_addresses_need_no_permission(url: str) -> None:
    from app.core.stores.vectors import server_address

    assert server_address(url).loopback


@pytest.mark.parametrize("url, why", [
    ("127.0.0.1:8000", "http://"), ("ftp://127.0.0.1:8000", "http://"), ("http://127.0.0.1", "port is missing"),
    ("http://:8000", "host is missing"), ("http://127.0.0.1:80000", "not a Chroma server URL"),
    ("http://127.0.0.1:8000/api", "no path"), ("http://u:p@127.0.0.1:8000", "no user name"),
])
def test_a_malformed_url_is_refused(url: str, why: str) -> None:
    from app.core.stores.vectors import server_address

    with pytest.raises(StoreError, match=why):
        server_address(url)


def test_an_allowed_network_address_that_refuses_says_it_cannot_be_reached() -> None:
    """0.0.0.0 is no loopback address by its literal, so it needs the permission,
    yet on Linux a connection to it reaches this machine: a closed port there
    refuses at once, with no outside network involved."""
    from app.core.stores.vectors import CONNECT_TIMEOUT_S, VectorStore

    url = f"http://0.0.0.0:{_free_port()}"
    with pytest.raises(StoreError, match="no authentication"):
        VectorStore.connect(url)
    started = time.monotonic()
    with pytest.raises(StoreError) as down:
        VectorStore.connect(url, allow_network=True)
    assert f"The Chroma server at {url} cannot be reached" in str(down.value)
    assert time.monotonic() - started < CONNECT_TIMEOUT_S + 5


def test_serve_refuses_another_machine_before_opening_anything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "docent"), "--data-dir", str(data), "--vectors", "http://10.1.2.3:8000",
         "serve", "--port", str(_free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "http://10.1.2.3:8000" in proc.stderr and "no authentication" in proc.stderr
    assert "--vectors-allow-network" in proc.stderr
    assert not (data / "catalog.sqlite3").exists()


# --------------------------------------------------------------------------
# (c) a server that is down


def test_a_server_that_is_down_is_named_in_the_error(data_dir: Path) -> None:
    from app.core.library import Library
    from app.core.stores.vectors import CONNECT_TIMEOUT_S

    url = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with Library(data_dir, purpose="tests", settings=_settings(url)) as lib:
        with pytest.raises(StoreError) as down:
            lib.vectors
    message = str(down.value)
    assert f"The Chroma server at {url} cannot be reached" in message
    assert "chroma run --path DIR --host 127.0.0.1 --port" in message
    assert time.monotonic() - started < CONNECT_TIMEOUT_S + 30
    assert not DataPaths(data_dir).chroma.exists()


def test_a_server_that_goes_down_mid_session_is_named_in_the_error(chroma_server) -> None:
    import numpy as np

    from app.core.stores.vectors import VectorStore

    store = VectorStore.connect(chroma_server.url)
    try:
        store.upsert(["a"], np.ones((1, 4), dtype=np.float32), [{"file_id": 1}])
        chroma_server.kill()
        with pytest.raises(StoreError, match=f"The Chroma server at {chroma_server.url} cannot be reached"):
            store.count()
        with pytest.raises(StoreError, match="cannot be reached"):
            store.query(np.ones(4, dtype=np.float32), 1)
    finally:
        store.close()  # closing never needs the server


def test_serve_says_the_server_is_down_before_serving(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"http://127.0.0.1:{_free_port()}"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "docent"), "--data-dir", str(data), "--vectors", url,
         "serve", "--port", str(_free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"The Chroma server at {url} cannot be reached" in proc.stderr
    assert not DataPaths(data).chroma.exists()


# --------------------------------------------------------------------------
# (d) crash consistency with the vectors on the server


# Runs `docent ingest` with one fault: after the Nth batch of vectors reaches
# the server, and before the catalog records that file, the process says so
# and waits to be killed. The kill then always lands inside step 3 of the
# ingest protocol (vectors stored, catalog not yet), the window recovery is for.
KILLED_INGEST = textwrap.dedent(
    """
    import sys, threading
    from app.core.stores import vectors

    real_upsert = vectors.VectorStore.upsert
    calls = 0

    def upsert(self, *args, **kwargs):
        global calls
        real_upsert(self, *args, **kwargs)
        calls += 1
        if calls == int(sys.argv[3]):
            print("vectors stored, catalog not yet", flush=True)
            threading.Event().wait()

    vectors.VectorStore.upsert = upsert
    from app.cli import run
    sys.exit(run(["--data-dir", sys.argv[1], "ingest", sys.argv[2]]))
    """
)
MARKER = "vectors stored, catalog not yet"


def _wait_for_line(proc: subprocess.Popen[str], wanted: str, timeout: float) -> None:
    """Read ``proc``'s stdout until ``wanted`` (bounded: a reader thread and a deadline)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the ingest did not reach its fault point within {timeout} s") from None
        if line is None:
            raise AssertionError(f"the ingest ended (exit {proc.wait()}) before its fault point")
        if wanted in line:
            return


def _catalog_ids(data: Path) -> set[str]:
    from app.core.stores.catalog import Catalog

    catalog = Catalog(data / "catalog.sqlite3", readonly=True)
    try:
        return catalog.all_chunk_ids()
    finally:
        catalog.close()


@pytest.mark.slow
def test_a_killed_ingest_and_a_killed_server_are_reconciled(tmp_path: Path, embedder, chroma_server) -> None:
    from app.core.library import Library

    folder, data = tmp_path / "library", tmp_path / "data"
    docs = corpus.make_library(folder)
    for i in range(6):
        (folder / f"note-{i}.md").write_text(f"# Note {i}\n\nThe ferry to island {i} leaves at dawn.\n")
    # The data folder's own setting: every docent command on it uses the server.
    _settings(chroma_server.url).save(DataPaths(data).settings)
    with Library(data, purpose="tests") as lib:
        lib.use_embedder(embedder)
        assert not lib.indexer.ingest([folder]).failed
    assert _server_ids(chroma_server.url, data) == _catalog_ids(data)

    # Every file changes, so the next ingest replaces every file's vectors.
    for path in folder.iterdir():
        if path.suffix in (".md", ".txt"):
            path.write_text(path.read_text() + "\nRevised: the harbour master signed it off.\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_INGEST, str(data), str(folder), "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_for_line(proc, MARKER, timeout=300)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # Killed inside the protocol: the server holds a file's new vectors that
    # the catalog does not name yet.
    assert _server_ids(chroma_server.url, data) != _catalog_ids(data)

    # The server goes down hard too, and comes back on its folder and port.
    chroma_server.kill()
    chroma_server.start()

    done = subprocess.run(
        [str(Path(sys.executable).parent / "docent"), "--data-dir", str(data), "ingest", str(folder), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    catalog_ids = _catalog_ids(data)
    assert catalog_ids and _server_ids(chroma_server.url, data) == catalog_ids, "the catalog and Chroma disagree"
    assert not DataPaths(data).chroma.exists()

    with Library(data, purpose="tests") as lib:
        lib.use_embedder(embedder)
        assert lib.recover() is None  # closed cleanly, and the server agrees: nothing to do
        # The second ingest found the crash and reconciled by file, against the
        # server: the killed file's new vectors deleted, the file redone.
        repairs = [r["data"] for r in lib.audit.records() if r["event"] == "repair"]
        assert len(repairs) == 1 and repairs[0]["orphan_vectors"] > 0
        assert repairs[0]["files_to_redo"] + repairs[0]["pending"] >= 1
        assert lib.audit.verify().ok
        files = {f.path: f for f in lib.catalog.files()}
        assert {p for p, f in files.items() if f.status == "indexed"} == {
            str(p) for p in folder.iterdir() if p.is_file()}
        hits = lib.retriever.search("How many storm warnings did the keepers record?", k=3, mode="vector").hits
        assert hits and hits[0].chunk.path == str(docs["pdf"])
