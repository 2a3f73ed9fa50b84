"""A chat model served by an OpenAI-compatible inference server.

When one model in Docent's own process is too slow for a team, generation can
run on a server that already exists (llama.cpp's ``llama-server`` with
parallel slots, the llama-cpp-python server, vLLM…). Docent still retrieves,
prompts, guards, cites and audits; only the completion runs there.

:class:`RemoteModel` has :class:`~app.core.models.llm.LocalModel`'s surface,
so the answering code does not know which one it holds:

- :meth:`RemoteModel.render` returns a :class:`RenderedPrompt`, a ``str``
  that also carries the messages: token counting and prompt budgeting work on
  the text as before, and :meth:`RemoteModel.stream` sends the messages to
  ``/chat/completions``, where the server applies the model's own chat
  template. A plain string (the local API's ``/v1/completions``) goes to
  ``/completions`` as it is.
- Tokens are counted by the server's tokenizer when it has an endpoint for it
  (llama.cpp: ``/tokenize``; llama-cpp-python: ``/extras/tokenize/count``),
  else estimated.

The standard library's HTTP client is used on purpose: httpx is only a test
dependency of Docent, and a streamed POST needs nothing more. There are no
retries: a repeated completion request could generate (and bill a slot) twice.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

from app.core.models.llm import Message, Sampling
from app.core.network import is_loopback_host
from app.errors import ModelError

#: Seconds a short request (models, tokenize, props) may take.
META_TIMEOUT_S = 30.0
#: Seconds without a byte from a completion before it is given up: a busy
#: server may queue the request and then read a long prompt before the first token.
STREAM_TIMEOUT_S = 600.0
#: Strings that end a raw-text completion for the common chat templates (the
#: server stops at the model's end-of-text token by itself; these catch a
#: model that writes the marker as text). Chat requests need none: the server
#: knows its template.
_TEXT_STOPS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")
#: Token counts kept, so budgeting a prompt (which counts the same texts
#: several times) does not ask the server again.
_COUNT_CACHE = 512
#: Tokens kept free beyond the counted prompt for a chat request: the server's
#: own template may differ a little from :func:`_chatml`.
_CHAT_MARGIN = 16


class RenderedPrompt(str):
    """Prompt text that also carries the chat messages it was rendered from."""

    messages: tuple[Message, ...]

    def __new__(cls, text: str, messages: Sequence[Message]) -> "RenderedPrompt":
        obj = super().__new__(cls, text)
        obj.messages = tuple(dict(m) for m in messages)
        return obj


def _chatml(messages: Sequence[Message]) -> str:
    """The messages in the ChatML layout: what most chat templates produce
    within a few tokens, so counting its tokens budgets the real prompt."""
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def check_url(url: str, *, allow_network: bool = False) -> str:
    """``url`` without a trailing slash, or a ModelError saying why it cannot be used.

    A server elsewhere would receive the questions and the passages of the
    documents, so an address other than this machine's needs
    ``generation_allow_network``.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelError(
            f"The inference server address {url!r} is not an http:// or https:// address. "
            "Set generation_url to the server's OpenAI-compatible base, e.g. http://127.0.0.1:8080/v1."
        )
    if not allow_network and not is_loopback_host(parts.hostname):
        raise ModelError(
            f"The inference server address {url} is not on this machine: questions and passages of your "
            "documents would be sent over the network. Set generation_allow_network "
            "(docent serve/ask: --generate-allow-network) to allow it, or use a server on 127.0.0.1."
        )
    return url.strip().rstrip("/")


