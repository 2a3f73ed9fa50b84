"""Fault injection for the parser: loaders that hang, crash or eat memory.

Used only by tests, through IsolatedParser(target="tests.faults:…").
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.core import documents


def hang(path: Path, **kwargs: object) -> documents.Document:
    """A parser caught in an endless loop on files named *hang*."""
    if "hang" in path.name:
        while True:
            time.sleep(0.05)
    return documents.load(path, **kwargs)  # type: ignore[arg-type]


def crash(path: Path, **kwargs: object) -> documents.Document:
    """A parser that takes the whole interpreter down on files named *crash*."""
    if "crash" in path.name:
        os.abort()
    return documents.load(path, **kwargs)  # type: ignore[arg-type]


def balloon(path: Path, **kwargs: object) -> documents.Document:
    """A parser whose memory use explodes on files named *bomb*."""
    if "bomb" in path.name:
        hoard = []
        while True:
            hoard.append(bytearray(64 * 1024 * 1024))
    return documents.load(path, **kwargs)  # type: ignore[arg-type]


def slow_pages(path: Path, on_page=None, **kwargs: object) -> documents.Document:  # noqa: ANN001
    """A long document that keeps progressing: a page every 0.3 s for 3 s."""
    if "slow" in path.name:
        total = 10
        for page in range(1, total + 1):
            time.sleep(0.3)
            if on_page:
                on_page(page, total)
        return documents.Document(path, "text", None, [documents.Page(1, "Slow but steady wins the race.")])
    return documents.load(path, on_page=on_page, **kwargs)  # type: ignore[arg-type]
