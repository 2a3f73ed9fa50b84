"""Search latency as the library grows: Docent's hybrid search (query
embedding included) vs the raw pieces it is built from, at 1k, 10k, 100k and
1M chunks, plus the time, disk and memory to store those chunks. Writes
bench/search.json.

Usage: ``.venv/bin/python bench/search.py [--quick] [--sizes 1000 10000]``
(``--quick``: 1k and 10k chunks only).

The libraries are built with Docent's own storage code (``Library``,
``Catalog.mark_file``/``replace_chunks``, ``VectorStore.delete_file``/
``upsert``, the indexer's store step), so the timed search is exactly
``Library.retriever.search`` -- the path ``docent search``, ``docent ask`` and
the window use. The baseline on the same stores and queries is the bundled
SentenceTransformer's ``encode`` + a bare ``collection.query`` on the same
Chroma collection + a bare tantivy ``searcher.search(query, depth)`` on the
same keyword index, with the same candidate depth Docent asks each side for.
At each size, Chroma's HNSW recall is measured against an exact (NumPy)
nearest-neighbour search of the same vectors, so its settings are known to
hold at a million.

The chunk text is synthetic but made of real prose (the Python
documentation and the licence texts on this machine). Embedding 100k chunks
with the real model would take an hour on two cores, so only a few thousand
"base" chunks are embedded by the model; every other chunk is a remix of one
base chunk with sentences of a second one, and its vector is the matching
normalised mix of their two vectors plus noise (see ``METHOD``).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import bundled_embedding_model, enforce_offline  # noqa: E402

enforce_offline()

import numpy as np  # noqa: E402

from app.core import textnorm  # noqa: E402
from app.core.stores.catalog import ChunkRow  # noqa: E402
from app.core.ingest.indexer import chunk_id  # noqa: E402
from app.core.library import Library  # noqa: E402
from app.core.stores.vectors import SEARCH_EF  # noqa: E402

SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
CHUNKS_PER_FILE = 20
BASE_CHUNKS = 1_500  # chunks embedded by the real model
QUERIES = 240
WARMUP = 12
K = 5  # `docent search` and `docent ask` default
DEPTH = max(4 * K, 20)  # what Retriever.search asks each side for
MIX_OTHER = 0.3  # share of a derived chunk's sentences (and vector) from a second base chunk
NOISE = 0.015  # per-dimension sigma of the noise added to derived vectors (norm ~0.3)
SEED = 7
CACHE = Path(tempfile.gettempdir()) / "docent-bench-search-base-vectors.npz"
LIBRARY_ROOT = "/bench-library"
R_MANUALS = Path("/usr/share/R/doc/manual")
STORE_BATCH = 20_000  # chunks made and stored at a time
RECALL_QUERIES = 40  # queries whose HNSW results are compared with an exact search
EF_SWEEP = (50, 100, 200, 400, 800)  # Chroma hnsw ef_search values measured at each size

METHOD = (
    "Synthetic chunks from real prose: sentences of /usr/share/doc/python3.11/html (tags stripped), the R "
    "manuals (r-doc-pdf, pypdf's text layer) and /usr/share/common-licenses, kept in document order. {base} base chunks are runs of consecutive "
    "sentences (~95-120 words, about 150-200 model tokens) with a random identifier (ticket/invoice/"
    "serial number) in a third of them, embedded with the bundled all-MiniLM-L6-v2 (SentenceEmbedder) and stored first. "
    "Every other chunk is derived from a random base chunk A and a second one B: {mix:.0%} of A's sentences "
    "are replaced by sentences of B, a fresh identifier is added, and its vector is "
    "normalise({a:.2f}*vA + {mix:.2f}*vB + N(0, {noise}^2 I)) (cosine to vA about 0.85-0.9), so text and "
    "vector agree and the vector distribution is that of real embeddings. {per_file} chunks per file; "
    "files are stored one at a time with the indexer's store step (catalog.mark_file pending, "
    "vectors.delete_file, vectors.upsert, catalog.replace_chunks); one library is grown 1k -> 10k -> 100k -> 1M, "
    "so store_s is the cumulative time to store that many chunks (embedding excluded; the keyword "
    "index commits every 2 s as in an ingest, and once more before the queries). fts5: the same chunks "
    "in a bare SQLite FTS5 table (the keyword index Docent used before tantivy) queried with "
    "'bm25() ... ORDER BY score LIMIT {depth}' in the same run, for comparison. Queries: {queries} "
    "generated from the same prose (keyword lists, questions, identifier look-ups, 'difference between' "
    "questions), after {warmup} warm-up queries; each query runs ours-hybrid, ours-vector, ours-keyword and "
    "raw once, in rotating order, so the shared machine's drift hits all of them alike. ours = "
    "Library.retriever.search(q, k={k}) wall time (query embedding, Chroma, the tantivy keyword index, "
    "fusion, de-duplication, chunk rows, hit vectors). raw = SentenceTransformer.encode([q], "
    "normalize_embeddings=True) + collection.query(n_results={depth}, include=['distances']) on the same "
    "collection + tantivy searcher.search(query, {depth}) on the same keyword index with the same query. "
    "HNSW recall@{depth}: Chroma's ids vs the exact top {depth} by cosine over every stored vector (NumPy), "
    "for {recall_queries} of the queries, at Docent's HNSW settings (Chroma's defaults but ef_search={ef}); "
    "hnsw_sweep: the same recall for {sweep_queries} queries and the bare collection.query time at each "
    "ef_search of {sweep}, on the same collection. "
    "rss_mb: the bench process's resident memory after the size's queries (Chroma and tantivy "
    "in process, plus the bench's own copy of the vectors for the exact search)."
)

_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`\"'])")


# --- corpus --------------------------------------------------------------------


def _pdf_text(path: Path) -> str:
    """A PDF's text layer, page after page (the R manuals)."""
    from pypdf import PdfReader

    try:
        return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    except Exception:  # noqa: BLE001 - a manual that cannot be read is left out
        return ""


