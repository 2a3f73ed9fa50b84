"""The command line's progress bar: counts, chunks, the file at hand and the time left."""

from __future__ import annotations

import io

import pytest
import tqdm.std

from app.core.ingest import report
from app.core.ingest.report import Progress
from app.progress import ProgressBar, format_eta


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """tqdm's clock, moved by the test instead of by waiting."""
    now = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    return now


def test_a_log_gets_whole_lines_with_counts_chunks_and_time_left(clock: list[float]) -> None:
    out = io.StringIO()
    bar = ProgressBar(out, every_s=0)
    bar.update(0, 4, chunks=0, current="/library/reports/annual.pdf", detail="page 1/3")
    clock[0] += 10
    bar.update(2, 4, chunks=40, current="/library/notes.md")
    bar.close()
    text = out.getvalue()
    assert "\r" not in text  # a pipe or a log gets lines, not redraws
    first, *_, last = text.splitlines()
    assert "annual.pdf (page 1/3)" in first and "0/4 files" in first
    assert "notes.md" in last and "2/4 files" in last and "40 chunks" in last
    # Two files took ten seconds, so the two left take ten more.
    assert "00:10<00:10" in last


def test_the_last_state_is_written_once_when_closed(clock: list[float]) -> None:
    out = io.StringIO()
    bar = ProgressBar(out, every_s=3600)
    bar.update(1, 3, current="a.txt", unit="questions")
    clock[0] += 1
    bar.update(2, 3, current="b.txt", unit="questions")  # within every_s: not drawn yet
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "1/3 questions" in lines[0] and "2/3 questions" in lines[1]


def test_a_bar_never_updated_writes_nothing() -> None:
    out = io.StringIO()
    ProgressBar(out).close()
    assert out.getvalue() == ""


def test_format_eta() -> None:
    assert format_eta(None) == "--:--"
    assert format_eta(65) == "1:05"
    assert format_eta(3725) == "1:02:05"


def test_the_current_files_step_is_said_in_its_own_words() -> None:
    state = Progress(0, 3, 0, None, started=0.0)
    state.next_file("/mail/harbour.mbox")
    assert state.detail() == ""  # nothing counted yet: the name says enough
    state.pages_done, state.pages_total = 4220, 10_000
    assert state.detail() == "message 4,220/10,000"
    state.next_file("/talks/review.pptx")
    state.pages_done, state.pages_total = 3, 40
    assert state.detail() == "slide 3/40"
    state.next_file("/reports/annual.pdf")
    state.pages_done, state.pages_total = 3, 12
    assert state.detail() == "page 3/12"
    # Read, then embedded: the passages embedded are what moves now.
    state.embedding(3200, 10_000)
    assert state.detail() == "embedding 3,200/10,000 passages"
    state.next_file("/notes/short.md")
    assert state.detail() == "" and state.embedded == state.to_embed == 0


def test_the_last_files_time_left_comes_from_its_own_passages(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(report.time, "monotonic", lambda: now[0])
    state = Progress(files_done=2, files_total=3, chunks_done=20, current=None, started=0.0)
    # Two small files took 100 s: by files alone the last would take 50 s more.
    assert state.eta_s == pytest.approx(50.0)
    state.next_file("/mail/harbour.mbox")
    state.embedding(0, 10_000)  # its embedding starts now
    now[0] += 30
    state.embedding(2_000, 10_000)
    # 2,000 passages in 30 s: the 8,000 left take 120 s.
    assert state.eta_s == pytest.approx(120.0)
    # While an earlier file of several is embedded, the files' average still leads.
    state = Progress(files_done=1, files_total=3, chunks_done=20, current=None, started=0.0)
    state.embedding(10, 100)
    assert state.eta_s == pytest.approx(2 * now[0])
