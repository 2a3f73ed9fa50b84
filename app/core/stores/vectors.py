"""The vector store: the only module that imports chromadb.

Vectors live in an embedded ``chromadb.PersistentClient`` under the same
chunk ids as the catalog, or, for a team library, in a Chroma server
(``chroma run``) reached with ``chromadb.HttpClient`` (:meth:`VectorStore.connect`).
Each vector's metadata names its file, so a crash between the two stores can
be repaired by file (see the ingest protocol).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from app.config import enforce_offline
from app.core.network import is_loopback_host
from app.errors import DAMAGED, StoreError, storage_problem

COLLECTION = "chunks"

#: Seconds to wait for a Chroma server to accept a connection. chromadb's
#: HTTP client waits forever by default, so a server behind a firewall that
#: drops packets would hang the command instead of failing with a message.
CONNECT_TIMEOUT_S = 5.0
#: Seconds one request to a Chroma server may take (a batch upsert of
#: several thousand vectors is the slowest; it takes about a second). A
#: server that stops answering then fails the request rather than hanging.
REQUEST_TIMEOUT_S = 120.0

log = logging.getLogger(__name__)

#: How many candidates Chroma's HNSW graph walk keeps per search
#: (``ef_search``; Chroma's default is 100). Chosen from bench/search.py's
#: sweep of recall@20 against an exact search (2026-12-02): at 10k chunks
#: 0.978 at 100 and 0.999 at 400; at 100k of the bench's tightly clustered
#: vectors 0.713 at 100, 0.856 at 400, 0.905 at 800, for a bare Chroma query
#: p95 of 2.4, 4.7 and 6.7 ms. Chroma reads it when it loads the index, so a
#: change reaches a process that has already searched only after a restart.
SEARCH_EF = 400
#: Tries at changing the search depth while Chroma's database is briefly locked.
_BUSY_TRIES = 6


def _batches(n: int, size: int) -> Iterator[slice]:
    for lo in range(0, n, size):
        yield slice(lo, min(n, lo + size))


def _serve_hint(port: int | str = 8000) -> str:
    return f"`chroma run --path DIR --host 127.0.0.1 --port {port}`"


@dataclass(frozen=True)
class ServerAddress:
    """A Chroma server's address, checked by :func:`server_address`."""

    url: str  #: as the user wrote it (for messages)
    host: str  #: as chromadb wants it (an IPv6 address in brackets)
    port: int
    ssl: bool
    loopback: bool

    @property
    def base(self) -> str:
        """``scheme://host:port`` (no trailing slash)."""
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"


