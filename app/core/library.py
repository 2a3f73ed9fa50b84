"""The library: one data folder's stores and models, opened together.

Both front ends (the command line and the window's workers) go through
this; the heavy parts (Chroma, the embedder, the chat model) open lazily so
read-only commands such as ``status`` start instantly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from app.config import DataPaths, Settings
from app.core.answer import Answerer
from app.core.audit import AuditLog
from app.core.catalog import Catalog
from app.core.embedder import Embedder, SentenceEmbedder
from app.core.ignore import Limits
from app.core.indexer import Indexer
from app.core.llm import LocalModel, Sampling
from app.core.lock import WriterLock
from app.core.retrieval import Retriever
from app.core.vectors import VectorStore
from app.errors import StoreError

T = TypeVar("T")

# Settings whose change needs the chat model loaded again.
_MODEL_FIELDS = ("model_path", "n_ctx", "n_threads", "n_gpu_layers")


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


class Library:
    """A data folder, opened as the writer or as a reader.

    Args:
        data_dir: the data folder.
        settings: the settings to use (default: those saved in the folder).
        writer: take the one-writer lock (raises ``DataDirLocked`` if held).
        purpose: how the lock holder is named to other processes.
        model_path: a GGUF to use instead of the settings' model.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        settings: Settings | None = None,
        writer: bool = True,
        purpose: str = "docent",
        model_path: Path | None = None,
    ) -> None:
        self.paths = DataPaths(Path(data_dir))
        self.settings = settings or Settings.load(self.paths.settings)
        self.writer = writer
        self._lock: WriterLock | None = None
        if writer:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            self._lock = WriterLock(self.paths.root, purpose)
            self._lock.acquire()
        self._model_path = Path(model_path) if model_path else None
        self._model: LocalModel | None = None
        self._model_guard = threading.Lock()
        # The window's workers open the lazy parts from different threads;
        # each part must be built once.
        self._parts: dict[str, Any] = {}
        self._parts_guard = threading.RLock()
        try:
            self.catalog = Catalog(self.paths.catalog, readonly=not writer)
            self.audit = AuditLog(self.paths.audit, writable=writer)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the stores and the writer lock."""
        if getattr(self, "catalog", None) is not None:
            self.catalog.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

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
            embedder = SentenceEmbedder(self.settings.embedding_model())
            self._check_embedder(embedder)
            return embedder

        return self._once("embedder", build)

    def use_embedder(self, embedder: Embedder) -> None:
        """Use an already loaded embedder (tests share one across libraries)."""
        self._check_embedder(embedder)
        with self._parts_guard:
            self._parts["embedder"] = embedder

    def _check_embedder(self, embedder: Embedder) -> None:
        """Vectors of two different models must never be mixed in one store."""
        identity = f"{embedder.name}:{embedder.dim}"
        stored = self.catalog.get_meta("embedder")
        if stored is None:
            if self.writer:
                self.catalog.set_meta("embedder", identity)
        elif stored != identity and self.catalog.indexed_chunk_count() > 0:
            raise StoreError(
                f"This library was indexed with the embedding model {stored.split(':')[0]}, but the "
                f"settings now choose {embedder.name}. Choose the original model again, or move "
                f"{self.paths.catalog.name} and chroma/ out of {self.paths.root} and re-index."
            )

    @property
    def vectors(self) -> VectorStore:
        return self._once("vectors", lambda: VectorStore(self.paths.chroma))

    @property
    def indexer(self) -> Indexer:
        s = self.settings
        return self._once("indexer", lambda: Indexer(
            self.catalog, self.vectors, self.embedder, self.audit,
            chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap,
            limits=Limits(max_file_bytes=s.max_file_mb * 1024 * 1024 if s.max_file_mb else None,
                          follow_symlinks=s.follow_symlinks),
        ))

    @property
    def retriever(self) -> Retriever:
        return self._once("retriever", lambda: Retriever(self.catalog, self.vectors, self.embedder))

    @property
    def keyword_retriever(self) -> Retriever:
        """Keyword search only: needs neither Chroma nor the embedder."""
        return self._once("keyword_retriever", lambda: Retriever(self.catalog))

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
