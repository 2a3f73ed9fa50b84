"""Reranking: a cross-encoder rereads the best candidates together with the question.

The first stage (vector + BM25, fused) scores question and passage apart from
each other; a cross-encoder reads each (question, passage) pair as one input
and so judges relevance much better, at the cost of one model call per pair.
It therefore only reorders the first stage's top candidates.

The model is a sentence-transformers ``CrossEncoder`` in a local folder chosen
in the settings (nothing is downloaded; the app sets ``HF_HUB_OFFLINE=1``).
It loads on first use, so configuring one costs nothing until a search runs.
It runs on onnxruntime (``app.core.models.cross_encoder``): a folder that
ships its own ONNX export is run as it is; any other is exported once, where
torch is installed, into Docent's model cache. So the installed app (which
leaves torch out) reranks with any folder that holds an ONNX export; torch
remains the export tool and a selectable backend (``backend="torch"``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.models import cross_encoder
from app.core.models.embedder import torch_available
from app.errors import RerankerError

if TYPE_CHECKING:
    from app.core.answering.retrieval import Hit

#: Where the user fixes a bad reranker folder; every error message names it.
SETTING = "Settings → Answers → Reranker"
_FIX = (f"In {SETTING}, choose a folder holding a sentence-transformers CrossEncoder model "
        "(for example cross-encoder/ms-marco-MiniLM-L-6-v2, saved locally), or clear the field "
        "to search without reranking.")


def reranker_problem(folder: str | Path, cache_root: Path | None = None) -> str | None:
    """Why ``folder`` cannot be used as the reranker, in words for a person; None if it can.

    Cheap (reads two small JSON files, imports no model library), so the
    settings dialog can call it as the user types. It tells apart the usual
    mistakes: a missing folder, a file, an embedding (bi-encoder) model, and a
    classifier with several labels; a sentence-transformers CrossEncoder would
    load some of these silently with an untrained scoring head. Without torch
    the folder must hold an ONNX export (its own, or one Docent made earlier
    in ``cache_root``).
    """
    p = Path(folder).expanduser()
    if not p.exists():
        return f"The reranker folder {p} does not exist. {_FIX}"
    if not p.is_dir():
        return f"The reranker must be a folder, but {p} is a file. {_FIX}"
    config = cross_encoder.read_json(p / "config.json")
    if config is None:
        return f"The folder {p} holds no model (its config.json is missing or unreadable). {_FIX}"
    st_config = cross_encoder.read_json(p / "config_sentence_transformers.json") or {}
    architectures = [str(a) for a in config.get("architectures") or []]
    cross = st_config.get("model_type") == "CrossEncoder" or any(
        a.endswith("ForSequenceClassification") for a in architectures
    )
    if not cross:
        if (p / "modules.json").exists() or (p / "1_Pooling").is_dir():
            return (f"The folder {p} holds an embedding model (a bi-encoder), not a cross-encoder; "
                    f"it cannot score question–passage pairs. {_FIX}")
        return f"The folder {p} does not hold a cross-encoder (a model that scores text pairs). {_FIX}"
    labels = config.get("id2label")
    if isinstance(labels, dict) and len(labels) > 1:
        return (f"The model in {p} gives {len(labels)} labels per pair (a classifier such as an NLI "
                f"model); a reranker gives one relevance score. {_FIX}")
    if not any((p / name).exists() for name in ("model.safetensors", "pytorch_model.bin",
                                                "model.safetensors.index.json", "onnx")):
        return f"The folder {p} has a model description but no weights (model.safetensors). {_FIX}"
    if not torch_available() and cross_encoder.ready_export(p, cache_root) is None:
        return (f"The reranker in {p} has no ONNX export (onnx/model.onnx), and this installation of "
                "Docent leaves out PyTorch, which makes one. Choose a cross-encoder folder that ships "
                "onnx/model.onnx, run Docent once from a source install to prepare this one, or clear "
                "the field to search without reranking.")
    return None


class Reranker:
    """A cross-encoder from a local folder, loaded on first use (thread-safe).

    Args:
        folder: the model folder; checked now (cheaply), loaded at the first
            :meth:`score` or :meth:`rerank`.
        batch_size: pairs per forward pass.

    Raises:
        RerankerError: the folder is missing or holds no cross-encoder.
    """

    def __init__(self, folder: str | Path, *, batch_size: int = 16, cache_root: Path | None = None,
                 backend: str = "onnx") -> None:
        self.folder = Path(folder).expanduser()
        self.cache_root = Path(cache_root) if cache_root is not None else None
        problem = reranker_problem(self.folder, self.cache_root)
        if problem is not None:
            raise RerankerError(problem)
        if backend not in ("onnx", "torch"):
            raise ValueError(f"unknown reranker backend {backend!r}")
        self.batch_size = batch_size
        #: ``"onnx"`` (onnxruntime; the default) or ``"torch"`` (sentence-transformers).
        self.backend = backend
        self._model: Any = None
        self._guard = threading.Lock()

    @property
    def name(self) -> str:
        """The model's folder name, for records and messages."""
        return self.folder.name

    def load(self) -> None:
        """Load the model now (the first search would otherwise pay for it)."""
        with self._guard:
            if self._model is not None:
                return
            try:
                if self.backend == "onnx":
                    model_file = cross_encoder.ready_export(self.folder, self.cache_root)
                    if model_file is None:  # torch is here (reranker_problem checked): export once
                        if self.cache_root is None:
                            raise RerankerError(f"The reranker in {self.folder} has no ONNX export and "
                                                f"no cache folder to make one in. {_FIX}")
                        model_file = cross_encoder.export(self.folder, self.cache_root)
                    self._model = cross_encoder.OnnxCrossEncoder(model_file, self.folder)
                else:
                    from sentence_transformers import CrossEncoder

                    self._model = CrossEncoder(str(self.folder), local_files_only=True)
            except RerankerError:
                raise
            except Exception as exc:  # noqa: BLE001 - any load failure means the same to the user
                raise RerankerError(
                    f"The reranker in {self.folder} could not be loaded ({type(exc).__name__}: "
                    f"{exc}). {_FIX}"
                ) from exc

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to ``query`` (higher is better)."""
        if not texts:
            return []
        self.load()
        try:
            pairs = [(query, t) for t in texts]
            if self.backend == "onnx":
                scores = self._model.predict(pairs, batch_size=self.batch_size)
            else:
                scores = self._model.predict(pairs, batch_size=self.batch_size,
                                             show_progress_bar=False, convert_to_numpy=True)
        except Exception as exc:  # noqa: BLE001 - a broken model must not take the search down silently
            raise RerankerError(f"The reranker in {self.folder} failed while scoring "
                                f"({type(exc).__name__}: {exc}). {_FIX}") from exc
        return [float(s) for s in scores.reshape(len(texts), -1)[:, 0]]

    def rerank(self, query: str, hits: list[Hit], top_n: int) -> list[Hit]:
        """The first ``top_n`` hits scored and reordered by the cross-encoder.

        Each scored hit gets ``rerank_score``; the hits past ``top_n`` keep
        their order after the reranked ones (and ``rerank_score`` None).
        Ties keep the first stage's order (the sort is stable).
        """
        head, tail = hits[:max(0, top_n)], hits[max(0, top_n):]
        for hit, s in zip(head, self.score(query, [h.chunk.text for h in head])):
            hit.rerank_score = s
        head.sort(key=lambda h: h.rerank_score if h.rerank_score is not None else float("-inf"),
                  reverse=True)
        return head + tail
