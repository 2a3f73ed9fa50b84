"""Hybrid search: vector similarity and BM25 keywords, fused by reciprocal rank,
optionally reordered by a cross-encoder reranker (:mod:`app.core.answering.rerank`).

Every hit carries both scores where it has them, the reranker's where it ran
(and the query–chunk cosine similarity in every mode, which the answer step
uses to decide whether anything relevant was found at all).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from app import config
from app.core import textnorm
from app.core.stores.catalog import Catalog, StoredChunk
from app.core.models.embedder import Embedder
from app.core.stores.vectors import VectorStore
from app.errors import UsageError
from app.telemetry import instruments, names, span

if TYPE_CHECKING:
    from app.core.answering.rerank import Reranker

MODES = ("hybrid", "vector", "keyword")
# Dampens the weight of the very top ranks (Cormack et al. suggest 60).
# Weights of the two rankings in the fusion. Chosen on both development sets
# (bench/tune.py; bench/tune.json and the README show what each set alone
# would choose): k=60 with keyword weight 2.0 keeps pydocs at 50/50, MRR@10
# 0.931 (exact identifiers such as PYTHONSTARTUP are the keyword side's);
# pdfdocs alone would weigh keywords less (k=10, 0.5: 45/50 pages) but that
# loses two pydocs questions, so it is not taken.
RRF_K = 60
VECTOR_WEIGHT = 1.0
KEYWORD_WEIGHT = 2.0
# Two hits on one page become one passage when together they span at most
# this many characters (about three chunks); farther apart, the lesser one is
# dropped (its page is already a source). See ``one_per_place``. Any value
# scores the same on both sets (0, dropping only, too); merging gives the
# model the text between two matching passages of a page.
MERGE_CHARS = 2400
#: Query vectors kept in memory: a question asked again (the same one, or a
#: search repeated) is not embedded again.
QUERY_VECTORS_KEPT = 512
_SHINGLE = 5
_NEAR_DUPLICATE = 0.8


@dataclass
class Hit:
    """One retrieved chunk."""

    chunk: StoredChunk
    score: float
    rank: int = 0
    vector_score: float | None = None
    keyword_score: float | None = None
    vector_rank: int | None = None
    keyword_rank: int | None = None
    similarity: float | None = None  # cosine(query, chunk), for relevance decisions
    vector: np.ndarray | None = field(default=None, repr=False)
    rerank_score: float | None = None  # the cross-encoder's, when the reranker ran on this hit
    merged: tuple[str, ...] = ()  # ids of lesser hits on the same page this passage was widened to cover

    def to_json(self, form: str = "search", **own: object) -> dict[str, object]:
        """This hit as ``form``'s consumer reads it: the one place a hit is serialised.

        Forms (see :data:`HIT_FORMS`): ``search`` (the ``search --json``
        contract's hit, with per-stage scores), ``source`` and ``citation``
        (``ask --json``), ``audit`` (an answer record's ``retrieved``, scores
        unrounded, the text only as its hash) and ``snapshot`` (the window's
        "Why this answer", scores unrounded, with the text). ``own`` supplies
        the fields that belong to the answer rather than the hit (``n``,
        ``inferred``, ``given``).
        """
        fields = HIT_FORMS[form]
        return {key: own[key] if key in own else _HIT_FIELDS[field](self) for key, field in fields.items()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


# How each field is read from a hit; "rounded" ones are the JSON contracts'
# (six decimals), the others keep the value as computed (the audit record and
# the window's snapshot have always held it unrounded).
_HIT_FIELDS: dict[str, Callable[[Hit], object]] = {
    "rank": lambda h: h.rank,
    "path": lambda h: h.chunk.path,
    "page": lambda h: h.chunk.page,
    "label": lambda h: h.chunk.label,
    "attachment": lambda h: h.chunk.attachment,
    "part": lambda h: h.chunk.part,
    "heading": lambda h: h.chunk.heading,
    "span": lambda h: [h.chunk.start, h.chunk.end],
    "chunk_id": lambda h: h.chunk.id,
    "text": lambda h: h.chunk.text,
    "text_hash": lambda h: h.chunk.text_hash,
    "score": lambda h: h.score,
    "vector_score": lambda h: h.vector_score,
    "keyword_score": lambda h: h.keyword_score,
    "rerank_score": lambda h: h.rerank_score,
    "similarity": lambda h: h.similarity,
    "rounded_score": lambda h: round(float(h.score), 6),
    "rounded_vector_score": lambda h: _round(h.vector_score),
    "rounded_keyword_score": lambda h: _round(h.keyword_score),
    "rounded_rerank_score": lambda h: _round(h.rerank_score),
}


def _form(*names: str) -> dict[str, str]:
    """Output key -> field; a name starting with ``~`` is a rounded score."""
    return {n.lstrip("~"): ("rounded_" + n[1:] if n.startswith("~") else n) for n in names}


#: Every way a hit is written out, by consumer, keys in output order. The
#: position fields (printed page label, section heading, character span on
#: the page) go beyond the contract's fields, for highlighting; so do an
#: e-mail attachment's name and locator (``attachment``, ``part``: null for
#: a file's own text), whose ``page`` is the attachment's own.
HIT_FORMS: dict[str, dict[str, str]] = {
    "search": _form("rank", "path", "page", "chunk_id", "~score", "text",
                    "~vector_score", "~keyword_score", "~rerank_score", "attachment", "part"),
    "source": _form("n", "path", "page", "chunk_id", "~score", "text", "label", "heading", "span",
                    "~vector_score", "~keyword_score", "~rerank_score", "attachment", "part"),
    "citation": _form("n", "path", "page", "chunk_id", "text", "inferred", "label", "heading", "span",
                      "attachment", "part"),
    "audit": _form("chunk_id", "path", "page", "score", "vector_score", "keyword_score", "similarity",
                   "rerank_score", "text_hash", "given", "attachment"),
    "snapshot": _form("chunk_id", "path", "page", "label", "score", "vector_score", "keyword_score",
                      "similarity", "rerank_score", "given", "text", "attachment", "part"),
}


@dataclass
class SearchResult:
    query: str
    mode: str
    hits: list[Hit]
    timings_ms: dict[str, float | None]
    # The highest similarity of any passage the vector side found, whether or
    # not fusion kept it among ``hits``: whether the library holds anything
    # close to the question is a question about the nearest passage, not
    # about the ones the keyword side pushed up.
    closest: float | None = None

    @property
    def best_similarity(self) -> float:
        """The nearest passage's similarity (``closest``, or the best hit's)."""
        return max([self.closest or 0.0, *((h.similarity or 0.0) for h in self.hits)])

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "mode": self.mode,
            "hits": [h.to_json() for h in self.hits],
            "timings_ms": self.timings_ms,
        }


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < _SHINGLE:
        return {tuple(words)}
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


def collapse_near_duplicates(hits: list[Hit], limit: int | None = None) -> list[Hit]:
    """Drop hits whose text nearly repeats a better hit (boilerplate, copies).

    Args:
        limit: stop once this many hits are kept. The kept hits are the same
            first ones a full pass would keep (each hit is only compared with
            better ones), so searches pass ``k`` and skip shingling and
            comparing the candidates they would throw away anyway.
    """
    kept: list[Hit] = []
    kept_shingles: list[set[tuple[str, ...]]] = []
    for hit in hits:
        if limit is not None and len(kept) >= limit:
            break
        sh = _shingles(hit.chunk.text)
        duplicate = any(
            len(sh & other) / max(1, min(len(sh), len(other))) >= _NEAR_DUPLICATE
            for other in kept_shingles
        )
        if not duplicate:
            kept.append(hit)
            kept_shingles.append(sh)
    return kept


def place_of(chunk: StoredChunk) -> tuple[str, object] | None:
    """Where a passage is, as a user counts places: its page, or in a file
    without pages its section (the heading it falls under); None for a
    passage of a file with neither (a plain text file), which is a place of
    its own unless it is next to another. An e-mail's attachment is a
    document of its own: its pages are not its message's."""
    where = chunk.path if chunk.part is None else f"{chunk.path}\0{chunk.part}"
    if chunk.page is not None:
        return (where, chunk.page)
    if chunk.heading is not None:
        return (where, ("section", chunk.heading))
    return None


