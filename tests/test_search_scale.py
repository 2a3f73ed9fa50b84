"""The fast search path returns what the straightforward one did.

Search at scale ranks the keyword index's top k before joining them, stops de-duplicating
once it has k hits, and takes the candidates' vectors from the vector query
itself. None of that may change a result; these tests compare each shortcut
with the plain computation (no timings: bench/search.py measures those).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from app.core.stores.catalog import Catalog, ChunkRow, StoredChunk
from app.core.answering.retrieval import Hit, Retriever, collapse_near_duplicates
from app.core.textnorm import text_hash

WORDS = ("harbour ferry lamp storm museum revenue tide pier cargo beacon gull anchor "
         "rope sail keel mast dock crane freight quay").split()


def _add_file(cat: Catalog, path: str, texts: list[str]) -> int:
    root = cat.add_root(str(Path(path).parent))
    fid = cat.mark_file(path, "pending", root_id=root.id)
    rows = [ChunkRow(f"{path}-{i}", i, None, None, 0, len(t), None, t, text_hash(t)) for i, t in enumerate(texts)]
    cat.replace_chunks(fid, rows, size=1, mtime_ns=1, hash="h", kind="text", title=None, pages=None)
    return fid


def _reference(cat: Catalog, query: str, k: int) -> list[tuple[str, float]]:
    """The keyword search done the slow way: every match ranked, then the
    chunks of indexed files kept, then the first k."""
    keywords = cat.keywords
    assert keywords is not None
    everything = keywords.search(query, 100_000)
    ids = cat._indexed_chunk_ids([rid for rid, _ in everything])  # noqa: SLF001
    return [(ids[rid], score) for rid, score in everything if rid in ids][:k]


def test_keyword_search_matches_the_full_join(tmp_path: Path) -> None:
    rng = random.Random(3)
    cat = Catalog(tmp_path / "c.sqlite3")
    for f in range(30):
        # Distinct lengths keep bm25 scores apart, so the order has no ties.
        _add_file(cat, f"/lib/doc-{f:02d}.txt",
                  [" ".join(rng.choice(WORDS) for _ in range(8 + f * 7 + i)) for i in range(6)])
    for query in ("ferry", "storm lamp", "museum revenue tide", "anchor rope", "zeppelin"):
        for k in (1, 5, 20, 200):
            assert cat.keyword_search(query, k) == _reference(cat, query, k), (query, k)


def test_keyword_search_skips_files_that_are_not_indexed_even_when_they_rank_first(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    # Forty strong matches in a file being re-read, a few weak ones that count.
    _add_file(cat, "/lib/busy.txt", ["ferry ferry ferry"] * 40)
    cat.mark_file("/lib/busy.txt", "pending", root_id=None)
    _add_file(cat, "/lib/calm.txt", [f"the ferry left at {h} o'clock with {h * 3} passengers aboard"
                                     for h in range(1, 8)])
    hits = cat.keyword_search("ferry", 5)
    assert len(hits) == 5 and all(cid.startswith("/lib/calm.txt") for cid, _ in hits)
    assert hits == _reference(cat, "ferry", 5)
    assert len(cat.keyword_search("ferry", 50)) == 7


def test_scoped_keyword_search_still_finds_a_small_folder_below_the_rest(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    _add_file(cat, "/lib/big/a.txt", ["ferry ferry ferry timetable"] * 30)
    _add_file(cat, "/lib/small/b.txt", ["a long note that mentions the ferry only once among many other words"])
    assert [cid for cid, _ in cat.keyword_search("ferry", 5, scope="/lib/small")] == ["/lib/small/b.txt-0"]


def _hit(i: int, text: str) -> Hit:
    return Hit(StoredChunk(f"c{i}", i, None, None, 0, len(text), None, text, "h", 1, "/lib/x.txt"), 1.0 / (i + 1))


def test_collapsing_with_a_limit_keeps_the_same_first_hits() -> None:
    rng = random.Random(5)
    base = [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(6)]
    hits = []
    for i in range(40):
        text = base[rng.randrange(len(base))]
        if rng.random() < 0.5:  # a near copy, or a different passage
            text = text + " " + rng.choice(WORDS)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(40))
        hits.append(_hit(i, text))
    full = collapse_near_duplicates(hits)
    for limit in range(1, len(hits) + 2):
        assert collapse_near_duplicates(hits, limit) == full[:limit]


def test_vector_query_returns_what_there_is_and_the_stored_vectors(tmp_path: Path) -> None:
    from app.core.stores.vectors import VectorStore

    store = VectorStore(tmp_path / "chroma")
    try:
        query = np.ones(8, dtype=np.float32) / np.sqrt(8)
        assert store.query(query, 20) == [] and store.query_with_vectors(query, 20) == []
        rng = np.random.default_rng(1)
        vecs = rng.normal(size=(5, 8)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids = [f"v{i}" for i in range(5)]
        store.upsert(ids, vecs, [{"file_id": i % 2} for i in range(5)])
        plain = store.query(query, 20)  # more than the store holds
        with_vectors = store.query_with_vectors(query, 20)
        assert [cid for cid, _ in plain] == [cid for cid, _, _ in with_vectors]
        assert sorted(cid for cid, _ in plain) == ids
        stored = store.get(ids)
        for cid, sim, vec in with_vectors:
            assert vec.dtype == np.float32 and np.array_equal(vec, stored[cid])
            assert abs(sim - float(np.dot(vec, query))) < 1e-5
        assert {cid for cid, _ in store.query(query, 20, file_ids=[1])} == {"v1", "v3"}
        assert store.query(query, 20, file_ids=[]) == []
    finally:
        store.close()


class _FixedEmbedder:
    """Vectors from a table, so the test controls what is near what."""

    name = "fixed"
    dim = 8
    max_tokens = 100

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def encode(self, texts, *, should_stop=None, on_progress=None):  # noqa: ANN001, ANN201
        return np.stack([self.table[t] for t in texts])

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


def test_hybrid_hits_carry_their_stored_vectors_keyword_only_ones_too(tmp_path: Path) -> None:
    from app.core.stores.vectors import VectorStore

    cat = Catalog(tmp_path / "c.sqlite3")
    store = VectorStore(tmp_path / "chroma")
    try:
        rng = np.random.default_rng(2)
        texts = [f"note {i} about the {WORDS[i % len(WORDS)]} and the pier" for i in range(30)]
        fid = _add_file(cat, "/lib/notes.txt", texts)
        query = "zeppelin harbour"  # "harbour" is in chunks 0 and 20 only
        qvec = rng.normal(size=8).astype(np.float32)
        qvec /= np.linalg.norm(qvec)
        vecs = rng.normal(size=(30, 8)).astype(np.float32)
        vecs[[0, 20]] = -qvec + rng.normal(scale=0.01, size=(2, 8))  # far from the query: keyword-only hits
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids = [f"/lib/notes.txt-{i}" for i in range(30)]
        store.upsert(ids, vecs, [{"file_id": fid}] * 30)
        retriever = Retriever(cat, store, _FixedEmbedder({query: qvec}))
        # These made-up chunks all claim the same span of one file, which the
        # one-passage-per-place step would rightly merge into one; this test is
        # about the vectors hits carry, so every hit is kept.
        retriever.merge_chars = None
        stored = store.get(ids)
        for mode in ("hybrid", "vector"):
            hits = retriever.search(query, k=5, mode=mode).hits
            assert len(hits) == 5
            for hit in hits:
                assert hit.vector is not None and np.array_equal(hit.vector, stored[hit.chunk.id])
                assert hit.similarity is not None and abs(hit.similarity - float(np.dot(hit.vector, qvec))) < 1e-6
        hybrid = retriever.search(query, k=5).hits
        keyword_only = [h for h in hybrid if h.vector_rank is None]
        assert {h.chunk.id for h in keyword_only} == {ids[0], ids[20]}
        assert all(h.similarity is not None and h.similarity < 0 for h in keyword_only)
    finally:
        store.close()
        cat.close()


_SHALLOW_LIBRARY = """
import sys
import numpy as np
import chromadb
from chromadb.config import Settings
# Tight clusters of near neighbours, where a shallow graph walk misses many.
rng = np.random.default_rng(0)
x = np.repeat(rng.normal(size=(100, 64)), 100, axis=0) + rng.normal(scale=0.3, size=(10_000, 64))
x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.create_collection(sys.argv[2], metadata={"hnsw:space": "cosine"}, embedding_function=None,
                               configuration={"hnsw": {"space": "cosine", "ef_search": 10}})
