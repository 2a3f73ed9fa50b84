"""The one chat model, shared fairly: a bounded queue served key by key.

llama.cpp runs one completion at a time. Requests wait in one queue per key
and the worker takes the keys in turn, so a key that sends a hundred
requests waits behind its own, not in front of everyone else's. When the
queue is full a new request is told when to retry (503, ``Retry-After``).
Each job gets a ``should_stop``; cancelling a job (its client went away)
stops it within a token.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from app.service.errors import ApiError


@dataclass
class Job:
    """One request for the model."""

    owner: str
    work: Callable[[Callable[[], bool]], Any]
    context: contextvars.Context
    future: Future[Any] = field(default_factory=Future)
    stop: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.monotonic)

    def cancel(self) -> None:
        """Stop this job: at once if it waits, within a token if it runs."""
        self.stop.set()
        self.future.cancel()


class GenerationQueue:
    """A bounded, per-key fair queue in front of one worker thread.

    Args:
        capacity: jobs waiting (not counting the one running) before new ones
            are refused.
        on_depth: called with the number waiting whenever it changes.
    """

    def __init__(self, capacity: int, *, on_depth: Callable[[int], None] | None = None) -> None:
        self.capacity = capacity
        self._on_depth = on_depth
        self._waiting: OrderedDict[str, deque[Job]] = OrderedDict()
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self.running: Job | None = None
        # Seconds a job took, averaged: how long a refused client should wait.
        self._mean_s = 5.0
        self._thread = threading.Thread(target=self._run, name="docent-model", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Jobs waiting for the model."""
        return self._count

    def retry_after(self) -> float:
        """About how long until the queue has room, in seconds."""
        return max(1.0, self._mean_s * max(1, self._count) / 2)

    def submit(self, owner: str, work: Callable[[Callable[[], bool]], Any]) -> Job:
        """Queue ``work(should_stop)`` for ``owner`` (a key name); raises a 503 when full.

        The caller's context (its audit attribution) goes with the job.
        """
        job = Job(owner, work, contextvars.copy_context())
        with self._cond:
            if self._closed:
                raise ApiError(503, "Docent is shutting down; retry against the next start.",
                               code="shutting_down", retry_after=5)
            if self._count >= self.capacity:
                raise ApiError(
                    503, f"The model is busy: {self._count} requests are already waiting for it. "
                    "Retry after the time in Retry-After.", code="queue_full", retry_after=self.retry_after())
            self._waiting.setdefault(owner, deque()).append(job)
            self._count += 1
            self._cond.notify()
        self._depth_changed()
        return job

    def close(self) -> None:
        """Refuse new jobs, cancel the waiting ones and stop the running one."""
        with self._cond:
            self._closed = True
            waiting = [j for q in self._waiting.values() for j in q]
            self._waiting.clear()
            self._count = 0
            running = self.running
            self._cond.notify_all()
        for job in waiting:
            job.cancel()
        if running is not None:
            running.stop.set()
        self._thread.join(timeout=30)

    def _next(self) -> Job | None:
        """The first waiting job of the key whose turn it is (None: closing)."""
        with self._cond:
            while not self._waiting and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            owner, jobs = next(iter(self._waiting.items()))
            job = jobs.popleft()
            del self._waiting[owner]
            if jobs:
                self._waiting[owner] = jobs  # to the back: the other keys go first
            self._count -= 1
            self.running = job
        self._depth_changed()
        return job

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                if not job.future.set_running_or_notify_cancel():
                    continue  # its client left while it waited
                began = time.monotonic()
                try:
                    result = job.context.run(job.work, job.stop.is_set)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                    job.future.set_exception(exc)
                else:
                    job.future.set_result(result)
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - began)
            finally:
                with self._cond:
                    self.running = None

    def _depth_changed(self) -> None:
        if self._on_depth is not None:
            self._on_depth(self._count)
