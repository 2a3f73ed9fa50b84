"""Train a small cross-encoder reranker for Docent, offline, in a few CPU minutes.

    .venv/bin/python bench/reranker_train.py OUT_DIR [--minutes 6] [--threads 2]

Then choose OUT_DIR in Settings → Answers → Reranker (or set
``reranker_path`` in the data folder's settings.json).

What it does:

1. Mines self-supervised (query, passage) pairs from the Python standard
   library reference (``/usr/share/doc/python3.11/html/library/``, Debian
   package python3.11-doc), read with Docent's own HTML loader. Each section
   gives up to two queries: its heading (generic ones such as "Examples" are
   skipped), and its first sentence, which is then removed from the passage so
   the pair cannot be matched by copying. The passage is the section's text up
   to about one chunk (200 word pieces, as Docent indexes).
   The library reference is deliberately *not* the evaluation corpus
   (the tutorial, howto and faq pages): the model must not have seen it.
2. Hard negatives: for every query, passages that BM25 (SQLite FTS5, as
   Docent's keyword search) ranks highest among the *other* sections.
3. Trains the bundled all-MiniLM-L6-v2, with a fresh one-score head, as a
   cross-encoder: each query's positive against its negatives, with a
   listwise (softmax cross-entropy) loss, until the time budget is spent.
4. Scores held-out documents' queries (whole files held out) before saving:
   mean reciprocal rank of the right passage among it and its BM25 negatives,
   for BM25 itself, the bi-encoder (the first stage's vector side) and the
   trained cross-encoder, and writes those numbers next to the model
   (``OUT_DIR/training.json``).

The folder it writes is a sentence-transformers ``CrossEncoder`` (loaded back
and checked with Docent's own ``Reranker`` before the script ends).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import bundled_embedding_model, enforce_offline  # noqa: E402

enforce_offline()

DEFAULT_DOCS = Path("/usr/share/doc/python3.11/html/library")
PASSAGE_CHARS = 900  # about 200 word pieces: one Docent chunk
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`\"'])")
_WORD = re.compile(r"\w+")


@dataclass
class Section:
    doc: str  # the file it comes from (held out by file)
    heading: str
    passage: str
    first_sentence: str | None
    rest: str  # the passage without its first sentence


@dataclass
class Example:
    query: str
    positive: str
    negatives: list[str]
    doc: str


def _clean_heading(heading: str) -> str:
    # Sphinx headings end with a pilcrow permalink and often start with a section number.
    heading = heading.replace("¶", " ").strip()
    heading = re.sub(r"^\d+(\.\d+)*\.?\s+", "", heading)
    return " ".join(heading.split())


def mine_sections(folder: Path, limit_files: int | None = None) -> list[Section]:
    """Every section of every HTML page under ``folder``, read as Docent reads HTML."""
    from app.core import documents
    from app.errors import DocentError

    sections: list[Section] = []
    files = sorted(folder.glob("*.html"))
    if limit_files:
        files = files[:limit_files]
    for path in files:
        try:
            doc = documents.load(path)
        except DocentError:
            continue
        for page in doc.pages:
            heads = list(page.headings)
            for i, (offset, heading) in enumerate(heads):
                end = heads[i + 1][0] if i + 1 < len(heads) else len(page.text)
                body = page.text[offset:end]
                # The heading's own line opens the section's text.
                first_line, _, body = body.partition("\n")
                body = " ".join(body.split())
                if len(body) < 120:
                    continue  # a heading followed directly by a sub-heading
                passage = body[:PASSAGE_CHARS].rsplit(" ", 1)[0]
                parts = _SENTENCE_END.split(passage, maxsplit=1)
                first = parts[0] if len(parts) == 2 and 6 <= len(_WORD.findall(parts[0])) <= 40 else None
                rest = parts[1] if first else passage
                sections.append(Section(path.name, _clean_heading(heading or first_line), passage, first, rest))
    return sections


class BM25:
    """Keyword search over the passages with SQLite FTS5 (Docent's keyword side)."""

    def __init__(self, passages: list[str]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE p USING fts5(text)")
        self.db.executemany("INSERT INTO p(rowid, text) VALUES (?, ?)", enumerate(passages))

    def search(self, query: str, k: int) -> list[int]:
        terms = {w.lower() for w in _WORD.findall(query) if len(w) > 1}
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in sorted(terms))
        rows = self.db.execute(
            "SELECT rowid FROM p WHERE p MATCH ? ORDER BY bm25(p) LIMIT ?", (match, k)
        ).fetchall()
        return [r[0] for r in rows]


def build_examples(sections: list[Section], negatives: int, rng: random.Random) -> list[Example]:
    """Queries (headings, first sentences) with their passage and BM25 hard negatives."""
    heading_counts = Counter(s.heading.lower() for s in sections)
    passages = [s.passage for s in sections]
    bm25 = BM25(passages)
    examples: list[Example] = []
    for i, s in enumerate(sections):
        queries: list[tuple[str, str]] = []
        # A heading that names many sections ("Examples", "Notes") says nothing about one.
        if heading_counts[s.heading.lower()] <= 2 and len(_WORD.findall(s.heading)) >= 1:
            queries.append((s.heading, s.passage))
        if s.first_sentence:
            queries.append((s.first_sentence, s.rest))
        for query, positive in queries:
            ranked = [j for j in bm25.search(query, 4 * negatives + 4) if j != i
                      and sections[j].passage != s.passage]
            if len(ranked) < negatives:
                continue
            # The very top BM25 hits are often near-copies that really answer the
            # query too; sampling from a few more ranks keeps the negatives hard but fair.
            pick = rng.sample(ranked[: 3 * negatives], negatives)
            examples.append(Example(query, positive, [passages[j] for j in pick], s.doc))
    return examples


def mrr(groups_scores: list[list[float]]) -> float:
    """Mean reciprocal rank of item 0 (the positive) in each group, by descending score."""
    total = 0.0
    for scores in groups_scores:
        rank = 1 + sum(1 for s in scores[1:] if s > scores[0])
        total += 1.0 / rank
    return total / max(1, len(groups_scores))


def main(argv: list[str] | None = None) -> int:
    """Mine, train within the time budget, evaluate on held-out files, save."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write the cross-encoder to")
    ap.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="HTML pages to mine (default: %(default)s)")
    ap.add_argument("--minutes", type=float, default=6.0, help="whole run's time budget (default 6)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    ap.add_argument("--negatives", type=int, default=3, help="hard negatives per query (default 3)")
    ap.add_argument("--batch", type=int, default=8, help="queries per step (default 8)")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=160, help="word pieces per pair (default 160)")
    ap.add_argument("--freeze-layers", type=int, default=2,
                    help="lowest encoder layers kept as they are, with the word embeddings (default 2): "
                         "a cheaper backward pass, so more steps fit the budget")
    ap.add_argument("--eval-queries", type=int, default=120, help="held-out queries scored (default 120)")
    ap.add_argument("--limit-files", type=int, default=None, help="mine only the first N pages (smoke tests)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)

    started = time.perf_counter()
    deadline = started + args.minutes * 60
    if not args.docs.is_dir():
        print(f"{args.docs} does not exist: install the python3.11-doc package, or pass --docs.",
              file=sys.stderr)
        return 1
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    sections = mine_sections(args.docs, args.limit_files)
    examples = build_examples(sections, args.negatives, rng)
    docs = sorted({e.doc for e in examples})
    rng.shuffle(docs)
    held = set(docs[: max(1, len(docs) // 10)])  # whole files held out: unseen text at evaluation
    train = [e for e in examples if e.doc not in held]
    test = [e for e in examples if e.doc in held]
    rng.shuffle(train)
    rng.shuffle(test)
    test = test[: args.eval_queries]
    mined_s = time.perf_counter() - started
    print(f"mined {len(sections)} sections from {len(set(s.doc for s in sections))} pages: "
          f"{len(train)} training and {len(test)} held-out queries ({mined_s:.0f} s)", file=sys.stderr)

    base = bundled_embedding_model()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1, local_files_only=True)

    def scores(pairs: list[tuple[str, str]], batch: int = 32) -> list[float]:
        model.eval()
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(pairs), batch):
                q, p = zip(*pairs[i : i + batch])
                enc = tokenizer(list(q), list(p), truncation="only_second", max_length=args.max_length,
                                padding=True, return_tensors="pt")
                out += model(**enc).logits[:, 0].tolist()
        return out

    def group_scores(score_fn) -> list[list[float]]:  # noqa: ANN001
        flat = [(e.query, p) for e in test for p in [e.positive, *e.negatives]]
        s = score_fn(flat)
        n = 1 + args.negatives
        return [s[i : i + n] for i in range(0, len(s), n)]

    # Leave time at the end for the held-out scoring and saving (measured on a few pairs).
    t = time.perf_counter()
    scores([(e.query, e.positive) for e in test[:8]])
    per_pair = (time.perf_counter() - t) / max(1, min(8, len(test)))
    reserve = per_pair * len(test) * (1 + args.negatives) + 20

    # The lower layers' general language knowledge needs no change for this
    # task; not training them makes each step cheaper on a CPU.
    frozen = [model.bert.embeddings, *model.bert.encoder.layer[: args.freeze_layers]]
    for module in frozen:
        for param in module.parameters():
            param.requires_grad = False
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    # The rough step count the budget allows, for the warm-up and linear decay.
    steps_planned = max(10, int((deadline - reserve - time.perf_counter()) / max(per_pair * 3, 1e-3)
                                / (args.batch * (1 + args.negatives))))
    warmup = max(1, steps_planned // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.05, 1 - s / steps_planned)))
    loss_fn = torch.nn.CrossEntropyLoss()
    step, seen, losses = 0, 0, []
    while time.perf_counter() < deadline - reserve and train:
        batch = [train[(seen + i) % len(train)] for i in range(args.batch)]
        seen += args.batch
        q = [e.query for e in batch for _ in range(1 + args.negatives)]
        p = [x for e in batch for x in [e.positive, *e.negatives]]
        enc = tokenizer(q, p, truncation="only_second", max_length=args.max_length,
                        padding=True, return_tensors="pt")
        model.train()
        logits = model(**enc).logits.view(len(batch), 1 + args.negatives)
        # Listwise: the positive (column 0) against its own hard negatives.
        loss = loss_fn(logits, torch.zeros(len(batch), dtype=torch.long))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optim.step()
        sched.step()
        optim.zero_grad()
        losses.append(loss.item())
        step += 1
        if step % 10 == 0:
            print(f"step {step}: loss {sum(losses[-10:]) / 10:.3f} (chance {math.log(1 + args.negatives):.3f}) "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    train_s = time.perf_counter() - started - mined_s

    # Held-out scores: BM25's own order, the bi-encoder's, the trained cross-encoder's.
    # The negatives were sampled from BM25's top ranks, so BM25 is scored on its real order.
    bm25 = BM25([x for e in test for x in [e.positive, *e.negatives]])
    bm25_groups = []
    n = 1 + args.negatives
    for gi, e in enumerate(test):
        order = [j - gi * n for j in bm25.search(e.query, 10 * n) if gi * n <= j < (gi + 1) * n]
        ranks = {j: r for r, j in enumerate(order)}
        bm25_groups.append([-float(ranks.get(j, n)) for j in range(n)])
    from sentence_transformers import SentenceTransformer

    bi = SentenceTransformer(str(base), local_files_only=True)

    def bi_scores(pairs: list[tuple[str, str]]) -> list[float]:
        qv = bi.encode([q for q, _ in pairs], normalize_embeddings=True, batch_size=64)
        pv = bi.encode([p for _, p in pairs], normalize_embeddings=True, batch_size=64)
        return [float(a @ b) for a, b in zip(qv, pv)]

    results = {
        "docs": str(args.docs),
        "sections": len(sections),
        "train_queries": len(train),
        "held_out_queries": len(test),
        "held_out_files": len(held),
        "negatives_per_query": args.negatives,
        "steps": step,
        "queries_seen": seen,
        "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4) if losses else None,
        "threads": args.threads,
        "max_length": args.max_length,
        "frozen_layers": args.freeze_layers,
        "mine_s": round(mined_s, 1),
        "train_s": round(train_s, 1),
        "held_out_mrr": {
            "bm25": round(mrr(bm25_groups), 4),
            "bi_encoder": round(mrr(group_scores(bi_scores)), 4),
            "cross_encoder": round(mrr(group_scores(scores)), 4),
        },
    }

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out))
    tokenizer.save_pretrained(str(args.out))
    # Load it back as sentence-transformers does and save again, so the folder
    # carries the CrossEncoder's own description (and its sigmoid activation).
    from sentence_transformers import CrossEncoder

    CrossEncoder(str(args.out), local_files_only=True, max_length=args.max_length).save(str(args.out))
    from app.core.answering.rerank import Reranker

    check = Reranker(args.out, backend="torch")  # loads as sentence-transformers does
    assert len(check.score("json", ["The json module encodes objects."])) == 1
    results["total_s"] = round(time.perf_counter() - started, 1)
    (args.out / "training.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
