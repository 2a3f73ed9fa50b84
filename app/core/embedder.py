"""Sentence embeddings behind a small protocol.

The only module that imports sentence-transformers. Vectors are L2-normalised
so cosine similarity is a dot product.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from app.config import enforce_offline
from app.errors import Cancelled, ModelError


class Embedder(Protocol):
    """What the rest of the core needs from an embedding model."""

    name: str
    dim: int
    max_tokens: int

    def encode(
        self, texts: Sequence[str], *, should_stop: Callable[[], bool] | None = None
    ) -> np.ndarray:
        """Normalised float32 vectors, one row per text."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text`` (no special tokens)."""
        ...


class SentenceEmbedder:
    """A sentence-transformers model loaded from a local folder, on the CPU."""

    def __init__(self, model_dir: Path, *, batch_size: int = 32, device: str = "cpu") -> None:
        enforce_offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        if not Path(model_dir).is_dir():
            raise ModelError(
                f"The embedding model folder {model_dir} does not exist. "
                "Choose another model folder in the settings."
            )
        try:
            self._model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure means the same to the user
            raise ModelError(
                f"Could not load the embedding model from {model_dir}: {exc}. "
                "Choose another model folder in the settings."
            ) from exc
        self.name = Path(model_dir).name
        dimension = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension"
        )
        self.dim = int(dimension() or 0)
        # Leave room for [CLS] and [SEP].
        self.max_tokens = int(self._model.max_seq_length) - 2
        self._tokenizer = self._model.tokenizer
        self._batch_size = batch_size
        # torch modules are not safe to call from two threads at once.
        self._lock = threading.Lock()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text``, from the model's own tokenizer."""
        enc = self._tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [(s, e) for s, e in enc["offset_mapping"] if e > s]

    def encode(
        self, texts: Sequence[str], *, should_stop: Callable[[], bool] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` in batches; cancellable between batches.

        Texts are sorted by length first so each batch pads little, then the
        rows are put back in the caller's order.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = self._batch_size * 4
        for lo in range(0, len(order), step):
            if should_stop is not None and should_stop():
                raise Cancelled()
            idx = order[lo : lo + step]
            with self._lock:
                vecs = self._model.encode(
                    [texts[i] for i in idx],
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[idx] = vecs.astype(np.float32, copy=False)
        return out
