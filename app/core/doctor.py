"""``docent doctor``: health checks of a real data folder, read-only.

Each check looks at one thing a user could fix (the data folder, the models,
the two stores and whether they agree, the audit log, the disk, the inotify
watch limit, the processor) and says, when it is not fine, what to do.

Doctor never writes: it takes no writer lock, repairs nothing, moves
nothing, and opens every SQLite file read-only (``immutable`` unless a
running writer's WAL is there to be read), so it can run beside the app or
``docent serve``. The audit log is verified with a read-only
:class:`~app.core.stores.audit.AuditLog`.

Cost (what ``/health`` should know before calling it every minute):

* ``run(models=True)`` loads the embedding model and the GGUF model (seconds,
  and their memory) -- for ``docent doctor`` only.
* ``run(models=False)`` only checks that the model files are there; the
  store probe (a child process that imports chromadb and reads every vector:
  1-3 s plus about a second per 50k vectors) still runs.
* ``run(models=False, probe=False)`` replaces that probe with the cheap
  header-and-size check (:func:`~app.core.stores.integrity.looks_sane`); the
  rest reads the catalog's ids and the audit log (well under a second for an
  ordinary library). This is the mode for a frequent ``/health``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from app.config import DataPaths, Settings

Status = Literal["ok", "warning", "problem"]

#: Below this much free space an ingest or even the audit log can fail.
DISK_PROBLEM_BYTES = 500 * 1024 * 1024
#: Below this much, warn before it becomes a problem.
DISK_WARNING_BYTES = 2 * 1024 * 1024 * 1024
#: Watches a user is told to allow (the usual value for IDEs and sync tools).
SUGGESTED_WATCHES = 524288
INOTIFY_LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_watches")
#: Instruction sets llama.cpp and onnxruntime are much faster with.
CPU_FLAGS = ("avx", "avx2", "fma", "f16c")


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


#: How free space is measured; a test replaces it to simulate a full disk.
disk_usage: Callable[[Path], DiskUsage] = lambda path: DiskUsage(*shutil.disk_usage(path))  # noqa: E731


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``fix`` says what to do when it is not ``ok``."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DoctorReport:
    """Every check that ran, in order."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check found a problem (warnings do not count)."""
        return not any(c.status == "problem" for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status == "problem"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warning"]

    def to_json(self) -> dict[str, Any]:
        """``{"ok": bool, "checks": [...]}`` (what ``docent doctor --json`` prints)."""
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}

    def summary(self) -> dict[str, Any]:
        """A small summary for ``/health``: ``ok``, ``degraded`` (warnings only)
        or ``problems``, the counts, and each check that is not ok."""
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in ("ok", "warning", "problem")}
        status = "problems" if counts["problem"] else "degraded" if counts["warning"] else "ok"
        return {
            "status": status,
            "counts": counts,
            "issues": [{"name": c.name, "status": c.status, "detail": c.detail}
                       for c in self.checks if c.status != "ok"],
        }

    def verdict(self) -> str:
        """The last line of the report for a person."""
        if not self.ok:
            n = len(self.problems)
            return f"{n} problem{'s' if n != 1 else ''} found; see what to do above."
        if self.warnings:
            n = len(self.warnings)
            return f"Healthy, with {n} warning{'s' if n != 1 else ''}."
        return "Healthy: no problems found."


