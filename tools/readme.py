"""Generated sections of a Markdown file (the README's measured tables).

A section sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``;
the tools that measure something (``make eval``, ``make tune``, ``make
bench``, ``packaging/measure.py``) rewrite only their own section, so the
prose around it stays as written.

``docent eval`` only writes its results as JSON; ``make eval`` then puts
them in the README with::

    .venv/bin/python tools/readme.py eval eval/results.json README.md
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


def eval_section(results: dict[str, Any]) -> str:
    """The README's evaluation section: the table and what it was measured on."""
    from app.core.evaluate import table

    s = results.get("settings", {})
    return (f"{table(results)}\n\n"
            f"{results['questions']['fact']} fact and {results['questions']['absent']} absent questions over "
            f"{results['corpus']['files']} files; chunks of {s.get('chunk_tokens')} tokens "
            f"(overlap {s.get('chunk_overlap')}), model `{results.get('model')}`, "
            f"relevance threshold {s.get('min_relevance')}. "
            f"Reranker: {results.get('reranker') or 'none configured'}. "
            f"Full results: `{results.get('out', 'eval/results.json')}`.")


def main(argv: list[str] | None = None) -> int:
    """``tools/readme.py eval RESULTS.json README.md``: write the eval section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("section", choices=["eval"])
    parser.add_argument("results", type=Path, help="the results JSON (docent eval --out)")
    parser.add_argument("readme", type=Path)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    if not replace_section(args.readme, "eval", eval_section(results)):
        print(f"{args.readme} has no <!-- eval:start --> / <!-- eval:end --> markers; left alone.",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