def one_per_place(
    hits: list[Hit], limit: int, widen: Callable[[StoredChunk, StoredChunk], StoredChunk | None] | None = None
) -> list[Hit]:
    """Each place once: a hit on a page (or section) that a better hit already
    holds joins that hit instead of taking a slot of its own.

    The better hit's passage is widened to cover both when ``widen`` can
    (adjacent or near chunks of one page: the model then reads them as one
    passage); otherwise the lesser hit is dropped, since its place is already
    among the sources. In a file with neither pages nor headings only near
    hits join; a far one is a place of its own. The merged hit keeps the
    better hit's id, scores and rank, the higher of the two similarities, and
    lists the chunks it absorbed in ``merged``.

    Args:
        limit: stop once this many places are kept.
        widen: ``(kept chunk, other chunk) -> one chunk covering both`` or
            None when they are too far apart.
    """
    kept: list[Hit] = []
    by_place: dict[tuple[str, object], Hit] = {}
    unplaced: dict[str, list[Hit]] = {}  # by file: hits of files without pages or headings
    for hit in hits:
        place = place_of(hit.chunk)
        held = [by_place[place]] if place is not None and place in by_place else (
            unplaced.get(hit.chunk.path, []) if place is None else [])
        joined = False
        for other in held:
            wider = widen(other.chunk, hit.chunk) if widen is not None else None
            if wider is not None:
                other.chunk = wider
                other.merged = (*other.merged, hit.chunk.id)
                if hit.similarity is not None and (other.similarity is None or hit.similarity > other.similarity):
                    other.similarity = hit.similarity
                joined = True
                break
        if joined or (held and place is not None) or len(kept) >= limit:
            continue  # merged, its page already a source, or no room (later hits may still merge)
        kept.append(hit)
        if place is None:
            unplaced.setdefault(hit.chunk.path, []).append(hit)
        else:
            by_place[place] = hit
    return kept


