"""The local service without HTTP: the library's models, keys, limits, the
generation queue, the embedding batcher and the metrics.

:mod:`app.service.http` turns requests into calls on a :class:`Service`; the
window and ``docent serve`` make one over their open library. Everything a
request does is audited in the library's log, attributed to the key's name
(never its secret) and the client's address.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app import config
from app.core.answering.answer import Answerer
from app.core.answering.outcome import Answer
from app.core.library import Library
from app.core.models.llm import Message, Sampling
from app.core.stores.audit import AuditLog, attributed
from app.core.stores.keys import ApiKey, KeyStore
from app.errors import DocentError, ModelError, StoreError, UsageError
from app.service.batcher import EmbedBatcher
from app.service.errors import ApiError, bad_request
from app.service.keeper import LibraryKeeper
from app.service.limits import RateLimiter
from app.service.metrics import Metrics
from app.service.scheduler import GenerationQueue, Job
from app.telemetry import instruments, names

_CHECKS_EVERY_S = 60.0
_BUDGETS_EVERY_S = 5.0

log = logging.getLogger(__name__)

#: The model name that answers from the library (any other is plain chat).
LIBRARY_MODEL = "docent"
#: What the bundled embedder is called in /v1/models (its folder is just "model").
BUNDLED_EMBEDDER = "all-MiniLM-L6-v2"
#: Seconds a refused client is told to wait while the models load.
LOADING_RETRY_S = 5.0


@dataclass(frozen=True)
class Caller:
    """Who sent a request: its key (None without authentication) and address."""

    name: str
    address: str
    key: ApiKey | None = None

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.key.scopes if self.key is not None else ()

    @property
    def role(self) -> str:
        """reader, editor or admin. Without authentication (loopback only) the
        caller is this machine's own user, who may do everything."""
        return self.key.role if self.key is not None else "admin"

    def allows(self, path: str) -> bool:
        """Whether the caller may read ``path`` (a file or folder)."""
        return self.key is None or self.key.allows(path)

    @property
    def rpm(self) -> int | None:
        return self.key.rpm if self.key is not None else None

    @property
    def tpm(self) -> int | None:
        return self.key.tpm if self.key is not None else None

    @property
    def fair_id(self) -> str:
        """Whose turn it is in the model queue: the key, or the address without keys."""
        return self.name if self.key is not None else f"{self.name}@{self.address}"

    def audit(self) -> dict[str, str]:
        """What the audit log records of the caller."""
        return {"key": self.name, "address": self.address}