# --------------------------------------------------------------------------
# Helpers


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that cannot write to ``path`` or create anything beside it.

    With a running writer's WAL and its index both present, SQLite reads
    through them (``mode=ro``); otherwise the main file is read as it
    stands (``immutable=1``), so no ``-wal`` or ``-shm`` file is created.
    """
    wal = path.with_name(path.name + "-wal")
    shm = path.with_name(path.name + "-shm")
    live = wal.exists() and shm.exists()
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if live else "&immutable=1")
    db = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        yield db
    finally:
        db.close()


def _has_library(paths: DataPaths) -> bool:
    return paths.catalog.exists() or paths.chroma.exists()


# --------------------------------------------------------------------------
# The checks


def check_data_folder(paths: DataPaths) -> Check:
    """The data folder exists and can be written (checked without writing)."""
    name = "Data folder"
    root = paths.root
    if not root.exists():
        return Check(name, "ok", f"{root} does not exist yet: no library yet (the first ingest creates it)")
    if not root.is_dir():
        return Check(name, "problem", f"{root} is a file, not a folder",
                     f"Move the file {root} aside, or choose another folder with --data-dir.")
    if not os.access(root, os.W_OK | os.X_OK):
        return Check(name, "problem", f"{root} cannot be written by this user",
                     f"Give your user write permission on {root} (for example `chmod u+rwx {root}`), "
                     "or choose another folder with --data-dir.")
    what = "library" if _has_library(paths) else "no library yet"
    return Check(name, "ok", f"{root} is writable ({what})")


def check_embedding_model(settings: Settings, *, load: bool, cache_root: Path | None = None) -> Check:
    """The embedding model folder is usable; when ``load``, it loads and encodes a sentence.

    With the int8 backend it loads the export (shipped, or made earlier in
    ``cache_root``); one not made yet is only reported, since the doctor writes nothing.
    """
    from app.core.models.embedder import backend_available, embedding_model_problem, int8_export, make_embedder
    from app.resources import resources_dir

    name = "Embedding model"
    fix = ("Choose a sentence-transformers folder in the settings (Embedding model), or clear it "
           "to use the bundled model; if the bundled one is missing, reinstall Docent.")
    try:
        folder = settings.embedding_model()
    except Exception as exc:  # noqa: BLE001 - the bundled package may be missing
        return Check(name, "problem", f"the bundled embedding model cannot be found ({exc})", fix)
    problem = embedding_model_problem(folder)
    if problem is not None:
        return Check(name, "problem", problem, fix)
    if not load:
        return Check(name, "ok", f"{folder.name} present (not loaded)")
    backend = settings.embedding_backend
    if not backend_available(backend):
        return Check(name, "problem", "the standard (full-precision) embedding backend needs PyTorch, "
                     "which this installation leaves out",
                     "Choose the faster (ONNX int8) backend in Settings → Library → Embedding.")
    shipped = [resources_dir() / "models" / "onnx-int8"]
    cache = cache_root if cache_root is not None else Path(os.devnull)
    if backend != "torch" and int8_export(folder, cache, shipped) is None:
        return Check(name, "ok", f"{folder.name} present (its int8 export is made when first used)")
    try:
        embedder = make_embedder(folder, backend=backend, cache_root=cache, shipped=shipped)
        vectors = embedder.encode(["Docent checks that its embedding model works."])
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        return Check(name, "problem", f"{folder} does not load: {type(exc).__name__}: {exc}", fix)
    note = " (faster ONNX int8 backend)" if backend != "torch" else " (full-precision backend)"
    shown = getattr(embedder, "display_name", None) or embedder.name
    return Check(name, "ok", f"{shown} loads and encodes ({vectors.shape[1]} dimensions){note}")


def check_language_model(settings: Settings, *, load: bool) -> Check:
    """The configured GGUF file exists; when ``load``, llama.cpp loads it."""
    from app.core.models.model_files import is_gguf

    name = "Language model"
    fix = ("Choose a complete GGUF model file in the settings (Model), or clear the setting to use "
           "the bundled model; if the bundled one is missing, reinstall Docent.")
    try:
        path = settings.chat_model()
    except Exception as exc:  # noqa: BLE001 - the bundled package may be missing
        return Check(name, "problem", f"the bundled language model cannot be found ({exc})", fix)
    if not path.is_file():
        return Check(name, "problem", f"the model file {path} does not exist", fix)
    if not is_gguf(path):
        return Check(name, "problem", f"{path} is not a GGUF model file", fix)
    if not load:
        return Check(name, "ok", f"{path.name} present ({_size(path.stat().st_size)}, not loaded)")
    try:
        from app.core.models.llm import LocalModel

        # A small context: the point is that the file loads, not to answer.
        model = LocalModel(path, n_ctx=512, n_threads=settings.n_threads, n_gpu_layers=settings.n_gpu_layers)
        tokens = model.count_tokens("Docent checks that its language model works.")
        del model
    except Exception as exc:  # noqa: BLE001 - ModelError names the file; anything else too
        return Check(name, "problem", str(exc), fix)
    return Check(name, "ok", f"{path.name} loads ({_size(path.stat().st_size)}, {tokens} tokens in a test sentence)")


def check_stores(paths: DataPaths, *, probe: bool) -> tuple[Check, bool]:
    """Whether the catalog or the vector store is damaged; also whether both can be read."""
    from app.core.stores import integrity

    name = "Stores"
    if not _has_library(paths):
        return Check(name, "ok", "no library yet"), False
    fix = ("Close Docent and open it again (or run `docent ingest` on your folders): a damaged store is "
           "moved aside and rebuilt from your documents. The damaged copy is kept in the data folder.")
    if not probe:
        if integrity.looks_sane(paths):
            return Check(name, "ok", "catalog and vector store look intact (quick check)"), True
        return Check(name, "problem", "a store file is empty, cut short or no longer SQLite "
                     "(quick check; run `docent doctor` for the full one)", fix), False
    result, moved = _probe_copy(paths)
    if result is None:
        return Check(name, "warning", "there is no room to check the vector store without touching it "
                     f"(a copy of {_size(_store_size(paths))} is needed in the temporary folder)",
                     "Free up space in the temporary folder (or set TMPDIR to a larger one) and run "
                     "`docent doctor` again."), False
    if result.damaged and moved:
        return Check(name, "warning", "the stores changed while they were being checked (Docent is indexing)",
                     "Run `docent doctor` again when indexing has finished."), False
    damaged = [(label, result.reason(store)) for store, label in (("catalog", "catalog"), ("chroma", "vector store"))
               if getattr(result, f"{store}_damaged")]
    if damaged:
        detail = "; ".join(f"the {label} is damaged ({why})" for label, why in damaged)
        return Check(name, "problem", detail, fix), False
    unknown = [(s, v) for s, v in (("catalog", result.catalog), ("vector store", result.chroma))
               if v.startswith("unknown")]
    if unknown:
        detail = "; ".join(f"the {s} could not be checked ({v.partition(':')[2].strip()})" for s, v in unknown)
        return Check(name, "warning", detail,
                     "Check free disk space and the data folder's permissions, then run `docent doctor` again."), False
    missing = [s for s, v in (("catalog", result.catalog), ("vector store", result.chroma)) if v == "missing"]
    if missing:
        return Check(name, "warning", f"the {' and the '.join(missing)} is missing",
                     "Run `docent ingest` on your folders (or open the app) to build it again."), False
    return Check(name, "ok", "catalog and vector store intact"), True


def _store_size(paths: DataPaths) -> int:
    total = 0
    for f in paths.chroma.rglob("*") if paths.chroma.is_dir() else []:
        try:
            total += f.stat().st_size if f.is_file() else 0
        except OSError:
            pass
    return total


def _probe_copy(paths: DataPaths) -> tuple[Any, bool]:
    """The integrity probe, run on a copy: chromadb writes to a store it opens
    (even only to read it), and doctor must leave the data folder as it was.

    The catalog is probed in place (the probe opens SQLite ``immutable``,
    which writes nothing) through a link from the temporary folder. Returns
    (the probe's result or None when there is no room for the copy, whether
    the stores changed while they were copied: a writer at work).
    """
    import tempfile

    from app.core.stores import integrity

    before = integrity.fingerprint(paths)
    need = _store_size(paths)
    tmp_root = Path(tempfile.gettempdir())
    if need and disk_usage(tmp_root).free < need * 1.2 + 64 * 1024 * 1024:
        return None, False
    with tempfile.TemporaryDirectory(prefix="docent-doctor-") as tmp:
        copy = DataPaths(Path(tmp))
        if paths.catalog.exists():
            copy.catalog.symlink_to(paths.catalog.resolve())
        if paths.chroma.exists():
            try:
                shutil.copytree(paths.chroma, copy.chroma, symlinks=True)
            except OSError:
                return None, False
        result = integrity.probe(copy)
    return result, integrity.fingerprint(paths) != before


def _catalog_facts(paths: DataPaths) -> tuple[set[str], dict[str, int]]:
    with _read_only(paths.catalog) as db:
        ids = {str(r[0]) for r in db.execute("SELECT id FROM chunks")}
        counts = {str(s): int(n) for s, n in db.execute("SELECT status, COUNT(*) FROM files GROUP BY status")}
    return ids, counts


def _vector_ids(paths: DataPaths) -> set[str]:
    """Every vector id, read from Chroma's SQLite metadata segment (no chromadb, no writes)."""
    from app.core.stores.vectors import COLLECTION

    with _read_only(paths.chroma / "chroma.sqlite3") as db:
        rows = db.execute(
            "SELECT e.embedding_id FROM embeddings e JOIN segments s ON e.segment_id = s.id "
            "JOIN collections c ON s.collection = c.id WHERE c.name = ? AND s.scope = 'METADATA'",
            (COLLECTION,),
        )
        return {str(r[0]) for r in rows}


