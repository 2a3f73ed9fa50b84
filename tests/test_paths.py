"""One "is this path inside that folder" for the whole app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.paths import is_inside


@pytest.mark.parametrize(("path", "folder", "inside"), [
    ("/docs/a/report.pdf", "/docs/a", True),
    ("/docs/a", "/docs/a", True),
    ("/docs/a/", "/docs/a", True),
    ("/docs/a/report.pdf", "/docs/a/", True),
    ("/docs/a//b/report.pdf", "/docs/a", True),
    ("/docs/ab/report.pdf", "/docs/a", False),  # a sibling that starts with the name
    ("/docs/a/../b/report.pdf", "/docs/a", False),  # .. climbs out
    ("/docs/a/./report.pdf", "/docs/a", True),
    ("/docs/b/../a/x.md", "/docs/a", True),
    ("/docs", "/docs/a", False),
    ("/anything", "/", True),
    ("/Docs/A/report.pdf", "/docs/a", False),  # POSIX names are case-sensitive
    ("/docs/a\\b.txt", "/docs/a", False),  # on POSIX a backslash is part of a name: this is /docs/"a\\b.txt"
    ("/docs/a\\..\\b", "/docs/b", False),
    ("", "/docs", False),
    ("/docs/x", "", False),
])
def test_posix_paths(path: str, folder: str, inside: bool) -> None:
    assert is_inside(path, folder, windows=False) is inside


@pytest.mark.parametrize(("path", "folder", "inside"), [
    (r"C:\Users\ada\Docs\report.pdf", r"C:\Users\ada\Docs", True),
    (r"c:\users\ADA\docs\report.pdf", r"C:\Users\ada\Docs", True),  # case does not matter
    ("C:/Users/ada/Docs/report.pdf", r"C:\Users\ada\Docs", True),  # either separator
    (r"C:\Users\ada\Docs2\report.pdf", r"C:\Users\ada\Docs", False),
    (r"C:\Users\ada\Docs\..\Secret\x.txt", r"C:\Users\ada\Docs", False),
    (r"D:\Users\ada\Docs\x.txt", r"C:\Users\ada\Docs", False),
    (r"C:\x.txt", "C:\\", True),
])
def test_windows_paths(path: str, folder: str, inside: bool) -> None:
    assert is_inside(path, folder, windows=True) is inside


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need POSIX here")
def test_symlinks_count_only_when_resolved(tmp_path: Path) -> None:
    library = tmp_path / "library"
    outside = tmp_path / "outside"
    library.mkdir()
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("not in the library")
    link = library / "link.txt"
    link.symlink_to(secret)
    assert is_inside(link, library), "by name, the link is in the folder"
    assert not is_inside(link, library, resolve=True), "where it points is not"
    alias = tmp_path / "alias"
    alias.symlink_to(library, target_is_directory=True)
    (library / "real.txt").write_text("x")
    assert is_inside(alias / "real.txt", library, resolve=True), "a linked folder resolves to the library"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert not is_inside(loop / "x", library, resolve=True)