@dataclass
class Generation:
    """A plain completion's outcome (no documents)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop | length | cancelled
    first_token_s: float | None


class Gate:
    """Searches and embedding requests in progress at once, bounded.

    They do not wait for the chat model, but each takes the CPU for a few
    milliseconds; past ``capacity`` a request is told when to retry rather
    than queued behind hundreds of others.
    """

    def __init__(self, capacity: int, on_refuse: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self.count = 0
        self._lock = threading.Lock()
        self._mean_s = 0.05
        self._on_refuse = on_refuse

    @contextmanager
    def enter(self) -> Iterator[None]:
        """Hold a place for one request (503 with Retry-After when none is free)."""
        with self._lock:
            if self.count >= self.capacity:
                if self._on_refuse is not None:
                    self._on_refuse()
                raise ApiError(503, f"Docent is busy with {self.count} searches and embedding requests; "
                               "retry after the time in Retry-After.", code="overloaded",
                               retry_after=max(1.0, self.count * self._mean_s / 2))
            self.count += 1
        depth = instruments().queue_depth
        depth.add(1, {"docent.queue": "searches_and_embeddings"})
        began = time.monotonic()
        try:
            yield
        finally:
            depth.add(-1, {"docent.queue": "searches_and_embeddings"})
            with self._lock:
                self.count -= 1
                self._mean_s = 0.9 * self._mean_s + 0.1 * (time.monotonic() - began)


class _TokenTimer:
    """Passes tokens on, and measures the time to the first (from the request's
    arrival, queue wait included) and the tokens per second after it."""

    def __init__(self, metrics: Metrics, on_token: Callable[[str], None] | None) -> None:
        self.metrics = metrics
        self.on_token = on_token
        self.arrived = time.monotonic()
        self.first: float | None = None

    @property
    def first_token_s(self) -> float | None:
        return None if self.first is None else self.first - self.arrived

    def __call__(self, piece: str) -> None:
        if self.first is None:
            self.first = time.monotonic()
            self.metrics.first_token.observe(self.first - self.arrived)
        if self.on_token is not None:
            self.on_token(piece)

    def done(self, tokens: int) -> None:
        self.metrics.generated.inc(tokens)
        if self.first is not None and tokens > 1:
            spent = time.monotonic() - self.first
            if spent > 0:
                self.metrics.tokens_per_second.observe((tokens - 1) / spent)


def _api_error(exc: DocentError) -> ApiError:
    """A Docent error as the API answers it."""
    if isinstance(exc, UsageError):
        return bad_request(str(exc))
    if isinstance(exc, (ModelError, StoreError)):
        return ApiError(503, str(exc), code="unavailable", retry_after=30)
    return ApiError(500, str(exc), code="internal_error")


class Service:
    """The local API's engine over one open :class:`Library`.

    Args:
        library: the open library (the window's, or ``docent serve``'s).
        auth: require a key on every route but ``/health``.
        queue_capacity: generation requests that may wait for the model.
        max_pending: searches and embedding requests in progress at once.
        batching: encode concurrent embedding requests together.
        clock: for the rate limits (tests move it instead of waiting).
    """

    def __init__(
        self, library: Library, *, auth: bool = True, queue_capacity: int = config.API_QUEUE,
        batching: bool = True, batch_window_ms: float = config.API_BATCH_WINDOW_MS,
        max_batch: int = config.API_MAX_BATCH, max_inputs: int = config.API_MAX_INPUTS,
        max_pending: int = config.API_MAX_PENDING, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.library = library
        self.auth = auth
        self.max_inputs = max_inputs
        self.keys = KeyStore(library.paths.keys)
        self.metrics = Metrics()
        self.limiter = RateLimiter(clock)
        self.queue = GenerationQueue(queue_capacity, on_depth=self._queue_depth)
        self._depth = 0
        #: Searches and embedding requests in progress (bounded: see :class:`Gate`).
        self.gate = Gate(max_pending, on_refuse=self.metrics.rejected.inc)
        self._batching = batching
        self._batch_window_s = batch_window_ms / 1000
        self._max_batch = max_batch
        self.batcher: EmbedBatcher | None = None
        self.answerer: Answerer | None = None
        #: loading | ready | error
        self.state = "loading"
        self.problem: str | None = None
        self._ready = threading.Event()
        self._counts: tuple[float, dict[str, Any]] | None = None
        self._checks: tuple[float, dict[str, Any]] | None = None
        self._budgets: tuple[float, list[dict[str, Any]]] | None = None
        self._health_lock = threading.Lock()
        self.started = time.time()
        #: The server's writer thread (sync and the API's folder changes);
        #: None where the library's owner indexes itself (the window).
        self.keeper: LibraryKeeper | None = None

    def _queue_depth(self, depth: int) -> None:
        """The generation queue's depth, for both metric families."""
        self.metrics.queue_depth.set(depth)
        instruments().queue_depth.add(depth - self._depth, {"docent.queue": "generation"})
        self._depth = depth

    # --- life -------------------------------------------------------------

    def load(self) -> None:
        """Load the embedder, the vector store and the chat model (blocking).

        ``/health`` says ``loading`` until this returns, ``error`` (with the
        reason) if it fails.
        """
        lib = self.library
        try:
            embedder = lib.embedder
            retriever = lib.retriever
            lib.model()
            # Its own answerer: the window's keeps its conversations' prompts
            # for follow-ups, and API requests must not disturb them.
            self.answerer = Answerer(
                retriever, lib.model, lib.model_name, lib.audit, embedder,
                min_relevance=lib.settings.min_relevance, system_prompt=lib.settings.system_prompt,
                cache=lib.answer_cache, cache_salt=lib.cache_salt(),
            )
            self.batcher = EmbedBatcher(
                embedder.encode, window_s=self._batch_window_s, max_batch=self._max_batch,
                enabled=self._batching, on_batch=self.metrics.batch_size.observe,
                record=lib.audit.append_many,
            )
        except DocentError as exc:
            self.state, self.problem = "error", str(exc)
            log.error("The local API cannot answer: %s", exc)
            return
        except Exception as exc:  # noqa: BLE001 - reported on /health, never a crash of the server
            self.state, self.problem = "error", f"{type(exc).__name__}: {exc}"
            log.exception("The local API cannot answer")
            return
        self.state = "ready"
        self.metrics.ready.set(1)
        self._ready.set()

    def start_loading(self) -> threading.Thread:
        """Load in a background thread (``/health`` answers 503 meanwhile)."""
        thread = threading.Thread(target=self.load, name="docent-service-load", daemon=True)
        thread.start()
        return thread

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loaded (True) or ``timeout`` passes (False)."""
        return self._ready.wait(timeout)

    def close(self) -> None:
        """Stop the queue and the batcher (the library stays open: its owner closes it)."""
        self.queue.close()
        if self.batcher is not None:
            self.batcher.close()

    def require_ready(self) -> None:
        """Raise a 503 while the models load (or failed to)."""
        if self.state == "ready":
            return
        if self.state == "error":
            raise ApiError(503, f"Docent cannot answer: {self.problem}", code="unavailable", retry_after=60)
        raise ApiError(503, "Docent is loading its models; retry in a few seconds.", code="model_loading",
                       retry_after=LOADING_RETRY_S)

    # --- who is asking --------------------------------------------------------

    def authenticate(self, authorization: str | None, address: str) -> Caller:
        """The caller of a request with this ``Authorization`` header, or a 401."""
        if not self.auth:
            return Caller("local", address)
        if not authorization:
            raise ApiError(401, "This request needs an API key: send it as 'Authorization: Bearer KEY'. "
                           "Create one with `docent keys create NAME` (or in the window's settings).",
                           code="missing_api_key")
        scheme, _, secret = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "The Authorization header must read 'Bearer KEY'.", code="invalid_api_key")
        key = self.keys.check(secret.strip())
        if key is None:
            raise ApiError(401, "This API key is not valid (it may have been revoked). "
                           "Check it, or create a new one with `docent keys create NAME`.", code="invalid_api_key")
        return Caller(key.name, address, key)

    def admit(self, caller: Caller, tokens: int = 0) -> None:
        """Count a request against the caller's rate limits (429 when over)."""
        try:
            self.limiter.admit(caller.name, rpm=caller.rpm, tpm=caller.tpm, tokens=tokens)
        except ApiError:
            self.metrics.rate_limited.labels(caller.name).inc()
            raise

    def settle(self, caller: Caller, reserved: int, used: int) -> None:
        """Charge what a generation really used instead of what was reserved."""
        if caller.tpm is not None and used != reserved:
            # Negative when it used more than it reserved: the rest is owed.
            self.limiter.refund(caller.name, tpm=caller.tpm, tokens=reserved - used)

    def scope_for(self, caller: Caller, requested: str | None) -> str | tuple[str, ...] | None:
        """Where the caller's request may read: ``requested`` (checked against
        the key's folders; 403 outside them), else the key's folders."""
        if requested:
            # As the catalog stores paths: absolute, normalised (a relative
            # one is taken from the server's working folder, as the CLI does).
            path = str(Path(requested).expanduser().absolute())
            path = str(Path(os.path.normpath(path)))
            if not caller.allows(path):
                raise ApiError(403, f"The key {caller.name} may only read {', '.join(caller.scopes)}; "
                               f"{requested} is outside them.", code="outside_scope", param="scope")
            return path
        if not caller.scopes:
            return None
        return caller.scopes[0] if len(caller.scopes) == 1 else tuple(caller.scopes)

    # --- read-only facts ----------------------------------------------------

    @property
    def chat_model_name(self) -> str:
        """The plain-chat model: the loaded GGUF's file name, or the inference server's model."""
        return self.library.model_name

    @property
    def embedding_model_name(self) -> str:
        """The embedder's name: the bundled model's own, else its folder's."""
        if not self.library.settings.embedding_model_path:
            return BUNDLED_EMBEDDER
        return self.library.settings.embedding_model().name

    def embedding_model_names(self) -> set[str]:
        """Names an embeddings request may give: the embedder's, its folder's, or ``docent``."""
        names = {self.embedding_model_name, LIBRARY_MODEL}
        if self.answerer is not None:
            names.add(self.answerer.embedder.name)
        return names

    def library_counts(self) -> dict[str, Any]:
        """Files and chunks (cached for two seconds: health checks come often)."""
        now = time.monotonic()
        if self._counts is None or now - self._counts[0] > 2.0:
            catalog = self.library.catalog
            self._counts = (now, {"files": catalog.counts(), "chunks": catalog.indexed_chunk_count()})
        return self._counts[1]

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /health``: (status code, body)."""
        body: dict[str, Any] = {"status": "ok" if self.state == "ready" else self.state}
        if self.state == "error":
            body["message"] = self.problem
        if self.state != "ready":
            return 503, body
        body.update({
            "model": self.chat_model_name,
            "embedding_model": self.embedding_model_name,
            "library": self.library_counts(),
            "queue": {"depth": self.queue.depth, "capacity": self.queue.capacity,
                      "running": self.queue.running is not None},
            "uptime_s": round(time.time() - self.started, 1),
        })
        body["checks"] = self.checks()
        body["objectives"] = self.objectives()
        if body["checks"].get("status") not in (None, "ok") or any(o.get("alert") == "fast"
                                                                   for o in body["objectives"]):
            # Still 200: it answers; a person should look (docent doctor, docent stats).
            body["status"] = "degraded"
        return 200, body

    def checks(self) -> dict[str, Any]:
        """``docent doctor``'s summary without loading models (they are loaded
        here already): refreshed once a minute, as a check reads the stores."""
        from app.core import doctor

        with self._health_lock:
            now = time.monotonic()
            if self._checks is None or now - self._checks[0] > _CHECKS_EVERY_S:
                lib = self.library
                try:
                    summary = doctor.run(lib.paths, lib.settings, models=False, probe=False).summary()
                except Exception as exc:  # noqa: BLE001 - /health must answer; say what failed
                    log.exception("The health checks failed")
                    summary = {"status": "problems", "problems": [f"the checks could not run: {exc}"]}
                self._checks = (now, summary)
            return self._checks[1]

    def objectives(self) -> list[dict[str, Any]]:
        """The error budgets (see app.core.slo), refreshed every few seconds."""
        from app.core import slo
        from app.core.stores.activity import ActivityStore

        with self._health_lock:
            now = time.monotonic()
            if self._budgets is None or now - self._budgets[0] > _BUDGETS_EVERY_S:
                lib = self.library
                store = ActivityStore(lib.paths.activity, readonly=True)
                try:
                    self._budgets = (now, [b.to_json() for b in slo.budgets(store, lib.settings)])
                except StoreError as exc:
                    self._budgets = (now, [{"objective": "all", "alert": None, "message": str(exc)}])
                finally:
                    store.close()
            return self._budgets[1]

    def models(self) -> list[dict[str, Any]]:
        """``GET /v1/models``: the library, the chat model, the embedder."""
        created = int(self.started)
        return [{"id": name, "object": "model", "created": created, "owned_by": "docent"}
                for name in (LIBRARY_MODEL, self.chat_model_name, self.embedding_model_name)]

    # --- embeddings ---------------------------------------------------------

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text in the embedder's own vocabulary."""
        assert self.answerer is not None
        embedder = self.answerer.embedder
        return [len(embedder.token_spans(t)) for t in texts]

    def embed(self, caller: Caller, texts: Sequence[str]) -> tuple[Future[np.ndarray], int]:
        """Queue ``texts`` for the batcher; returns the vectors' future and the token count.

        Raises a 400 for too many texts or one too long, a 429 over the
        key's limits.
        """
        self.require_ready()
        if not texts:
            raise bad_request("'input' is empty: send a string or a list of strings.", "input")
        if len(texts) > self.max_inputs:
            raise bad_request(f"{len(texts)} inputs in one request; the limit is {self.max_inputs}. "
                              "Split them over several requests.", "input", code="too_many_inputs")
        counts = self.token_counts(texts)
        limit = self.answerer.embedder.max_tokens  # type: ignore[union-attr]
        for i, n in enumerate(counts):
            if n > limit:
                raise bad_request(f"Input {i} is {n} tokens long; {self.embedding_model_name} reads at most "
                                  f"{limit} tokens per input. Split it into shorter pieces.", "input",
                                  code="input_too_long")
        tokens = sum(counts)
        self.admit(caller, tokens)
        # Written by the batcher, with the rest of its batch's records, before
        # any vector is handed out.
        note = ("embed", {
            "count": len(texts), "tokens": tokens, "model": self.embedding_model_name,
            "text_hashes": [AuditLog.hash_text(t) for t in texts], "client": caller.audit(),
        })
        assert self.batcher is not None
        self.metrics.embedded.inc(len(texts))
        return self.batcher.submit(texts, note), tokens

    # --- search ---------------------------------------------------------------

    def search(self, caller: Caller, query: str, *, k: int = config.SOURCES_PER_ANSWER,
               mode: str = "hybrid", scope: str | None = None) -> dict[str, Any]:
        """``POST /v1/search``: the ``docent search --json`` object (blocking)."""
        self.require_ready()
        if not query.strip():
            raise bad_request("'query' is empty.", "query")
        where = self.scope_for(caller, scope)
        self.admit(caller, self.token_counts([query])[0])
        assert self.answerer is not None
        try:
            with attributed(caller.audit()):
                result = self.answerer.retriever.search(query, k=k, mode=mode, scope=where, operation=True)
                self.library.audit.append("search", {
                    "query": query, "k": k, "mode": mode, "scope": where,
                    "hits": [h.chunk.id for h in result.hits],
                })
        except DocentError as exc:
            raise _api_error(exc) from exc
        return result.to_json()

    # --- generation -----------------------------------------------------------

    def sampling(self, *, temperature: float | None = None, top_p: float | None = None,
                 top_k: int | None = None, max_tokens: int | None = None,
                 stop: Sequence[str] = (), seed: int | None = None) -> Sampling:
        """The settings' sampling with the request's overrides."""
        base = self.library.sampling(max_tokens)
        changes: dict[str, Any] = {"stop": tuple(stop)}
        for name, value in (("temperature", temperature), ("top_p", top_p), ("top_k", top_k), ("seed", seed)):
            if value is not None:
                changes[name] = value
        return replace(base, **changes)

    def _submit(self, caller: Caller, work: Callable[[Callable[[], bool]], Any], reserve: int) -> Job:
        """Admit (rate limits), then queue ``work`` for the model."""
        self.require_ready()
        self.admit(caller, reserve)
        try:
            with attributed(caller.audit()):  # the job runs with this context
                return self.queue.submit(caller.fair_id, work)
        except ApiError:
            self.metrics.rejected.inc()
            self.settle(caller, reserve, 0)
            raise

    def submit_ask(
        self, caller: Caller, question: str, *, history: Sequence[tuple[str, str]] = (),
        k: int = config.SOURCES_PER_ANSWER, mode: str = "hybrid", scope: str | None = None,
        sampling: Sampling, on_token: Callable[[str], None] | None = None, use_cache: bool = True,
    ) -> Job:
        """Queue a question for the library; the job's result is the :class:`Answer`
        (from the answer cache unless ``use_cache`` is False)."""
        if not question.strip():
            raise bad_request("The question is empty.", "messages")
        where = self.scope_for(caller, scope)
        answerer = self.answerer  # None while loading: _submit answers 503 then
        # A whole-document task ("summarise X") names its files itself: a key
        # with folders may only have those read.
        task = answerer.plan(question, where if isinstance(where, str) else None) if answerer else None
        if task is not None and caller.scopes:
            outside = [f for f in (*task.files, *task.candidates) if not caller.key.allows(f)]  # type: ignore[union-attr]
            if outside:
                raise ApiError(403, f"The key {caller.name} may only read {', '.join(caller.scopes)}; this "
                               f"question asks for {outside[0]}.", code="outside_scope")
        reserve = self.token_counts([question])[0] + sampling.max_tokens if answerer else sampling.max_tokens
        timer = _TokenTimer(self.metrics, on_token)

        def work(should_stop: Callable[[], bool]) -> Answer:
            assert answerer is not None
            answer = answerer.ask(question, k=k, mode=mode, scope=where, history=history, sampling=sampling,
                                  on_token=timer, should_stop=should_stop, task=task, use_cache=use_cache)
            usage = answer.usage or {}
            timer.done(usage.get("completion_tokens", 0))
            self.settle(caller, reserve, usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0))
            return answer

        return self._submit(caller, work, reserve)

    def submit_generation(
        self, caller: Caller, *, prompt: str | None = None, messages: Sequence[Message] | None = None,
        sampling: Sampling, on_token: Callable[[str], None] | None = None, kind: str = "completion",
    ) -> Job:
        """Queue a plain completion of ``prompt``, or a chat over ``messages``
        (no documents); the job's result is a :class:`Generation`."""
        lib = self.library
        # About four characters a token, until the model counts them.
        reserve = sampling.max_tokens + (len(prompt or "") + sum(len(m.get("content", "")) for m in messages or ())) // 4
        timer = _TokenTimer(self.metrics, on_token)

        def work(should_stop: Callable[[], bool]) -> Generation:
            model = lib.model()
            text_prompt = prompt if prompt is not None else model.render(list(messages or ()))
            prompt_tokens = model.count_tokens(text_prompt)
            if prompt_tokens >= model.n_ctx:
                raise bad_request(f"The prompt is {prompt_tokens} tokens; {model.name} reads at most "
                                  f"{model.n_ctx}. Shorten it.", "prompt", code="context_length_exceeded")
            pieces: list[str] = []
            for piece in model.stream(text_prompt, sampling, should_stop=should_stop):
                pieces.append(piece)
                timer(piece)
            timer.done(len(pieces))
            text = "".join(pieces)
            finish = "cancelled" if should_stop() else (model.finish_reason or "stop")
            lib.audit.append("generate", {
                "kind": kind, "model": model.name, "sampling": sampling.to_json(),
                "prompt_hash": AuditLog.hash_text(text_prompt), "output_hash": AuditLog.hash_text(text),
                "prompt_tokens": prompt_tokens, "completion_tokens": len(pieces), "finish_reason": finish,
            })
            self.settle(caller, reserve, prompt_tokens + len(pieces))
            return Generation(text, prompt_tokens, len(pieces), finish, timer.first_token_s)

        return self._submit(caller, work, reserve)
