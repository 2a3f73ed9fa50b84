"""Choose the retrieval and decline constants on both development sets, and show
what each set alone would have chosen (a leave-one-set-out view).

    .venv/bin/python bench/tune.py [--out bench/tune.json] [--readme README.md]

Each set's corpus is ingested once with the shipped chunking, into
``.cache/tune/<set>`` (reused when present; ``--fresh`` rebuilds it), and
every setting is scored through the app's own ``Retriever`` and
``relevance`` code with ``app.core.evaluate``'s scorer. Nothing here knows a
question.

Constants and what each is judged on, per set (page level where the set has
pages):

- ``RRF_K``, ``KEYWORD_WEIGHT`` (fusion) and ``MERGE_CHARS`` (one source per
  page): hybrid recall@5, then MRR@10;
- ``MIN_RELEVANCE`` and ``FOREIGN_SIMILARITY`` (declining): absent questions
  declined, among the settings that still answer at least 48 of 50 fact
  questions on the set.

Rule: the value whose worse set is best (the smaller of the two sets' scores
relative to each set's own best), ties to the value already shipped; a new
value must not score below the shipped one on either set.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings, enforce_offline  # noqa: E402

enforce_offline()

from app import config  # noqa: E402
from app.core import evaluate as ev  # noqa: E402
from app.core.answering import relevance, retrieval  # noqa: E402
from app.core.library import Library  # noqa: E402
from bench.devset import SETS  # noqa: E402
from tools.readme import replace_section  # noqa: E402

RRF_KS = (10, 30, 60)
KEYWORD_WEIGHTS = (0.5, 1.0, 1.5, 2.0)
MERGE_CHARS: tuple[int | None, ...] = (None, 0, 1200, 2400, 4000)
MIN_RELEVANCES = tuple(round(0.30 + 0.01 * i, 2) for i in range(21))
# 0.0: the term check never declines (as before it existed).
FOREIGN_SIMILARITIES = (0.0,) + tuple(round(0.40 + 0.05 * i, 2) for i in range(9))
MIN_ANSWERED = 48  # of 50 fact questions, the floor
# What shipped before both sets were used (tuned on pydocs alone; no term
# check): a chosen value may not score below these on either set.
BEFORE: dict[str, Any] = {"rrf_k": 30, "keyword_weight": 2.0, "merge_chars": None,
                          "min_relevance": 0.39, "foreign_similarity": 0.0}


def open_set(name: str, work_root: Path, fresh: bool) -> tuple[Library, list[ev.Question], Path]:
    """The set's library (ingested on first use), questions and corpus root."""
    dev = SETS[name]
    questions = ev.load_questions(dev.questions)
    corpus = ev.corpus_for(dev.questions, dev.docs)
    work = work_root / name
    if fresh and work.exists():
        import shutil

        shutil.rmtree(work)
    lib = Library(work, settings=Settings(), purpose="tune")
    lib.recover()
    if lib.catalog.indexed_chunk_count() == 0:
        print(f"{name}: ingesting {len(corpus.files)} files…", file=sys.stderr, flush=True)
        lib.indexer.ingest(corpus.files)
    return lib, questions, corpus.root


def retrieval_score(lib: Library, questions: Sequence[ev.Question], root: Path) -> dict[str, Any]:
    """Hybrid recall@5 and MRR@10, at page level where the set names pages."""
    scores, _ = ev.score_retrieval(
        lambda q, n: lib.retriever.search(q, k=n, mode="hybrid", rerank=False).hits, questions, root)
    paged = scores.get("page_recall_at_5")
    if paged:
        return {"recall_at_5": paged["hits"], "mrr_at_10": scores["page_mrr_at_10"]["value"], "level": "page"}
    return {"recall_at_5": scores["recall_at_5"]["hits"], "mrr_at_10": scores["mrr_at_10"]["value"], "level": "file"}


