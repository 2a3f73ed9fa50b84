"""The command line's progress bar: counts, chunks, the file at hand and the time left."""

from __future__ import annotations

import io

import pytest
import tqdm.std

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
    bar.update(0, 4, chunks=0, current="/library/reports/annual.pdf", pages=(1, 3))
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
