"""Answer-quality evaluation over a question set: ``docent eval``.

A question set is a JSON Lines file (the format of ``../shared/eval``)::

    {"id": "py01", "question": "...", "file": "tutorial/appendix.html",
     "keywords": ["PYTHONSTARTUP"], "kind": "fact"}

with ``kind`` ``fact`` (answerable from ``file``, a path relative to the
documents folder) or ``absent`` (nothing in the corpus answers it). A fact
question may also name ``pages`` (1-based page numbers of ``file``) for
page-level scoring.

The harness runs the app's own code: a :class:`~app.core.library.Library`
ingests exactly the corpus the set's README names, ``Retriever.search`` is
scored for retrieval and ``Answerer.ask`` for answers, in each retrieval mode.
Nothing here knows any particular question.

Metrics (denominators are reported beside each):

- recall@5: share of fact questions with a chunk of ``file`` in the top 5;
- MRR@10: mean of 1/rank of the first such chunk in the top 10 (0 if none);
- the same at page level for questions that name ``pages``;
- keyword-hit rate: share of fact answers containing every keyword
  (case-insensitive substring);
- citation correctness: share of fact answers citing a chunk of ``file``;
- decline rate: share of absent questions the assistant declines. A decline
  is detected one way for every run: the answer's ``declined`` flag, which
  the app sets when nothing relevant was retrieved or the model said it
  could not find the answer (``answer.DECLINE_TEXT`` and its variants).

A declined fact question is a miss for both answer metrics.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import Cancelled, UsageError

if TYPE_CHECKING:
    from app.config import Settings
    from app.core.ingest.report import Progress


#: Retrieval modes, as the window and ``docent ask`` name them; the last
#: one only runs when a reranker is configured.
EVAL_MODES = ("vector", "keyword", "hybrid", "hybrid+reranker")


@dataclass(frozen=True)
class Question:
    """One line of a question set."""

    id: str
    question: str
    kind: str
    file: str | None
    keywords: tuple[str, ...]
    pages: tuple[int, ...] = ()


def load_questions(path: Path) -> list[Question]:
    """Read and check a question set; a bad line is a usage error naming it."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"Cannot read the question set {path}: {exc.strerror or exc}.") from exc
    out: list[Question] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            kind = str(row["kind"])
            if kind not in ("fact", "absent"):
                raise ValueError(f'kind must be "fact" or "absent", not {kind!r}')
            file = row.get("file")
            if kind == "fact" and not file:
                raise ValueError("a fact question needs a file")
            pages = row.get("pages") or ([row["page"]] if row.get("page") else [])
            out.append(Question(str(row["id"]), str(row["question"]), kind, file,
                                tuple(str(k) for k in row.get("keywords") or ()),
                                tuple(int(p) for p in pages)))
        except (KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"{path}, line {no}: not a question ({exc}).") from exc
    if not out:
        raise UsageError(f"{path} holds no questions.")
    return out


# --- the corpus ----------------------------------------------------------------

_FOLDER_LINE = re.compile(r"^\s*[-*]\s*`([^`]+?)/?`\s*:\s*(\d+)\s+files?", re.MULTILINE)
_EXTENSION = re.compile(r"every\s+`?(\.[A-Za-z0-9]+)`?\s+file", re.IGNORECASE)


@dataclass
class Corpus:
    """The documents a question set is about."""

    root: Path
    files: list[Path]
    # (folder, files the README promises, files found) when the README names them
    expected: list[tuple[str, int, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), "files": len(self.files),
                "folders": [{"folder": f, "expected": e, "found": n} for f, e, n in self.expected]}


def corpus_for(questions_path: Path, docs: Path) -> Corpus:
    """Exactly the files the set's README names under ``docs``.

    The README lists its folders as bullet lines (```tutorial/`: 17 files``)
    and the file type (``every `.html` file``). Without a README (or without
    such lines) the corpus is every file under ``docs``. A folder whose file
    count differs from the README's is an error: the numbers would not be
    comparable.
    """
    docs = Path(docs).expanduser().resolve()
    if not docs.is_dir():
        raise UsageError(f"The documents folder {docs} does not exist. "
                         "(For the pydocs set: apt-get install python3.11-doc.)")
    readme = Path(questions_path).with_name("README.md")
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    folders = [(m.group(1).strip("/"), int(m.group(2))) for m in _FOLDER_LINE.finditer(text)]
    ext = (m.group(1).lower() if (m := _EXTENSION.search(text)) else None)
    if not folders:
        files = sorted(p for p in docs.rglob("*") if p.is_file() and (ext is None or p.suffix.lower() == ext))
        return Corpus(docs, files)
    files: list[Path] = []
    expected: list[tuple[str, int, int]] = []
    for folder, count in folders:
        found = sorted(p for p in (docs / folder).glob("*")
                       if p.is_file() and (ext is None or p.suffix.lower() == ext))
        expected.append((folder, count, len(found)))
        files += found
    wrong = [f"{f}/ has {n} files, the README says {e}" for f, e, n in expected if e != n]
    if wrong:
        raise UsageError(f"The documents under {docs} are not the set's corpus: {'; '.join(wrong)}.")
    return Corpus(docs, files, expected)


