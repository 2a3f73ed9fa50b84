"""Fixtures for the window: a real MainWindow over a temporary data folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture()
def viewer(qtbot):
    """A shown document viewer (700 × 500) with its own reader process."""
    from app.ui.viewer import DocumentViewer

    widget = DocumentViewer()
    qtbot.addWidget(widget)
    widget.resize(700, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


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
