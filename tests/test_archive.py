"""Zip-based documents are opened within limits: no part, nor all of them together, may inflate too far."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from app.core.documents import archive
from app.errors import ParseError


def _parts(path: Path, count: int, size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for n in range(count):
            zf.writestr(f"word/part{n}.xml", os.urandom(size))
    return path


def test_the_parts_a_library_inflates_are_judged_together(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 5 * 1024 * 1024)
    fine = _parts(tmp_path / "fine.docx", 2, 2 * 1024 * 1024)
    with archive.open_archive(fine, kind="Word document") as opened:
        opened.check_claims()  # 4 MB in all: within the limit

    many = _parts(tmp_path / "many.docx", 3, 2 * 1024 * 1024)
    with archive.open_archive(many, kind="Word document") as opened, pytest.raises(ParseError) as refused:
        opened.check_claims()
    assert "zip bomb" in refused.value.reason and "part2.xml" in refused.value.reason