def check_agreement(paths: DataPaths) -> tuple[Check, dict[str, int]]:
    """Catalog chunks and vectors name the same ids (reported only, never repaired)."""
    name = "Catalog and vectors"
    try:
        chunk_ids, counts = _catalog_facts(paths)
        vector_ids = _vector_ids(paths)
    except (sqlite3.Error, OSError) as exc:
        return Check(name, "warning", f"could not be compared ({exc})",
                     "Run `docent doctor` again; if it persists, close Docent and open it again."), {}
    orphans = len(vector_ids - chunk_ids)
    missing = len(chunk_ids - vector_ids)
    if orphans or missing:
        return Check(name, "problem",
                     f"{_count(orphans, 'vector')} without a catalog entry, "
                     f"{_count(missing, 'chunk')} without vectors",
                     "Run `docent ingest` on your folders or open the app to repair them."), counts
    return Check(name, "ok", f"{_count(len(chunk_ids), 'chunk')}, each with its vector"), counts


def check_files(counts: dict[str, int]) -> Check:
    """Files left pending (info) or failed (a warning)."""
    name = "Files"
    indexed, failed = counts.get("indexed", 0), counts.get("failed", 0)
    pending = counts.get("pending", 0) + counts.get("indexing", 0)
    parts = [f"{indexed:,} indexed"]
    if pending:
        parts.append(f"{pending:,} waiting to be indexed (the next ingest does them)")
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']:,} skipped")
    if failed:
        parts.append(f"{failed:,} failed")
        return Check(name, "warning", ", ".join(parts),
                     f"See why with `docent status --files`; fix or remove the {_count(failed, 'file')}, "
                     "then run `docent ingest` again.")
    return Check(name, "ok", ", ".join(parts))


