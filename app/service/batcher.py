"""Embeddings batched across requests.

Requests that arrive while the model is busy, or within a few milliseconds
of each other, are encoded as one batch and split back: sixteen clients
sending one sentence each cost about one model call, not sixteen.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class _Request:
    texts: list[str]
    note: Any = None
    future: Future[np.ndarray] = field(default_factory=Future)


class EmbedBatcher:
    """One thread that encodes every request's texts, several requests at a time.

    Args:
        encode: the embedder's ``encode`` (normalised rows, one per text).
        window_s: how long to wait for another request after the last one
            arrived; requests that keep coming are gathered for at most four
            windows.
        max_batch: the most texts encoded in one call.
        enabled: False encodes each request alone (the benchmark's baseline).
        on_batch: called with each batch's size in texts (the metrics).
        record: called with the batch's requests' notes before their vectors
            are handed out (the audit records, written together); if it
            raises, every request of the batch gets the error.
    """

    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray], *, window_s: float = 0.005,
                 max_batch: int = 512, enabled: bool = True,
                 on_batch: Callable[[int], None] | None = None,
                 record: Callable[[list[Any]], None] | None = None) -> None:
        self._encode = encode
        self._record = record
        self.window_s = window_s
        self.max_batch = max_batch
        self.enabled = enabled
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="docent-embed-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str], note: Any = None) -> Future[np.ndarray]:
        """Queue ``texts`` (with a ``note`` for ``record``); the future gives their vectors, in order."""
        request = _Request(list(texts), note)
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        """Stop the thread once the queued requests are done."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """``first`` and whatever else arrives meanwhile (up to max_batch texts).

        The window slides: each arrival waits ``window_s`` more for the next,
        since concurrent clients' requests reach the batcher a little apart
        (each is parsed and checked first), up to four windows in all.
        """
        batch, size = [first], len(first.texts)
        if not self.enabled:
            return batch, False
        latest = time.monotonic() + 4 * self.window_s
        while size < self.max_batch:
            wait = min(self.window_s, latest - time.monotonic())
            if wait <= 0:
                break
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            size += len(item.texts)
        return batch, False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, closing = self._gather(first)
            live = [r for r in batch if r.future.set_running_or_notify_cancel()]
            texts = [t for r in live for t in r.texts]
            try:
                vectors = self._encode(texts) if texts else np.zeros((0, 0), dtype=np.float32)
                if self._record is not None:
                    notes = [r.note for r in live if r.note is not None]
                    if notes:
                        self._record(notes)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
                for r in live:
                    r.future.set_exception(exc)
            else:
                if self._on_batch is not None:
                    self._on_batch(len(texts))
                at = 0
                for r in live:
                    r.future.set_result(vectors[at:at + len(r.texts)])
                    at += len(r.texts)
            if closing:
                return