def _documents() -> list[list[str]]:
    """Sentences of each source document, in order."""
    sources = sorted(Path("/usr/share/doc/python3.11/html").rglob("*.html"))
    sources += sorted(R_MANUALS.glob("*.pdf"))
    sources += sorted(p for p in Path("/usr/share/common-licenses").glob("*") if p.is_file())
    docs: list[list[str]] = []
    for path in sources:
        try:
            raw = _pdf_text(path) if path.suffix == ".pdf" else path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix == ".html":
            raw = raw.split('role="main"', 1)[-1]  # skip the navigation chrome
            raw = html.unescape(_TAGS.sub(" ", raw))
        text = _SPACE.sub(" ", raw).strip()
        sentences = [
            s.strip() for s in _SENTENCE_END.split(text)
            if 40 <= len(s.strip()) <= 400 and len(s.split()) >= 6 and "¶" not in s
        ]
        if len(sentences) >= 8:
            docs.append(sentences)
    if not docs:
        raise SystemExit("No prose found under /usr/share/doc/python3.11/html, the R manuals or "
                         "/usr/share/common-licenses (make bench installs python3.11-doc and r-doc-pdf).")
    return docs


def _identifier(rng: random.Random) -> str:
    kind = rng.choice(("Ticket", "Invoice", "Serial number", "Case", "Order"))
    letters = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(2))
    return f"{kind} {letters}-{rng.randint(1000, 99999)}"


@dataclass
class Chunk:
    text: str
    heading: str
    sentences: list[str]
    identifier: str | None