def check_audit(paths: DataPaths) -> Check:
    """The audit log's hash chain is intact (verified read-only)."""
    from app.core.stores.audit import AuditLog

    name = "Audit log"
    if not paths.audit.exists():
        return Check(name, "ok", "no audit log yet")
    try:
        result = AuditLog(paths.audit, writable=False).verify()
    except Exception as exc:  # noqa: BLE001 - an unreadable log is the finding
        return Check(name, "problem", f"{paths.audit} cannot be read ({exc})",
                     f"Check the permissions of {paths.audit}, then run `docent doctor` again.")
    if not result.ok:
        where = f"record {result.broken_at}" if result.broken_at is not None else "the log"
        return Check(name, "problem", f"the hash chain breaks at {where}: {result.reason}",
                     f"Keep a copy of {paths.audit} as evidence; the records from {where} on cannot be "
                     "trusted. Restore the folder from a backup if you have one, or run `docent audit verify` "
                     "to see the details.")
    note = f" ({result.reason})" if result.reason else ""
    return Check(name, "ok", f"{_count(result.records, 'record')} intact{note}")


def check_disk(paths: DataPaths) -> Check:
    """Free space on the data folder's filesystem."""
    name = "Disk space"
    where = paths.root
    while not where.exists() and where != where.parent:
        where = where.parent  # a data folder not made yet: the disk it will be on
    try:
        usage = disk_usage(where)
    except OSError as exc:
        return Check(name, "warning", f"free space on {where} cannot be measured ({exc})", None)
    detail = f"{_size(usage.free)} free on the data folder's disk ({where})"
    fix = (f"Free up space on the disk holding {paths.root} (delete or move files), or move the data "
           "folder to a larger disk and pass --data-dir.")
    if usage.free < DISK_PROBLEM_BYTES:
        return Check(name, "problem", detail + f"; indexing needs at least {_size(DISK_PROBLEM_BYTES)}", fix)
    if usage.free < DISK_WARNING_BYTES:
        return Check(name, "warning", detail + "; running low", fix)
    return Check(name, "ok", detail)


def _library_roots(paths: DataPaths) -> list[Path]:
    """The library's folders: from the catalog, else its copy in roots.json (a damaged catalog)."""
    if paths.catalog.exists():
        try:
            with _read_only(paths.catalog) as db:
                return [Path(str(r[0])) for r in db.execute("SELECT path FROM roots")]
        except (sqlite3.Error, OSError):
            pass
    try:
        data = json.loads((paths.root / "roots.json").read_text(encoding="utf-8"))
        return [Path(str(r)) for r in data.get("roots", [])]
    except (OSError, ValueError, AttributeError):
        return []


