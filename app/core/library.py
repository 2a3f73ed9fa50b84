"""The library: one data folder's stores and models, opened together.

Both front ends (the command line and the window's workers) go through
this; the heavy parts (Chroma, the embedder, the chat model) open lazily so
read-only commands such as ``status`` start instantly.

The writer opens its stores through ``app.core.stores.recovery``: a damaged
catalog or Chroma folder is moved to ``DATA_DIR/damaged/`` and replaced by a
fresh one, ``Library.repair`` says what happened, and ``rebuild_roots()``
names the folders to ingest again. After an unclean exit the owner calls
``Library.recover()`` before ingesting, which reconciles the catalog and the
vectors.

With the ``vectors_url`` setting (``--vectors URL``) the vectors live in a
Chroma server instead of ``DATA_DIR/chroma/``: that folder is then never
created, removed or rebuilt here, and ``recover()`` reconciles the catalog
with the server's collection.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from app.config import DataPaths, Settings
from app.core.answering.answer import Answerer
from app.core.answering.rerank import Reranker
from app.core.answering.retrieval import Retriever
from app.core.documents.model import MAIL_KINDS
from app.core.ingest.ignore import Limits
from app.core.ingest.indexer import Indexer
from app.core.models.embedder import Embedder, backend_available, make_embedder
from app.core.models.llm import LocalModel, Sampling
from app.core.models.remote_llm import RemoteModel
from app.core.stores import integrity, recovery
from app.core.stores.answer_cache import AnswerCache
from app.core.stores.audit import AuditLog
from app.core.stores.catalog import Catalog
from app.core.stores.lock import WriterLock
from app.core.stores.recovery import Repair
from app.core.stores.vectors import VectorStore, release as release_vectors
from app.errors import MISMATCH, StoreError, storage_problem
from app.resources import resources_dir

T = TypeVar("T")

log = logging.getLogger(__name__)

#: The embedding backends as the user knows them (Settings → Library → Embedding).
_BACKEND_NAMES = {"torch": "standard (full-precision)", "onnx-int8": "faster (ONNX int8)"}


def _stored_identity(stored: str) -> tuple[str, str]:
    """The model name and backend of a catalog's ``embedder`` record
    (``name:dim`` for torch, ``name:dim:backend`` otherwise)."""
    name, _dim, *rest = stored.split(":") + [""]
    return name, rest[0] or "torch"

# Catalog meta keys: the Chroma server this library's vectors live in, and
# the library's own id (its collection's name there).
_VECTORS_URL = "vectors_url"
_VECTORS_ALLOW = "vectors_allow_network"
_LIBRARY_ID = "library_id"

# Settings whose change needs the chat model loaded again.
_MODEL_FIELDS = ("model_path", "n_ctx", "n_threads", "n_gpu_layers",
                 "generation_url", "generation_model", "generation_key", "generation_allow_network")
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
        #: Why the library opened for questions only (``answer_only_ok``), else None.
        self.degraded: str | None = None
        self.settings = settings or Settings.load(self.paths.settings)
        self.writer = writer
        self._lock: WriterLock | None = None
        self._model_path = Path(model_path) if model_path else None
        self._model: LocalModel | RemoteModel | None = None
        self._model_guard = threading.Lock()
        # The window's workers open the lazy parts from different threads;
        # each part must be built once.
        self._parts: dict[str, Any] = {}
        self._parts_guard = threading.RLock()
        self.repair: Repair | None = None
        #: The last writer did not close cleanly: :meth:`recover` has work to do.
        self.unclean = False
        self._opened = False
        try:
            if writer:
                self._lock = self._take_lock(purpose)
                stores = recovery.open_writer_stores(self.paths, probe_timeout_s=self.probe_timeout_s,
                                                     local_vectors=not self.settings.vectors_url)
                self.catalog, self.audit = stores.catalog, stores.audit
                self.repair, self.unclean = stores.repair, stores.unclean
                self._reindex_for_backend()
            else:
                self.catalog = Catalog(self.paths.catalog, readonly=True)
                self.audit = AuditLog(self.paths.audit, writable=False)
            self._opened = True
        except StoreError as exc:
            self.close()
            if not (answer_only_ok and exc.cannot_write):
                raise
            self._open_answer_only(exc)
        except BaseException:
            self.close()
            raise

    def _take_lock(self, purpose: str) -> WriterLock:
        try:
            self.paths.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_problem(exc, self.paths.root) or StoreError(
                f"Cannot use the data folder {self.paths.root}: {exc.strerror or exc}."
            ) from exc
        lock = WriterLock(self.paths.root, purpose)
        lock.acquire()
        return lock

    def _open_answer_only(self, cause: StoreError) -> None:
        """Open for questions only, when the data folder cannot be written
        (full disk, read-only): reads work, audit records are held in memory."""
        self.writer = False
        self._lock = None
        self._opened = False
        self._parts = {}
        self.repair = None
        self.unclean = False
        self.degraded = str(cause)
        self.catalog = Catalog(self.paths.catalog, readonly=True)
        self.audit = AuditLog(self.paths.audit, writable=False, hold=True)
        try:
            vectors: VectorStore | None = self._open_vectors()
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
            answer_cache = self._parts.pop("answer_cache", None)
        if answer_cache is not None:
            answer_cache.close()
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

    # --- recovery (writer only) -----------------------------------------------

    def _write_clean_marker(self) -> None:
        try:
            integrity.write_clean_marker(self.paths)
        except OSError:
            pass  # only costs a probe at the next start

    def recover(self) -> dict[str, int] | None:
        """Reconcile the catalog and the vectors after an unclean exit.

        A crash between the two stores may leave vectors no chunk names, or
        indexed files missing theirs (see ``Indexer.repair``). The window and
        the commands that ingest call this once, right after opening and
        before ingesting; it opens the vector store and the indexer. Returns
        what it did, or None when the last writer closed cleanly (or this is
        no writer).
        """
        if not self.writer:
            return None
        if not self.unclean and not self._server_out_of_step():
            return None
        self.unclean = False  # once: a failure is reported, not retried on every use
        return self.indexer.repair()

    @property
    def vectors_on_server(self) -> bool:
        """True when the vectors live in a Chroma server (see :meth:`vectors_server`)."""
        return bool(self.vectors_server()[0])

    def _server_out_of_step(self) -> bool:
        """A Chroma server's collection can change while this library is
        closed (the server was reset, restored or swapped), which the clean
        marker of the data folder cannot see: compare the counts, one cheap
        request, and reconcile when they differ."""
        if not self.vectors_on_server:
            return False
        return self.vectors.count() != self.catalog.chunk_count()

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
    def embedding_backend(self) -> str:
        """The backend this library embeds with: the settings' choice, unless
        it cannot run here (the installed app has no torch), then int8."""
        backend = self.settings.embedding_backend
        return backend if backend_available(backend) else "onnx-int8"

    def _reindex_for_backend(self) -> None:
        """A library indexed with another backend of the same model is indexed
        again, from its documents, with a message for the user.

        The two backends' vectors differ slightly (cosine about 0.99), so they
        are never mixed (see :meth:`_check_embedder`), and the library's owner
        did not choose a backend per library: a new default, a change in the
        settings, or an installed app without torch all land here. Every file
        is marked to be read again (the catalog's chunks go), then the vector
        store is removed; a crash between the two leaves vectors no chunk
        names, which :meth:`recover` clears. The caller ingests every root
        again, as after a repair (:meth:`rebuild_roots`).
        """
        stored = self.catalog.get_meta("embedder")
        if stored is None or self.catalog.indexed_chunk_count() == 0:
            return
        name, stored_backend = _stored_identity(stored)
        backend = self.embedding_backend
        try:
            model_name = self.settings.embedding_model().name
        except Exception:  # noqa: BLE001 - a missing model is reported when it is loaded
            return
        if name != model_name or stored_backend == backend:
            return  # another model: refused when loaded, with a way out
        files = self.catalog.invalidate_all()
        if self.vectors_on_server:
            self.vectors.clear()  # the server's collection; no local folder is in use
        else:
            release_vectors(self.paths.chroma)
            shutil.rmtree(self.paths.chroma, ignore_errors=True)
        self.audit.append("library_reindexed", {
            "reason": "embedding_backend", "from": stored_backend, "to": backend, "files_to_reindex": files,
        })
        message = (
            f"This library was indexed with the {_BACKEND_NAMES.get(stored_backend, stored_backend)} embedding "
            f"backend; Docent now embeds with the {_BACKEND_NAMES.get(backend, backend)} one, whose vectors "
            f"differ slightly, so its {files} file(s) are being indexed again from your documents. "
            "Search results stay incomplete until that finishes; your conversations are safe."
        )
        log.warning("%s", message)
        self.repair = Repair(catalog_damaged=False, chroma_damaged=False, message=message,
                             headline="Docent is indexing your library again.")

    @property
    def embedder(self) -> Embedder:
        def build() -> Embedder:
            s = self.settings
            embedder = make_embedder(
                s.embedding_model(), backend=self.embedding_backend,
                # The int8 export is made once per model, inside the data
                # folder, unless the installed app ships it (the bundled model's).
                cache_root=self.paths.models / "onnx-int8",
                shipped=[resources_dir() / "models" / "onnx-int8"],
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
            name, stored_backend = _stored_identity(stored)
            move = (f"move {self.paths.catalog.name} and chroma/ out of {self.paths.root} and re-index "
                    "(run `docent ingest FOLDER...` again, or add your folders in the window)")
            if name == embedder.name and stored_backend != backend:
                raise StoreError(
                    f"This library was indexed with the {_BACKEND_NAMES.get(stored_backend, stored_backend)} "
                    f"embedding backend, but the settings now choose the {_BACKEND_NAMES.get(backend, backend)} "
                    "one. Their vectors differ slightly and Docent never mixes them in one index. "
                    "Open the library in the window, or run `docent ingest FOLDER...`, once: it is "
                    "indexed again with the new backend. Or choose the original backend again in the settings.",
                    kind=MISMATCH,
                )
            raise StoreError(
                f"This library was indexed with the embedding model {name}, but the "
                f"settings now choose {embedder.name}. Choose the original model again, or {move}.",
                kind=MISMATCH,
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
                f"{self.paths.root} and re-index (run `docent ingest FOLDER...` again).",
                kind=MISMATCH,
            )

    @property
    def vectors(self) -> VectorStore:
        """The vector store, opened at its first use: ``DATA_DIR/chroma/``, or
        the Chroma server of the ``vectors_url`` setting.

        Raises:
            StoreError: it cannot be opened (for a server: the URL is refused,
                or the server cannot be reached; the message names the URL).
        """
        return self._once("vectors", self._open_vectors)

    def _open_vectors(self) -> VectorStore:
        url, allow = self.vectors_server()
        if not url:
            return VectorStore(self.paths.chroma)
        store = VectorStore.connect(url, allow_network=allow, collection=self._server_collection())
        if self.writer and self.catalog.get_meta(_VECTORS_URL) != url:
            # Remembered, so every later command on this data folder finds
            # its vectors there without being told again.
            self.catalog.set_meta(_VECTORS_URL, url)
            self.catalog.set_meta(_VECTORS_ALLOW, "1" if allow else "0")
        return store

    def vectors_server(self) -> tuple[str, bool]:
        """Where this library's vectors live: ``(URL, network allowed)`` of its
        Chroma server, or ``("", False)`` for ``DATA_DIR/chroma/``.

        The settings' ``vectors_url`` (``--vectors``) wins; else the server
        this library was last served from, as its catalog remembers it.
        """
        s = self.settings
        if s.vectors_url:
            return s.vectors_url, s.vectors_allow_network
        catalog = getattr(self, "catalog", None)
        remembered = catalog.get_meta(_VECTORS_URL) if catalog is not None else None
        if remembered:
            return remembered, catalog.get_meta(_VECTORS_ALLOW) == "1"
        return "", False

    def _server_collection(self) -> str:
        """This library's collection on a Chroma server: ``docent-`` and an id
        made once per library, so two libraries sharing a server never see,
        repair or delete each other's vectors."""
        ident = self.catalog.get_meta(_LIBRARY_ID)
        if ident is None:
            if not self.writer:
                raise StoreError(
                    "This library has no vectors in a Chroma server yet. Index it with the server first "
                    "(`docent --vectors URL ingest FOLDER`), then search it.")
            ident = uuid.uuid4().hex
            self.catalog.set_meta(_LIBRARY_ID, ident)
        return f"docent-{ident}"

    @property
    def indexer(self) -> Indexer:
        s = self.settings
        return self._once("indexer", lambda: Indexer(
            self.catalog, self.vectors, self.embedder, self.audit,
            chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap,
            limits=Limits(max_file_bytes=s.max_file_mb * 1024 * 1024 if s.max_file_mb else None,
                          follow_symlinks=s.follow_symlinks),
            tokenizer_file=s.embedding_model() / "tokenizer.json",
            ocr=s.ocr,
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
        return self._once("reranker", lambda: Reranker(path, cache_root=self.paths.reranker_cache))

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

    def model(self) -> LocalModel | RemoteModel:
        """The chat model, loaded on first use (call it from the thread that owns it).

        With ``generation_url`` set it is the model of that inference server
        (connecting to it is its loading); else the GGUF, in this process.
        """
        with self._model_guard:
            if self._model is None:
                s = self.settings
                if self.generates_remotely:
                    self._model = RemoteModel(
                        s.generation_url, model=s.generation_model, key=s.generation_key,
                        allow_network=s.generation_allow_network, n_ctx=s.n_ctx,
                    )
                else:
                    self._model = LocalModel(
                        self.model_path, n_ctx=s.n_ctx, n_threads=s.n_threads, n_gpu_layers=s.n_gpu_layers
                    )
            return self._model

    @property
    def generates_remotely(self) -> bool:
        """Whether answers are generated on an inference server (``generation_url``);
        a GGUF named when the library was opened (``docent ask --model``) wins."""
        return bool(self.settings.generation_url) and self._model_path is None

    @property
    def model_name(self) -> str:
        """The chat model's name for answers, audit records and the cache key:
        the GGUF's file name, or the served model's id on an inference server
        (asking the server, so it connects when it has not yet)."""
        if self.generates_remotely:
            return self.model().name
        return self.model_path.name

    def use_model(self, model: LocalModel | RemoteModel) -> None:
        """Use an already loaded chat model (tests share one)."""
        with self._model_guard:
            self._model = model

    @property
    def answer_cache(self) -> AnswerCache | None:
        """Answers already given (``answers.sqlite3``); None for a reader, which writes nothing."""
        if not self.writer:
            return None
        return self._once("answer_cache", lambda: AnswerCache(self.paths.answer_cache))

    def cache_salt(self) -> dict[str, Any]:
        """What shapes an answer beyond what the answerer sees, for the answer
        cache's key: the context size (which passages fit) and the model file
        itself (another file under the same name is another model); on an
        inference server, its address and served model instead."""
        if self.generates_remotely:
            return {"n_ctx": self.settings.n_ctx, "generation_url": self.settings.generation_url,
                    "generation_model": self.model_name}
        try:
            stat = self.model_path.stat()
            model_file: list[int] | None = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            model_file = None
        return {"n_ctx": self.settings.n_ctx, "model_file": model_file}

    @property
    def answerer(self) -> Answerer:
        return self._once("answerer", lambda: Answerer(
            self.retriever, self.model, self.model_name, self.audit, self.embedder,
            min_relevance=self.settings.min_relevance, system_prompt=self.settings.system_prompt,
            cache=self.answer_cache, cache_salt=self.cache_salt(), prompt_budget=self.settings.prompt_budget,
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
            indexer = self._parts.get("indexer")
            if indexer is not None and old.ocr != settings.ocr:
                indexer.set_ocr(settings.ocr)
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
                {"path": f.path, "status": f.status, "chunks": f.chunks, "reason": f.reason,
                 **({"attachments": self._attachments(f.id)} if f.kind in MAIL_KINDS else {})}
                for f in files
            ],
        )

    def _attachments(self, file_id: int) -> list[dict[str, object]]:
        """A mail file's attachments as ``status --files`` lists them: each a document of its own."""
        return [
            {"name": p.name, "status": "indexed" if p.reason is None else "skipped", "kind": p.kind,
             "pages": p.pages, "reason": p.reason, "message": p.message}
            for p in self.catalog.parts(file_id)
        ]
