"""Choose chunk size, overlap, fusion weights and the relevance threshold on the dev set.

    .venv/bin/python bench/tune.py [--out bench/tune.json] [--quick]

Everything is measured on the development set (``../shared/eval/pydocs``,
or ``DOCENT_EVAL_DIR``) through the app's own code: a ``Library`` ingests
the set's corpus with each chunking, and ``Retriever.search`` is scored with
``app.core.evaluate`` (the same scorer ``docent eval`` uses).

1. Chunking: chunk sizes at a fixed overlap, then overlaps at the best size.
   The embedder reads at most 256 word pieces, so larger chunks would be cut
   off unseen by the vector side.
2. Fusion, on the chosen chunking: the keyword ranking's weight against the
   vector ranking's, and the RRF constant.
3. Relevance threshold: the best cosine similarity among a question's
   retrieved passages, for fact and for absent questions; the threshold that
   keeps the most fact questions answered plus absent ones declined
   (ties: the lowest, so an answerable question is not declined).

Rule for each choice: the best hybrid recall@5, then MRR@10, then the
setting already in use (no change for noise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings, enforce_offline  # noqa: E402

enforce_offline()

from app.core import evaluate as ev  # noqa: E402
from app.core.library import Library  # noqa: E402
from app.core.retrieval import Retriever  # noqa: E402

DOCS = Path("/usr/share/doc/python3.11/html")
EVAL = next((p for p in (Path(os.environ["DOCENT_EVAL_DIR"]) if os.environ.get("DOCENT_EVAL_DIR") else None,
                         ROOT.parent / "shared" / "eval" / "pydocs", Path("/work/shared/eval/pydocs"))
             if p is not None and (p / "questions.jsonl").is_file()), ROOT.parent / "shared" / "eval" / "pydocs")

SIZES = (96, 128, 200, 256)
OVERLAPS = (0, 32, 64)
FIXED_OVERLAP = 32
KEYWORD_WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
RRF_KS = (10, 30, 60, 100)


def retrieval(retriever: Retriever, questions: list[ev.Question], root: Path, mode: str) -> dict[str, float]:
    scores, _ = ev.score_retrieval(lambda q, n: retriever.search(q, k=n, mode=mode, rerank=False).hits,
                                   questions, root)
    return {"recall_at_5": scores["recall_at_5"]["hits"], "mrr_at_10": scores["mrr_at_10"]["value"]}


def key(row: dict[str, float], current: bool) -> tuple[float, float, bool]:
    return (row["recall_at_5"], row["mrr_at_10"], current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "tune.json")
    parser.add_argument("--quick", action="store_true", help="two chunk sizes only (a smoke run)")
    args = parser.parse_args()
    questions = ev.load_questions(EVAL / "questions.jsonl")
    corpus = ev.corpus_for(EVAL / "questions.jsonl", DOCS)
    default = Settings()
    out: dict[str, object] = {"date": ev.now_iso(), "questions": len(questions), "files": len(corpus.files),
                              "chunking": [], "fusion": [], "threshold": {}}
    started = time.perf_counter()
    libs: dict[tuple[int, int], tuple[Library, tempfile.TemporaryDirectory[str]]] = {}

    def measure(size: int, overlap: int) -> dict[str, object]:
        tmp = tempfile.TemporaryDirectory(prefix="docent-tune-")
        lib = Library(Path(tmp.name), settings=Settings(chunk_tokens=size, chunk_overlap=overlap), purpose="tune")
        t = time.perf_counter()
        lib.indexer.ingest(corpus.files)
        row: dict[str, object] = {"chunk_tokens": size, "chunk_overlap": overlap,
                                  "chunks": lib.catalog.indexed_chunk_count(),
                                  "ingest_s": round(time.perf_counter() - t, 1)}
        for mode in ("vector", "keyword", "hybrid"):
            row[mode] = retrieval(lib.retriever, questions, corpus.root, mode)
        print(json.dumps(row), file=sys.stderr, flush=True)
        libs[(size, overlap)] = (lib, tmp)
        return row

    sizes = SIZES[1:3] if args.quick else SIZES
    rows = [measure(s, FIXED_OVERLAP) for s in sizes]
    best_size = max(rows, key=lambda r: key(r["hybrid"], r["chunk_tokens"] == default.chunk_tokens))["chunk_tokens"]
    for overlap in OVERLAPS if not args.quick else ():
        if overlap != FIXED_OVERLAP:
            rows.append(measure(int(best_size), overlap))
    best = max((r for r in rows if r["chunk_tokens"] == best_size),
               key=lambda r: key(r["hybrid"], r["chunk_overlap"] == default.chunk_overlap))
    out["chunking"] = rows
    out["chosen_chunking"] = {"chunk_tokens": best["chunk_tokens"], "chunk_overlap": best["chunk_overlap"]}
    for (size, overlap), (lib, tmp) in list(libs.items()):
        if (size, overlap) != (best["chunk_tokens"], best["chunk_overlap"]):
            lib.close()
            tmp.cleanup()
    lib, tmp = libs[(int(best["chunk_tokens"]), int(best["chunk_overlap"]))]
    retriever = lib.retriever

    fusion = []
    for rrf_k in RRF_KS:
        for weight in KEYWORD_WEIGHTS:
            retriever.rrf_k, retriever.keyword_weight = rrf_k, weight
            row = {"rrf_k": rrf_k, "keyword_weight": weight, "vector_weight": 1.0,
                   **retrieval(retriever, questions, corpus.root, "hybrid")}
            fusion.append(row)
    current = Retriever.rrf_k, Retriever.keyword_weight
    chosen = max(fusion, key=lambda r: key(r, (r["rrf_k"], r["keyword_weight"]) == current))
    out["fusion"] = fusion
    out["chosen_fusion"] = {k: chosen[k] for k in ("rrf_k", "keyword_weight", "vector_weight")}
    retriever.rrf_k, retriever.keyword_weight = chosen["rrf_k"], chosen["keyword_weight"]

    # Relevance: the best similarity among the passages the answer step would get.
    best_sim: dict[str, list[float]] = {"fact": [], "absent": []}
    for q in questions:
        hits = retriever.search(q.question, k=default.sources_per_answer, mode="hybrid", rerank=False).hits
        best_sim[q.kind].append(max((h.similarity or 0.0) for h in hits) if hits else 0.0)
    candidates = sorted({round(x, 2) for xs in best_sim.values() for x in xs} | {default.min_relevance})
    table = []
    for t in candidates:
        kept = sum(x >= t for x in best_sim["fact"])
        declined = sum(x < t for x in best_sim["absent"])
        table.append({"threshold": t, "facts_kept": kept, "absent_declined": declined})
    best_t = max(table, key=lambda r: (r["facts_kept"] + r["absent_declined"], -r["threshold"]))
    out["threshold"] = {
        "best_similarity": {k: [round(x, 3) for x in v] for k, v in best_sim.items()},
        "table": table,
        "chosen": best_t,
        "n_fact": len(best_sim["fact"]), "n_absent": len(best_sim["absent"]),
    }
    lib.close()
    tmp.cleanup()
    out["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: out[k] for k in ("chosen_chunking", "chosen_fusion")} | {"threshold": best_t}, indent=1))


if __name__ == "__main__":
    main()
