"""Only indexed documents inside the library may be opened with the system's apps."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.opening import NotOpenable, check_openable
from app.errors import DocentError

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and links")


def write(path: Path, text: str = "text", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture()
def lib(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    write(root / "manual.pdf", "%PDF-1.4")
    write(root / "notes" / "winter.md", "# Winter")
    write(root / "README", "readme")
    return root


def known(*paths: Path) -> Callable[[str], bool]:
    real = {str(p.resolve()) for p in paths}
    return lambda p: p in real


def refused(path: str | Path, roots: list[str], known_files: Callable[[str], bool]) -> str:
    with pytest.raises(NotOpenable) as info:
        check_openable(path, roots, known_files)
    return str(info.value)


def test_an_indexed_document_inside_the_library_opens(lib: Path) -> None:
    pdf = lib / "manual.pdf"
    assert check_openable(str(pdf), [str(lib)], known(pdf)) == pdf.resolve()
    md = lib / "notes" / "winter.md"
    assert check_openable(md, [str(lib)], known(md)) == md.resolve()


def test_extension_less_text_file_docent_indexes_opens(lib: Path) -> None:
    readme = lib / "README"
    assert check_openable(readme, [str(lib)], known(readme)) == readme.resolve()


def test_a_root_may_be_a_single_file(lib: Path) -> None:
    pdf = lib / "manual.pdf"
    assert check_openable(pdf, [str(pdf)], known(pdf)) == pdf.resolve()
    md = lib / "notes" / "winter.md"
    assert "outside your library" in refused(md, [str(pdf)], known(md))


def test_not_openable_is_a_docent_error_with_the_path(lib: Path) -> None:
    with pytest.raises(DocentError) as info:
        check_openable(lib / "gone.pdf", [str(lib)], lambda p: True)
    assert isinstance(info.value, NotOpenable)
    assert info.value.path.name == "gone.pdf"
    assert "gone.pdf cannot be found" in info.value.reason


def test_outside_the_library_is_refused(lib: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "secret.pdf")
    message = refused(other, [str(lib)], lambda p: True)
    assert message == "secret.pdf is outside your library folders, so Docent will not open it."


def test_no_roots_means_nothing_opens(lib: Path) -> None:
    pdf = lib / "manual.pdf"
    assert "outside your library" in refused(pdf, [], known(pdf))


def test_path_traversal_is_refused(lib: Path, tmp_path: Path) -> None:
    write(tmp_path / "private.txt", "diary")
    sneaky = f"{lib}/../private.txt"
    assert "outside your library" in refused(sneaky, [str(lib)], lambda p: True)
    assert "outside your library" in refused(f"{lib}/notes/../../private.txt", [str(lib)], lambda p: True)


def test_a_sibling_folder_with_a_shared_prefix_is_outside(tmp_path: Path) -> None:
    lib = tmp_path / "docs"
    evil = write(tmp_path / "docs-evil" / "a.pdf")
    assert "outside your library" in refused(evil, [str(lib)], lambda p: True)


@posix_only
def test_symlink_pointing_outside_the_library_is_refused(lib: Path, tmp_path: Path) -> None:
    target = write(tmp_path / "outside" / "passwords.txt")
    link = lib / "innocent.txt"
    link.symlink_to(target)
    # Even if something in the catalog named it, the real file is outside.
    assert "passwords.txt is outside your library" in refused(link, [str(lib)], lambda p: True)


@posix_only
def test_symlink_within_the_library_returns_the_real_file(lib: Path) -> None:
    pdf = lib / "manual.pdf"
    link = lib / "shortcut.pdf"
    link.symlink_to(pdf)
    assert check_openable(link, [str(lib)], known(pdf)) == pdf.resolve()


@posix_only
def test_a_linked_library_root_is_resolved_too(lib: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(lib, target_is_directory=True)
    pdf = lib / "manual.pdf"
    assert check_openable(alias / "manual.pdf", [str(alias)], known(pdf)) == pdf.resolve()


def test_a_file_the_catalog_does_not_know_is_refused(lib: Path) -> None:
    stray = write(lib / "stray.pdf")
    assert "stray.pdf is not in Docent's index" in refused(stray, [str(lib)], known(lib / "manual.pdf"))


def test_the_catalog_is_asked_with_the_real_path(lib: Path) -> None:
    asked: list[str] = []

    def known_files(path: str) -> bool:
        asked.append(path)
        return True

    check_openable(f"{lib}/notes/../manual.pdf", [str(lib)], known_files)
    assert asked == [str((lib / "manual.pdf").resolve())]


def test_a_folder_is_not_a_regular_file(lib: Path) -> None:
    folder = lib / "notes"
    assert "notes is not a regular file" in refused(folder, [str(lib)], lambda p: True)


@posix_only
def test_a_fifo_is_not_a_regular_file(lib: Path) -> None:
    fifo = lib / "pipe.txt"
    os.mkfifo(fifo)
    assert "not a regular file" in refused(fifo, [str(lib)], lambda p: True)


@pytest.mark.parametrize(
    "name",
    ["run.desktop", "setup.exe", "go.bat", "go.cmd", "x.com", "x.ps1", "install.sh", "x.bash",
     "tool.py", "app.js", "x.vbs", "x.jar", "x.app", "x.AppImage", "x.lnk", "x.url", "x.command",
     "x.scr", "x.msi", "x.deb", "x.rpm", "x.so", "x.dll", "x.dylib", "report.pdf.exe", "x.hta"],
)
def test_programs_scripts_and_launchers_are_refused(lib: Path, name: str) -> None:
    path = write(lib / name, "#!/bin/sh\nrm -rf ~\n")
    message = refused(path, [str(lib)], lambda p: True)
    assert message == f"{name} is a program or script; Docent only opens documents."


def test_kinds_docent_does_not_read_are_refused(lib: Path) -> None:
    for name in ("movie.mp4", "archive.zip", "noext"):
        path = write(lib / name)
        assert "not a kind of document Docent reads" in refused(path, [str(lib)], lambda p: True)
    # Pictures are documents now (read by OCR): an indexed one opens.
    photo = write(lib / "receipt.jpg")
    assert check_openable(photo, [str(lib)], lambda p: True) == photo.resolve()


@posix_only
def test_a_document_with_the_executable_bit_is_refused(lib: Path) -> None:
    path = write(lib / "looks-like.txt", "#!/bin/sh\necho hi\n", mode=0o755)
    message = refused(path, [str(lib)], known(path))
    assert message == "looks-like.txt is a program or script; Docent only opens documents."
    path.chmod(0o644)
    assert check_openable(path, [str(lib)], known(path)) == path.resolve()


@posix_only
def test_a_symlink_loop_is_refused(lib: Path) -> None:
    loop = lib / "loop.txt"
    loop.symlink_to(loop)
    assert "cannot be found" in refused(loop, [str(lib)], lambda p: True)
