"""``docent --selftest``: prove an installation works, end to end, offline.

It ingests the bundled sample report into a temporary data folder, searches
it, asks the bundled model a question whose answer is on page 3, checks the
answer cites that page, and verifies the audit log. Each step prints one line;
the first failure stops the run with the reason. Nothing outside the
temporary folder is touched, so it is safe on a user's machine.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app import __version__
from app.resources import is_frozen, sample_document

QUESTION = "How many storm warnings did the lighthouse keepers record?"
SEARCH = "storm warnings"
EXPECTED_PAGE = 3


@dataclass
class Step:
    """One checked step of the self-test."""

    name: str
    ok: bool
    detail: str
    seconds: float

    def line(self) -> str:
        """One line of the report."""
        return f"  {'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail} ({self.seconds:.1f} s)"


@dataclass
class SelfTestReport:
    """What the self-test found; ``ok`` when every step passed."""

    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def verdict(self) -> str:
        """The last line: passed, or the reason it failed."""
        if self.ok:
            return f"Self-test passed ({sum(s.seconds for s in self.steps):.0f} s)."
        reason = self.steps[-1].detail if self.steps else "no step ran"
        return f"Self-test FAILED: {reason}"


def header() -> str:
    """The report's first line: version, and whether this is the installed app."""
    return f"Docent {__version__} self-test ({'installed app' if is_frozen() else 'from source'})"


class _Failed(Exception):
    """A step's check did not hold; the message says what was seen."""


def run_selftest(on_step: Callable[[Step], None] | None = None) -> SelfTestReport:
    """Run every step (stopping at the first failure) and return the report."""
    from app.config import Settings, enforce_offline

    enforce_offline()
    from app.core.library import Library
    from app.core.models.llm import Sampling

    report = SelfTestReport()

    def step(name: str, check: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except _Failed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - any failure is reported, with its type
            detail, ok = f"{type(exc).__name__}: {exc}", False
        result = Step(name, ok, detail, time.perf_counter() - started)
        report.steps.append(result)
        if on_step is not None:
            on_step(result)
        if not ok:
            raise _Failed(detail)

    with tempfile.TemporaryDirectory(prefix="docent-selftest-") as tmp:
        docs = Path(tmp) / "documents"
        docs.mkdir()
        library: Library | None = None
        try:
            def open_library() -> str:
                nonlocal library
                sample = sample_document()
                shutil.copy2(sample, docs / sample.name)
                library = Library(Path(tmp) / "data", settings=Settings(), purpose="docent --selftest")
                return f"temporary data folder {Path(tmp) / 'data'}"

            def ingest() -> str:
                assert library is not None
                result = library.indexer.ingest([docs])
                if result.failed or result.indexed != 1 or result.chunks < 1:
                    raise _Failed(f"the sample report was not indexed ({result.to_json()})")
                return f"{sample_document().name}: {result.chunks} chunks"

            def search() -> str:
                assert library is not None
                hits = library.retriever.search(SEARCH, k=3).hits
                if not hits or hits[0].chunk.page != EXPECTED_PAGE:
                    where = f"page {hits[0].chunk.page}" if hits else "nothing"
                    raise _Failed(f"searching {SEARCH!r} found {where}, expected page {EXPECTED_PAGE}")
                return f"{SEARCH!r} found page {hits[0].chunk.page} first"

            def ask() -> str:
                assert library is not None
                answer = library.answerer.ask(QUESTION, sampling=Sampling(max_tokens=60, temperature=0.0))
                pages = sorted({c.source.hit.chunk.page for c in answer.citations if c.source.hit.chunk.page})
                if answer.declined or EXPECTED_PAGE not in pages:
                    raise _Failed(f"the answer {answer.answer[:120]!r} cites pages {pages}, "
                                  f"expected page {EXPECTED_PAGE}")
                return f"answered by {answer.model}, citing page {EXPECTED_PAGE}: {answer.answer[:80]!r}"

            def audit() -> str:
                assert library is not None
                result = library.audit.verify()
                events = [r.get("event") for r in library.audit.records()]
                if not result.ok:
                    raise _Failed(f"the audit log is broken: {result.reason}")
                for needed in ("ingest", "ask", "answer"):
                    if needed not in events:
                        raise _Failed(f"the audit log has no {needed!r} record")
                return f"{result.records} records, hash chain intact"

            step("Open a data folder", open_library)
            step("Index the sample report", ingest)
            step("Search", search)
            step("Answer with a page citation", ask)
            step("Verify the audit log", audit)
        except _Failed:
            pass
        finally:
            if library is not None:
                library.close()
    return report
