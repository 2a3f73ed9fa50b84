"""Commands that ask the library: search and ask (one query, or a batch from stdin)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from app.cli.common import StopFlag, data_dir, emit, run_settings, say
from app.cli.parser import EXIT_OK
from app.core.documents.model import page_word
from app.errors import DocentError, UsageError


def _batch(queries: Callable[[str], dict[str, Any]], out: TextIO) -> int:
    """Run one query per stdin line, one JSON object per output line."""
    for line in sys.stdin:
        query = line.strip()
        if not query:
            continue
        try:
            emit(queries(query), out)
        except DocentError as exc:
            emit({"error": str(exc)}, out)
    return EXIT_OK


def cmd_search(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library

    keyword = args.mode == "keyword"
    with Library(data_dir(args), writer=not keyword, purpose="docent search",
                 settings=run_settings(args)) as lib:
        retriever = lib.keyword_retriever if keyword else lib.retriever
        scope = str(Path(args.scope).expanduser().resolve()) if args.scope else None

        def run(query: str) -> dict[str, Any]:
            return retriever.search(query, k=args.k, mode=args.mode, scope=scope,
                                    rerank=not args.no_rerank, operation=True).to_json()

        if args.query == "-":
            return _batch(run, out)
        result = run(args.query)
    if args.json:
        emit(result, out)
        return EXIT_OK
    if not result["hits"]:
        out.write("No passages found.\n")
    for hit in result["hits"]:
        attachment = hit.get("attachment")
        name = Path(hit["path"]).name
        if attachment:  # a document of its own inside its message's file
            name = f"{attachment} (attached to {name})"
        where = f"{page_word(attachment or hit['path'])} {hit['page']}" if hit["page"] is not None else "no pages"
        snippet = " ".join(hit["text"].split())
        snippet = snippet if len(snippet) <= 200 else snippet[:197] + "..."
        out.write(f"{hit['rank']}. {name} · {where} · score {hit['score']:.4f}\n"
                  f"   {hit['path']}\n   {snippet}\n")
    return EXIT_OK


def _citation_line(c: dict[str, Any]) -> str:
    from app.core.documents.model import citation_place

    mark = " (inferred)" if c.get("inferred") else ""
    return f"[{c['n']}] {citation_place(c)}{mark} — {c['path']}"


_HEADING_MARK = re.compile(r"(?:^|(?<=\s))#{1,6}(?=\s)")


def _one_line(text: str, limit: int | None = None) -> str:
    """``text`` on one line (PDF passages keep the page's line breaks), without
    Markdown heading marks, cut to ``limit``."""
    text = " ".join(_HEADING_MARK.sub(" ", text).split())
    return text if limit is None or len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _quote_line(q: dict[str, Any]) -> str:
    """``Quote [n] file p. P: “…”`` — the passage's own words that support the answer."""
    where = Path(q["path"]).name + (f" p. {q['page']}" if q.get("page") is not None else "")
    return f"Quote [{q['n']}] {where}: “{_one_line(q['text'])}”"


def _backing(result: dict[str, Any]) -> str:
    """What follows a streamed answer before its sources: the supporting
    quotes (leading, with a warning, when the model's wording is mostly not
    in the documents), the sentences no cited passage says, or for a decline
    what was searched and the nearest passages found."""
    from app.core.answering.generation import FLAG_REPEATING
    from app.core.documents.model import citation_place

    lines: list[str] = []
    if FLAG_REPEATING in (result.get("flags") or []):
        lines.append("(The model started repeating itself; the answer stops there.)")
    if result["declined"]:
        searched = result.get("searched")
        if searched:
            where = f"in {searched['scope']}" if searched.get("scope") else "in all your documents"
            lines.append(f"Searched for “{_one_line(searched['query'], 200)}” ({searched['mode']} search, {where}).")
        if result.get("nearest"):
            lines.append("Nearest passages found:")
            lines += [f"  {citation_place(h)}: “{_one_line(h['text'], 160)}”" for h in result["nearest"]]
        return "\n".join(lines)
    quotes = [_quote_line(q) for q in result.get("quotes") or []]
    if result.get("wording_unsupported") and quotes:
        lines.append("The model's wording above was not found in your documents. What they say:")
    lines += quotes
    if result.get("unsupported"):
        lines.append("Not found in the cited passages:")
        lines += [f"  - {_one_line(s)}" for s in result["unsupported"]]
    return "\n".join(lines)


def cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    from app.core.library import Library

    if args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    if args.model is not None and not args.model.expanduser().is_file():
        raise UsageError(f"The model file {args.model} does not exist.")
    if args.model is not None and args.generate:
        raise UsageError("Choose one: --model answers with a local GGUF, --generate on an inference server.")
    stop = StopFlag().install()
    try:
        with Library(data_dir(args), purpose="docent ask", model_path=args.model, answer_only_ok=True,
                     settings=run_settings(args)) as lib:
            if lib.repair is not None:
                say(f"docent: {lib.repair.message}")
            if lib.degraded:
                say(f"docent: {lib.degraded}\nAnswering from what is already indexed; "
                     "this question's audit records cannot be written until that is fixed.")
            scope = str(Path(args.scope).expanduser().resolve()) if args.scope else None
            sampling = lib.sampling(args.max_tokens)
            overrides = {name: getattr(args, name) for name in ("temperature", "top_k", "top_p", "repeat_penalty")
                         if getattr(args, name) is not None}
            sampling = dataclasses.replace(sampling, **overrides)

            def run(question: str, on_token: Callable[[str], None] | None = None,
                    show_progress: bool = False) -> dict[str, Any]:
                # Recognised once: a whole-document question names what it reads.
                task = lib.answerer.plan(question, scope)
                return lib.answerer.ask(
                    question, k=args.k, mode=args.mode, scope=scope, sampling=sampling,
                    on_token=on_token, should_stop=stop, task=task, use_cache=not args.no_cache,
                    on_progress=progress(task.label if task is not None else "your documents")
                    if show_progress else None,
                ).to_json()

            def progress(label: str) -> Callable[[int, int], None]:
                """Whole-document answers read in parts first: say how far on stderr."""
                from time import perf_counter

                from app.core.answering.wholedoc import progress_text

                began = perf_counter()

                def show(done: int, total: int) -> None:
                    say("docent: " + progress_text(label, done, total, perf_counter() - began))

                return show

            if args.question == "-":
                return _batch(run, out)
            if args.json:
                emit(run(args.question), out)
                return EXIT_OK

            def stream(piece: str) -> None:
                out.write(piece)
                out.flush()

            result = run(args.question, stream, show_progress=True)
    finally:
        stop.restore()
    out.write("\n")
    if result.get("cached_from"):
        out.write(f"\n(Cached, from {result['cached_from']}: asked before over the same passages "
                  "with the same settings; --no-cache writes it again.)\n")
    backing = _backing(result)
    if backing:
        out.write(f"\n{backing}\n")
    if result["citations"]:
        out.write("\nSources:\n")
        for c in result["citations"]:
            out.write(_citation_line(c) + "\n")
    elif not result["declined"]:
        out.write("\n(This answer cites none of your documents.)\n")
    return EXIT_OK