def server_address(url: str, *, allow_network: bool = False) -> ServerAddress:
    """Check a Chroma server URL (``http(s)://HOST:PORT``) before anything connects to it.

    Args:
        url: the ``--vectors`` option or the ``vectors_url`` setting.
        allow_network: accept a host other than this machine's loopback.

    Raises:
        StoreError: the URL is not ``http(s)://HOST:PORT``, or names another
            machine while ``allow_network`` is off (Chroma's server has no
            authentication, so the message says what exposing it means).
    """
    text = (url or "").strip()
    shape = (f"The vector store address {text!r} is not a Chroma server URL: give it as "
             "http://HOST:PORT (for example http://127.0.0.1:8000)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise StoreError(f"{shape} ({exc}).") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise StoreError(f"{shape}; only http:// and https:// are supported.")
    if not parts.hostname:
        raise StoreError(f"{shape}; the host is missing.")
    if port is None:
        raise StoreError(f"{shape}; the port is missing ({_serve_hint()} listens on 8000).")
    if parts.username is not None or parts.password is not None:
        # Chroma's server checks no credentials; a URL that seems to carry
        # them would suggest a protection that is not there.
        raise StoreError(f"{shape}; Chroma's server takes no user name or password.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise StoreError(f"{shape}, with no path after the port.")
    host = parts.hostname
    loopback = is_loopback_host(host)
    if not loopback and not allow_network:
        raise StoreError(
            f"The vector store address {text} is not on this machine, and Docent refuses it: a Chroma "
            "server has no authentication, so anyone who can reach it can read, change or delete the "
            "library's vectors (with the file ids and text hashes stored beside them). Run the server on "
            f"this machine ({_serve_hint(port)}) and use http://127.0.0.1:{port}, or, only if the network "
            "between the two machines is trusted and closed to others, allow it with "
            "--vectors-allow-network (the vectors_allow_network setting)."
        )
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return ServerAddress(url=text, host=f"[{host}]" if is_v6 else host, port=port,
                         ssl=parts.scheme.lower() == "https", loopback=loopback)


def _unreachable(address: ServerAddress, exc: BaseException | str) -> StoreError:
    """The error for a Chroma server that does not answer (down, wrong port, firewall)."""
    where = (f"Start it with {_serve_hint(address.port)}" if address.loopback
             else "Check that it is running and that this machine may connect to it")
    return StoreError(
        f"The Chroma server at {address.url} cannot be reached ({exc}). {where}, or point "
        "--vectors (the vectors_url setting) at the right address; the library's vectors are kept there."
    )


def _is_connection_problem(exc: BaseException) -> bool:
    """True when a request failed for want of a server, not for what it asked.

    chromadb's HTTP client raises httpx's transport errors as they are
    (refused, reset, timed out), and its constructor turns a refused
    connection into a ValueError with the httpx error as context.
    """
    import httpx

    seen: BaseException | None = exc
    for _ in range(4):  # the error itself and the few it was raised from
        if seen is None:
            return False
        if isinstance(seen, (httpx.TransportError, ConnectionError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _check_heartbeat(address: ServerAddress) -> None:
    """Fail fast, with a bounded wait, when no Chroma server answers at ``address``.

    chromadb's client asks the server who it is as soon as it is made, with
    no time limit; asking for the heartbeat first bounds the wait and tells
    "nothing there" from "something else there".
    """
    import httpx

    try:
        resp = httpx.get(f"{address.base}/api/v2/heartbeat",
                         timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
    except httpx.HTTPError as exc:
        raise _unreachable(address, exc) from exc
    try:
        ok = resp.status_code == 200 and "nanosecond heartbeat" in resp.json()
    except ValueError:
        ok = False
    if not ok:
        raise StoreError(
            f"Something answers at {address.url} (HTTP {resp.status_code}), but not as a Chroma server "
            f"does. Check the address given to --vectors (the vectors_url setting); {_serve_hint(address.port)} "
            "starts a Chroma server."
        )


class VectorStore:
    """Chunk vectors in Chroma (cosine distance, telemetry off).

    Opened on a folder (``VectorStore(path)``: an embedded store) or on a
    Chroma server (``VectorStore(url=...)`` or :meth:`connect`); both keep the
    same collection and answer the same calls.
    """

    def __init__(self, path: Path | None = None, *, url: str = "", allow_network: bool = False,
                 collection: str = COLLECTION) -> None:
        """
        Args:
            collection: the collection's name. An embedded store is one
                library's alone and uses ``chunks``; on a server, which may
                hold several libraries, each library has its own.
        """
        enforce_offline()
        self.collection = collection
        if (path is None) == (not url):
            raise ValueError("give either a folder or a server URL")
        #: The server's address, or None for an embedded store.
        self.address: ServerAddress | None = None
        #: The embedded store's folder, or None on a server.
        self.path: Path | None = None
        if url:
            self.address = server_address(url, allow_network=allow_network)
            self._open_server(self.address)
            return
        assert path is not None
        self.path = Path(path)
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            Path(path).mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(path),
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
            )
            self._col = self._client.get_or_create_collection(
                COLLECTION,
                metadata={"hnsw:space": "cosine"},
                embedding_function=None,
            )
            self._max_batch = max(1, int(self._client.get_max_batch_size()))
            self._keep_search_ef()
        except BaseException as exc:  # pyo3 panics are BaseExceptions
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise storage_problem(exc, Path(path).parent, path) or StoreError(
                f"The vector store {path} cannot be opened ({exc}). "
                "It may be damaged; move the folder aside and run `docent ingest` again to rebuild it.",
                kind=DAMAGED,
            ) from exc

    @classmethod
    def connect(cls, url: str, *, allow_network: bool = False, collection: str = COLLECTION) -> "VectorStore":
        """The store kept in the Chroma server at ``url`` (``http(s)://HOST:PORT``).

        Raises:
            StoreError: the URL is refused (see :func:`server_address`), or no
                Chroma server answers there (the message names the URL and
                how to start one).
        """
        return cls(url=url, allow_network=allow_network, collection=collection)

    def _open_server(self, address: ServerAddress) -> None:
        """Connect to a Chroma server and open (or create) the collection."""
        _check_heartbeat(address)
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            self._client = chromadb.HttpClient(
                host=address.host, port=address.port, ssl=address.ssl,
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
            )
            self._bound_requests()
            self._col = self._client.get_or_create_collection(
                self.collection,
                metadata={"hnsw:space": "cosine"},
                embedding_function=None,
            )
            self._max_batch = max(1, int(self._client.get_max_batch_size()))
        except BaseException as exc:
            client = getattr(self, "_client", None)
            if client is not None:
                try:
                    client.close()  # its reference to the shared system, kept otherwise
                except Exception:  # noqa: BLE001 - the error being raised says more
                    pass
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            if _is_connection_problem(exc):
                raise _unreachable(address, exc) from exc
            raise StoreError(
                f"The vector store on the Chroma server at {address.url} cannot be opened ({exc}). "
                f"Check the server's log; {_serve_hint(address.port)} starts one."
            ) from exc
        self._keep_search_ef()

    def _bound_requests(self) -> None:
        """Give the client's HTTP session time limits (chromadb sets none).

        Without them a server that stops answering (paused, or a firewall
        that drops packets) hangs every call for ever. The session is
        chromadb's own, shared by its clients of this address in this process.
        """
        import httpx

        session = getattr(getattr(self._client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        else:  # another chromadb layout: still works, without the bound
            log.warning("Could not bound the Chroma client's request time; a stalled server may hang Docent.")

    def _keep_search_ef(self) -> None:
        """Give a collection made before :data:`SEARCH_EF` changed (or by an
        older Docent) the current search depth; it is a search-time setting,
        so nothing is re-indexed."""
        if self.search_ef == SEARCH_EF:
            return
        for attempt in range(_BUSY_TRIES):
            try:
                self.set_search_ef(SEARCH_EF)
                return
            except StoreError as exc:
                # Chroma's SQLite answers "database is locked" for a moment
                # after another process (an older Docent, a just-finished
                # writer) let go of it: wait a little and try again.
                if "database is locked" in str(exc) and attempt + 1 < _BUSY_TRIES:
                    time.sleep(0.1 * (attempt + 1))
                    continue
                # A read-only folder or a busy writer: search still works, at
                # the old depth; the next writable open sets it.
                log.warning("Kept the vector store's search depth %s: %s", self.search_ef, exc)
                return

    def set_search_ef(self, ef: int) -> None:
        """Keep ``ef`` candidates per HNSW search from now on (stored with the collection)."""
        self._guard("change its search depth", self._col.modify,
                    configuration={"hnsw": {"ef_search": int(ef)}})

    @property
    def search_ef(self) -> int:
        """The collection's HNSW ``ef_search``."""
        hnsw = (getattr(self._col, "configuration", None) or {}).get("hnsw") or {}
        return int(hnsw.get("ef_search") or 0)

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            if self.address is not None:
                if _is_connection_problem(exc):
                    raise _unreachable(self.address, exc) from exc
                raise StoreError(
                    f"The vector store on the Chroma server at {self.address.url} could not {what}: {exc}"
                ) from exc
            assert self.path is not None
            raise storage_problem(exc, self.path.parent, self.path) or StoreError(
                f"The vector store could not {what}: {exc}"
            ) from exc

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert or replace vectors, in batches Chroma accepts."""
        for part in _batches(len(ids), self._max_batch):
            self._guard(
                "save vectors",
                self._col.upsert,
                ids=list(ids[part]),
                embeddings=vectors[part],
                metadatas=[dict(m) for m in metadatas[part]],
            )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete vectors by id (unknown ids are ignored)."""
        for part in _batches(len(ids), self._max_batch):
            self._guard("delete vectors", self._col.delete, ids=list(ids[part]))

    def delete_file(self, file_id: int) -> None:
        """Delete every vector of one file, including orphans from a crash."""
        self._guard("delete vectors", self._col.delete, where={"file_id": int(file_id)})

    def get(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (missing ids are left out)."""
        out: dict[str, np.ndarray] = {}
        for part in _batches(len(ids), self._max_batch):
            got = self._guard("read vectors", self._col.get, ids=list(ids[part]), include=["embeddings"])
            for cid, vec in zip(got["ids"], got["embeddings"]):
                out[cid] = np.asarray(vec, dtype=np.float32)
        return out

    def query(
        self, vector: np.ndarray, k: int, *, file_ids: Sequence[int] | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunks as ``(id, cosine similarity)``, best first."""
        return [(cid, sim) for cid, sim, _ in self._nearest(vector, k, file_ids, with_vectors=False)]

    def query_with_vectors(
        self, vector: np.ndarray, k: int, *, file_ids: Sequence[int] | None = None
    ) -> list[tuple[str, float, np.ndarray]]:
        """Like :meth:`query`, with each hit's stored vector (float32), in the
        same round trip: search wants the vectors of its best hits, and a
        second ``get`` by id would cost more than returning them here."""
        return self._nearest(vector, k, file_ids, with_vectors=True)  # type: ignore[return-value]

    def _nearest(
        self, vector: np.ndarray, k: int, file_ids: Sequence[int] | None, *, with_vectors: bool
    ) -> list[tuple[str, float, np.ndarray | None]]:
        if k <= 0:
            return []
        where = None
        if file_ids is not None:
            if not file_ids:
                return []
            where = {"file_id": {"$in": [int(f) for f in file_ids]}}
        # No count() first: the pinned chromadb returns what there is when the
        # collection (or the filter) has fewer than k, and nothing when it is
        # empty; at 100k vectors count() took longer (~5 ms) than the query.
        got = self._guard(
            "search",
            self._col.query,
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=where,
            include=["distances", "embeddings"] if with_vectors else ["distances"],
        )
        ids, distances = got["ids"][0], got["distances"][0]
        vecs = got["embeddings"][0] if with_vectors else [None] * len(ids)
        return [
            (cid, 1.0 - float(d), None if v is None else np.asarray(v, dtype=np.float32))
            for cid, d, v in zip(ids, distances, vecs)
        ]

    def close(self) -> None:
        """Release Chroma's client.

        For a folder: chromadb caches one system per folder for the whole
        process, and a later store on the same folder must start from the
        files on disk. For a server: the last client of an address closes
        its HTTP connections, so a later store (after the server restarted)
        starts with fresh ones.
        """
        self._client.close()

    def clear(self) -> None:
        """Delete every vector (the collection is made again, empty).

        For a library indexed again from scratch whose vectors are on a
        server, where there is no folder to remove.
        """
        def again() -> Any:
            self._client.delete_collection(self.collection)
            return self._client.get_or_create_collection(
                self.collection, metadata={"hnsw:space": "cosine"}, embedding_function=None,
            )

        self._col = self._guard("delete its vectors", again)
        self._keep_search_ef()

    def count(self) -> int:
        """How many vectors are stored."""
        return int(self._guard("count vectors", self._col.count))

    def ids(self) -> set[str]:
        """Every stored id (for consistency checks)."""
        out: set[str] = set()
        total = self.count()
        for part in _batches(total, self._max_batch):
            got = self._guard("list vectors", self._col.get, offset=part.start, limit=part.stop - part.start, include=[])
            out.update(got["ids"])
        return out


# --------------------------------------------------------------------------
# For the start-up check and repair (app.core.stores.integrity, .recovery)

# Vectors read per request when a check reads them all.
_SWEEP_BATCH = 2000


def read_everything(path: Path) -> None:
    """Read every stored vector once, then walk the search graph with one query.

    Run by the integrity probe in a child process (a damaged segment can
    crash the interpreter). A segment cut short still answers for its first
    vectors and its graph's entry point and fails only for the ones past the
    cut, hence reading them all.

    Raises:
        StoreError: (``kind="damaged"``) the collection is missing, or fewer
            vectors can be read than are counted.
        ImportError: chromadb cannot be imported (an install problem).
        BaseException: whatever chromadb raises reading a damaged store, as
            it is, for the caller to judge.
    """
    enforce_offline()
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    )
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    if COLLECTION not in names:
        raise StoreError(f"the {COLLECTION!r} collection is missing", kind=DAMAGED)
    col = client.get_collection(COLLECTION, embedding_function=None)
    count = col.count()
    first: list[float] | None = None
    seen = 0
    for offset in range(0, count, _SWEEP_BATCH):
        got = col.get(offset=offset, limit=_SWEEP_BATCH, include=["embeddings"])
        vectors = got.get("embeddings")
        n = 0 if vectors is None else len(vectors)
        if n == 0:
            break
        if first is None:
            first = [float(x) for x in vectors[0]]
        seen += n
    if seen != count:
        raise StoreError(f"{count} vectors are counted but {seen} can be read", kind=DAMAGED)
    if first is not None:
        # A real stored vector (a zero one is meaningless under cosine); the
        # query is what walks the HNSW graph's links on disk.
        query = first if any(first) else [1.0] * len(first)
        col.query(query_embeddings=[query], n_results=min(10, count), include=["distances"])


def release(path: Path) -> None:
    """Forget a Chroma system this process still caches for ``path``.

    chromadb keeps one system per folder for the life of the process and
    hands it to every later client of the same path, with its database
    connections and HNSW segments still open on the files that were just
    moved to ``damaged/``. Without this, a "fresh" store opened after a
    repair in the same process (the tests; a window that reopens its data
    folder) would keep writing into the quarantined one. Nothing to do when
    chromadb was never imported here, the usual case at start-up.
    """
    import sys

    if "chromadb" not in sys.modules:
        return
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except Exception:  # noqa: BLE001 - another chromadb layout: nothing cached to drop
        return
    for key in {str(path), str(Path(path).resolve())}:
        system = SharedSystemClient._identifier_to_system.pop(key, None)
        SharedSystemClient._identifier_to_refcount.pop(key, None)
        if system is not None:
            try:
                system.stop()
            except BaseException as exc:  # noqa: BLE001 - pyo3 panics are BaseExceptions
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