def _base_chunks(docs: list[list[str]], n: int, rng: random.Random) -> list[Chunk]:
    out: list[Chunk] = []
    while len(out) < n:
        doc = rng.choice(docs)
        start = rng.randrange(max(1, len(doc) - 4))
        target = rng.randint(95, 120)
        picked: list[str] = []
        words = 0
        i = start
        while words < target:
            s = doc[i % len(doc)]
            picked.append(s)
            words += len(s.split())
            i += 1
        ident = _identifier(rng) if rng.random() < 1 / 3 else None
        text = " ".join(picked + ([f"Reference: {ident}."] if ident else []))
        heading = " ".join(doc[0].split()[:6])
        out.append(Chunk(text, heading, picked, ident))
    return out


def _derive(a: Chunk, b: Chunk, rng: random.Random) -> Chunk:
    sentences = list(a.sentences)
    n_swap = max(1, round(MIX_OTHER * len(sentences)))
    for pos in rng.sample(range(len(sentences)), min(n_swap, len(sentences))):
        sentences[pos] = rng.choice(b.sentences)
    ident = _identifier(rng)
    text = " ".join(sentences + [f"Reference: {ident}."])
    return Chunk(text, a.heading, sentences, ident)


def _base_vectors(base: list[Chunk]) -> tuple[np.ndarray, float, bool]:
    """Vectors of the base chunks from the real model (cached between runs by text)."""
    key = hashlib.sha256("\0".join(c.text for c in base).encode()).hexdigest()
    if CACHE.exists():
        try:
            got = np.load(CACHE)
            if str(got["key"]) == key:
                return got["vectors"], float(got["seconds"]), True
        except (OSError, ValueError, KeyError):
            pass
    from app.core.models.embedder import SentenceEmbedder

    embedder = SentenceEmbedder(bundled_embedding_model())
    t = time.perf_counter()
    vectors = embedder.encode([c.text for c in base])
    seconds = time.perf_counter() - t
    np.savez(CACHE, key=key, vectors=vectors, seconds=seconds)
    return vectors, seconds, False


class Corpus:
    """Chunk text and vectors for chunk numbers 0..n-1, made on demand."""

    def __init__(self, docs: list[list[str]], base: list[Chunk], base_vecs: np.ndarray) -> None:
        self.docs = docs
        self.base = base
        self.base_vecs = base_vecs
        self.rng = random.Random(SEED + 1)
        self.np_rng = np.random.default_rng(SEED)
        self.made = 0

    def make(self, n: int) -> tuple[list[Chunk], np.ndarray]:
        """The next ``n`` chunks (base chunks first) and their vectors."""
        chunks: list[Chunk] = []
        vecs = np.empty((n, self.base_vecs.shape[1]), dtype=np.float32)
        for i in range(n):
            self.made += 1
            if self.made <= len(self.base):  # the real chunks go in first, with their real vectors
                chunks.append(self.base[self.made - 1])
                vecs[i] = self.base_vecs[self.made - 1]
                continue
            a = self.rng.randrange(len(self.base))
            b = self.rng.randrange(len(self.base))
            chunks.append(_derive(self.base[a], self.base[b], self.rng))
            v = (1 - MIX_OTHER) * self.base_vecs[a] + MIX_OTHER * self.base_vecs[b]
            v = v + self.np_rng.normal(0.0, NOISE, v.shape)
            vecs[i] = v / np.linalg.norm(v)
        return chunks, vecs


def _queries(docs: list[list[str]], chunks: list[Chunk], n: int, rng: random.Random) -> list[str]:
    """Varied, realistic queries drawn from the same prose and identifiers."""
    idents = [c.identifier for c in chunks if c.identifier]
    out: list[str] = []
    while len(out) < n:
        sentence = rng.choice(rng.choice(docs))
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z_]+", sentence) if w.lower() not in textnorm.STOPWORDS]
        if len(words) < 4:
            continue
        kind = len(out) % 5
        if kind == 0:  # a few keywords
            q = " ".join(rng.sample(words, rng.randint(2, min(5, len(words)))))
        elif kind == 1:  # a question phrased from the text
            q = "How do I " + " ".join(sentence.split()[: rng.randint(4, 9)]).lower().rstrip(".,:;") + "?"
        elif kind == 2 and idents:  # an identifier look-up
            q = f"{rng.choice(idents)} {rng.choice(('status', 'details', 'which document', 'amount'))}"
        elif kind == 3:  # a conceptual question
            a, b = rng.sample(words, 2)
            q = f"What is the difference between {a} and {b}?"
        else:  # a whole sentence, as pasted
            q = sentence[:160]
        out.append(q)
    return out


