"""Where the development question set and its corpus are.

The set lives in the project's shared folder beside the checkout; a clone
elsewhere names it with ``DOCENT_EVAL_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = Path("/usr/share/doc/python3.11/html")  # Debian's python3.11-doc
EVAL = next((p for p in (Path(os.environ["DOCENT_EVAL_DIR"]) if os.environ.get("DOCENT_EVAL_DIR") else None,
                         ROOT.parent / "shared" / "eval" / "pydocs")
             if p is not None and (p / "questions.jsonl").is_file()), ROOT.parent / "shared" / "eval" / "pydocs")
