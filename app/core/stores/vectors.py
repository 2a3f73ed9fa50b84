"""The vector store: the only module that imports chromadb.

Vectors live in an embedded ``chromadb.PersistentClient`` under the same
chunk ids as the catalog. Each vector's metadata names its file, so a crash
between the two stores can be repaired by file (see the ingest protocol).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.config import enforce_offline
from app.errors import DAMAGED, StoreError, storage_problem

COLLECTION = "chunks"

log = logging.getLogger(__name__)

#: How many candidates Chroma's HNSW graph walk keeps per search
#: (``ef_search``; Chroma's default is 100). Chosen from bench/search.py's
#: sweep of recall@20 against an exact search (2026-12-02): at 10k chunks
#: 0.978 at 100 and 0.999 at 400; at 100k of the bench's tightly clustered
#: vectors 0.713 at 100, 0.856 at 400, 0.905 at 800, for a bare Chroma query
#: p95 of 2.4, 4.7 and 6.7 ms. Chroma reads it when it loads the index, so a
#: change reaches a process that has already searched only after a restart.
SEARCH_EF = 400


def _batches(n: int, size: int) -> Iterator[slice]:
    for lo in range(0, n, size):
        yield slice(lo, min(n, lo + size))


class VectorStore:
    """Chunk vectors in Chroma (cosine distance, telemetry off)."""

    def __init__(self, path: Path) -> None:
        enforce_offline()
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

    def _keep_search_ef(self) -> None:
        """Give a collection made before :data:`SEARCH_EF` changed (or by an
        older Docent) the current search depth; it is a search-time setting,
        so nothing is re-indexed."""
        if self.search_ef != SEARCH_EF:
            try:
                self.set_search_ef(SEARCH_EF)
            except StoreError as exc:
                # A read-only folder or a busy writer: search still works, at
                # the old depth; the next writable open sets it.
                log.warning("Kept the vector store's search depth %s: %s", self.search_ef, exc)

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
        """Release Chroma's client for this folder (chromadb caches one per
        folder for the whole process; a later store on the same folder must
        start from the files on disk)."""
        self._client.close()

    def count(self) -> int:
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
