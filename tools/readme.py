"""Generated sections of a Markdown file (the README's measured tables).

A section sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``;
the tools that measure something (``docent eval``, ``make tune``, ``make
bench``, ``packaging/measure.py``) rewrite only their own section, so the
prose around it stays as written.
"""

from __future__ import annotations

from pathlib import Path


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
