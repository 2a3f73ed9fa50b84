"""Generated sections of a Markdown file (the README's measured tables).

A section sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``;
the tools that measure something (``make eval``, ``make tune``, ``make
bench``, ``packaging/measure.py``) rewrite only their own section, so the
prose around it stays as written.

``docent eval`` only writes its results as JSON; ``make eval`` then puts
them in the README with::

    .venv/bin/python tools/readme.py eval eval/pydocs.json eval/pdfdocs.json README.md \\
        --combined eval/results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def replace_section(path: Path, name: str, body: str) -> bool:
    """Put ``body`` between the ``name`` markers in ``path``.

    Returns False, leaving the file alone, when it lacks either marker.
    """
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{start}\n{body.strip()}\n{end}{tail}", encoding="utf-8")
    return True


def _pct(entry: dict[str, Any] | None) -> str:
    if not entry or not entry.get("n"):
        return "—"
    return f"{entry['rate'] * 100:.0f}% ({entry['hits']}/{entry['n']})"


def _name(results: dict[str, Any]) -> str:
    return Path(results.get("questions_file", "set")).parent.name or "set"


def eval_section(sets: list[dict[str, Any]]) -> str:
    """The README's evaluation section: every set side by side (retrieval per
    mode, page level where the set has pages; the answers of the app's mode
    against the goals) and what each was measured on."""
    names = [_name(r) for r in sets]
    head = "| Mode | " + " | ".join(
        f"{n}: {'page ' if _paged(r) else ''}recall@5 | {n}: {'page ' if _paged(r) else ''}MRR@10"
        for n, r in zip(names, sets)) + " |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    modes = list(dict.fromkeys(m["mode"] for r in sets for m in r["modes"]))
    for mode in modes:
        cells = [mode]
        for r in sets:
            m = next((m for m in r["modes"] if m["mode"] == mode), None)
            if m is None:
                cells += ["—", "—"]
                continue
            key = "page_" if _paged(r) else ""
            cells += [_pct(m["retrieval"][key + "recall_at_5"]), f"{m['retrieval'][key + 'mrr_at_10']['value']:.3f}"]
        rows.append("| " + " | ".join(cells) + " |")
    answered = [(n, r, next((m for m in r["modes"] if m["answers"]), None)) for n, r in zip(names, sets)]
    lines = ["| Answers (" + ", ".join(sorted({m['mode'] for _, _, m in answered if m})) + ") | "
             + " | ".join(n for n, _, _ in answered) + " | goal |",
             "|---|" + "---|" * len(answered) + "---|"]
    metrics = [
        ("fact questions answered", "fact_answered", "≥ 48/50"),
        ("absent questions declined", "decline_rate", "≥ 90%"),
        ("answers citing a right page (pdfdocs) / file (pydocs)", "citation_correct_of_answered", "≥ 85%"),
        ("keyword hits: the model's answer", "keyword_hit", ""),
        ("keyword hits: answer + supporting quote", "keyword_hit_with_quote", ""),
        ("answer sentences the cited passages do not support", "unsupported_sentences", ""),
        ("answers led by the quote (wording not in the documents)", "wording_unsupported", ""),
    ]
    for label, key, goal in metrics:
        lines.append(f"| {label} | " + " | ".join(_pct(m["answers"].get(key)) if m else "—" for _, _, m in answered)
                     + f" | {goal} |")
    notes = []
    for n, r in zip(names, sets):
        s = r.get("settings", {})
        notes.append(f"**{n}**: {r['questions']['fact']} fact and {r['questions']['absent']} absent questions over "
                     f"{r['corpus']['files']} files, {r.get('chunks')} chunks of {s.get('chunk_tokens')} tokens "
                     f"(overlap {s.get('chunk_overlap')}); model `{r.get('model')}`; reranker: "
                     f"{r.get('reranker') or 'none'}; measured {r.get('date', '?')[:10]}.")
    return "\n".join(rows) + "\n\n" + "\n".join(lines) + "\n\n" + "\n".join(notes)


def _paged(results: dict[str, Any]) -> bool:
    """Whether the set is scored per page: every fact question names its pages."""
    return any((m["retrieval"].get("page_recall_at_5") or {}).get("n") == m["retrieval"]["recall_at_5"]["n"]
               for m in results["modes"])


def main(argv: list[str] | None = None) -> int:
    """``tools/readme.py eval RESULTS.json… README.md [--combined OUT.json]``:
    write the eval section from one results file per question set."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("section", choices=["eval"])
    parser.add_argument("results", type=Path, nargs="+", help="results JSON files (docent eval --out)")
    parser.add_argument("readme", type=Path)
    parser.add_argument("--combined", type=Path, default=None,
                        help="also write every set's results (and bench/tune.json's choices) into one JSON")
    parser.add_argument("--tune", type=Path, default=ROOT / "bench" / "tune.json")
    args = parser.parse_args(argv)
    sets = [json.loads(p.read_text(encoding="utf-8")) for p in args.results]
    if not replace_section(args.readme, "eval", eval_section(sets)):
        print(f"{args.readme} has no <!-- eval:start --> / <!-- eval:end --> markers; left alone.",
              file=sys.stderr)
    if args.combined:
        combined: dict[str, Any] = {"sets": {_name(r): r for r in sets}}
        if args.tune.is_file():
            combined["tuning"] = json.loads(args.tune.read_text(encoding="utf-8"))
        args.combined.write_text(json.dumps(combined, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