# --- scoring -------------------------------------------------------------------


def _is_file(path: str, target: Path) -> bool:
    return Path(path).resolve() == target


def first_rank(hits: Sequence[Any], target: Path, pages: Sequence[int] = ()) -> int | None:
    """1-based rank of the first hit from ``target`` (on one of ``pages``, when given)."""
    for i, hit in enumerate(hits, 1):
        chunk = hit.chunk
        if _is_file(chunk.path, target) and (not pages or chunk.page in pages):
            return i
    return None


def keyword_hit(answer: str, keywords: Sequence[str]) -> bool:
    """Every keyword appears in the answer (case-insensitive substring)."""
    low = answer.lower()
    return bool(keywords) and all(k.lower() in low for k in keywords)


def _rate(hits: int, n: int) -> dict[str, Any]:
    return {"rate": round(hits / n, 3) if n else None, "hits": hits, "n": n}


@dataclass
class ModeResult:
    """Every metric for one retrieval mode, with each question's outcome."""

    mode: str
    retrieval: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    per_question: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "retrieval": self.retrieval, "answers": self.answers,
                "per_question": self.per_question}


def score_retrieval(
    search: Callable[[str, int], Sequence[Any]], questions: Sequence[Question], root: Path
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """recall@5 and MRR@10 (file level; page level where pages are named).

    Args:
        search: ``(query, k) -> hits`` in rank order.
    """
    facts = [q for q in questions if q.kind == "fact"]
    at5 = rr = 0.0
    paged = [q for q in facts if q.pages]
    p_at5 = p_rr = 0.0
    per: dict[str, dict[str, Any]] = {}
    for q in facts:
        target = (root / str(q.file)).resolve()
        hits = list(search(q.question, 10))
        rank = first_rank(hits, target)
        at5 += 1 if rank is not None and rank <= 5 else 0
        rr += 1 / rank if rank is not None else 0.0
        row: dict[str, Any] = {"rank": rank}
        if q.pages:
            prank = first_rank(hits, target, q.pages)
            p_at5 += 1 if prank is not None and prank <= 5 else 0
            p_rr += 1 / prank if prank is not None else 0.0
            row["page_rank"] = prank
        per[q.id] = row
    n = len(facts)
    out: dict[str, Any] = {
        "recall_at_5": _rate(int(at5), n),
        "mrr_at_10": {"value": round(rr / n, 3) if n else None, "n": n},
    }
    if paged:
        out["page_recall_at_5"] = _rate(int(p_at5), len(paged))
        out["page_mrr_at_10"] = {"value": round(p_rr / len(paged), 3), "n": len(paged)}
    else:
        out["page_recall_at_5"] = None
        out["page_mrr_at_10"] = None
    return out, per


def _cites_right_place(answer: Any, target: Path, pages: Sequence[int]) -> bool:
    """A citation on ``target`` (on one of ``pages``, when the question names them)."""
    return any(_is_file(c.source.hit.chunk.path, target) and (not pages or c.source.hit.chunk.page in pages)
               for c in answer.citations)


def score_answers(
    ask: Callable[[str], Any], questions: Sequence[Question], root: Path,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Keyword hits, citation correctness and sentence support on facts, decline rate on absents.

    Keyword hits are counted twice: in the model's answer alone, and in the
    answer together with its supporting quotes (what the user reads under it).
    A citation is right when it is on the question's file and, for a question
    that names pages, on one of them. The unsupported rate is over every
    checked sentence of the answered fact questions.

    Args:
        ask: ``question -> Answer`` (the app's own answer object).
        should_stop: checked between questions; raises ``Cancelled`` when set
            (a partial set's rates would not be comparable).
    """
    kw = kw_quote = cited = fact_declined = declined = 0
    checked = unsupported = wording = 0
    facts = [q for q in questions if q.kind == "fact"]
    absents = [q for q in questions if q.kind == "absent"]
    per: dict[str, dict[str, Any]] = {}
    for i, q in enumerate(questions, 1):
        if should_stop is not None and should_stop():
            raise Cancelled("The evaluation was stopped; no results were written.")
        answer = ask(q.question)
        quotes = [x.text for x in getattr(answer, "quotes", [])]
        sentences = list(getattr(answer, "sentences", []))
        row: dict[str, Any] = {"declined": answer.declined, "answer": answer.answer,
                               "cited": [[c.source.hit.chunk.path, c.source.hit.chunk.page]
                                         for c in answer.citations],
                               "quotes": quotes,
                               "unsupported": [x.text for x in sentences if not x.supported]}
        if q.kind == "fact":
            target = (root / str(q.file)).resolve()
            hit = not answer.declined and keyword_hit(answer.answer, q.keywords)
            hit_quote = not answer.declined and keyword_hit("\n".join([answer.answer, *quotes]), q.keywords)
            good = not answer.declined and _cites_right_place(answer, target, q.pages)
            kw += hit
            kw_quote += hit_quote
            cited += good
            fact_declined += answer.declined
            if not answer.declined:
                checked += len(sentences)
                unsupported += sum(not x.supported for x in sentences)
                wording += bool(getattr(answer, "wording_unsupported", False))
            row.update(keyword_hit=hit, keyword_hit_with_quote=hit_quote, citation_correct=good)
        else:
            declined += answer.declined
        per[q.id] = row
        if on_progress:
            on_progress(i, len(questions))
    answered = len(facts) - fact_declined
    return {
        "keyword_hit": _rate(kw, len(facts)),
        "keyword_hit_with_quote": _rate(kw_quote, len(facts)),
        "citation_correct": _rate(cited, len(facts)),
        # of the fact questions answered (the goal's denominator)
        "citation_correct_of_answered": _rate(cited, answered),
        "citation_level": "page" if any(q.pages for q in facts) else "file",
        "fact_declined": _rate(fact_declined, len(facts)),
        "fact_answered": _rate(answered, len(facts)),
        "decline_rate": _rate(declined, len(absents)),
        "unsupported_sentences": _rate(unsupported, checked),
        "wording_unsupported": _rate(wording, answered),
    }, per


def merge_rows(*parts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-question rows from several scorers, in question order."""
    ids = list(dict.fromkeys(i for p in parts for i in p))
    return [{"id": i, **{k: v for p in parts for k, v in p.get(i, {}).items()}} for i in ids]


# --- report --------------------------------------------------------------------


def _pct(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("n") in (None, 0):
        return "—"
    return f"{entry['rate'] * 100:.0f}% ({entry['hits']}/{entry['n']})"


def table(results: dict[str, Any]) -> str:
    """A Markdown table of one evaluation: retrieval per mode (page level where
    the set names pages), and the answer metrics of the modes that answered."""
    paged = any(m["retrieval"].get("page_recall_at_5") for m in results["modes"])
    head = "| Mode | recall@5 | MRR@10 |" + (" page recall@5 | page MRR@10 |" if paged else "")
    head += " answered facts | keyword hits (answer / + quote) | cites right place | declines absent | unsupported sentences |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for m in results["modes"]:
        r, a = m["retrieval"], m["answers"]
        cells = [m["mode"], _pct(r["recall_at_5"]), f"{r['mrr_at_10']['value']:.3f}"]
        if paged:
            pm = r.get("page_mrr_at_10")
            cells += [_pct(r.get("page_recall_at_5")), f"{pm['value']:.3f}" if pm else "—"]
        if a:
            cells += [_pct(a.get("fact_answered")),
                      f"{_pct(a.get('keyword_hit'))} / {_pct(a.get('keyword_hit_with_quote'))}",
                      _pct(a.get("citation_correct_of_answered")), _pct(a.get("decline_rate")),
                      _pct(a.get("unsupported_sentences"))]
        else:
            cells += ["—"] * 5
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def now_iso() -> str:
    """The run's date for the results file."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _shown(path: str | None) -> str | None:
    """``path`` relative to the working directory when it lies inside it (for
    results committed to the repository: no machine's absolute paths)."""
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


# --- the whole run --------------------------------------------------------------


def parse_modes(text: str) -> list[str]:
    """The comma-separated retrieval modes to score; an unknown one is a usage error."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in EVAL_MODES]
    if unknown:
        raise UsageError(f"Unknown mode {unknown[0]!r}; use {', '.join(EVAL_MODES)}.")
    return modes


def run(
    questions_file: Path,
    docs: Path,
    settings: Settings,
    *,
    modes: Sequence[str] = EVAL_MODES,
    answers: bool = True,
    answer_modes: Sequence[str] = ("hybrid",),
    max_tokens: int,
    model: Path | None = None,
    work: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    note: Callable[[str], None] = lambda message: None,
    on_ingest: Callable[[Progress], None] | None = None,
    on_answer: Callable[[str, int, int], None] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Ingest a question set's corpus into a separate data folder and score
    every retrieval mode, through the same ``Library`` the app uses.

    Args:
        settings: the settings to evaluate (its reranker, if any, runs the
            ``hybrid+reranker`` mode; without one that mode is skipped).
        answers: also ask the model every question (else retrieval only).
        answer_modes: the modes whose answers are scored (retrieval is scored
            in every mode); by default the app's own, hybrid: answering takes
            the model several seconds a question, retrieval milliseconds.
        work: the evaluation's own data folder (default: a temporary one).
        note: told what happens, in a sentence, as it happens.
        on_ingest: the corpus ingest's progress.
        on_answer: ``(mode, done, total)`` as the questions are answered.
        limit: only the first ``limit`` fact and ``limit`` absent questions
            (recorded in the results as ``limit``).

    Returns:
        The results, as ``--out`` writes them (see :func:`save`).

    Raises:
        Cancelled: stopped before the corpus was indexed, or while answering.
    """
    from app.core.library import Library

    modes = list(modes)
    questions = load_questions(questions_file)
    if limit is not None:
        questions = ([q for q in questions if q.kind == "fact"][:limit]
                     + [q for q in questions if q.kind == "absent"][:limit])
    corpus = corpus_for(questions_file, docs)
    reranker = getattr(settings, "reranker_path", None)
    if "hybrid+reranker" in modes and not reranker:
        note("no reranker configured (--reranker DIR); skipping hybrid+reranker.")
        modes.remove("hybrid+reranker")
    temp = None if work else tempfile.TemporaryDirectory(prefix="docent-eval-")
    folder = Path(work).expanduser().resolve() if work else Path(temp.name)  # type: ignore[union-attr]
    started = time.perf_counter()
    try:
        with Library(folder, settings=settings, purpose="docent eval", model_path=model) as lib:
            lib.recover()
            report = lib.indexer.ingest(corpus.files, progress=on_ingest, should_stop=should_stop)
            if report.cancelled:
                raise Cancelled("The evaluation was stopped; no results were written.")
            if report.failed:
                note(f"{len(report.failed)} file(s) failed to index, e.g. {report.failed[0]}")
            results: dict[str, Any] = {
                "date": now_iso(),
                "questions_file": str(Path(questions_file).resolve()),
                "questions": {"fact": sum(q.kind == "fact" for q in questions),
                              "absent": sum(q.kind == "absent" for q in questions)},
                "corpus": corpus.to_json(),
                "chunks": lib.catalog.indexed_chunk_count(),
                "ingest_s": round(time.perf_counter() - started, 1),
                "settings": {f: getattr(lib.settings, f) for f in
                             ("chunk_tokens", "chunk_overlap", "min_relevance", "sources_per_answer",
                              "embedding_backend", "prompt_budget") if hasattr(lib.settings, f)},
                "limit": limit,
                "model": lib.model_path.name if answers else None,
                "reranker": _shown(reranker),
                "max_tokens": max_tokens,
                "answer_modes": [m for m in modes if m in answer_modes] if answers else [],
                "modes": [],
            }
            sampling = lib.sampling(max_tokens)
            k = lib.settings.sources_per_answer
            for mode in modes:
                if should_stop is not None and should_stop():
                    break
                search_mode, rerank = ("hybrid", True) if mode == "hybrid+reranker" else (mode, False)
                extra = {"rerank": rerank} if reranker else {}
                note(f"{mode}: retrieval…")
                retrieval, per_r = score_retrieval(
                    lambda q, n: lib.retriever.search(q, k=n, mode=search_mode, **extra).hits,
                    questions, corpus.root)
                scored: dict[str, Any] = {}
                per_a: dict[str, dict[str, Any]] = {}
                if answers and mode in answer_modes:
                    scored, per_a = score_answers(
                        lambda q: lib.answerer.ask(q, k=k, mode=search_mode, sampling=sampling,
                                                   should_stop=should_stop, **extra),
                        questions, corpus.root,
                        on_progress=(lambda d, t, mode=mode: on_answer(mode, d, t)) if on_answer else None,
                        should_stop=should_stop,
                    )
                result = ModeResult(mode, retrieval, scored, merge_rows(per_r, per_a))
                results["modes"].append(result.to_json())
                paged = (f", page recall@5 {_pct(retrieval['page_recall_at_5'])}, page MRR@10 "
                         f"{retrieval['page_mrr_at_10']['value']:.3f}" if retrieval.get("page_recall_at_5") else "")
                note(f"{mode}: recall@5 {_pct(retrieval['recall_at_5'])}, "
                     f"MRR@10 {retrieval['mrr_at_10']['value']:.3f}{paged}"
                     + (f", keyword hits {_pct(scored['keyword_hit'])}, cites right place "
                        f"{_pct(scored['citation_correct'])}, declines absent "
                        f"{_pct(scored['decline_rate'])}" if scored else ""))
    finally:
        if temp is not None:
            temp.cleanup()
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def save(results: dict[str, Any], out: Path) -> None:
    """Write the results as JSON (they then record where they were written)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    results["out"] = str(out)
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
