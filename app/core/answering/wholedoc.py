"""Whole-document questions: "summarise report.pdf", "compare A and B",
"list every date in this folder" — recognising them.

Such questions are about a whole file (or folder), so the top few retrieved
snippets cannot answer them. :func:`detect` recognises them and names the
files; :mod:`app.core.answering.mapreduce` then reads every chunk of those
files and answers.

Names that match no indexed file make :func:`detect` return ``None``, so the
ordinary retrieval path answers ("what is the GIL about?" is a question, not a
file). A name that matches several files gives a task with ``candidates``
and no files; answering it lists the candidates instead of guessing which
one was meant.

A question is looked at once: the caller asks
:meth:`app.core.answering.answer.Answerer.plan` (which calls :func:`detect`)
and passes the task on to ``Answerer.ask``, so progress can name what is read.
No Qt here: the window and the command line both answer through ``Answerer``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from app.core.paths import is_inside
from app.core.stores.catalog import Catalog, FileRow

KINDS = ("summary", "compare", "list")

# --- detection ---------------------------------------------------------------

_POLITE = r"(?:(?:please|can you|could you|would you|kindly)[\s,]+)?"
_SUMMARY = re.compile(
    rf"^{_POLITE}(?:summari[sz]e|sum up|recap|"
    r"(?:give|write|make|show)(?: me)? (?:a |an )?(?:short |brief |quick )?(?:summary|overview|synopsis) of|"
    r"(?:a |an )?(?:short |brief |quick )?(?:summary|overview|synopsis) of)"
    r"\s+(?P<target>.+?)[\s.?!]*$",
    re.IGNORECASE,
)
_ABOUT = re.compile(r"^what(?:'s|’s| is| are)\s+(?P<target>.+?)\s+(?:all )?about[\s.?!]*$", re.IGNORECASE)
_COMPARE = re.compile(
    rf"^{_POLITE}compare\s+(?P<a>.+?)\s+(?:and|with|to|against|vs\.?|versus)\s+(?P<b>.+?)[\s.?!]*$",
    re.IGNORECASE,
)
_LIST = re.compile(
    rf"^{_POLITE}(?:list|find|show(?: me)?|give me|name|collect|what are)\s+"
    r"(?:every|each|all(?: of)?(?: the)?)\s+(?P<rest>.+?)[\s.?!]*$",
    re.IGNORECASE,
)
# Where a list's topic ends and its target begins ("every date | in | notes.md").
_LIST_SEPARATOR = re.compile(r"\s+(?:in|across|from|throughout|within|mentioned in)\s+", re.IGNORECASE)

_THIS_FILE = re.compile(r"^(?:this|the current|the selected|that) (?:file|document|doc|pdf|text|one|page)$", re.I)
_THIS_FOLDER = re.compile(r"^(?:this|the current|the selected|that) (?:folder|directory|dir)$", re.I)
_EVERYTHING = re.compile(
    r"^(?:(?:all )?(?:of )?my (?:documents|docs|files|library)|all (?:the )?(?:documents|docs|files)|"
    r"the (?:whole )?library|everything)$",
    re.I,
)


@dataclass(frozen=True)
class WholeDocTask:
    """A question about whole files, with the files it names.

    Attributes:
        kind: ``summary``, ``compare`` or ``list``.
        files: absolute paths of the indexed files to read, in reading order.
        topic: what to list (``list``), else ``None``.
        label: how progress names the target ("report.pdf", "A.md and B.md").
        scope: the chat's scope when the question was asked.
        candidates: when a name matched several files: their paths (then
            ``files`` is empty and the answer asks which one was meant).
    """

    kind: str
    question: str
    files: tuple[str, ...]
    topic: str | None = None
    label: str = ""
    scope: str | None = None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Target:
    files: tuple[str, ...]
    label: str
    candidates: tuple[str, ...] = ()


def _clean_name(text: str) -> str:
    """``the "Report.pdf" file`` → ``Report.pdf``: quotes, articles and the word "file" off."""
    t = text.strip().strip("\"'`“”‘’«»").strip()
    t = re.sub(r"^(?:the|my|our)\s+", "", t, flags=re.I)
    t = re.sub(r"^(?:file|document|doc|folder|directory|pdf)\s+", "", t, flags=re.I)
    t = re.sub(r"\s+(?:file|document|doc|folder|directory|pdf)$", "", t, flags=re.I)
    return t.strip().strip("\"'`“”‘’«»").strip()


def _resolve(text: str, files: Sequence[FileRow], scope: str | None, roots: Sequence[str]) -> _Target | None:
    """The files ``text`` names: a file, a folder, "this file/folder" or "my documents"."""
    raw = " ".join(text.strip().strip("\"'`“”‘’«»").split())
    t = _clean_name(text)
    if not t:
        return None
    paths = [f.path for f in files]
    scope_file = scope if scope and scope in paths else None
    if _THIS_FILE.match(raw):
        return _Target((scope_file,), Path(scope_file).name) if scope_file else None
    if _THIS_FOLDER.match(raw):
        if not scope:
            return None
        folder = str(PurePath(scope).parent) if scope_file else scope
        inside = tuple(p for p in paths if is_inside(p, folder))
        return _Target(inside, Path(folder).name or folder) if inside else None
    if _EVERYTHING.match(raw):
        return _Target(tuple(paths), "your documents") if paths else None
    low = t.lower().replace("\\", "/")
    # Files: full name, name without extension, or a tail of the path
    # ("reports/2025.pdf") to tell apart two files of the same name.
    by_name = [p for p in paths if PurePath(p).name.lower() == low]
    if not by_name:  # the extension left out ("report", "data.tar" for data.tar.gz)
        by_name = [p for p in paths if PurePath(p).stem.lower() == low]
    if not by_name and "/" in low:
        by_name = [p for p in paths if p.lower().replace("\\", "/").endswith("/" + low)]
        if not by_name:
            by_name = [p for p in paths
                       if str(PurePath(p).with_suffix("")).lower().replace("\\", "/").endswith("/" + low)]
    if len(by_name) == 1:
        return _Target((by_name[0],), PurePath(by_name[0]).name)
    if len(by_name) > 1:
        return _Target((), PurePath(by_name[0]).name, tuple(by_name))
    # Folders: a library root or any folder holding indexed files, by name or path tail.
    folders = set(roots)
    for p in paths:
        folders.update(str(parent) for parent in PurePath(p).parents)
    named = sorted(f for f in folders
                   if PurePath(f).name.lower() == low or ("/" in low and f.lower().replace("\\", "/").endswith("/" + low)))
    if len(named) == 1:
        inside = tuple(p for p in paths if is_inside(p, named[0]))
        return _Target(inside, PurePath(named[0]).name) if inside else None
    if len(named) > 1:
        return _Target((), low, tuple(named))
    return None


def detect(question: str, catalog: Catalog, scope: str | None = None) -> WholeDocTask | None:
    """The whole-document task ``question`` asks for, or ``None`` for an ordinary question.

    Recognised: summarise/summarize/overview of/"what is X about" of a file or
    folder; "compare A and B" of two files; "list every/all X in <file |
    this folder | folder | my documents>" (or, without "in …", in the chat's
    scope). ``scope`` is the chat's current scope (a file or folder path):
    "this file" and "this folder" mean it. Names match indexed files case-
    insensitively, with or without their extension; a name nobody has gives
    ``None`` so the ordinary path answers.
    """
    q = " ".join(question.split())
    if not q or len(q) > 300:  # a long question is a question, not a command
        return None
    if not (_SUMMARY.match(q) or _ABOUT.match(q) or _COMPARE.match(q) or _LIST.match(q)):
        return None  # most questions stop here, before the catalog is read
    files = catalog.files(status="indexed")
    if not files:
        return None
    roots = [r.path for r in catalog.roots()]

    def task(kind: str, target: _Target, topic: str | None = None) -> WholeDocTask:
        return WholeDocTask(kind, question, target.files, topic, target.label, scope, target.candidates)

    if m := _COMPARE.match(q):
        a = _resolve(m["a"], files, scope, roots)
        b = _resolve(m["b"], files, scope, roots)
        if a is None or b is None:
            return None
        for one in (a, b):
            if one.candidates:
                return task("compare", one)
        both = tuple(dict.fromkeys(a.files + b.files))
        if len(both) < 2:
            return None  # "compare X with itself" is not a comparison of two files
        return task("compare", _Target(both, f"{a.label} and {b.label}"))
    if m := _LIST.match(q):
        rest = m["rest"]
        for sep in _LIST_SEPARATOR.finditer(rest):
            target = _resolve(rest[sep.end():], files, scope, roots)
            if target is not None:
                return task("list", target, rest[: sep.start()].strip())
        # "List every warning" asked within a file or folder; "what are all
        # the ways to …" stays a question even then.
        if scope and not q.lower().startswith("what"):
            target = _resolve("this file", files, scope, roots) or _resolve("this folder", files, scope, roots)
            if target is not None:
                return task("list", target, rest.strip())
        return None
    m = _SUMMARY.match(q) or _ABOUT.match(q)
    assert m is not None
    target = _resolve(m["target"], files, scope, roots)
    return task("summary", target) if target is not None else None


def progress_text(label: str, done: int, total: int, elapsed_s: float) -> str:
    """``Reading report.pdf: 3 of 12 parts, about 40 s left`` (ETA from the pace so far)."""
    text = f"Reading {label}: {done} of {total} part{'s' if total != 1 else ''}"
    if 0 < done < total and elapsed_s > 0:
        left = elapsed_s / done * (total - done)
        text += f", about {round(left)} s left" if left < 90 else f", about {round(left / 60)} min left"
    return text