# --- measuring -----------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[idx]


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 2), "p95": round(_pct(values, 95), 2)}


def _fts_match(query: str) -> str | None:
    """The FTS5 expression Docent used before tantivy: the query's terms, quoted and OR-ed."""
    terms = [t.replace('"', "") for t in dict.fromkeys(textnorm.query_terms(query))]
    return " OR ".join(f'"{t}"' for t in terms if t) or None


def _rss_mb() -> float:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _dir_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1) if path.exists() else 0.0


class Bench:
    def __init__(self, work: Path) -> None:
        self.lib = Library(work / "data", purpose="bench")
        self.catalog = self.lib.catalog
        self.vectors = self.lib.vectors
        self.retriever = self.lib.retriever
        self.embedder = self.lib.embedder
        self.root_id = self.catalog.add_root(LIBRARY_ROOT).id
        self.files = 0
        self.stored = 0
        self.store_s = 0.0
        self.store_catalog_s = 0.0
        self.store_vectors_s = 0.0
        self.all_vecs: list[np.ndarray] = []  # for the exact nearest-neighbour search
        self.all_ids: list[str] = []
        # The raw baseline: its own model instance, the same stores.
        from sentence_transformers import SentenceTransformer

        self.raw_model = SentenceTransformer(str(bundled_embedding_model()), device="cpu", local_files_only=True)
        self.raw_col = self.vectors._col  # the very collection Docent queries
        self.keywords = self.catalog.keywords  # the very keyword index Docent searches
        assert self.keywords is not None
        # FTS5, as Docent's keyword index was before tantivy: the same bodies.
        self.fts = sqlite3.connect(work / "fts5.sqlite3", isolation_level=None)
        self.fts.execute("PRAGMA journal_mode=WAL")
        self.fts.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')")
        self.fts_path = work / "fts5.sqlite3"

    def store(self, chunks: list[Chunk], vecs: np.ndarray) -> None:
        """Store whole files of chunks the way the indexer does (embedding done)."""
        self.fts.execute("BEGIN")
        for lo in range(0, len(chunks), CHUNKS_PER_FILE):
            part = chunks[lo : lo + CHUNKS_PER_FILE]
            fvecs = vecs[lo : lo + CHUNKS_PER_FILE]
            n = self.files
            path = f"{LIBRARY_ROOT}/topic-{n % 97:02d}/notes-{n:06d}.md"
            digest = hashlib.sha256(path.encode()).hexdigest()
            rows = []
            offset = 0
            for i, c in enumerate(part):
                rows.append(ChunkRow(
                    id=chunk_id(path, digest, i), ordinal=i, page=None, label=None, start=offset,
                    end=offset + len(c.text), heading=c.heading, text=c.text, text_hash=textnorm.text_hash(c.text),
                ))
                offset += len(c.text) + 1
            t0 = time.perf_counter()
            file_id = self.catalog.mark_file(path, "pending", root_id=self.root_id, kind="md")
            t1 = time.perf_counter()
            self.vectors.delete_file(file_id)
            self.vectors.upsert(
                [r.id for r in rows], fvecs,
                [{"file_id": file_id, "page": -1, "text_hash": r.text_hash} for r in rows],
            )
            t2 = time.perf_counter()
            self.catalog.replace_chunks(
                file_id, rows, size=offset, mtime_ns=time.time_ns(), hash=digest, kind="md",
                title=part[0].heading, pages=None,
            )
            t3 = time.perf_counter()
            self.store_s += t3 - t0
            self.store_vectors_s += t2 - t1
            self.store_catalog_s += (t1 - t0) + (t3 - t2)
            self.files += 1
            self.stored += len(part)
            self.all_ids.extend(r.id for r in rows)
            self.fts.executemany(
                "INSERT INTO chunks_fts (body) VALUES (?)",
                [(textnorm.for_index(f"{r.heading}\n{r.text}"),) for r in rows],
            )
        self.fts.execute("COMMIT")
        self.all_vecs.append(np.asarray(vecs, dtype=np.float32))
        # What a search would do first after an ingest: commit what is left.
        t = time.perf_counter()
        self.keywords.sync()
        self.store_s += time.perf_counter() - t
        self.store_catalog_s += time.perf_counter() - t

    def raw(self, query: str) -> tuple[float, float, float]:
        """Encode + bare Chroma query + bare tantivy search; milliseconds of each."""
        t0 = time.perf_counter()
        vec = self.raw_model.encode([query], normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)[0]
        t1 = time.perf_counter()
        self.raw_col.query(query_embeddings=[vec], n_results=DEPTH, include=["distances"])
        t2 = time.perf_counter()
        q = self.keywords.query(query)
        if q is not None:
            self.keywords._open().searcher().search(q, DEPTH, count=False)  # noqa: SLF001
        t3 = time.perf_counter()
        return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000

    def fts5(self, query: str) -> float:
        """The bare FTS5 query of the same chunks; milliseconds."""
        match = _fts_match(query)
        t = time.perf_counter()
        if match is not None:
            self.fts.execute(
                "SELECT rowid, bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY score LIMIT ?", (match, DEPTH),
            ).fetchall()
        return (time.perf_counter() - t) * 1000

    def hnsw_recall(self, queries: list[str]) -> float:
        """Chroma's top DEPTH vs the exact top DEPTH (cosine over every stored vector)."""
        matrix = np.concatenate(self.all_vecs)
        found = total = 0
        for q in queries:
            vec = self.raw_model.encode([q], normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)[0]
            got = set(self.raw_col.query(query_embeddings=[vec], n_results=DEPTH, include=[])["ids"][0])
            exact = np.argpartition(-(matrix @ vec), DEPTH)[:DEPTH]
            want = {self.all_ids[i] for i in exact}
            found += len(got & want)
            total += len(want)
        return round(found / total, 4)

    def hnsw_sweep(self, queries: list[str]) -> list[dict[str, float]]:
        """Recall@DEPTH and bare Chroma query time at each ``ef_search`` of
        EF_SWEEP, on the same stored collection and queries.

        Each value runs in a fresh process: Chroma reads ``ef_search`` when it
        loads the index into memory, so changing it on a collection a process
        has already searched changes nothing there (measured). Docent's own
        setting is put back afterwards.
        """
        matrix = np.concatenate(self.all_vecs)
        vecs = self.raw_model.encode(queries, normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        exact = [[self.all_ids[i] for i in np.argpartition(-(matrix @ v), DEPTH)[:DEPTH]] for v in vecs]
        job = Path(tempfile.mkdtemp(prefix="docent-hnsw-sweep-"))
        np.save(job / "queries.npy", vecs)
        (job / "exact.json").write_text(json.dumps(exact), encoding="utf-8")
        import subprocess

        def run(ef: int) -> dict[str, float]:
            out = subprocess.run(
                [sys.executable, __file__, "--sweep-worker", str(self.lib.paths.chroma), str(job), str(ef)],
                capture_output=True, text=True, check=True, timeout=1800,
            ).stdout
            return json.loads(out.strip().splitlines()[-1])

        try:
            return [run(ef) for ef in EF_SWEEP]
        finally:
            run(SEARCH_EF)  # the stored setting back to Docent's
            shutil.rmtree(job, ignore_errors=True)

    def measure(self, queries: list[str], warmup: list[str]) -> dict[str, object]:
        for q in warmup:
            for mode in ("hybrid", "vector", "keyword"):
                self.retriever.search(q, k=K, mode=mode)
            self.raw(q)
            self.fts5(q)
        times: dict[str, list[float]] = {m: [] for m in ("hybrid", "vector", "keyword", "raw",
                                                         "raw_embed", "raw_chroma", "raw_tantivy", "fts5")}
        stages: dict[str, list[float]] = {s: [] for s in ("embed", "vector", "keyword", "fuse")}
        hits_found = 0
        runs = ("hybrid", "vector", "keyword", "raw", "fts5")
        for i, q in enumerate(queries):
            for run in runs[i % 5:] + runs[: i % 5]:
                t = time.perf_counter()
                if run == "raw":
                    e, c, f = self.raw(q)
                    times["raw"].append((time.perf_counter() - t) * 1000)
                    times["raw_embed"].append(e)
                    times["raw_chroma"].append(c)
                    times["raw_tantivy"].append(f)
                    continue
                if run == "fts5":
                    times["fts5"].append(self.fts5(q))
                    continue
                self.retriever.forget_query_vectors()  # a new question: its embedding is timed too
                t = time.perf_counter()
                result = self.retriever.search(q, k=K, mode=run)
                times[run].append((time.perf_counter() - t) * 1000)
                if run == "hybrid":
                    hits_found += bool(result.hits)
                    for s in stages:
                        v = result.timings_ms.get(s)
                        if v is not None:
                            stages[s].append(v)
        s = {name: _summary(v) for name, v in times.items()}
        return {
            "chunks": self.stored,
            "files": self.files,
            "store_s": round(self.store_s, 2),
            "store_catalog_s": round(self.store_catalog_s, 2),
            "store_vectors_s": round(self.store_vectors_s, 2),
            "catalog_mb": round(self.lib.paths.catalog.stat().st_size / 1e6, 1),
            "chroma_mb": _dir_mb(self.lib.paths.chroma),
            "keywords_mb": _dir_mb(self.keywords.directory) if self.keywords.directory else 0.0,
            "fts5_mb": round(self.fts_path.stat().st_size / 1e6, 1),
            "rss_mb": _rss_mb(),
            "hybrid_p50_ms": s["hybrid"]["p50"],
            "hybrid_p95_ms": s["hybrid"]["p95"],
            "raw_p50_ms": s["raw"]["p50"],
            "raw_p95_ms": s["raw"]["p95"],
            "p50_ratio": round(s["hybrid"]["p50"] / s["raw"]["p50"], 2),
            "p95_ratio": round(s["hybrid"]["p95"] / s["raw"]["p95"], 2),
            "vector_p50_ms": s["vector"]["p50"],
            "vector_p95_ms": s["vector"]["p95"],
            "keyword_p50_ms": s["keyword"]["p50"],
            "keyword_p95_ms": s["keyword"]["p95"],
            "fts5_p50_ms": s["fts5"]["p50"],
            "fts5_p95_ms": s["fts5"]["p95"],
            "raw_parts_ms": {"embed": s["raw_embed"], "chroma": s["raw_chroma"], "tantivy": s["raw_tantivy"]},
            "hybrid_stages_p50_ms": {k: round(statistics.median(v), 2) for k, v in stages.items() if v},
            "hnsw_recall_at_depth": self.hnsw_recall(queries[:RECALL_QUERIES]),
            "hnsw_ef_search": SEARCH_EF,
            "hnsw_sweep": self.hnsw_sweep(queries[:RECALL_QUERIES * 2]),
            "queries_with_hits": hits_found,
        }

    def close(self) -> None:
        self.fts.close()
        self.lib.close()


def main(quick: bool = False, sizes: tuple[int, ...] | None = None) -> dict[str, object]:
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    rng = random.Random(SEED)
    docs = _documents()
    base = _base_chunks(docs, BASE_CHUNKS, rng)
    base_vecs, embed_s, cached = _base_vectors(base)
    corpus = Corpus(docs, base, base_vecs)
    work = Path(tempfile.mkdtemp(prefix="docent-bench-search-"))
    bench = Bench(work)
    queries = _queries(docs, base, QUERIES + WARMUP, random.Random(SEED + 2))
    warmup, queries = queries[:WARMUP], queries[WARMUP:]
    tok = bench.embedder.token_spans
    sample = Corpus(docs, base, base_vecs)
    sample.made = len(base)  # derived chunks only
    sample_tokens = [len(tok(c.text)) for c in sample.make(200)[0]]
    out: dict[str, object] = {
        "method": METHOD.format(base=BASE_CHUNKS, mix=MIX_OTHER, a=1 - MIX_OTHER, noise=NOISE,
                                per_file=CHUNKS_PER_FILE, queries=QUERIES, warmup=WARMUP, k=K, depth=DEPTH,
                                recall_queries=RECALL_QUERIES, ef=SEARCH_EF,
                                sweep_queries=RECALL_QUERIES * 2, sweep=", ".join(map(str, EF_SWEEP))),
        "queries": len(queries),
        "k": K,
        "candidate_depth": DEPTH,
        "chunk_tokens_mean": round(statistics.mean(sample_tokens), 1),
        "base_chunks_embedded": BASE_CHUNKS,
        "base_embedding_s": round(embed_s, 1),
        "base_embedding_cached": cached,
        "cpu_cores": os.cpu_count(),
        "sizes": [],
        "target_p95_ms": {"100000": 30, "1000000": 100},
    }
    try:
        for size in sizes:
            started = time.perf_counter()
            while bench.stored < size:  # in parts: a million chunks' text need not sit in memory at once
                chunks, vecs = corpus.make(min(STORE_BATCH, size - bench.stored))
                bench.store(chunks, vecs)
            row = bench.measure(queries, warmup)
            row["bench_s"] = round(time.perf_counter() - started, 1)
            out["sizes"].append(row)  # type: ignore[union-attr]
            print(json.dumps(row), flush=True)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    return out


def sweep_worker(chroma: Path, job: Path, ef: int) -> dict[str, float]:
    """One ``ef_search`` in a process of its own (see ``Bench.hnsw_sweep``):
    set it on the stored collection, load the index, query, compare."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from app.core.stores.vectors import COLLECTION

    client = chromadb.PersistentClient(path=str(chroma), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_collection(COLLECTION)
    col.modify(configuration={"hnsw": {"ef_search": ef}})  # before this process first loads the index
    vecs = np.load(job / "queries.npy")
    exact = [set(ids) for ids in json.loads((job / "exact.json").read_text(encoding="utf-8"))]
    for v in vecs[:WARMUP]:
        col.query(query_embeddings=[v], n_results=DEPTH, include=[])
    found = 0
    times: list[float] = []
    for v, want in zip(vecs, exact):
        t = time.perf_counter()
        got = col.query(query_embeddings=[v], n_results=DEPTH, include=["distances"])
        times.append((time.perf_counter() - t) * 1000)
        found += len(set(got["ids"][0]) & want)
    return {"ef_search": ef, "recall_at_depth": round(found / (DEPTH * len(vecs)), 4),
            "chroma_p50_ms": round(_pct(times, 50), 2), "chroma_p95_ms": round(_pct(times, 95), 2)}


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--sweep-worker":
        print(json.dumps(sweep_worker(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k chunks only")
    parser.add_argument("--sizes", type=int, nargs="+", help="library sizes to measure, in chunks")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "search.json")
    args = parser.parse_args()
    result = main(quick=args.quick, sizes=tuple(args.sizes) if args.sizes else None)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
