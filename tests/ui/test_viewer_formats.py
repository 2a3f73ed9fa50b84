"""The viewer shows the cited slide, sheet rows, chapter and message, with the passage highlighted."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from app.core import documents  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"


@pytest.mark.parametrize(("name", "page", "words"), [
    ("harbour-board.pptx", 2, "winter ferry to Scilly"),
    ("harbour-dues.xlsx", None, "Month: April"),
    ("lighthouse-keepers.epub", None, "automated in 1992"),
    ("slipway-closed.eml", None, "high water only"),
    ("pilotage-rules.odt", None, "pilot from the fairway buoy"),
])
def test_a_cited_passage_of_each_format_is_shown_highlighted(viewer, qtbot, name, page, words) -> None:
    path = SAMPLES / name
    loaded = documents.load(path)
    cited = next(p for p in loaded.pages if words in p.text)
    assert cited.number == page
    line = next(line for line in cited.text.splitlines() if words in line)
    start = cited.text.index(line)

    with qtbot.waitSignal(viewer.reading_done, timeout=60_000):
        viewer.show_passage(str(path), page, (start, start + len(line)), line)

    assert viewer.highlight_found(), viewer.note_text()
    assert " ".join(viewer.highlighted_text().split()) == " ".join(line.split())
    assert words in viewer.text_view.toPlainText()
    assert name in viewer.header.text()
