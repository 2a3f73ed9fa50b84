"""Per-key rate limits: requests and tokens per minute, as token buckets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.service.errors import ApiError


@dataclass
class TokenBucket:
    """``capacity`` units, refilled evenly over a minute.

    A full bucket allows a burst of ``capacity``; after that, one unit comes
    back every ``60 / capacity`` seconds.
    """

    capacity: float
    level: float
    updated: float

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / 60.0)
        self.updated = now

    def wait_for(self, units: float, now: float) -> float:
        """Seconds until ``units`` are there (0: they are, now)."""
        self._refill(now)
        missing = units - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.capacity

    def take(self, units: float) -> None:
        self.level -= units

    def give_back(self, units: float, now: float) -> None:
        self._refill(now)
        self.level = min(self.capacity, self.level + units)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets, one pair per key.

    ``clock`` is injectable so tests move time instead of waiting for it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        #: Requests refused, by key name.
        self.refused: dict[str, int] = {}

    def _bucket(self, name: str, kind: str, capacity: int) -> TokenBucket:
        bucket = self._buckets.get((name, kind))
        if bucket is None or bucket.capacity != capacity:  # a new key, or its limit changed
            bucket = TokenBucket(float(capacity), float(capacity), self._clock())
            self._buckets[(name, kind)] = bucket
        return bucket

    def admit(self, name: str, *, rpm: int | None, tpm: int | None, tokens: int = 0) -> None:
        """Count one request of ``tokens`` against ``name``'s limits, or raise a 429.

        Nothing is taken when the request is refused, so a client that waits
        as ``Retry-After`` says gets through.
        """
        with self._lock:
            now = self._clock()
            waits: list[tuple[float, str]] = []
            if tpm is not None and tokens > tpm:
                raise ApiError(429, f"This request needs about {tokens} tokens, more than this key's limit "
                               f"of {tpm} tokens per minute; send less text or max_tokens, or ask for a key "
                               "with a higher --tpm.", code="tokens_over_limit")
            if rpm is not None:
                waits.append((self._bucket(name, "rpm", rpm).wait_for(1, now), f"{rpm} requests"))
            if tpm is not None and tokens:
                waits.append((self._bucket(name, "tpm", tpm).wait_for(tokens, now), f"{tpm} tokens"))
            wait, what = max(waits, default=(0.0, ""))
            if wait > 0:
                self.refused[name] = self.refused.get(name, 0) + 1
                raise ApiError(429, f"The key {name} is limited to {what} per minute; retry in "
                               f"{max(1, round(wait + 0.5))} s.", code="rate_limit_exceeded", retry_after=wait)
            if rpm is not None:
                self._bucket(name, "rpm", rpm).take(1)
            if tpm is not None and tokens:
                self._bucket(name, "tpm", tpm).take(tokens)

    def refund(self, name: str, *, tpm: int | None, tokens: int) -> None:
        """Give back tokens reserved but not used (max_tokens not all written);
        negative ``tokens`` charge what was used beyond the reservation."""
        if tpm is None or tokens == 0:
            return
        with self._lock:
            self._bucket(name, "tpm", tpm).give_back(tokens, self._clock())
