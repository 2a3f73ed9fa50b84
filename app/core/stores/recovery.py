"""Recovery at start-up: damaged stores set aside and rebuilt, in one place.

The catalog (``catalog.sqlite3``) and the vector store (``chroma/``) are
derived data: both can be rebuilt from the documents. A damaged one must
therefore never stop Docent from starting, and never be deleted either.
:func:`open_writer_stores` is the whole story, run by the writer with its
lock held and before either store is opened in this process:

1. whether the last writer closed cleanly (its marker, see ``integrity``);
2. if not, or if the stores changed since, :func:`integrity.probe` checks
   them in a child process;
3. what it found damaged is moved to ``DATA_DIR/damaged/<name>-<UTC
   timestamp>/`` (:func:`quarantine`), unless fresh stores could not be
   created in its place (:func:`room_to_rebuild`: a full disk or read-only
   folder is not damage);
4. fresh stores are opened, the library folders restored from
   ``roots.json`` (or salvaged from the damaged catalog), an audit record
   written, and :class:`Repair` says what happened, for the window and the
   CLI to tell.

After an unclean exit the two stores may also disagree by a file or two;
that reconciliation needs the vector store open, so it is a step of its own
that the owner of the library calls (``Library.recover``), told to by
:attr:`WriterStores.unclean`. Conversations (``chats.sqlite3``) are never
touched.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from app.config import DataPaths
from app.core.stores import integrity, vectors
from app.core.stores.audit import AuditLog
from app.core.stores.catalog import Catalog
from app.durable import durable_move, fsync_dir
from app.errors import DAMAGED, READ_ONLY, StoreError

log = logging.getLogger(__name__)

#: Where damaged stores are moved to, inside the data folder.
DAMAGED_DIR = "damaged"
#: The copy of the library roots kept outside the catalog.
ROOTS_FILE = "roots.json"

# How each store is named to the user.
_STORE_NAMES = {"catalog": "catalog", "chroma": "search index"}


@dataclass
class Repair:
    """What the start-up check found and did, for the window and the CLI to tell.

    ``moved`` lists the folders under ``DATA_DIR/damaged/`` that now hold the
    old stores; ``message`` is a paragraph for a person.
    """

    catalog_damaged: bool
    chroma_damaged: bool
    moved: list[Path] = field(default_factory=list)
    message: str = ""
    #: One line above ``message`` (the window's banner).
    headline: str = "Docent repaired its index."


@dataclass
class WriterStores:
    """The writer's catalog and audit log, opened after the start-up check.

    ``unclean``: the last writer did not close cleanly, so the catalog and
    the vectors may disagree by a file or two until they are reconciled.
    """

    catalog: Catalog
    audit: AuditLog
    repair: Repair | None
    unclean: bool


def roots_file(paths: DataPaths) -> Path:
    """Where the copy of the library roots lives."""
    return paths.root / ROOTS_FILE


def open_writer_stores(paths: DataPaths, *, probe_timeout_s: float, local_vectors: bool = True) -> WriterStores:
    """Check the stores, set damaged ones aside, then open catalog and audit log.

    Runs with the writer lock held and before Chroma or the catalog is
    opened in this process: a damaged Chroma segment can crash the process,
    so only a child process looks at the stores first.

    Args:
        local_vectors: the vectors live in ``DATA_DIR/chroma/`` (False: in a
            Chroma server, so a ``chroma/`` folder left there is neither
            checked nor moved).

    Raises:
        StoreError: a store could not be opened (and is not damaged), or a
            damaged one cannot be set aside or rebuilt now (the message says
            why; nothing was moved).
    """
    # Whether the last writer closed cleanly (and what the stores looked like
    # then); from now until the writer closes the marker is absent, so a
    # crash of this process is noticed at the next start.
    closed_as = integrity.take_clean_marker(paths)
    unclean = closed_as is None and integrity.stores_exist(paths)
    result: integrity.ProbeResult | None = None
    if integrity.stores_exist(paths) and not (
        closed_as is not None and integrity.looks_sane(paths, closed_as)
    ):
        result = _probe(paths, probe_timeout_s, local_vectors)
    moved = _set_aside(paths, result, local_vectors) if result is not None and result.damaged else {}
    try:
        catalog = Catalog(paths.catalog, roots_file=roots_file(paths))
    except StoreError as exc:
        # The cheap check passed but SQLite disagrees: let the probe decide (a
        # locked or unreadable file is not damage and is re-raised, and on a
        # full disk or read-only folder the error says so already).
        if result is not None or exc.cannot_write or room_to_rebuild(paths.root):
            raise
        result = _probe(paths, probe_timeout_s, local_vectors)
        if not result.catalog_damaged:
            raise
        moved = _set_aside(paths, result, local_vectors)
        catalog = Catalog(paths.catalog, roots_file=roots_file(paths))
    try:
        audit = AuditLog(paths.audit, writable=True)
        repair: Repair | None = None
        if moved:
            assert result is not None
            repair = _after_repair(paths, catalog, audit, result, moved)
            log.warning("%s", repair.message)
        elif not roots_file(paths).exists() and catalog.roots():
            # A data folder from before roots.json: make the copy now.
            catalog.write_roots_file()
    except BaseException:
        catalog.close()
        raise
    return WriterStores(catalog, audit, repair, unclean)


def _probe(paths: DataPaths, timeout_s: float, local_vectors: bool = True) -> integrity.ProbeResult:
    result = integrity.probe(paths, timeout_s=timeout_s,
                             stores=integrity.STORES if local_vectors else ("catalog",))
    for store in integrity.STORES:
        verdict = getattr(result, store)
        if verdict.startswith("unknown"):
            # The probe could not tell; open as before rather than guess.
            log.warning("Docent could not check its %s before opening it: %s", store, verdict)
    return result


def _set_aside(paths: DataPaths, result: integrity.ProbeResult,
               local_vectors: bool = True) -> dict[str, tuple[Path, str]]:
    """Quarantine what the probe found damaged: ``{store: (moved to, reason)}``.

    A damaged catalog takes Chroma with it: Chroma's vectors are tied to the
    catalog's file ids and text hashes, and a rebuilt catalog embeds
    everything again anyway, so keeping them would only leave orphans.
    """
    targets: dict[str, tuple[Path, str]] = {}
    if result.catalog_damaged:
        targets["catalog"] = (paths.catalog, result.reason("catalog"))
        if local_vectors and paths.chroma.exists():
            reason = (result.reason("chroma") if result.chroma_damaged
                      else "set aside with the damaged catalog it belongs to")
            targets["chroma"] = (paths.chroma, reason)
    elif result.chroma_damaged:
        targets["chroma"] = (paths.chroma, result.reason("chroma"))
    if targets:
        blocked = room_to_rebuild(paths.root)
        if blocked:
            store, (path, reason) = next(iter(targets.items()))
            raise StoreError(
                f"Docent's {_STORE_NAMES[store]} at {path} is damaged ({reason}), but it cannot be "
                f"rebuilt now: the data folder {paths.root} cannot be written ({blocked}). "
                "Free some space (or make the folder writable) and start Docent again; nothing "
                "was moved or deleted.",
                # A read-only folder still lets `docent ask` answer from what is there.
                kind=DAMAGED if os.access(paths.root, os.W_OK) else READ_ONLY,
            )
    moved: dict[str, tuple[Path, str]] = {}
    for store, (path, reason) in targets.items():
        if store == "chroma":
            vectors.release(path)
        try:
            moved[store] = (quarantine(path, paths.root), reason)
        except OSError as exc:
            raise StoreError(
                f"Docent's {_STORE_NAMES[store]} at {path} is damaged ({reason}), and it could not "
                f"be moved aside ({exc.strerror or exc}). Close other programs using "
                f"{paths.root} and start Docent again.",
                kind=DAMAGED,
            ) from exc
    return moved


def _after_repair(
    paths: DataPaths, catalog: Catalog, audit: AuditLog, result: integrity.ProbeResult,
    moved: dict[str, tuple[Path, str]],
) -> Repair:
    """Prepare the fresh stores for rebuilding, audit it, and word the message."""
    restored: list[str] = []
    invalidated = 0
    if "catalog" in moved:
        roots = read_roots_file(roots_file(paths))
        if not roots:
            roots = salvage_roots(moved["catalog"][0] / paths.catalog.name)
        for root in roots:
            catalog.add_root(root)
        restored = [r.path for r in catalog.roots()]
    else:
        # Only Chroma was lost: every chunk lost its vector, so each file must
        # be read and embedded again on the next ingest.
        invalidated = catalog.invalidate_all()
    for store, (dest, reason) in moved.items():
        data: dict[str, object] = {
            "store": store, "path": str(paths.catalog if store == "catalog" else paths.chroma),
            "moved_to": str(dest), "reason": reason,
            "damaged": result.catalog_damaged if store == "catalog" else result.chroma_damaged,
        }
        if store == "catalog":
            data["roots_restored"] = restored
        elif "catalog" not in moved:
            data["files_to_reindex"] = invalidated
        audit.append("store_rebuilt", data)
    return Repair(
        catalog_damaged=result.catalog_damaged,
        chroma_damaged=result.chroma_damaged,
        moved=[dest for dest, _ in moved.values()],
        message=_repair_message(paths, moved, restored),
    )


def _repair_message(paths: DataPaths, moved: dict[str, tuple[Path, str]], restored: list[str]) -> str:
    where = paths.root / DAMAGED_DIR
    if "catalog" in moved:
        parts = [
            f"Docent's catalog of your documents was damaged ({moved['catalog'][1]}). "
            f"It was moved to {moved['catalog'][0]}"
            + (", together with the search index that belongs to it" if "chroma" in moved else "")
            + "."
        ]
        if restored:
            parts.append(
                f"{'Both are' if 'chroma' in moved else 'It is'} being rebuilt from your "
                f"{len(restored)} library folder(s); search results stay incomplete until "
                "that finishes."
            )
        else:
            parts.append("Your library folders could not be recovered: add them again to rebuild it.")
    else:
        parts = [
            f"Docent's search index was damaged ({moved['chroma'][1]}). It was moved to "
            f"{moved['chroma'][0]} and is being rebuilt from your documents; search results "
            "stay incomplete until that finishes."
        ]
    parts.append(f"Your conversations are safe. You may delete {where} once everything is back.")
    return " ".join(parts)


# --------------------------------------------------------------------------
# Setting aside


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def room_to_rebuild(root: Path, size: int = 1 << 20) -> str | None:
    """Why fresh stores could not be built in ``root`` now, or None when they can.

    Checked before anything is moved: on a full disk or a read-only folder a
    repair would set the old store aside and then fail to create the new
    one, leaving less than it found. One MiB written and synced is enough to
    tell, and cheap next to the rebuild that follows.
    """
    probe_file = Path(root) / f".docent-space-check.{os.getpid()}"
    try:
        with open(probe_file, "wb") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        try:
            probe_file.unlink()
        except OSError:
            pass
    return None


def quarantine(path: Path, root: Path) -> Path:
    """Move a damaged store into ``root/damaged/<name>-<UTC timestamp>/``; never delete it.

    For an SQLite file its ``-wal``, ``-shm`` and ``-journal`` companions go
    along (the WAL may hold the last committed transactions, and a file moved
    without them is a different database). Returns the folder that now holds
    it.

    Raises:
        OSError: the store could not be moved (e.g. a file still open on Windows).
    """
    path = Path(path)
    base = Path(root) / DAMAGED_DIR
    base.mkdir(parents=True, exist_ok=True)
    dest = base / f"{path.name}-{_utc_stamp()}"
    n = 1
    while dest.exists():  # two repairs within one second
        n += 1
        dest = base / f"{path.name}-{_utc_stamp()}-{n}"
    dest.mkdir()
    companions = [] if path.is_dir() else [
        path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")
    ]
    # The main file goes last: until it moves, nothing is lost if this stops.
    for item in [*companions, path]:
        if item.exists() or item.is_symlink():
            durable_move(item, dest / item.name)
    fsync_dir(dest)
    return dest


# --------------------------------------------------------------------------
# Roots kept outside the catalog


def read_roots_file(path: Path) -> list[str]:
    """The roots saved in ``roots.json``; empty when missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    roots = data.get("roots") if isinstance(data, dict) else None
    return [r for r in roots if isinstance(r, str)] if isinstance(roots, list) else []


def salvage_roots(catalog_file: Path) -> list[str]:
    """The roots still readable from a damaged catalog (best effort).

    SQLite reports corruption as errors rather than crashing, so reading a
    quarantined copy in-process is safe; it helps a data folder from before
    ``roots.json`` existed.
    """
    try:
        db = sqlite3.connect(f"{Path(catalog_file).resolve().as_uri()}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return []
    try:
        return [str(r[0]) for r in db.execute("SELECT path FROM roots ORDER BY path") if r[0]]
    except sqlite3.Error:
        return []
    finally:
        db.close()
