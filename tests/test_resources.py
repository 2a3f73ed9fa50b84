"""Docent's own files are found the same way from source and from the frozen app."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app import resources

ROOT = Path(__file__).resolve().parent.parent


def test_from_source_resources_are_beside_the_app_package() -> None:
    assert not resources.is_frozen()
    assert resources.resources_dir() == ROOT / "resources"
    assert resources.sample_document().read_bytes().startswith(b"%PDF")
    assert resources.app_icon().read_bytes().startswith(b"\x89PNG")


def test_frozen_resources_come_from_the_bundle(monkeypatch, tmp_path) -> None:
    bundle = tmp_path / "_internal"
    (bundle / "resources" / "samples").mkdir(parents=True)
    (bundle / "resources" / "samples" / "welcome.md").write_text("hello", encoding="utf-8")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert resources.is_frozen()
    assert resources.resource_path("samples", "welcome.md").read_text(encoding="utf-8") == "hello"
    # The source tree's copy is not used by the frozen app.
    with pytest.raises(FileNotFoundError, match=r"lighthouse-report\.pdf is missing.*Reinstall Docent"):
        resources.sample_document()


def test_the_sample_library_holds_one_readable_document_of_each_kind() -> None:
    from app.core import documents

    samples = sorted((ROOT / "resources" / "samples").iterdir())
    kinds = {}
    for path in samples:
        doc = documents.load(path)
        assert any(page.text.strip() for page in doc.pages), path.name
        kinds[doc.kind] = path.name
    assert {"pdf", "markdown", "pptx", "xlsx", "csv", "odt", "epub", "email"} <= set(kinds)
    scan = documents.load(ROOT / "resources" / "samples" / "notice-to-mariners-scan.pdf")
    assert scan.ocr_pages == 1 and "green buoy" in scan.pages[0].text