class RemoteModel:
    """A chat model on an OpenAI-compatible server, with LocalModel's surface.

    Thread-safe: the server runs requests in parallel (that is what it is
    for), and :attr:`finish_reason` is kept per thread, so two answers
    streamed at once do not overwrite each other's.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        key: str = "",
        allow_network: bool = False,
        n_ctx: int = 4096,
    ) -> None:
        """Connect to the server at ``url`` (its ``.../v1`` base) and learn its model.

        Args:
            model: the served model to ask for ("": the server's first).
            key: sent as a bearer token when set.
            allow_network: accept an address that is not this machine's.
            n_ctx: the context size to assume when the server does not report one.

        Raises:
            ModelError: the address is refused, the server does not answer,
                or it does not serve ``model``.
        """
        self.url = check_url(url, allow_network=allow_network)
        parts = urllib.parse.urlsplit(self.url)
        # The tokenizer and properties endpoints sit beside /v1, not under it.
        root_path = parts.path[: -len("/v1")] if parts.path.endswith("/v1") else parts.path
        self._root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, root_path, "", ""))
        self._key = key
        self._local = threading.local()
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._counts_guard = threading.Lock()
        #: No file on this machine: the model lives on the server.
        self.path: Path | None = None
        self.name = self._served_model(model)
        self.n_ctx = self._server_context() or n_ctx
        self._counter = self._find_counter()

    # --- what LocalModel offers -------------------------------------------------

    @property
    def finish_reason(self) -> str | None:
        """Why this thread's last completion ended: ``stop``, ``length``, ``cancelled``."""
        return getattr(self._local, "finish_reason", None)

    @finish_reason.setter
    def finish_reason(self, value: str | None) -> None:
        self._local.finish_reason = value

    @property
    def threads(self) -> int:
        """CPU threads used on this machine for generation: none, the server does it."""
        return 0

    @property
    def stop_strings(self) -> list[str]:
        """The strings that end a raw-text completion."""
        return list(_TEXT_STOPS)

    def forget(self) -> None:
        """Nothing to drop here: the server manages its own prompt cache."""

    def render(self, messages: Sequence[Message]) -> RenderedPrompt:
        """The prompt for ``messages``: ChatML text to count, carrying the messages to send."""
        return RenderedPrompt(_chatml(messages), messages)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes: the server's count when it has a tokenizer endpoint, else an estimate."""
        with self._counts_guard:
            if text in self._counts:
                self._counts.move_to_end(text)
                return self._counts[text]
        count = self._counter(text)
        with self._counts_guard:
            self._counts[text] = count
            if len(self._counts) > _COUNT_CACHE:
                self._counts.popitem(last=False)
        return count

    def stream(
        self,
        prompt: str,
        sampling: Sampling,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Yield the completion of ``prompt`` piece by piece, as the server streams it.

        ``should_stop`` is checked between pieces; when it says stop, the
        connection is closed, which tells the server to stop generating.
        """
        chat = isinstance(prompt, RenderedPrompt)
        margin = _CHAT_MARGIN if chat else 1
        budget = self.n_ctx - self.count_tokens(prompt) - margin
        body: dict[str, Any] = {
            "model": self.name,
            "stream": True,
            "max_tokens": max(1, min(sampling.max_tokens, budget)),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
            # Not in OpenAI's API; llama.cpp and llama-cpp-python read them, others ignore them.
            "top_k": sampling.top_k,
            "repeat_penalty": sampling.repeat_penalty,
        }
        stops = [s for s in sampling.stop if s]
        if chat:
            assert isinstance(prompt, RenderedPrompt)
            body["messages"] = [dict(m) for m in prompt.messages]
            path = "/chat/completions"
        else:
            body["prompt"] = str(prompt)
            stops = list(_TEXT_STOPS) + stops
            path = "/completions"
        if stops:
            body["stop"] = stops
        self.finish_reason = None
        response = self._open("POST", self.url + path, body, timeout=STREAM_TIMEOUT_S)
        try:
            for data in _events(response, self.url):
                if should_stop is not None and should_stop():
                    self.finish_reason = "cancelled"
                    return
                choices = data.get("choices") or []
                if not choices:
                    continue
                choice = choices[0]
                self.finish_reason = choice.get("finish_reason") or self.finish_reason
                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                if text:
                    yield text
            if should_stop is not None and should_stop():
                self.finish_reason = "cancelled"
        finally:
            # Closing mid-stream is how a client cancels: the server stops the slot.
            response.close()

    # --- the server -------------------------------------------------------------

    def _served_model(self, wanted: str) -> str:
        """The served model's id (``wanted`` when the server has it)."""
        try:
            listing = self._json("GET", self.url + "/models")
        except _NotFound:
            # Not every server lists its models; it answers for the one it has.
            return wanted or (urllib.parse.urlsplit(self.url).netloc)
        ids = [str(m.get("id")) for m in listing.get("data") or [] if isinstance(m, dict) and m.get("id")]
        if wanted:
            if ids and wanted not in ids:
                raise ModelError(
                    f"The inference server at {self.url} does not serve the model {wanted!r}; it serves "
                    f"{', '.join(repr(i) for i in ids)}. Correct generation_model, or leave it empty for its first."
                )
            return wanted
        if not ids:
            raise ModelError(f"The inference server at {self.url} lists no models. Check that it has one loaded.")
        return ids[0]

    def _server_context(self) -> int | None:
        """The context size the server reports (llama.cpp's ``/props``), else None."""
        try:
            props = self._json("GET", self._root + "/props", timeout=META_TIMEOUT_S)
        except (_NotFound, ModelError):
            return None  # llama-cpp-python and others do not report it
        settings = props.get("default_generation_settings") or {}
        for value in (settings.get("n_ctx"), props.get("n_ctx")):
            if isinstance(value, int) and value > 0:
                return value
        return None

    def _find_counter(self) -> Callable[[str], int]:
        """How to count tokens on this server: its tokenizer endpoint, else an estimate."""
        # llama-cpp-python: POST /extras/tokenize/count {"input"} -> {"count"}. It adds
        # the BOS token when the model has one; the count of "" is that overhead.
        try:
            url = self._root + "/extras/tokenize/count"
            extra = int(self._json("POST", url, {"input": "", "model": self.name})["count"])

            def llama_cpp_python(text: str) -> int:
                return max(0, int(self._json("POST", url, {"input": text, "model": self.name})["count"]) - extra)

            return llama_cpp_python
        except (ModelError, KeyError, TypeError, ValueError):
            pass  # not this server's dialect (404, or another request shape): try the next
        # llama.cpp's server: POST /tokenize {"content"} -> {"tokens": [...]}.
        try:
            url = self._root + "/tokenize"
            self._json("POST", url, {"content": "", "add_special": False})["tokens"]  # noqa: B018 - a probe

            def llama_cpp(text: str) -> int:
                return len(self._json("POST", url, {"content": text, "add_special": False, "parse_special": True})
                           ["tokens"])

            return llama_cpp
        except (ModelError, KeyError, TypeError, ValueError):
            pass  # not this server's dialect (404, or another request shape): try the next
        # No tokenizer endpoint (OpenAI's API has none): an estimate. English
        # runs about four characters a token; three over-counts on purpose, so
        # a prompt budgeted with it still fits the server's context.
        return lambda text: math.ceil(len(text) / 3)

    def _open(self, method: str, url: str, body: dict[str, Any] | None = None,
              *, timeout: float = META_TIMEOUT_S) -> HTTPResponse:
        """Send one request; the response, or a ModelError that says what to do."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Accept": "application/json, text/event-stream"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - checked scheme
            return response
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            exc.close()
            if exc.code == 404:
                raise _NotFound(
                    f"The inference server at {self.url} has no {url} (404). Set generation_url to its "
                    "OpenAI-compatible base, usually ending in /v1 (e.g. http://127.0.0.1:8080/v1)."
                ) from exc
            if exc.code in (401, 403):
                raise ModelError(
                    f"The inference server at {self.url} refused the request ({exc.code}{detail}). "
                    "Set generation_key to a key it accepts."
                ) from exc
            raise ModelError(
                f"The inference server at {self.url} could not answer ({exc.code}{detail})."
                + (" The prompt may be longer than its context: lower the prompt budget or sources per answer."
                   if exc.code == 400 else " Check the server's log.")
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelError(
                f"The inference server at {self.url} did not answer ({reason}). Start it, or correct "
                "generation_url in the settings (empty: answer with the model on this machine)."
            ) from exc

    def _json(self, method: str, url: str, body: dict[str, Any] | None = None,
              *, timeout: float = META_TIMEOUT_S) -> dict[str, Any]:
        """One request whose answer is a JSON object."""
        response = self._open(method, url, body, timeout=timeout)
        try:
            with response:
                out = json.loads(response.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"The inference server at {self.url} sent an unreadable answer to {url}: {exc}.") from exc
        if not isinstance(out, dict):
            raise ModelError(f"The inference server at {self.url} sent an unexpected answer to {url}.")
        return out


class _NotFound(ModelError):
    """The server has no such endpoint (404): an optional feature it lacks."""


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """``: <the server's message>`` from an error response, or ``""``."""
    try:
        raw = exc.read(2000).decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        body = json.loads(raw)
    except ValueError:
        return f": {raw.strip()[:200]}" if raw.strip() else ""
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") or error.get("detail") if isinstance(error, dict) else error
    return f": {str(message)[:300]}" if message else ""


def _events(response: HTTPResponse, url: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, until ``[DONE]``.

    Only ``data:`` lines matter; comments (``:`` pings), ``event:`` and blank
    lines are skipped.
    """
    try:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            payload = line[len("data:"):].strip()
            if payload == "[DONE]":
                return
            try:
                data = json.loads(payload)
            except ValueError:
                continue  # a partial or foreign line: the next one carries on
            if isinstance(data, dict) and data.get("error"):
                error = data["error"]
                message = error.get("message") if isinstance(error, dict) else error
                raise ModelError(f"The inference server at {url} stopped with an error: {message}")
            if isinstance(data, dict):
                yield data
    except (OSError, ValueError) as exc:  # a dropped connection or a read timeout
        raise ModelError(
            f"The inference server at {url} stopped answering mid-way ({exc}). Check that it is still running."
        ) from exc