def choose(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], float], shipped: dict[str, Any],
           names: Sequence[str], params: Sequence[str], current: dict[str, Any]) -> dict[str, Any]:
    """The leave-one-set-out view of one grid: each set's own choice, the joint
    choice, and what the joint choice costs each set against its own.

    Args:
        shipped: the values before (a choice may not score below them on either set).
        current: the values in the code now (they win ties).
    """

    def value(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[p] for p in params)

    shipped_row = next(r for r in rows if value(r) == tuple(shipped[p] for p in params))
    now = tuple(current[p] for p in params)
    best = {n: max(rows, key=lambda r, n=n: (key(r[n]), value(r) == now)) for n in names}

    def worst_share(row: dict[str, Any]) -> float:
        return min(key(row[n]) / key(best[n][n]) if key(best[n][n]) else 1.0 for n in names)

    allowed = [r for r in rows if all(key(r[n]) >= key(shipped_row[n]) for n in names)] or [shipped_row]
    joint = max(allowed, key=lambda r: (worst_share(r), sum(key(r[n]) for n in names), value(r) == now))
    return {
        "params": list(params),
        "shipped": {p: shipped[p] for p in params},
        "chosen": {p: joint[p] for p in params},
        "alone": {n: {p: best[n][p] for p in params} for n in names},
        "chosen_scores": {n: joint[n] for n in names},
        "alone_scores": {n: best[n][n] for n in names},
        "rows": rows,
    }


def retrieval_key(score: dict[str, Any]) -> float:
    return score["recall_at_5"] + score["mrr_at_10"]  # recall first (whole questions), MRR breaks ties


def decline_key(score: dict[str, Any]) -> float:
    # Absent questions declined, only where enough facts stay answered.
    return score["absent_declined"] + (0 if score["facts_answered"] >= MIN_ANSWERED else -100) \
        + score["facts_answered"] / 100


def decline_signals(lib: Library, questions: Sequence[ev.Question]) -> list[dict[str, Any]]:
    """Per question: the best similarity of the passages the answer step gets,
    and the question's terms the library never uses."""
    rows = []
    embedder = lib.embedder
    for q in questions:
        best = lib.retriever.search(q.question, k=lib.settings.sources_per_answer, mode="hybrid",
                                    rerank=False).best_similarity
        missing = relevance.missing_terms(q.question, lib.catalog.has_term,
                                          lambda t: len(embedder.token_spans(t)) == 1)
        rows.append({"id": q.id, "kind": q.kind, "best_similarity": round(best, 4), "missing_terms": list(missing)})
    return rows


def decline_outcome(signals: list[dict[str, Any]], min_relevance: float, foreign: float) -> dict[str, int]:
    answered = declined = 0
    for s in signals:
        out = s["best_similarity"] < min_relevance or (bool(s["missing_terms"]) and s["best_similarity"] < foreign)
        if s["kind"] == "fact":
            answered += not out
        else:
            declined += out
    return {"facts_answered": answered, "absent_declined": declined,
            "n_fact": sum(s["kind"] == "fact" for s in signals), "n_absent": sum(s["kind"] == "absent" for s in signals)}


def decline_grid(signals: dict[str, list[dict[str, Any]]], names: Sequence[str], shipped: dict[str, Any],
                 current: dict[str, Any]) -> dict[str, Any]:
    """Every pair of decline constants, scored per set from the questions' signals."""
    rows = [{"min_relevance": t, "foreign_similarity": f, **{n: decline_outcome(signals[n], t, f) for n in names}}
            for t, f in itertools.product(MIN_RELEVANCES, FOREIGN_SIMILARITIES)]
    return choose(rows, decline_key, shipped, names, ("min_relevance", "foreign_similarity"), current)


