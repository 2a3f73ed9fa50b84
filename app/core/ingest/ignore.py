"""Which files and folders of a library Docent leaves alone, and why.

Built-in rules skip temporary, lock and partial-download files, hidden files
and folders, version-control and dependency folders; a gitignore-style
``.docentignore`` in any library folder adds rules for that folder and
below (deeper files win, ``!`` re-includes). Every skipped file gets the
rule that skipped it as its reason.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pathspec

from app import config

IGNORE_FILE = ".docentignore"

# (pattern, what it is) — matched against the file name.
BUILTIN_FILE_RULES: tuple[tuple[str, str], ...] = (
    ("~$*", "an Office lock file"),
    (".~lock.*#", "a LibreOffice lock file"),
    ("*.swp", "an editor swap file"),
    ("*.swx", "an editor swap file"),
    ("*.tmp", "a temporary file"),
    ("*.part", "a partial download"),
    ("*.crdownload", "a partial download"),
    (".goutputstream-*", "the temporary file of a save in progress"),
    ("*~", "an editor backup file"),
)
PRUNED_DIR_NAMES = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__"})


@dataclass(frozen=True)
class Limits:
    """User-set limits that also decide what is skipped."""

    max_file_bytes: int | None = config.MAX_FILE_MB * 1024 * 1024
    follow_symlinks: bool = False


class IgnoreRules:
    """Ignore decisions for one library root (cached, thread-safe)."""

    def __init__(self, root: Path, limits: Limits = Limits()) -> None:
        self.root = Path(root)
        self.limits = limits
        self._specs: dict[Path, tuple[float, pathspec.GitIgnoreSpec | None, list[str]]] = {}
        self._lock = threading.Lock()

    def _spec(self, folder: Path) -> tuple[pathspec.GitIgnoreSpec | None, list[str]]:
        """The folder's .docentignore, re-read when it changes."""
        file = folder / IGNORE_FILE
        try:
            mtime = file.stat().st_mtime
        except OSError:
            return None, []
        with self._lock:
            cached = self._specs.get(folder)
            if cached and cached[0] == mtime:
                return cached[1], cached[2]
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        patterns = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        spec = pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None
        with self._lock:
            self._specs[folder] = (mtime, spec, patterns)
        return spec, patterns

    def _docentignore(self, path: Path, is_dir: bool) -> str | None:
        """The reason a .docentignore rule excludes ``path``, if one does."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return None
        verdict: str | None = None
        folder = self.root
        parts = rel.parts
        # From the root down: a deeper .docentignore overrides a shallower one.
        for depth in range(len(parts)):
            spec, patterns = self._spec(folder)
            if spec is not None:
                sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
                result = spec.check_file(sub)
                if result.include is True:
                    verdict = f'ignored by the rule "{patterns[result.index]}" in {folder / IGNORE_FILE}'
                elif result.include is False:
                    verdict = None
            folder = folder / parts[depth]
        return verdict

    def dir_reason(self, path: Path) -> str | None:
        """Why the walk does not enter the folder ``path`` (None: it does)."""
        name = path.name
        if name in PRUNED_DIR_NAMES:
            return f"{name} folders are never indexed"
        if name.startswith("."):
            return "hidden folder"
        return self._docentignore(path, is_dir=True)

    def file_reason(self, path: Path, size: int | None = None) -> str | None:
        """Why the file ``path`` is skipped (None: it is indexed)."""
        name = path.name
        if name == IGNORE_FILE:
            return "Docent's ignore rules for this folder"
        for pattern, what in BUILTIN_FILE_RULES:
            if fnmatch.fnmatchcase(name, pattern):
                return f"{what} ({pattern})"
        if name.startswith("."):
            return "hidden file"
        reason = self._docentignore(path, is_dir=False)
        if reason:
            return reason
        limit = self.limits.max_file_bytes
        if limit and size is not None and size > limit:
            return (f"larger than the {limit // (1024 * 1024)} MB limit "
                    "(raise “Maximum file size” in the settings to index it)")
        return None

    def ignores_event_path(self, path: Path) -> bool:
        """True when a change at ``path`` is inside a folder the library leaves out."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return True
        folder = self.root
        for part in rel.parts[:-1]:
            folder = folder / part
            if self.dir_reason(folder):
                return True
        return False


def walk(root: Path, rules: IgnoreRules) -> list[tuple[Path, str | None]]:
    """Every file under ``root`` with the reason it is skipped (None: index it).

    Symbolic links are listed as skipped unless the limits say to follow them;
    when followed, a folder reached twice (a link loop) is entered once.
    """
    root = Path(root)
    if root.is_file() or (root.is_symlink() and not root.is_dir()):
        return [(root, None)]
    out: list[tuple[Path, str | None]] = []
    follow = rules.limits.follow_symlinks
    seen: set[tuple[int, int]] = set()

    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow):
        here = Path(dirpath)
        try:
            st = here.stat()
            key = (st.st_dev, st.st_ino)
        except OSError:
            dirnames[:] = []
            continue
        if key in seen:  # a symlink loop brought us back here
            dirnames[:] = []
            continue
        seen.add(key)
        keep = []
        for d in sorted(dirnames):
            sub = here / d
            if sub.is_symlink() and not follow:
                out.append((sub, "symbolic link to a folder (not followed; see the settings)"))
                continue
            if rules.dir_reason(sub):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink():
                if not follow:
                    out.append((path, "symbolic link (not followed; see the settings)"))
                    continue
                try:
                    path.stat()
                except OSError:
                    out.append((path, "broken or looping symbolic link"))
                    continue
            try:
                size = path.lstat().st_size if not follow else path.stat().st_size
            except OSError:
                size = None
            out.append((path, rules.file_reason(path, size)))
    return out
