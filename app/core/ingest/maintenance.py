"""Taking things out of the library and reading them again.

The window's "Remove from library" and "Re-index", ``docent remove`` and
``docent reindex`` all come here, so both fronts do the same thing and leave
the same audit records. The files on disk are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.core.ingest.indexer import Indexer
from app.core.ingest.report import IngestReport, Progress
from app.core.paths import is_inside
from app.core.stores.catalog import Catalog


@dataclass
class RemoveReport:
    """What a removal did (the ``remove --json`` shape).

    Attributes:
        removed: the library folders and files taken out, as given by the catalog.
        files: how many indexed files went with them.
        chunks: how many passages (catalog rows and vectors) went.
        not_found: paths that are not a library folder or file; nothing was done for them.
    """

    removed: list[str] = field(default_factory=list)
    files: int = 0
    chunks: int = 0
    not_found: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The report as plain JSON types."""
        return {"removed": list(self.removed), "files": self.files, "chunks": self.chunks,
                "not_found": list(self.not_found)}


def normal_path(path: str | Path) -> str:
    """``path`` as the catalog stores it: absolute, ``~`` expanded, links resolved.

    A path that no longer exists is resolved as far as it can be, so a
    folder deleted from disk can still be taken out of the library.
    """
    return str(Path(path).expanduser().resolve())


def _not_found_reason(catalog: Catalog, path: str) -> str:
    holder = next((r.path for r in catalog.roots() if is_inside(path, r.path)), None)
    if holder is not None:
        return (f"it is part of the library folder {holder}; remove that folder, "
                "or add an ignore rule there to leave this out")
    return "it is not in the library"


def remove_root(indexer: Indexer, path: str, report: RemoveReport | None = None) -> RemoveReport:
    """Take one library folder (or file added on its own) out of the library.

    Its files' passages, vectors and catalog rows go, each file with a
    ``remove`` audit record, then the folder with a ``remove_root`` record.
    A path that is not a library root is listed in ``not_found`` untouched.
    """
    report = report if report is not None else RemoveReport()
    catalog = indexer.catalog
    root = catalog.root(path)
    if root is None:
        report.not_found.append({"path": path, "reason": _not_found_reason(catalog, path)})
        return report
    files = catalog.files(root_id=root.id)
    for row in files:
        indexer.remove_file(row)
        report.chunks += row.chunks or 0
    catalog.remove_root(root.id)
    indexer.audit.append("remove_root", {"path": path, "files": len(files)})
    report.removed.append(path)
    report.files += len(files)
    return report


def not_removable(catalog: Catalog, paths: Iterable[str]) -> list[dict[str, str]]:
    """Those of ``paths`` that are not library roots, each with why (``path``, ``reason``)."""
    return [{"path": p, "reason": _not_found_reason(catalog, p)} for p in paths if catalog.root(p) is None]


def remove_paths(indexer: Indexer, paths: Iterable[str | Path]) -> RemoveReport:
    """:func:`remove_root` for each of ``paths`` (normalised as the catalog stores them)."""
    report = RemoveReport()
    for raw in paths:
        remove_root(indexer, normal_path(raw), report)
    return report


def mark_for_reindex(catalog: Catalog, paths: Iterable[str]) -> list[str]:
    """Mark every known file at or under ``paths`` ``pending``; returns the roots holding them.

    A pending file is read again by the next ingest even when its size, time
    and contents look unchanged (as after a parser update).
    """
    paths = list(paths)
    for row in catalog.files():
        if any(is_inside(row.path, p) for p in paths):
            catalog.mark_file(row.path, "pending", root_id=row.root_id)
    return [r.path for r in catalog.roots() if any(is_inside(p, r.path) for p in paths)]


def outside_library(catalog: Catalog, paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` that no library folder holds."""
    roots = [r.path for r in catalog.roots()]
    return [p for p in paths if not any(is_inside(p, root) for root in roots)]


def reindex(
    indexer: Indexer,
    paths: Iterable[str | Path] | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> IngestReport:
    """Read files again even if they look unchanged, and bring their folders in line.

    Args:
        paths: files or folders of the library (``None``: the whole library).
            A path no library folder holds is added as a new one, as the
            window's re-index always did; check :func:`outside_library` first
            to refuse it instead.
    """
    catalog = indexer.catalog
    wanted = [normal_path(p) for p in paths] if paths is not None else [r.path for r in catalog.roots()]
    roots = mark_for_reindex(catalog, wanted)
    targets = roots or wanted
    if not targets:
        return IngestReport()
    return indexer.ingest([Path(p) for p in targets], progress=progress, should_stop=should_stop)
