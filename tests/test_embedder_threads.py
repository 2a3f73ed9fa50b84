"""The embedder is shared by threads: the local API counts tokens on request
threads, the window checks words on the model's, while a batch is encoded."""

from __future__ import annotations

import threading

import numpy as np


def test_counting_tokens_while_a_batch_is_encoded_breaks_neither(embedder) -> None:
    texts = [("short " if i % 2 else "a much longer sentence about lighthouses and ferries " * (i % 5 + 1)) + str(i)
             for i in range(24)]
    want = embedder.encode(texts)
    spans_want = embedder.token_spans("storm warnings recorded by the keepers")
    done = threading.Event()
    problems: list[BaseException] = []

    def count() -> None:
        try:
            while not done.is_set():
                assert embedder.token_spans("storm warnings recorded by the keepers") == spans_want
        except BaseException as exc:  # noqa: BLE001 - reported below
            problems.append(exc)

    counters = [threading.Thread(target=count) for _ in range(4)]
    for t in counters:
        t.start()
    try:
        for _ in range(10):
            got = embedder.encode(texts)
            assert np.allclose(got, want, atol=1e-5)
    finally:
        done.set()
        for t in counters:
            t.join()
    assert problems == []
