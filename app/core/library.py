"""The library: one data folder's stores and models, opened together.

Both front ends (the command line and the window's workers) go through
this; the heavy parts (Chroma, the embedder, the chat model) open lazily so
read-only commands such as ``status`` start instantly.

The writer checks the derived stores before opening them (see
``app.core.stores.integrity``): a damaged catalog or Chroma folder is moved to
``DATA_DIR/damaged/`` and replaced by a fresh one, ``Library.repair`` says
what happened, and ``rebuild_roots()`` names the folders to ingest again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from app.config import DataPaths, Settings
from app.core.answering.answer import Answerer
from app.core.stores.audit import AuditLog
from app.core.stores import integrity
from app.core.stores.catalog import Catalog
from app.core.models.embedder import Embedder, make_embedder
from app.core.ingest.ignore import Limits
from app.core.ingest.indexer import Indexer
from app.core.stores.integrity import ProbeResult, Repair
from app.core.models.llm import LocalModel, Sampling
from app.core.stores.lock import WriterLock
from app.core.answering.rerank import Reranker
from app.core.answering.retrieval import Retriever
from app.core.stores.vectors import VectorStore
from app.errors import StoreError, storage_problem

T = TypeVar("T")

log = logging.getLogger(__name__)

# How each store is named to the user.
_STORE_NAMES = {"catalog": "catalog", "chroma": "search index"}

# Settings whose change needs the chat model loaded again.
_MODEL_FIELDS = ("model_path", "n_ctx", "n_threads", "n_gpu_layers")
# Settings whose change needs the reranker (and the retrievers using it) built again.
_RERANK_FIELDS = ("reranker_path", "rerank_candidates")


@dataclass(frozen=True)
class Status:
    """Counts for ``docent status``."""

    files: dict[str, int]
    chunks: int
    failed: list[tuple[str, str]]
    documents: list[dict[str, object]]

    def to_json(self, with_files: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "files": self.files,
            "chunks": self.chunks,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
        }
        if with_files:
            out["documents"] = self.documents
        return out


def _close_vectors(vectors: VectorStore) -> bool:
    """Close Chroma's client so its files are flushed and released with the lock.

    chromadb caches one system per folder for the whole process; closing the
    client drops this library's reference, so the next library on the same
    folder starts from the files on disk.
    """
    try:
        vectors.close()
    except BaseException as exc:  # noqa: BLE001 - pyo3 panics are BaseExceptions
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        log.warning("The vector store did not close cleanly: %s", exc)
        return False
    return True


def _storage_words(message: str) -> bool:
    message = message.lower()
    return "is full" in message or "read-only" in message


class HeldAudit:
    """An audit log that cannot be written now: records are kept, in order,
    in memory (and reported), while reading and verifying still work."""

    def __init__(self, folder: Path) -> None:
        self._log = AuditLog(folder, writable=False)
        self.pending: list[tuple[str, dict[str, Any]]] = []

    def append(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        self.pending.append((event, data))
        return {"event": event, "data": data, "held": True}

    @property
    def held(self) -> int:
        return len(self.pending)

    def records(self) -> list[dict[str, Any]]:
        return self._log.records()

    def verify(self):  # noqa: ANN201
        return self._log.verify()

    @staticmethod
    def hash_text(text: str) -> str:
        return AuditLog.hash_text(text)


class Library:
    """A data folder, opened as the writer or as a reader.

    Args:
        data_dir: the data folder.
        settings: the settings to use (default: those saved in the folder).
        writer: take the one-writer lock (raises ``DataDirLocked`` if held).
        purpose: how the lock holder is named to other processes.
        model_path: a GGUF to use instead of the settings' model.

    Attributes:
        repair: set when the writer found a damaged store at start-up and
            replaced it; its ``message`` is for the user. None otherwise.
    """

    #: Seconds the start-up probe may take for a small library.
    probe_timeout_s: float = 60

    def __init__(
        self,
        data_dir: Path,
        *,
        settings: Settings | None = None,
        writer: bool = True,
        purpose: str = "docent",
        model_path: Path | None = None,
        answer_only_ok: bool = False,
    ) -> None:
        self.paths = DataPaths(Path(data_dir))
        self.degraded: str | None = None
        self.settings = settings or Settings.load(self.paths.settings)
        self.writer = writer
        self._lock: WriterLock | None = None
        if writer:
            try:
                self.paths.root.mkdir(parents=True, exist_ok=True)
                self._lock = WriterLock(self.paths.root, purpose)
                self._lock.acquire()
            except (StoreError, OSError) as exc:
                if not (answer_only_ok and storage_problem(exc, self.paths.root)
                        or answer_only_ok and isinstance(exc, StoreError) and _storage_words(str(exc))):
                    raise
                self._lock = None
                self._open_answer_only(exc)
                return
        self._model_path = Path(model_path) if model_path else None
        self._model: LocalModel | None = None
        self._model_guard = threading.Lock()
        # The window's workers open the lazy parts from different threads;
        # each part must be built once.
        self._parts: dict[str, Any] = {}
        self._parts_guard = threading.RLock()
        self.repair: Repair | None = None
        self._opened = False
        try:
            if writer:
                self._open_writer()
            else:
                self.catalog = Catalog(self.paths.catalog, readonly=True)
                self.audit = AuditLog(self.paths.audit, writable=False)
            self._opened = True
        except StoreError as exc:
            self.close()
            if not (answer_only_ok and _storage_words(str(exc))):
                raise
            self._open_answer_only(exc)
        except BaseException:
            self.close()
            raise

    def _open_answer_only(self, cause: BaseException) -> None:
        """Open for questions only, when the data folder cannot be written
        (full disk, read-only): reads work, audit records wait in memory."""
        self.writer = False
        self._lock = None
        self._opened = False
        self._parts = {}
        self._parts_guard = threading.RLock()
        self._model_path = getattr(self, "_model_path", None)
        self._model = getattr(self, "_model", None)
        self._model_guard = threading.Lock()
        self.repair = None
        self.degraded = str(cause)
        self.catalog = Catalog(self.paths.catalog, readonly=True)
        self.audit = HeldAudit(self.paths.audit)
        try:
            vectors: VectorStore | None = VectorStore(self.paths.chroma)
        except StoreError:
            vectors = None  # search falls back to keywords, ranked by meaning
        self._parts["vectors"] = vectors

    def close(self) -> None:
        """Release the stores and the writer lock.

        The writer leaves a clean-shutdown marker behind, so the next start
        can skip the integrity probe.
        """
        with self._parts_guard:
            vectors = self._parts.pop("vectors", None)
            indexer = self._parts.pop("indexer", None)
        if indexer is not None:
            indexer.close()  # its reader processes
        clean = _close_vectors(vectors) if vectors is not None else True
        if getattr(self, "catalog", None) is not None:
            self.catalog.close()
        if self._lock is not None:
            # Before the lock goes: the next writer must find it once it holds the lock.
            if self._opened and clean:
                self._write_clean_marker()
            self._lock.release()
            self._lock = None

    # --- start-up integrity (writer only) -----------------------------------

    @property
    def _roots_file(self) -> Path:
        return self.paths.root / integrity.ROOTS_FILE

    def _write_clean_marker(self) -> None:
        try:
            integrity.write_clean_marker(self.paths)
        except OSError:
            pass  # only costs a probe at the next start

    def _open_writer(self) -> None:
        """Check the stores, set damaged ones aside, then open catalog and audit log.

        Runs with the writer lock held and before Chroma or the catalog is
        opened in this process: a damaged Chroma segment can crash the
        process, so only a child process looks at the stores first.
        """
        # Whether the last writer closed cleanly (and what the stores looked
        # like then); from now until close() the marker is absent, so a crash
        # of this process is noticed at the next start.
        closed_as = integrity.take_clean_marker(self.paths)
        # After a crash the two stores may disagree by a file or two; the
        # indexer reconciles them when it is first used (see ``indexer``).
        self.unclean = closed_as is None and integrity.stores_exist(self.paths)
        result: ProbeResult | None = None
        if integrity.stores_exist(self.paths) and not (
            closed_as is not None and integrity.looks_sane(self.paths, closed_as)
        ):
            result = self._probe()
        moved = self._set_aside(result) if result is not None and result.damaged else {}
        try:
            self.catalog = Catalog(self.paths.catalog, roots_file=self._roots_file)
        except StoreError:
            # The cheap check passed but SQLite disagrees: let the probe decide
            # (a locked or unreadable file is not damage and is re-raised, and
            # on a full disk or read-only folder the error says so already).
            if result is not None or integrity.room_to_rebuild(self.paths.root):
                raise
            result = self._probe()
            if not result.catalog_damaged:
                raise
            moved = self._set_aside(result)
            self.catalog = Catalog(self.paths.catalog, roots_file=self._roots_file)
        self.audit = AuditLog(self.paths.audit, writable=True)
        if moved:
            assert result is not None
            self.repair = self._after_repair(result, moved)
            log.warning("%s", self.repair.message)
        elif not self._roots_file.exists() and self.catalog.roots():
            # A data folder from before roots.json: make the copy now.
            self.catalog.write_roots_file()

    def _probe(self) -> ProbeResult:
        result = integrity.probe(self.paths, timeout_s=self.probe_timeout_s)
        for store in integrity.STORES:
            verdict = getattr(result, store)
            if verdict.startswith("unknown"):
                # The probe could not tell; open as before rather than guess.
                log.warning("Docent could not check its %s before opening it: %s", store, verdict)
        return result

    def _set_aside(self, result: ProbeResult) -> dict[str, tuple[Path, str]]:
        """Quarantine what the probe found damaged: ``{store: (moved to, reason)}``.

        A damaged catalog takes Chroma with it: Chroma's vectors are tied to
        the catalog's file ids and text hashes, and a rebuilt catalog embeds
        everything again anyway, so keeping them would only leave orphans.
        """
        targets: dict[str, tuple[Path, str]] = {}
        if result.catalog_damaged:
            targets["catalog"] = (self.paths.catalog, result.reason("catalog"))
            if self.paths.chroma.exists():
                reason = (result.reason("chroma") if result.chroma_damaged
                          else "set aside with the damaged catalog it belongs to")
                targets["chroma"] = (self.paths.chroma, reason)
        elif result.chroma_damaged:
            targets["chroma"] = (self.paths.chroma, result.reason("chroma"))
        if targets:
            blocked = integrity.room_to_rebuild(self.paths.root)
            if blocked:
                store, (path, reason) = next(iter(targets.items()))
                raise StoreError(
                    f"Docent's {_STORE_NAMES[store]} at {path} is damaged ({reason}), but it cannot be "
                    f"rebuilt now: the data folder {self.paths.root} cannot be written ({blocked}). "
                    "Free some space (or make the folder writable) and start Docent again; nothing "
                    "was moved or deleted."
                )
        moved: dict[str, tuple[Path, str]] = {}
        for store, (path, reason) in targets.items():
            if store == "chroma":
                integrity.release_chroma(path)
            try:
                moved[store] = (integrity.quarantine(path, self.paths.root), reason)
            except OSError as exc:
                raise StoreError(
                    f"Docent's {_STORE_NAMES[store]} at {path} is damaged ({reason}), and it could not "
                    f"be moved aside ({exc.strerror or exc}). Close other programs using "
                    f"{self.paths.root} and start Docent again."
                ) from exc
        return moved

    def _after_repair(self, result: ProbeResult, moved: dict[str, tuple[Path, str]]) -> Repair:
        """Prepare the fresh stores for rebuilding, audit it, and word the message."""
        restored: list[str] = []
        invalidated = 0
        if "catalog" in moved:
            roots = integrity.read_roots_file(self._roots_file)
            if not roots:
                where = moved["catalog"][0] / self.paths.catalog.name
                roots = integrity.salvage_roots(where)
            for root in roots:
                self.catalog.add_root(root)
            restored = [r.path for r in self.catalog.roots()]
        else:
            # Only Chroma was lost: every chunk lost its vector, so each file
            # must be read and embedded again on the next ingest.
            invalidated = self.catalog.invalidate_all()
        for store, (dest, reason) in moved.items():
            data: dict[str, object] = {
                "store": store, "path": str(self.paths.catalog if store == "catalog" else self.paths.chroma),
                "moved_to": str(dest), "reason": reason,
                "damaged": result.catalog_damaged if store == "catalog" else result.chroma_damaged,
            }
            if store == "catalog":
                data["roots_restored"] = restored
            elif "catalog" not in moved:
                data["files_to_reindex"] = invalidated
            self.audit.append("store_rebuilt", data)
        return Repair(
            catalog_damaged=result.catalog_damaged,
            chroma_damaged=result.chroma_damaged,
            moved=[dest for dest, _ in moved.values()],
            message=self._repair_message(result, moved, restored),
        )

    def _repair_message(
        self, result: ProbeResult, moved: dict[str, tuple[Path, str]], restored: list[str]
    ) -> str:
        where = self.paths.root / integrity.DAMAGED_DIR
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

    def rebuild_roots(self) -> list[Path]:
        """The library folders to ingest again after a repair (all roots otherwise).

        The window and ``docent watch`` reconcile every root at start-up, which
        rebuilds by itself; ``docent ingest`` only reindexes what it is given,
        so callers pass these to ``indexer.ingest``.
        """
        return [Path(r.path) for r in self.catalog.roots()]

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- lazily opened parts -----------------------------------------------

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._parts_guard:
            if name not in self._parts:
                self._parts[name] = build()
            return self._parts[name]  # type: ignore[no-any-return]

    @property
    def embedder(self) -> Embedder:
        def build() -> Embedder:
            s = self.settings
            embedder = make_embedder(
                s.embedding_model(), backend=s.embedding_backend,
                # The int8 export is made once per model, inside the data folder.
                cache_root=self.paths.models / "onnx-int8",
            )
            self._check_embedder(embedder)
            return embedder

        return self._once("embedder", build)

    def use_embedder(self, embedder: Embedder) -> None:
        """Use an already loaded embedder (tests share one across libraries)."""
        self._check_embedder(embedder)
        with self._parts_guard:
            self._parts["embedder"] = embedder

    def _check_embedder(self, embedder: Embedder) -> None:
        """Vectors of two different models, or backends, must never be mixed in one store.

        The int8 backend's vectors are close to full precision's (cosine about
        0.99) but not equal, and the indexer reuses stored vectors by text, so
        switching backends on an indexed library would leave it half one and
        half the other. The backend is therefore part of the identity; the
        torch backend keeps the old identity so existing libraries still open.
        """
        backend = getattr(embedder, "backend", "torch")
        identity = f"{embedder.name}:{embedder.dim}" + ("" if backend == "torch" else f":{backend}")
        stored = self.catalog.get_meta("embedder")
        if stored == identity:
            self._check_fingerprint(embedder)
            return
        if stored is not None and self.catalog.indexed_chunk_count() > 0:
            name, _dim, *rest = stored.split(":") + [""]
            stored_backend = rest[0] or "torch"
            move = (f"move {self.paths.catalog.name} and chroma/ out of {self.paths.root} and re-index "
                    "(run `docent ingest FOLDER...` again, or add your folders in the window)")
            if name == embedder.name and stored_backend != backend:
                names = {"torch": "standard (full-precision)", "onnx-int8": "faster (ONNX int8)"}
                raise StoreError(
                    f"This library was indexed with the {names.get(stored_backend, stored_backend)} "
                    f"embedding backend, but the settings now choose the {names.get(backend, backend)} "
                    "one. Their vectors differ slightly and Docent never mixes them in one index. "
                    f"Choose the original backend again in the settings, or {move}."
                )
            raise StoreError(
                f"This library was indexed with the embedding model {name}, but the "
                f"settings now choose {embedder.name}. Choose the original model again, or {move}."
            )
        # A new or still empty library takes the identity of what will fill it.
        if self.writer:
            self.catalog.set_meta("embedder", identity)
            fingerprint = getattr(embedder, "fingerprint", None)
            if fingerprint:
                self.catalog.set_meta("embedder_fingerprint", fingerprint)

    def _check_fingerprint(self, embedder: Embedder) -> None:
        """Same folder name and size, but other weights: still another model.

        The identity above names the model by its folder, and the bundled
        model's folder is called ``model``, as a user's may be. Libraries
        indexed before fingerprints were recorded take the current one.
        """
        fingerprint = getattr(embedder, "fingerprint", None)
        if not fingerprint:
            return
        stored = self.catalog.get_meta("embedder_fingerprint")
        if stored is None or self.catalog.indexed_chunk_count() == 0:
            if self.writer and stored != fingerprint:
                self.catalog.set_meta("embedder_fingerprint", fingerprint)
            return
        if stored != fingerprint:
            raise StoreError(
                f"This library was indexed with another embedding model than the one in "
                f"{self.settings.embedding_model()}, although both folders are called {embedder.name}. "
                "Docent never mixes two models' vectors in one index. Choose the original model "
                f"folder again in the settings, or move {self.paths.catalog.name} and chroma/ out of "
                f"{self.paths.root} and re-index (run `docent ingest FOLDER...` again)."
            )

    @property
    def vectors(self) -> VectorStore:
        return self._once("vectors", lambda: VectorStore(self.paths.chroma))

    @property
    def indexer(self) -> Indexer:
        indexer = self._indexer()
        if getattr(self, "unclean", False) and self.writer:
            self.unclean = False
            indexer.repair()
        return indexer

    def _indexer(self) -> Indexer:
        s = self.settings
        return self._once("indexer", lambda: Indexer(
            self.catalog, self.vectors, self.embedder, self.audit,
            chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap,
            limits=Limits(max_file_bytes=s.max_file_mb * 1024 * 1024 if s.max_file_mb else None,
                          follow_symlinks=s.follow_symlinks),
            tokenizer_file=s.embedding_model() / "tokenizer.json",
        ))

    @property
    def reranker(self) -> Reranker | None:
        """The settings' cross-encoder (loaded at its first use), or None when none is set.

        Raises:
            RerankerError: the folder in the settings holds no cross-encoder.
        """
        path = self.settings.reranker_path
        if not path:
            return None
        return self._once("reranker", lambda: Reranker(path))

    def use_reranker(self, reranker: Reranker) -> None:
        """Use an already loaded reranker (tests share one across libraries)."""
        with self._parts_guard:
            self._parts["reranker"] = reranker
            # Retrievers built before this would keep the old one.
            self._parts.pop("retriever", None)
            self._parts.pop("keyword_retriever", None)
            self._parts.pop("answerer", None)

    @property
    def retriever(self) -> Retriever:
        def build() -> Retriever:
            reranker = self.reranker  # first: a bad folder is reported before the embedder loads
            return Retriever(self.catalog, self.vectors, self.embedder,
                             reranker=reranker, rerank_candidates=self.settings.rerank_candidates)

        return self._once("retriever", build)

    @property
    def keyword_retriever(self) -> Retriever:
        """Keyword search only: needs neither Chroma nor the embedder (the
        reranker, when set, reads only the passages' text)."""
        return self._once("keyword_retriever", lambda: Retriever(
            self.catalog, reranker=self.reranker, rerank_candidates=self.settings.rerank_candidates,
        ))

    @property
    def model_path(self) -> Path:
        return self._model_path or self.settings.chat_model()

    def model(self) -> LocalModel:
        """The chat model, loaded on first use (call it from the thread that owns it)."""
        with self._model_guard:
            if self._model is None:
                s = self.settings
                self._model = LocalModel(
                    self.model_path, n_ctx=s.n_ctx, n_threads=s.n_threads, n_gpu_layers=s.n_gpu_layers
                )
            return self._model

    def use_model(self, model: LocalModel) -> None:
        """Use an already loaded chat model (tests share one)."""
        with self._model_guard:
            self._model = model

    @property
    def answerer(self) -> Answerer:
        return self._once("answerer", lambda: Answerer(
            self.retriever, self.model, self.model_path.name, self.audit, self.embedder,
            min_relevance=self.settings.min_relevance, system_prompt=self.settings.system_prompt,
        ))

    def apply_settings(self, settings: Settings) -> bool:
        """Use new settings from now on; True when the chat model must be reloaded.

        Sampling and prompt settings apply to the next answer; model settings
        drop the loaded model so the next use loads the new one.
        """
        old = self.settings
        self.settings = replace(settings)
        if self.writer:
            self.settings.save(self.paths.settings)
        reload = any(getattr(old, f) != getattr(settings, f) for f in _MODEL_FIELDS)
        with self._parts_guard:
            self._parts.pop("answerer", None)
            if any(getattr(old, f) != getattr(settings, f) for f in _RERANK_FIELDS):
                for part in ("reranker", "retriever", "keyword_retriever"):
                    self._parts.pop(part, None)
        if reload:
            self._model_path = None
            with self._model_guard:
                self._model = None
        self.audit.append("settings", {
            "changed": {f: getattr(settings, f) for f in vars(settings) if getattr(old, f) != getattr(settings, f)},
        })
        return reload

    def sampling(self, max_tokens: int | None = None) -> Sampling:
        """Sampling settings from the user's settings."""
        s = self.settings
        return Sampling(
            temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
            repeat_penalty=s.repeat_penalty, max_tokens=max_tokens or s.max_tokens,
        )

    # --- status -------------------------------------------------------------

    def status(self) -> Status:
        """What the catalog knows, for ``docent status``."""
        files = self.catalog.files()
        return Status(
            files=self.catalog.counts(),
            chunks=self.catalog.indexed_chunk_count(),
            failed=[(f.path, f.reason or "failed") for f in files if f.status == "failed"],
            documents=[
                {"path": f.path, "status": f.status, "chunks": f.chunks, "reason": f.reason}
                for f in files
            ],
        )
