"""The local API's routes (FastAPI) over a :class:`~app.service.engine.Service`.

OpenAI-compatible: ``/v1/chat/completions`` (``model: "docent"`` answers
from the library and adds its sources in the ``docent`` field; any other
model name is plain chat), ``/v1/completions``, ``/v1/embeddings``,
``/v1/models``. Docent's own: ``/generate``, ``/embed``, ``/v1/search``,
``/v1/ask``, ``/health``, ``/metrics``. Every error is OpenAI's error shape
with a sentence for a person, never a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.core.answering.outcome import Answer
from app.errors import DocentError
from app.service.engine import LIBRARY_MODEL, Caller, Generation, Service, _api_error
from app.service.errors import ApiError, bad_request
from app.service.metrics import CONTENT_TYPE_LATEST
from app.service.scheduler import Job
from app.service.team_routes import add_team_routes
from app.telemetry import instruments, metrics_registry, names, span, tracer
from app.service.schemas import (
    AskRequest,
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    EmbedRequest,
    GenerateRequest,
    SearchRequest,
)

log = logging.getLogger(__name__)

_DONE = object()


class _ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def _error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One sentence for the first problem pydantic found, and the field."""
    errors = exc.errors()
    if not errors:
        return "The request body is not valid.", None
    first = errors[0]
    kind = first.get("type", "")
    where = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(where) or None
    if kind == "json_invalid":
        return ("The request body is not valid JSON "
                f"({first.get('ctx', {}).get('error', first.get('msg', ''))}). Send a JSON object.", None)
    if kind == "missing":
        return f"'{field}' is required.", field
    if kind in ("model_attributes_type", "dict_type") and not where:
        return "The request body must be a JSON object.", None
    return f"'{field}': {first.get('msg', 'is not valid')}.", field