def summary(out: dict[str, Any]) -> str:
    """The README's tuning table (between <!-- tune:start/end -->)."""
    names = out["sets"]
    lines = ["| Constant | shipped before | " + " | ".join(f"{n} alone would choose" for n in names)
             + " | chosen | cost of the choice: " + " / ".join(names) + " |",
             "|---|---|" + "---|" * len(names) + "---|---|"]

    def show(v: dict[str, Any]) -> str:
        return ", ".join(f"{k} = {x}" for k, x in v.items())

    def cost(c: dict[str, Any], fmt: Callable[[dict[str, Any]], str]) -> str:
        return " / ".join(f"{fmt(c['chosen_scores'][n])} vs {fmt(c['alone_scores'][n])}" for n in names)

    def rfmt(s: dict[str, Any]) -> str:
        return f"{s['recall_at_5']}/50 · {s['mrr_at_10']:.3f}"

    def dfmt(s: dict[str, Any]) -> str:
        return f"{s['absent_declined']}/{s['n_absent']} declined, {s['facts_answered']}/{s['n_fact']} answered"

    for label, c, fmt in (("Fusion (RRF)", out["fusion"], rfmt), ("One source per page", out["merge"], rfmt),
                          ("Declining", out["decline"], dfmt)):
        lines.append(f"| {label} | {show(c['shipped'])} | " + " | ".join(show(c["alone"][n]) for n in names)
                     + f" | **{show(c['chosen'])}** | {cost(c, fmt)} |")
    return "\n".join(lines) + (
        "\n\nRetrieval cells: hybrid recall@5 · MRR@10 (pdfdocs at page level, pydocs at file level), the "
        "chosen value's against the set's own best. Declining cells: absent questions declined and fact "
        "questions still answered, before the model is asked (it may still decline). "
        f"Every grid row is in `bench/tune.json` ({out['seconds']:.0f} s).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "tune.json")
    parser.add_argument("--readme", type=Path, default=None, help="rewrite the tune table in this README")
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "tune", help="the sets' indexes")
    parser.add_argument("--fresh", action="store_true", help="re-ingest the sets' corpora")
    parser.add_argument("--summarise", type=Path, default=None, metavar="JSON",
                        help="only rewrite the README from an earlier run's results")
    args = parser.parse_args()
    if args.summarise:
        replace_section(args.readme or ROOT / "README.md", "tune",
                        summary(json.loads(args.summarise.read_text(encoding="utf-8"))))
        return
    started = time.perf_counter()
    names = list(SETS)
    opened = {n: open_set(n, args.work, args.fresh) for n in names}
    R = retrieval.Retriever
    shipped = dict(BEFORE)
    current = {"rrf_k": R.rrf_k, "keyword_weight": R.keyword_weight, "merge_chars": R.merge_chars,
               "min_relevance": config.MIN_RELEVANCE, "foreign_similarity": relevance.FOREIGN_SIMILARITY}

    def grid(settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for s in settings:
            row = dict(s)
            for n, (lib, qs, root) in opened.items():
                for attr, v in s.items():
                    setattr(lib.retriever, attr, v)
                row[n] = retrieval_score(lib, qs, root)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
        for lib, _, _ in opened.values():  # back to the code's values
            for attr in ("rrf_k", "keyword_weight", "merge_chars"):
                setattr(lib.retriever, attr, getattr(R, attr))
        return rows

    fusion = choose(grid([{"rrf_k": k, "keyword_weight": w} for k, w in itertools.product(RRF_KS, KEYWORD_WEIGHTS)]),
                    retrieval_key, shipped, names, ("rrf_k", "keyword_weight"), current)
    for lib, _, _ in opened.values():
        lib.retriever.rrf_k, lib.retriever.keyword_weight = fusion["chosen"]["rrf_k"], fusion["chosen"]["keyword_weight"]
    merge = choose(grid([{"merge_chars": m, **fusion["chosen"]} for m in MERGE_CHARS]),
                   retrieval_key, {**shipped, **fusion["chosen"]}, names, ("merge_chars",), current)
    for lib, _, _ in opened.values():
        lib.retriever.merge_chars = merge["chosen"]["merge_chars"]
    signals = {n: decline_signals(lib, qs) for n, (lib, qs, _) in opened.items()}
    decline = decline_grid(signals, names, shipped, current)
    out = {"date": ev.now_iso(), "sets": names, "fusion": fusion, "merge": merge, "decline": decline,
           "signals": signals, "seconds": round(time.perf_counter() - started, 1)}
    for lib, _, _ in opened.values():
        lib.close()
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    if args.readme:
        replace_section(args.readme, "tune", summary(out))
    print(json.dumps({k: out[k]["chosen"] for k in ("fusion", "merge", "decline")}, indent=1))


if __name__ == "__main__":
    main()