class Retriever:
    """Searches the library; the vector side is optional (keyword-only readers).

    Args:
        reranker: a cross-encoder that reorders the best candidates (None: off).
        rerank_candidates: how many first-stage candidates the reranker reads
            (at least ``k``); more finds more, each costs one model call.
    """

    #: Reciprocal-rank fusion: each ranking adds ``weight / (rrf_k + rank)``.
    rrf_k: int = RRF_K
    vector_weight: float = VECTOR_WEIGHT
    keyword_weight: float = KEYWORD_WEIGHT
    #: Widest passage two hits on one page are merged into (0: never merge,
    #: only drop the lesser; None: keep every hit, as before places counted).
    merge_chars: int | None = MERGE_CHARS

    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorStore | None = None,
        embedder: Embedder | None = None,
        *,
        reranker: Reranker | None = None,
        rerank_candidates: int = 20,
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates
        # Least recently used first; keyed by the embedder's name too, in
        # case another embedder is put in its place.
        self._query_vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._query_vectors_guard = threading.Lock()

    def forget_query_vectors(self) -> None:
        """Drop the query embeddings kept in memory (a benchmark times each
        search as a new question's, embedding included)."""
        with self._query_vectors_guard:
            self._query_vectors.clear()

    def query_vector(self, query: str) -> np.ndarray:
        """``query``'s embedding, from memory when it was embedded lately.

        Counted in ``docent.cache.requests`` as the ``query_embedding`` cache.
        The vector is read-only: it is shared by every search of that query.
        """
        assert self.embedder is not None
        key = (self.embedder.name, query)
        with self._query_vectors_guard:
            vec = self._query_vectors.get(key)
            if vec is not None:
                self._query_vectors.move_to_end(key)
        instruments().cache.add(1, {names.CACHE: "query_embedding", names.CACHE_HIT: vec is not None})
        if vec is not None:
            return vec
        vec = np.asarray(self.embedder.encode([query])[0])
        vec.setflags(write=False)
        with self._query_vectors_guard:
            self._query_vectors[key] = vec
            while len(self._query_vectors) > QUERY_VECTORS_KEPT:
                self._query_vectors.popitem(last=False)
        return vec

    def search(
        self, query: str, *, k: int = config.SOURCES_PER_ANSWER, mode: str = "hybrid",
        scope: str | tuple[str, ...] | None = None, rerank: bool = True, operation: bool = False,
    ) -> SearchResult:
        """The ``k`` best chunks for ``query``.

        Args:
            mode: ``hybrid`` (default), ``vector`` or ``keyword``.
            scope: a file or folder (or several: an API key's folders); only
                their files are searched.
            rerank: reorder the candidates with the reranker, when there is
                one. A reranked hit's ``score`` is its ``rerank_score``.
            operation: this search is an operation of its own (``docent
                search``, the API's), listed in the Activity panel; not when
                it is an answer's first step.
        """
        if mode not in MODES:
            raise UsageError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}.")
        if k < 1:
            raise UsageError("-k must be at least 1.")
        with span("retrieval", {names.OPERATION: "retrieval", names.DATA_SOURCE: "docent-library",
                                names.MODE: mode, names.K: k}) as current:
            if operation:
                current.set_attribute(names.KIND, "search")
                current.set_attribute(names.LABEL, f"{mode} search")
            result = self._search(query, k=k, mode=mode, scope=scope, rerank=rerank)
            current.set_attribute(names.HITS, len(result.hits))
            if result.timings_ms.get("total") is not None:
                current.set_attribute(names.RETRIEVAL_MS, round(result.timings_ms["total"] or 0, 1))
            if result.timings_ms.get("total") is not None:
                seconds = (result.timings_ms["total"] or 0) / 1000
                instruments().retrieval.record(seconds, {names.MODE: mode})
                instruments().operation_duration.record(seconds, {names.OPERATION: "retrieval"})
            return result

    def _search(
        self, query: str, *, k: int, mode: str, scope: str | tuple[str, ...] | None, rerank: bool,
    ) -> SearchResult:
        """:meth:`search`'s work, inside its ``retrieval`` span."""
        started = time.perf_counter()
        timings: dict[str, float | None] = {"embed": None, "vector": None, "keyword": None, "fuse": None,
                                            "rerank": None}
        # The reranker reads `pool` candidates (None: no reranking this time).
        pool = max(k, self.rerank_candidates) if rerank and self.reranker is not None else None
        # Ask each side for more than that: fusion and de-duplication need room.
        depth = max(4 * k, 20, pool or 0)
        query_vec: np.ndarray | None = None
        vec_hits: list[tuple[str, float]] = []
        known: dict[str, np.ndarray] = {}
        kw_hits: list[tuple[str, float]] = []
        if mode in ("hybrid", "vector") and self.vectors is None and self.embedder is not None:
            return self._keyword_by_meaning(query, k=k, scope=scope, started=started, pool=pool)
        if mode in ("hybrid", "vector"):
            if self.vectors is None or self.embedder is None:
                raise UsageError("Vector search needs the vector store; use --mode keyword.")
            t = time.perf_counter()
            with span(f"embeddings {_model_name(self.embedder)}", {names.OPERATION: "embeddings",
                                                          names.REQUEST_MODEL: _model_name(self.embedder)}):
                query_vec = self.query_vector(query)
            timings["embed"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            with span("vector_search", {"db.system.name": "chroma", "db.operation.name": "query"}) as step:
                file_ids = self._scope_file_ids(scope)
                # The candidates' vectors come with them: the best hits need theirs
                # (similarity, the answer step), and this saves a second look-up.
                for cid, score, vec in self.vectors.query_with_vectors(query_vec, depth, file_ids=file_ids):
                    vec_hits.append((cid, score))
                    known[cid] = vec
                step.set_attribute(names.HITS, len(vec_hits))
            timings["vector"] = (time.perf_counter() - t) * 1000
        if mode in ("hybrid", "keyword"):
            t = time.perf_counter()
            with span("keyword_search", {"db.system.name": "tantivy", "db.operation.name": "search"}) as step:
                kw_hits = self.catalog.keyword_search(query, depth, scope=scope)
                step.set_attribute(names.HITS, len(kw_hits))
            timings["keyword"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        with span("fusion"):
            fused = self._fuse(mode, vec_hits, kw_hits)
            # Only passages of indexed files count (the fusion dropped the others).
            closest = max((h.vector_score for h in fused if h.vector_score is not None), default=None)
            hits = self._places(fused, pool or k)
            # De-duplicated before reranking: copies would spend the reranker's
            # candidate slots (and model calls) on one passage.
            hits = collapse_near_duplicates(hits, pool or k)
        timings["fuse"] = (time.perf_counter() - t) * 1000
        hits = self._rerank(query, hits, k, pool, timings)
        if query_vec is None and hits and self.embedder is not None and self.vectors is not None:
            # Keyword mode ranks without meaning, but the answer step still
            # needs each hit's similarity to decide whether anything relevant
            # was found (without it every keyword-mode question was declined).
            t = time.perf_counter()
            query_vec = self.query_vector(query)
            timings["embed"] = (time.perf_counter() - t) * 1000
        if query_vec is not None:
            self._attach_similarity(hits, query_vec, known)
        for i, hit in enumerate(hits, 1):
            hit.rank = i
        timings["total"] = (time.perf_counter() - started) * 1000
        return SearchResult(query, mode, hits, timings, closest)

    def _rerank(
        self, query: str, hits: list[Hit], k: int, pool: int | None, timings: dict[str, float | None]
    ) -> list[Hit]:
        """The first ``k`` of ``hits``, after the reranker reordered the first
        ``pool`` of them (None: no reranking); times it in ``timings["rerank"]``."""
        if pool is None or self.reranker is None or not hits:
            return hits[:k]
        t = time.perf_counter()
        with span("rerank", {"docent.rerank.candidates": min(pool, len(hits))}):
            hits = self.reranker.rerank(query, hits, pool)[:k]
        for hit in hits:
            if hit.rerank_score is not None:
                hit.score = hit.rerank_score  # the order shown is the reranker's
        timings["rerank"] = (time.perf_counter() - t) * 1000
        return hits

    def _keyword_by_meaning(
        self, query: str, *, k: int, scope: str | tuple[str, ...] | None, started: float, pool: int | None = None
    ) -> SearchResult:
        """Without the vector store (it cannot be opened): keyword candidates,
        with their similarity to the question computed from their text."""
        timings: dict[str, float | None] = {"embed": None, "vector": None, "keyword": None,
                                            "fuse": None, "rerank": None}
        kw_hits = self.catalog.keyword_search(query, max(4 * k, 20, pool or 0), scope=scope)
        hits = collapse_near_duplicates(self._places(self._fuse("keyword", [], kw_hits), pool or k), pool or k)
        hits = self._rerank(query, hits, k, pool, timings)
        if hits:
            assert self.embedder is not None
            vecs = self.embedder.encode([query] + [h.chunk.text for h in hits])
            for hit, vec in zip(hits, vecs[1:]):
                hit.vector = vec
                hit.similarity = float(np.dot(vec, vecs[0]))
        for i, hit in enumerate(hits, 1):
            hit.rank = i
        timings["total"] = (time.perf_counter() - started) * 1000
        return SearchResult(query, "keyword", hits, timings)

    def _places(self, hits: list[Hit], limit: int) -> list[Hit]:
        """The fused hits with each page (or section) once; see :func:`one_per_place`.

        Keeps a few more places than ``limit``: near-duplicate removal runs
        next and may still drop some.
        """
        if self.merge_chars is None:
            return hits
        return one_per_place(hits, 2 * limit, self._widen if self.merge_chars > 0 else None)

    def _widen(self, a: StoredChunk, b: StoredChunk) -> StoredChunk | None:
        """One passage covering chunks ``a`` and ``b`` of the same page (and the
        text between them), or None when it would exceed ``merge_chars``."""
        if a.file_id != b.file_id or a.page != b.page or a.part != b.part or self.merge_chars is None:
            return None
        start, end = min(a.start, b.start), max(a.end, b.end)
        if end - start > self.merge_chars:
            return None
        parts = [c for c in self.catalog.chunks_covering(a.file_id, a.page, start, end, a.part)
                 if c.start >= start and c.end <= end]
        text, at = "", start
        # Rebuild the page's text over [start, end) from the chunks that lie in
        # it (they overlap and together cover it); spans stay page offsets, so
        # the viewer highlights exactly this passage.
        pieces = sorted({(c.start, c.end, c.text) for c in (a, b, *parts)})
        for c_start, c_end, c_text in pieces:
            if c_end <= at:
                continue
            if c_start > at:
                text += " " * (c_start - at)  # only whitespace lies between chunks
                at = c_start
            text += c_text[at - c_start:]
            at = c_end
        return replace(a, start=start, end=end, text=text, text_hash=textnorm.text_hash(text))

    def _scope_file_ids(self, scope: str | tuple[str, ...] | None) -> list[int] | None:
        if not scope:
            return None
        scopes = (scope,) if isinstance(scope, str) else scope
        prefixes = tuple(one.rstrip("/") + "/" for one in scopes)
        return [f.id for f in self.catalog.files(status="indexed") if f.path in scopes or f.path.startswith(prefixes)]

    def _fuse(
        self, mode: str, vec_hits: list[tuple[str, float]], kw_hits: list[tuple[str, float]]
    ) -> list[Hit]:
        ids = list(dict.fromkeys([cid for cid, _ in vec_hits] + [cid for cid, _ in kw_hits]))
        chunks = self.catalog.chunks(ids)  # drops vectors whose file is not indexed
        by_id: dict[str, Hit] = {}
        for rank, (cid, score) in enumerate((h for h in vec_hits if h[0] in chunks), 1):
            by_id[cid] = Hit(chunks[cid], 0.0, vector_score=score, vector_rank=rank, similarity=score)
        for rank, (cid, score) in enumerate((h for h in kw_hits if h[0] in chunks), 1):
            hit = by_id.setdefault(cid, Hit(chunks[cid], 0.0))
            hit.keyword_score, hit.keyword_rank = score, rank
        for hit in by_id.values():
            if mode == "vector":
                hit.score = hit.vector_score or 0.0
            elif mode == "keyword":
                hit.score = hit.keyword_score or 0.0
            else:
                hit.score = sum(w / (self.rrf_k + r) for w, r in
                                ((self.vector_weight, hit.vector_rank), (self.keyword_weight, hit.keyword_rank))
                                if r)
        return sorted(by_id.values(), key=lambda h: h.score, reverse=True)

    def _attach_similarity(
        self, hits: list[Hit], query_vec: np.ndarray, known: dict[str, np.ndarray] | None = None
    ) -> None:
        """Cosine similarity and the vector itself for every hit (keyword-only ones too).

        Args:
            known: vectors already at hand by chunk id (the vector candidates');
                only the other hits' vectors are read from the store.
        """
        if self.vectors is None:
            return
        known = known or {}
        # A passage widened over several chunks is as close to the question as
        # its closest chunk; that chunk's vector stands for it.
        ids = [cid for h in hits for cid in (h.chunk.id, *h.merged)]
        missing = [cid for cid in ids if cid not in known]
        stored = {**known, **self.vectors.get(missing)} if missing else known
        for hit in hits:
            best: tuple[float, np.ndarray] | None = None
            for cid in (hit.chunk.id, *hit.merged):
                vec = stored.get(cid)
                if vec is not None:
                    sim = float(np.dot(vec, query_vec))
                    if best is None or sim > best[0]:
                        best = (sim, vec)
            if best is not None:
                hit.similarity, hit.vector = best


def _model_name(embedder: Embedder) -> str:
    """The embedding model's name for spans (the bundled one's as its makers call it)."""
    return getattr(embedder, "display_name", None) or embedder.name
