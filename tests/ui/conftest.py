"""Fixtures for the window: a real MainWindow over a temporary data folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture()
def make_viewer(qtbot) -> Callable[..., object]:
    """Make shown document viewers, each with its own reader process
    (``page_boxes``: where OCR read each line, see :class:`app.ui.viewer.DocumentViewer`)."""
    from app.ui.viewer import DocumentViewer

    def make(page_boxes: Callable | None = None, size: tuple[int, int] = (700, 500)) -> DocumentViewer:
        widget = DocumentViewer(page_boxes=page_boxes)
        qtbot.addWidget(widget)
        widget.resize(*size)
        widget.show()
        qtbot.waitExposed(widget)
        return widget

    return make


@pytest.fixture()
def viewer(make_viewer):
    """A shown document viewer (700 × 500) with its own reader process."""
    return make_viewer()


@pytest.fixture()
def open_window(qtbot, embedder, chat_model) -> Iterator[Callable[[Path], object]]:
    """Open (and later close) main windows on a data folder, sharing the loaded models."""
    from app.core.library import Library
    from app.ui.main_window import MainWindow

    windows = []

    def open_(data_dir: Path) -> MainWindow:
        library = Library(data_dir, purpose="the Docent window")
        library.use_embedder(embedder)
        library.use_model(chat_model)
        window = MainWindow(library)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        qtbot.waitUntil(lambda: window.model_state == "ready", timeout=60_000)
        return window

    yield open_
    for w in windows:
        if w.isVisible() or not w.library._lock is None:
            w.close()