for lo in range(0, len(x), 5_000):
    col.add(ids=[str(i) for i in range(lo, lo + 5_000)], embeddings=x[lo:lo + 5_000],
            metadatas=[{"file_id": 1}] * 5_000)
np.save(sys.argv[3], x)
"""


def test_a_library_made_with_a_shallow_hnsw_search_finds_the_nearest_passages_once_opened(tmp_path: Path) -> None:
    """ef_search is a search-time setting: a library from an older Docent (or
    made with a shallower search) is searched at the depth the bench chose,
    without re-indexing, and keeps it."""
    import subprocess
    import sys

    from app.core.stores.vectors import COLLECTION, SEARCH_EF, VectorStore

    path = tmp_path / "chroma"
    # Made in another process, as by an older Docent: this process has not
    # loaded the index yet (Chroma reads ef_search when it loads it).
    subprocess.run([sys.executable, "-c", _SHALLOW_LIBRARY, str(path), COLLECTION, str(tmp_path / "x.npy")],
                   check=True, timeout=600)
    x = np.load(tmp_path / "x.npy")
    rng = np.random.default_rng(1)
    queries = x[rng.choice(len(x), 40)] + rng.normal(scale=0.2, size=(40, x.shape[1]))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    store = VectorStore(path)
    assert store.search_ef == SEARCH_EF
    assert store.count() == len(x), "nothing is re-indexed"
    found = 0
    for q in queries:
        exact = {str(i) for i in np.argpartition(-(x @ q), 20)[:20]}
        found += len({cid for cid, _ in store.query(q, 20)} & exact)
    store.close()
    # Left at ef_search 10 it finds about 70 % of the exact top 20 here (measured).
    assert found / (20 * len(queries)) >= 0.95
    again = VectorStore(path)
    assert again.search_ef == SEARCH_EF
    again.close()


def test_a_library_whose_search_depth_cannot_be_changed_still_opens_and_searches(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    """Fault injection: the collection refuses the change (a read-only folder,
    a busy writer). The library opens anyway, at its old depth."""
    from chromadb.api.models.Collection import Collection

    from app.core.stores.vectors import SEARCH_EF, VectorStore

    store = VectorStore(tmp_path / "chroma")
    store.upsert(["a", "b"], np.eye(2, 8, dtype=np.float32), [{"file_id": 1}, {"file_id": 1}])
    store.set_search_ef(SEARCH_EF + 1)
    store.close()

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Collection, "modify", refuse)
    again = VectorStore(tmp_path / "chroma")
    assert again.search_ef == SEARCH_EF + 1
    assert again.query(np.eye(1, 8, dtype=np.float32)[0], 1)[0][0] == "a"
    assert "search depth" in caplog.text
    again.close()


def test_a_briefly_locked_chroma_database_still_gets_the_search_depth(tmp_path: Path, monkeypatch) -> None:
    """Fault injection: Chroma's SQLite says "database is locked" for a moment after
    another process let go of it; opening tries again instead of keeping a shallow search."""
    from app.errors import StoreError
    from app.core.stores.vectors import SEARCH_EF, VectorStore

    real = VectorStore.set_search_ef
    calls: list[int] = []

    def busy_once(self, ef: int) -> None:  # noqa: ANN001
        calls.append(ef)
        if len(calls) == 1:
            raise StoreError("The vector store could not change its search depth: database is locked")
        real(self, ef)

    monkeypatch.setattr(VectorStore, "set_search_ef", busy_once)
    store = VectorStore(tmp_path / "chroma")
    try:
        assert len(calls) == 2 and store.search_ef == SEARCH_EF
    finally:
        store.close()
