"""Documents are read in a child process: a hostile file fails alone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.documents.parsing import IsolatedParser, ParseLimits
from app.errors import Cancelled, ParseError
from tests import corpus


def test_a_real_document_loads_in_the_child_with_page_progress(tmp_path: Path) -> None:
    pdf = corpus.make_pdf(tmp_path / "report.pdf")
    parser = IsolatedParser()
    pages: list[tuple[int, int]] = []
    try:
        doc = parser.load(pdf, on_page=lambda d, t: pages.append((d, t)))
        assert [p.number for p in doc.pages] == [1, 2, 3, 4]
        assert "storm warnings" in doc.pages[2].text
        assert pages[-1] == (4, 4)
        # The same child serves the next file.
        again = parser.load(corpus.make_markdown(tmp_path / "notes.md"))
        assert "sourdough" in again.pages[0].text.lower()
    finally:
        parser.close()


def test_a_parser_that_hangs_fails_that_file_and_the_next_one_loads(tmp_path: Path) -> None:
    parser = IsolatedParser(ParseLimits(stall_s=1.5, per_mb_s=0), target="tests.faults:hang")
    stuck = tmp_path / "hang.md"
    stuck.write_text("# Never finishes")
    fine = corpus.make_text(tmp_path / "fine.txt")
    try:
        with pytest.raises(ParseError, match="stopped making progress"):
            parser.load(stuck)
        assert "Bicycle" in parser.load(fine).pages[0].text
    finally:
        parser.close()


def test_a_parser_that_crashes_the_interpreter_fails_that_file_only(tmp_path: Path) -> None:
    parser = IsolatedParser(target="tests.faults:crash")
    bad = tmp_path / "crash.txt"
    bad.write_text("boom")
    try:
        with pytest.raises(ParseError, match="crashed"):
            parser.load(bad)
        assert parser.load(corpus.make_text(tmp_path / "ok.txt")).pages
    finally:
        parser.close()


def test_a_memory_explosion_is_capped_and_fails_that_file(tmp_path: Path) -> None:
    parser = IsolatedParser(ParseLimits(memory_bytes=1024**3), target="tests.faults:balloon")
    bomb = tmp_path / "bomb.txt"
    bomb.write_text("expands forever")
    try:
        with pytest.raises(ParseError, match="memory"):
            parser.load(bomb)
        assert parser.load(corpus.make_text(tmp_path / "ok.txt")).pages
    finally:
        parser.close()


def test_a_long_document_that_keeps_progressing_is_never_cut_off(tmp_path: Path) -> None:
    # Each page comes well within the stall limit though the whole takes longer.
    parser = IsolatedParser(ParseLimits(stall_s=1.0, per_mb_s=0), target="tests.faults:slow_pages")
    slow = tmp_path / "slow.txt"
    slow.write_text("x")
    started = time.monotonic()
    try:
        doc = parser.load(slow)
    finally:
        parser.close()
    assert doc.pages[0].text.startswith("Slow but steady")
    assert time.monotonic() - started > 1.0, "it ran longer than the stall limit"


def test_stopping_cancels_a_parse_in_progress(tmp_path: Path) -> None:
    parser = IsolatedParser(target="tests.faults:slow_pages")
    slow = tmp_path / "slow.txt"
    slow.write_text("x")
    pages: list[int] = []
    try:
        with pytest.raises(Cancelled):
            parser.load(slow, on_page=lambda d, t: pages.append(d), should_stop=lambda: len(pages) >= 2)
        assert parser.load(corpus.make_text(tmp_path / "ok.txt")).pages
    finally:
        parser.close()
