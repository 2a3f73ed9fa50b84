"""Where the development question sets and their corpora are.

The sets live in the project's shared folder beside the checkout
(``../shared/eval/<name>``); a clone elsewhere names the folder that holds
them with ``DOCENT_EVAL_ROOT`` (or one set's folder with ``DOCENT_EVAL_DIR``,
as before: that set is then pydocs).

- ``pydocs``: Debian's ``python3.11-doc`` HTML, scored per file.
- ``pdfdocs``: three of Debian's PDF manuals, scored per page; the corpus
  folder is built from the installed packages by ``scripts/pdfdocs_corpus.sh``
  (two of them ship gzip-compressed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DevSet:
    name: str
    questions: Path
    docs: Path


def _set_dir(name: str) -> Path:
    if name == "pydocs" and os.environ.get("DOCENT_EVAL_DIR"):
        return Path(os.environ["DOCENT_EVAL_DIR"])
    base = Path(os.environ["DOCENT_EVAL_ROOT"]) if os.environ.get("DOCENT_EVAL_ROOT") else ROOT.parent / "shared" / "eval"
    return base / name


SETS = {
    "pydocs": DevSet("pydocs", _set_dir("pydocs") / "questions.jsonl", Path("/usr/share/doc/python3.11/html")),
    "pdfdocs": DevSet("pdfdocs", _set_dir("pdfdocs") / "questions.jsonl", ROOT / ".cache" / "corpus" / "pdfdocs"),
}

# The first set's names, as the older scripts (bench/onnx.py) use them.
DOCS = SETS["pydocs"].docs
EVAL = SETS["pydocs"].questions.parent
