"""The local API's parts on their own: the fair model queue, the embedding
batcher, the rate limits and the key store."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from app.core.stores.keys import KeyStore
from app.service.batcher import EmbedBatcher
from app.service.errors import ApiError
from app.service.limits import RateLimiter
from app.service.scheduler import GenerationQueue


def test_one_key_flooding_the_queue_does_not_starve_another() -> None:
    queue = GenerationQueue(capacity=10)
    order: list[str] = []
    gate, running = threading.Event(), threading.Event()

    def hold(should_stop) -> None:
        running.set()
        gate.wait(60)

    def job(name: str):
        return lambda should_stop: order.append(name)

    try:
        queue.submit("flood", hold)
        assert running.wait(30)
        jobs = [queue.submit("flood", job(f"flood-{i}")) for i in range(5)]
        jobs.append(queue.submit("polite", job("polite")))
        assert queue.depth == 6
        gate.set()
        for j in jobs:
            j.future.result(timeout=30)
        # The other key's one request goes next, not after all five of the flood's.
        assert order == ["flood-0", "polite", "flood-1", "flood-2", "flood-3", "flood-4"]
        assert queue.depth == 0
    finally:
        gate.set()
        queue.close()


def test_a_cancelled_job_stops_between_tokens_and_a_waiting_one_never_runs() -> None:
    queue = GenerationQueue(capacity=4)
    started = threading.Event()
    tokens: list[int] = []

    def generate(should_stop) -> int:
        started.set()
        n = 0
        while not should_stop() and n < 10_000_000:
            n += 1
        tokens.append(n)
        return n

    ran_late: list[bool] = []
    try:
        running = queue.submit("a", generate)
        assert started.wait(30)
        waiting = queue.submit("b", lambda should_stop: ran_late.append(True))
        waiting.cancel()
        running.cancel()
        after = queue.submit("c", lambda should_stop: "free")
        assert after.future.result(timeout=30) == "free"
        assert tokens and tokens[0] < 10_000_000  # stopped by the cancel, not by running out
        assert ran_late == []
    finally:
        queue.close()


def test_a_full_queue_refuses_with_a_retry_time() -> None:
    queue = GenerationQueue(capacity=1)
    gate, running = threading.Event(), threading.Event()
    try:
        queue.submit("a", lambda s: (running.set(), gate.wait(60)))
        assert running.wait(30)
        queue.submit("a", lambda s: None)
        with pytest.raises(ApiError) as refused:
            queue.submit("b", lambda s: None)
        assert refused.value.status == 503 and refused.value.headers()["Retry-After"].isdigit()
    finally:
        gate.set()
        queue.close()


def test_concurrent_embedding_requests_are_encoded_together(embedder) -> None:
    sizes: list[int] = []
    first_batch, release = threading.Event(), threading.Event()

    def encode(texts):
        if not first_batch.is_set():
            first_batch.set()
            release.wait(60)  # hold the model so the other requests pile up
        return embedder.encode(texts)

    batcher = EmbedBatcher(encode, window_s=0.005, on_batch=sizes.append)
    texts = [f"sentence number {i} about the harbour" for i in range(16)]
    try:
        futures = [batcher.submit([texts[0]])]
        assert first_batch.wait(30)
        futures += [batcher.submit([t]) for t in texts[1:]]
        release.set()
        rows = np.vstack([f.result(timeout=60) for f in futures])
    finally:
        release.set()
        batcher.close()
    assert sizes == [1, 15]  # sixteen requests, two model calls
    alone = embedder.encode(texts)
    assert np.all(np.sum(rows * alone, axis=1) >= 0.9999)


def test_batching_off_encodes_each_request_alone(embedder) -> None:
    sizes: list[int] = []
    batcher = EmbedBatcher(embedder.encode, enabled=False, on_batch=sizes.append)
    try:
        futures = [batcher.submit(["one", "two"]), batcher.submit(["three"])]
        [f.result(timeout=60) for f in futures]
    finally:
        batcher.close()
    assert sizes == [2, 1]


def test_rate_limits_refill_over_the_minute() -> None:
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for _ in range(3):
        limiter.admit("k", rpm=3, tpm=None)
    with pytest.raises(ApiError) as refused:
        limiter.admit("k", rpm=3, tpm=None)
    assert refused.value.status == 429 and refused.value.retry_after == pytest.approx(20.0)
    now[0] += 20.0
    limiter.admit("k", rpm=3, tpm=None)
    limiter.admit("other", rpm=3, tpm=None)  # each key has its own buckets
    limiter.admit("k", rpm=None, tpm=100, tokens=80)
    with pytest.raises(ApiError):
        limiter.admit("k", rpm=None, tpm=100, tokens=30)
    limiter.refund("k", tpm=100, tokens=60)  # a generation used less than it reserved
    limiter.admit("k", rpm=None, tpm=100, tokens=30)
    assert limiter.refused == {"k": 2}


def test_keys_are_seen_by_every_store_on_the_folder_and_checked_by_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    server, cli = KeyStore(path), KeyStore(path)
    assert server.check("dk-anything") is None
    key, secret = cli.create("alice", scopes=(str(tmp_path / "a"),), tpm=1000)
    assert server.check(secret) == key  # created by another process: seen at the next request
    assert key.allows(str(tmp_path / "a" / "x.pdf")) and not key.allows(str(tmp_path / "ab" / "x.pdf"))
    assert server.check(secret + "x") is None
    cli.revoke("alice")
    assert server.check(secret) is None
    with pytest.raises(Exception, match="cannot name a key"):
        cli.create("no spaces allowed")
