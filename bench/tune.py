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
from tools.readme import replace_section  # noqa: E402
from app.core.answering.retrieval import Retriever  # noqa: E402

from bench.devset import DOCS, EVAL  # noqa: E402

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


def choose_threshold(best_sim: dict[str, list[float]], current: float) -> tuple[list[dict], dict]:
    """The relevance threshold that keeps the most fact questions and declines
    the most absent ones; of the thresholds that tie, the middle of their
    range (rounded to the settings' two decimals), so that it sits as far as
    the data allows from the nearest question on either side."""
    candidates = sorted({round(x, 2) for xs in best_sim.values() for x in xs} | {current})
    table = []
    for t in candidates:
        kept = sum(x >= t for x in best_sim["fact"])
        declined = sum(x < t for x in best_sim["absent"])
        table.append({"threshold": t, "facts_kept": kept, "absent_declined": declined})
    top = max(r["facts_kept"] + r["absent_declined"] for r in table)
    tied = [r["threshold"] for r in table if r["facts_kept"] + r["absent_declined"] == top]
    middle = round((min(tied) + max(tied)) / 2, 2)
    kept = sum(x >= middle for x in best_sim["fact"])
    declined = sum(x < middle for x in best_sim["absent"])
    return table, {"threshold": middle, "facts_kept": kept, "absent_declined": declined, "tied_range": [min(tied), max(tied)]}


def summary(out: dict) -> str:
    """The README's account of a tuning run (between <!-- tune:start/end -->)."""
    lines = ["| chunk tokens | overlap | chunks | vector r@5 / MRR | keyword r@5 / MRR | hybrid r@5 / MRR |",
             "|---|---|---|---|---|---|"]
    chosen = out["chosen_chunking"]
    nf = out["threshold"]["n_fact"]
    for r in out["chunking"]:
        mark = " **(chosen)**" if (r["chunk_tokens"], r["chunk_overlap"]) == (
            chosen["chunk_tokens"], chosen["chunk_overlap"]) else ""
        cells = [f"{r[m]['recall_at_5']}/{nf} · {r[m]['mrr_at_10']:.3f}" for m in ("vector", "keyword", "hybrid")]
        lines.append(f"| {r['chunk_tokens']}{mark} | {r['chunk_overlap']} | {r['chunks']} | " + " | ".join(cells) + " |")
    f = out["chosen_fusion"]
    best = max(out["fusion"], key=lambda r: (r["recall_at_5"], r["mrr_at_10"]))
    worst = min(out["fusion"], key=lambda r: (r["recall_at_5"], r["mrr_at_10"]))
    chosen_row = next(r for r in out["fusion"] if r["rrf_k"] == f["rrf_k"] and r["keyword_weight"] == f["keyword_weight"])
    t = out["threshold"]
    c = t["chosen"]
    return "\n".join(lines) + (
        "\n\nChunking was measured with plain RRF (k = 60, equal weights); the fusion was then tuned "
        "on the chosen chunking."
        f"\n\nFusion (hybrid, {len(out['fusion'])} settings of the RRF constant and the keyword ranking's "
        f"weight against the vector ranking's): chosen k = {f['rrf_k']}, keyword weight "
        f"{f['keyword_weight']} ({chosen_row['recall_at_5']}/{nf}, MRR@10 {chosen_row['mrr_at_10']:.3f}); "
        f"the range was {worst['recall_at_5']}/{nf} · {worst['mrr_at_10']:.3f} to "
        f"{best['recall_at_5']}/{nf} · {best['mrr_at_10']:.3f}.\n\n"
        f"Relevance threshold (the best passage's cosine similarity): {c['threshold']} keeps "
        f"{c['facts_kept']}/{t['n_fact']} answerable questions and declines {c['absent_declined']}/{t['n_absent']} "
        f"absent ones before the model is asked (of the thresholds that tie, the middle of their range: "
        f"{t['chosen'].get('tied_range')}); the rest go to the model, which may still decline.")


def write_readme(readme: Path, out: dict) -> None:
    """Replace the text between the tune markers, if the README has them."""
    replace_section(readme, "tune", summary(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "tune.json")
    parser.add_argument("--quick", action="store_true", help="two chunk sizes only (a smoke run)")
    parser.add_argument("--readme", type=Path, default=None, help="rewrite the tune table in this README")
    parser.add_argument("--summarise", type=Path, default=None, metavar="JSON",
                        help="only rewrite the README from an earlier run's results")
    args = parser.parse_args()
    if args.summarise:
        write_readme(args.readme or ROOT / "README.md", json.loads(args.summarise.read_text(encoding="utf-8")))
        return
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
    table, best_t = choose_threshold(best_sim, default.min_relevance)
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
    if args.readme:
        write_readme(args.readme, out)
    print(json.dumps({k: out[k] for k in ("chosen_chunking", "chosen_fusion")} | {"threshold": best_t}, indent=1))


if __name__ == "__main__":
    main()