def _count_folders(roots: list[Path], limit: int) -> int:
    """Folders under ``roots`` (each needs one inotify watch), stopping past ``limit``.

    Ignore rules are not applied, so this can overcount a little: the safe side.
    """
    n = 0
    for root in roots:
        if not root.is_dir():
            continue
        for _dirpath, _dirs, _files in os.walk(root, onerror=lambda _e: None):
            n += 1
            if n > limit:
                return n
    return n


def check_inotify(paths: DataPaths, limit_file: Path = INOTIFY_LIMIT_FILE) -> Check | None:
    """Enough inotify watches for every folder in the library (Linux only; None elsewhere)."""
    name = "Folder watching"
    if platform.system() != "Linux":
        return None
    try:
        limit = int(limit_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return Check(name, "ok", "the inotify watch limit cannot be read; folders are rescanned instead")
    roots = _library_roots(paths)
    needed = _count_folders(roots, limit)
    detail = f"{_count(needed, 'folder')} to watch, limit {limit:,} inotify watches"
    fix = (f"Raise the limit: `sudo sysctl fs.inotify.max_user_watches={SUGGESTED_WATCHES}`; to keep it after "
           f"a restart, add `fs.inotify.max_user_watches={SUGGESTED_WATCHES}` to /etc/sysctl.d/90-docent.conf. "
           "Until then changes are picked up by the periodic rescan.")
    if needed > limit:
        return Check(name, "problem", f"more than {limit:,} folders to watch, above the inotify limit", fix)
    if needed > 0.8 * limit:
        return Check(name, "warning", detail + " (other programs use watches too)", fix)
    return Check(name, "ok", detail)


def _meminfo_bytes(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            try:
                return int(line.split()[1]) * 1024
            except (IndexError, ValueError):
                return None
    return None


def check_cpu(cpuinfo: str | None = None, meminfo: str | None = None) -> Check:
    """AVX/AVX2/FMA/F16C (x86-64 Linux), cores and memory."""
    name = "Processor"
    parts = [f"{os.cpu_count() or 1} cores"]
    if meminfo is None:
        try:
            meminfo = Path("/proc/meminfo").read_text(encoding="ascii", errors="replace")
        except OSError:
            meminfo = ""
    memory = _meminfo_bytes(meminfo)
    if memory is not None:
        parts.append(f"{_size(memory)} memory")
    x86_linux = platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")
    if cpuinfo is None and x86_linux:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = None
    flags: set[str] = set()
    for line in (cpuinfo or "").splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if flags:
        missing = [f for f in CPU_FLAGS if f not in flags]
        if missing:
            parts.append(f"lacks {', '.join(m.upper() for m in missing)}")
            return Check(name, "warning", ", ".join(parts),
                         "Answers need a processor with AVX2 (Intel from 2013, AMD from 2015); searching and "
                         "indexing still work but are much slower. Use a newer computer for answers.")
        parts.append(", ".join(f.upper() for f in CPU_FLAGS))
    if memory is not None and memory < 4 * 1024**3:
        return Check(name, "warning", ", ".join(parts) + "; under 4 GB of memory",
                     "Close other programs while indexing, or choose a smaller model in the settings.")
    return Check(name, "ok", ", ".join(parts))


# --------------------------------------------------------------------------
# All of them


def run(paths: DataPaths, settings: Settings, *, models: bool = True, probe: bool = True) -> DoctorReport:
    """Run every check on ``paths``, writing nothing; see the module doc for the cost.

    Args:
        models: load both models (seconds); False only checks their files.
        probe: run the store probe in a child process; False uses the quick
            header-and-size check instead (for a frequent ``/health``).
    """
    report = DoctorReport()
    add = report.checks.append
    add(check_data_folder(paths))
    add(check_embedding_model(settings, load=models, cache_root=paths.models / "onnx-int8"))
    add(check_language_model(settings, load=models))
    stores, readable = check_stores(paths, probe=probe)
    add(stores)
    if readable:
        agreement, counts = check_agreement(paths)
        add(agreement)
        if counts:
            add(check_files(counts))
    add(check_audit(paths))
    add(check_disk(paths))
    watch = check_inotify(paths)
    if watch is not None:
        add(watch)
    add(check_cpu())
    return report