class _Observe:
    """Counts every request by route and status, and times it (pure ASGI, so
    streaming and client disconnects pass through untouched)."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = [500]
        if scope["method"] == "POST":
            # Every POST body is JSON; `curl -d` labels it a form, which would
            # hide the real problem (if any) behind "not a JSON object".
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        # A server span per request (HTTP conventions), the parent of the
        # question, search or embedding it runs. Health checks and metric
        # scrapes come every few seconds and are not operations of anyone's:
        # they are counted, not traced.
        traced = scope["path"] not in _UNTRACED
        current = _server_span(scope) if traced else None
        try:
            if current is None:
                await self.app(scope, receive, observed_send)
            else:
                with trace.use_span(current, end_on_exit=False, record_exception=False,
                                    set_status_on_exception=False):
                    await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "other"
            m = self.service.metrics
            m.requests.labels(name, str(status[0])).inc()
            m.latency.labels(name).observe(time.perf_counter() - began)
            instruments().requests.add(1, {names.HTTP_ROUTE: name, names.HTTP_STATUS: status[0]})
            if current is not None:
                _end_server_span(current, scope, name, status[0])


_UNTRACED = frozenset({"/health", "/metrics"})


def _server_span(scope: Scope) -> Span:
    """The span of one request, started before routing (its route is set at the end)."""
    server = scope.get("server") or (None, None)
    client = scope.get("client") or (None, None)
    method = scope["method"]
    attributes = {
        names.HTTP_METHOD: method, names.URL_PATH: scope["path"], names.KIND: "request",
        names.LABEL: f"{method} {scope['path']}",
    }
    for key, value in ((names.SERVER_ADDRESS, server[0]), (names.SERVER_PORT, server[1]),
                       (names.CLIENT_ADDRESS, client[0])):
        if value is not None:
            attributes[key] = value
    return tracer().start_span(f"{method} {scope['path']}", kind=SpanKind.SERVER, attributes=attributes)


def _end_server_span(current: Span, scope: Scope, route: str, status: int) -> None:
    """Name the span by its route, with the status and its outcome class."""
    method = scope["method"]
    current.update_name(f"{method} {route}")
    current.set_attribute(names.HTTP_ROUTE, route)
    current.set_attribute(names.LABEL, f"{method} {route}")
    current.set_attribute(names.HTTP_STATUS, status)
    if status >= 500:
        current.set_attribute(names.ERROR_TYPE, str(status))
        current.set_status(Status(StatusCode.ERROR))
        current.set_attribute(names.OUTCOME, "5xx")
    elif status == 499:
        current.set_attribute(names.OUTCOME, "cancelled")  # the client left
    elif status >= 400:
        current.set_attribute(names.OUTCOME, "4xx")
    else:
        current.set_attribute(names.OUTCOME, "ok")
    current.end()


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _docent_field(answer: Answer) -> dict[str, Any]:
    """What the ``docent`` extension field carries: the ``ask --json`` object."""
    return answer.to_json()


def create_app(service: Service) -> FastAPI:
    """The FastAPI application serving ``service``."""
    app = FastAPI(title="Docent local API", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(ApiError)
    async def _api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = _validation_message(exc)
        return _error_response(bad_request(message, field))

    @app.exception_handler(StarletteHTTPException)
    async def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error_response(ApiError(404, f"There is no {request.url.path} here. The API is at /v1 "
                                            "(see GET /v1/models) plus /health, /metrics, /generate, /embed.",
                                            code="not_found"))
        if exc.status_code == 405:
            return _error_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}.",
                                            code="method_not_allowed"))
        return _error_response(ApiError(exc.status_code, str(exc.detail)))

    @app.exception_handler(_ClientGone)
    async def _gone_handler(request: Request, exc: _ClientGone) -> Response:
        # Nobody is listening; 499 (as nginx logs it) keeps the metrics honest.
        return Response(status_code=499)

    @app.exception_handler(DocentError)
    async def _docent_handler(request: Request, exc: DocentError) -> JSONResponse:
        return _error_response(_api_error(exc))

    @app.exception_handler(Exception)
    async def _last_resort(request: Request, exc: Exception) -> JSONResponse:
        log.exception("The local API failed on %s", request.url.path)
        return _error_response(ApiError(500, f"Docent could not answer this request ({type(exc).__name__}). "
                                        "The details are in Docent's log; please report it.",
                                        code="internal_error"))

    def caller(request: Request) -> Caller:
        address = request.client.host if request.client else "unknown"
        who = service.authenticate(request.headers.get("authorization"), address)
        trace.get_current_span().set_attribute(names.CLIENT, who.name)
        return who

    # --- unauthenticated ------------------------------------------------------

    # Health checks get threads of their own: behind a thousand searches in
    # the shared pool they would time out and the server would look down.
    health_threads = anyio.CapacityLimiter(2)

    @app.get("/health")
    async def health() -> JSONResponse:
        status, body = await anyio.to_thread.run_sync(service.health, limiter=health_threads)
        headers = {"Retry-After": "5"} if status == 503 else {}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        caller(request)
        # The service's own series, then the OpenTelemetry metrics (GenAI names).
        body = service.metrics.render() + generate_latest(metrics_registry())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        caller(request)
        return {"object": "list", "data": service.models()}

    # --- embeddings -------------------------------------------------------------

    async def embed_texts(request: Request, texts: list[str]) -> tuple[np.ndarray, int]:
        who = caller(request)
        if any(not isinstance(t, str) for t in texts):
            raise bad_request("Docent embeds text: send a string or a list of strings, not token ids.", "input")
        model = service.embedding_model_name
        # The batcher encodes several requests' texts together on its own
        # thread: this request's span covers its wait and its share.
        with service.gate.enter(), span(f"embeddings {model}", {
                names.OPERATION: "embeddings", names.REQUEST_MODEL: model, "docent.texts": len(texts)}) as current:
            future, tokens = await run_in_threadpool(service.embed, who, texts)
            vectors = await asyncio.wrap_future(future)
            current.set_attribute(names.INPUT_TOKENS, tokens)
        instruments().token_usage.record(tokens, {names.OPERATION: "embeddings", names.REQUEST_MODEL: model,
                                                  names.TOKEN_TYPE: "input"})
        return vectors, tokens

    # The embedding routes answer with JSONResponse directly: FastAPI's
    # encoder would walk every float of every vector first.
    @app.post("/v1/embeddings", response_model=None)
    async def embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
        texts = [body.input] if isinstance(body.input, str) else list(body.input)  # type: ignore[arg-type]
        if body.model is not None and body.model not in service.embedding_model_names():
            raise ApiError(404, f"The embedding model {body.model!r} is not here; use "
                           f"{service.embedding_model_name!r} (GET /v1/models).", code="model_not_found",
                           param="model")
        vectors, tokens = await embed_texts(request, texts)
        if body.dimensions is not None and body.dimensions != vectors.shape[1]:
            raise bad_request(f"{service.embedding_model_name} makes {vectors.shape[1]}-dimensional vectors; "
                              "leave 'dimensions' out or set it to that.", "dimensions")

        def encoded(row: np.ndarray) -> Any:
            if body.encoding_format == "base64":
                return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
            return row.astype(float).tolist()

        return JSONResponse({
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": encoded(v)} for i, v in enumerate(vectors)],
            "model": service.embedding_model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    @app.post("/embed", response_model=None)
    async def embed(body: EmbedRequest, request: Request) -> JSONResponse:
        vectors, tokens = await embed_texts(request, body.all_texts())
        return JSONResponse({"model": service.embedding_model_name, "dim": int(vectors.shape[1]),
                             "vectors": vectors.astype(float).tolist(), "tokens": tokens})

    # --- search and ask ---------------------------------------------------------

    @app.post("/v1/search", response_model=None)
    async def search(body: SearchRequest, request: Request) -> JSONResponse:
        who = caller(request)
        with service.gate.enter():
            found = await run_in_threadpool(service.search, who, body.query, k=body.k, mode=body.mode,
                                            scope=body.scope)
        return JSONResponse(found)

    @app.post("/v1/ask", response_model=None)
    async def ask(body: AskRequest, request: Request) -> Any:
        who = caller(request)
        sampling = service.sampling(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                    max_tokens=body.max_tokens, stop=body.stops(), seed=body.seed)

        def submit(on_token: Callable[[str], None] | None) -> Job:
            return service.submit_ask(who, body.question, history=body.history, k=body.k, mode=body.mode,
                                      scope=body.scope, sampling=sampling, on_token=on_token,
                                      use_cache=body.use_cache())

        if body.stream:
            async def events(job: Job, tokens: asyncio.Queue[Any]) -> AsyncIterator[str]:
                async for piece in _pieces(job, tokens):
                    yield _sse({"token": piece})
                answer: Answer = job.future.result()
                yield _sse(answer.to_json())
                yield "data: [DONE]\n\n"

            return await _streamed(submit, events)
        answer = await _finished(request, await run_in_threadpool(submit, None))
        return answer.to_json()

    # --- generation -----------------------------------------------------------

    async def _pieces(job: Job, tokens: asyncio.Queue[Any]) -> AsyncIterator[str]:
        """The job's tokens as they come."""
        while True:
            item = await tokens.get()
            if item is _DONE:
                return
            yield item

    async def _streamed(
        submit: Callable[[Callable[[str], None]], Job],
        events: Callable[[Job, asyncio.Queue[Any]], AsyncIterator[str]],
    ) -> StreamingResponse:
        """Queue a job whose tokens stream to the client as server-sent events.

        Errors before the first byte (rate limit, full queue, bad scope) are
        ordinary error responses; a client that goes away cancels the job,
        which stops within a token and frees the model.
        """
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(tokens.put_nowait, item)
            except RuntimeError:
                pass  # the server is shutting down

        job = await run_in_threadpool(submit, put)
        job.future.add_done_callback(lambda _f: put(_DONE))

        async def guarded() -> AsyncIterator[str]:
            try:
                async for event in events(job, tokens):
                    yield event
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                yield _sse(exc.body())
            except DocentError as exc:
                yield _sse(_api_error(exc).body())
            except Exception as exc:  # noqa: BLE001 - the stream ends with an error event, not a reset
                log.exception("A streamed answer failed")
                yield _sse(ApiError(500, f"Docent could not finish this answer ({type(exc).__name__}).").body())
            finally:
                if not job.future.done():
                    job.cancel()  # the client left: stop generating within a token

        return StreamingResponse(guarded(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _finished(request: Request, job: Job) -> Any:
        """The job's result, or cancel it if the client disconnects first.

        (Jobs are submitted from a worker thread: admitting one reads the
        catalog and counts tokens, which must not hold up the event loop.)
        """
        result = asyncio.wrap_future(job.future)

        async def gone() -> None:
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    return

        watcher = asyncio.ensure_future(gone())
        try:
            done, _ = await asyncio.wait({result, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
        if result not in done:
            job.cancel()
            raise _ClientGone()
        return result.result()

    def _completion_id(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:24]}"

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest, request: Request) -> Any:
        who = caller(request)
        max_tokens = body.max_completion_tokens or body.max_tokens
        sampling = service.sampling(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                    max_tokens=max_tokens, stop=body.stops(), seed=body.seed)
        if body.model == LIBRARY_MODEL:
            return await _library_chat(body, request, who, sampling)
        if body.model != service.chat_model_name:
            raise ApiError(404, f"The model {body.model!r} is not here. Use 'docent' to answer from your "
                           f"documents, or {service.chat_model_name!r} for plain chat (GET /v1/models).",
                           code="model_not_found", param="model")
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in body.messages]

        def submit(on_token: Callable[[str], None] | None) -> Job:
            return service.submit_generation(who, messages=messages, sampling=sampling, on_token=on_token,
                                             kind="chat")

        return await _chat_reply(body, request, submit, lambda g: ({}, g.text, g.finish_reason,
                                                                  (g.prompt_tokens, g.completion_tokens)))

    async def _library_chat(body: ChatRequest, request: Request, who: Caller, sampling: Any) -> Any:
        turns = [(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1][0] != "user":
            raise bad_request("The last message must be the user's question.", "messages")
        question = turns[-1][1]
        history: list[tuple[str, str]] = []
        pending: str | None = None
        for role, text in turns[:-1]:
            if role == "user":
                pending = text
            elif pending is not None:
                history.append((pending, text))
                pending = None
        opts = body.docent
        k = opts.k if opts and opts.k else service.library.settings.sources_per_answer
        mode = opts.mode if opts else "hybrid"
        scope = opts.scope if opts else None
        use_cache = opts.cache if opts else True

        def submit(on_token: Callable[[str], None] | None) -> Job:
            return service.submit_ask(who, question, history=history, k=k, mode=mode, scope=scope,
                                      sampling=sampling, on_token=on_token, use_cache=use_cache)

        def outcome(answer: Answer) -> tuple[dict[str, Any], str, str, tuple[int, int]]:
            usage = answer.usage or {}
            finish = "stop" if not answer.stopped else "cancelled"
            if usage.get("completion_tokens", 0) >= sampling.max_tokens:
                finish = "length"
            return ({"docent": _docent_field(answer)}, answer.answer, finish,
                    (usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)))

        return await _chat_reply(body, request, submit, outcome)

    async def _chat_reply(
        body: ChatRequest, request: Request, submit: Callable[[Callable[[str], None] | None], Job],
        outcome: Callable[[Any], tuple[dict[str, Any], str, str, tuple[int, int]]],
    ) -> Any:
        cid, created, model = _completion_id("chatcmpl"), int(time.time()), body.model

        def usage_of(counts: tuple[int, int]) -> dict[str, int]:
            return {"prompt_tokens": counts[0], "completion_tokens": counts[1], "total_tokens": sum(counts)}

        if not body.stream:
            result = await _finished(request, await run_in_threadpool(submit, None))
            extra, text, finish, counts = outcome(result)
            return {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}],
                "usage": usage_of(counts), **extra,
            }

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
            return _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more})

        async def events(job: Job, tokens: asyncio.Queue[Any]) -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            async for piece in _pieces(job, tokens):
                yield chunk({"content": piece})
            extra, _text, finish, counts = outcome(job.future.result())
            # The last chunk carries the sources (and the final text, with its
            # citation numbers as the sources list them).
            yield chunk({}, finish, **extra)
            if body.stream_options is not None and body.stream_options.include_usage:
                yield _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                            "choices": [], "usage": usage_of(counts)})
            yield "data: [DONE]\n\n"

        return await _streamed(submit, events)

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Any:
        who = caller(request)
        if isinstance(body.prompt, list):
            if len(body.prompt) != 1:
                raise bad_request("Send one prompt per request (the model answers one at a time).", "prompt")
            prompt = body.prompt[0]
        else:
            prompt = body.prompt
        if body.model not in (None, service.chat_model_name, LIBRARY_MODEL):
            raise ApiError(404, f"The model {body.model!r} is not here; use {service.chat_model_name!r}.",
                           code="model_not_found", param="model")
        sampling = service.sampling(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                    max_tokens=body.max_tokens or 16, stop=body.stops(), seed=body.seed)
        cid, created, model = _completion_id("cmpl"), int(time.time()), service.chat_model_name

        def submit(on_token: Callable[[str], None] | None) -> Job:
            return service.submit_generation(who, prompt=prompt, sampling=sampling, on_token=on_token)

        def usage_of(g: Generation) -> dict[str, int]:
            return {"prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
                    "total_tokens": g.prompt_tokens + g.completion_tokens}

        if not body.stream:
            g: Generation = await _finished(request, await run_in_threadpool(submit, None))
            return {"id": cid, "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": 0, "text": g.text, "finish_reason": g.finish_reason, "logprobs": None}],
                    "usage": usage_of(g)}

        async def events(job: Job, tokens: asyncio.Queue[Any]) -> AsyncIterator[str]:
            async for piece in _pieces(job, tokens):
                yield _sse({"id": cid, "object": "text_completion", "created": created, "model": model,
                            "choices": [{"index": 0, "text": piece, "finish_reason": None, "logprobs": None}]})
            g = job.future.result()
            yield _sse({"id": cid, "object": "text_completion", "created": created, "model": model,
                        "choices": [{"index": 0, "text": "", "finish_reason": g.finish_reason, "logprobs": None}],
                        "usage": usage_of(g)})
            yield "data: [DONE]\n\n"

        return await _streamed(submit, events)

    @app.post("/generate", response_model=None)
    async def generate(body: GenerateRequest, request: Request) -> Any:
        who = caller(request)
        sampling = service.sampling(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                    max_tokens=body.max_tokens, stop=body.stops(), seed=body.seed)

        def submit(on_token: Callable[[str], None] | None) -> Job:
            return service.submit_generation(who, prompt=body.prompt, sampling=sampling, on_token=on_token,
                                             kind="generate")

        def result(g: Generation) -> dict[str, Any]:
            return {"text": g.text, "finish_reason": g.finish_reason, "model": service.chat_model_name,
                    "tokens": {"prompt": g.prompt_tokens, "completion": g.completion_tokens}}

        if not body.stream:
            return result(await _finished(request, await run_in_threadpool(submit, None)))

        async def events(job: Job, tokens: asyncio.Queue[Any]) -> AsyncIterator[str]:
            async for piece in _pieces(job, tokens):
                yield _sse({"token": piece})
            yield _sse(result(job.future.result()))
            yield "data: [DONE]\n\n"

        return await _streamed(submit, events)

    add_team_routes(app, service, caller)
    return _with_observation(app, service)


def _with_observation(app: FastAPI, service: Service) -> FastAPI:
    app.add_middleware(_Observe, service=service)  # type: ignore[arg-type]
    return app


__all__ = ["create_app"]
