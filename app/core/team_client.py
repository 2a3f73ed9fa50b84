"""A client for a team library: another machine's ``docent serve``, over HTTP.

The window's team mode talks to the server only through this class (no Qt
here: the workers call it on their own threads). Every request carries the
user's key as ``Authorization: Bearer KEY`` and goes to the one address the
user gave; redirects are never followed, so the key cannot be carried to
another host. Timeouts are short, so a dropped connection is noticed in
seconds, not minutes; only an answer's stream waits longer between pieces
(the server may be busy with someone else's question).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from app.errors import DocentError, UsageError

#: Seconds to open a connection: a server that is down answers at once, one
#: that is unreachable should not hold the user for long.
CONNECT_TIMEOUT_S = 4.0
#: Seconds to wait for an ordinary answer (library, pages, audit).
READ_TIMEOUT_S = 15.0
#: Seconds between two pieces of a streamed answer: retrieval and a queue of
#: other users' questions come before the first token.
STREAM_READ_TIMEOUT_S = 180.0


class TeamError(DocentError):
    """The team server refused a request; the message is the server's sentence.

    ``status`` is the HTTP status (0 when there was none) and ``code`` the
    server's machine-readable code (``invalid_api_key``, ``not_found`` …).
    """

    def __init__(self, message: str, *, status: int = 0, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TeamOffline(TeamError):
    """The server could not be reached (down, network gone, connection dropped)."""


def check_url(url: str) -> str:
    """The server's base address, cleaned (no trailing slash).

    Raises:
        UsageError: not an ``http://`` or ``https://`` address with a host.
    """
    text = (url or "").strip()
    if "://" not in text and text:
        text = "http://" + text  # "server:8731" is what people type
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not a server address: write it as http://HOST:PORT "
                         "(or https://…), as the server's `docent serve` printed it.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"{url!r} should be the server's address only (http://HOST:PORT), "
                         "without a query, fragment or password in it.")
    return text.rstrip("/")


def _error_sentence(response: httpx.Response) -> tuple[str, str | None]:
    """The server's sentence and code for an error response, else a plain one."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"], error.get("code")
    return (f"The server answered {response.status_code} {response.reason_phrase}: it may not be a "
            "Docent team library."), None


class TeamClient:
    """Requests to one team server with one key.

    An ``httpx.Client`` is not shared between threads here: each worker
    thread makes its own with :meth:`clone`.
    """

    def __init__(self, url: str, key: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = check_url(url)
        key = (key or "").strip()
        if not key:
            raise UsageError("Enter the key the team library's admin gave you.")
        self._key = key
        self._transport = transport
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            follow_redirects=False,  # the key goes to this host only
            # No proxy from the environment: the key goes to the address the
            # user typed and nowhere else.
            transport=transport, trust_env=False,
        )

    def clone(self) -> TeamClient:
        """Another client to the same server with the same key (for another thread)."""
        return TeamClient(self.url, self._key, transport=self._transport)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    # --- plumbing -----------------------------------------------------------

    def _offline(self, exc: Exception) -> TeamOffline:
        if isinstance(exc, httpx.TimeoutException):
            why = "it did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            why = "the connection was refused or the host cannot be reached"
        else:
            why = "the connection dropped"
        return TeamOffline(f"Cannot reach the team library at {self.url}: {why}.")

    def _check(self, response: httpx.Response) -> None:
        if response.is_redirect:
            # Following it would hand the key to wherever it points.
            raise TeamError(f"The server at {self.url} redirects to {response.headers.get('location', '?')}; "
                            "Docent does not follow redirects with your key. Use the address it points to.",
                            status=response.status_code)
        if response.status_code >= 400:
            message, code = _error_sentence(response)
            raise TeamError(message, status=response.status_code, code=code)

    def _request(self, method: str, route: str, **kwargs: Any) -> Any:
        if not route.startswith("/"):
            raise ValueError(f"not a route: {route!r}")  # never an absolute URL: the key stays home
        try:
            response = self._http.request(method, route, **kwargs)
        except httpx.TransportError as exc:
            raise self._offline(exc) from exc
        self._check(response)
        try:
            return response.json()
        except ValueError as exc:
            raise TeamError(f"The server at {self.url} sent something that is not JSON; it may not be a "
                            "Docent team library.", status=response.status_code) from exc

    # --- the routes ---------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health`` (no key needed); a loading server raises TeamError (503)."""
        return self._request("GET", "/health")

    def whoami(self) -> dict[str, Any]:
        """Who the key belongs to: ``{user, role, scopes, can_edit, can_admin, auth}``."""
        return self._request("GET", "/v1/whoami")

    def library(self) -> dict[str, Any]:
        """The folders the key may see, with file counts by status: ``{folders, sync, jobs, read_only}``."""
        return self._request("GET", "/v1/library")

    def files(self, folder: str | None = None) -> list[dict[str, Any]]:
        """The key's files (under ``folder`` when given), each with its status."""
        params = {"folder": folder} if folder else None
        return list(self._request("GET", "/v1/library/files", params=params)["files"])

    def add_folders(self, paths: list[str]) -> dict[str, Any]:
        """Ask the server to index folders of its own (editors); the queued job."""
        return self._request("POST", "/v1/library/folders", json={"paths": list(paths)})

    def search(self, query: str, k: int = 5) -> dict[str, Any]:
        """``POST /v1/search``: the passages nearest ``query`` within the key's folders."""
        return self._request("POST", "/v1/search", json={"query": query, "k": k})

    def passage(self, chunk_id: str) -> dict[str, Any]:
        """One stored passage by id (404 outside the key's folders)."""
        # Quoted whole: an id is a path segment, never a way to another route.
        return self._request("GET", f"/v1/passages/{quote(chunk_id, safe='')}")

    def page(self, path: str, page: int | None = None, part: str | None = None) -> dict[str, Any]:
        """A page's indexed text with where each passage lies in it (``passages``: id, start, end)."""
        params: dict[str, Any] = {"path": path}
        if page is not None:
            params["page"] = page
        if part:
            params["part"] = part
        return self._request("GET", "/v1/pages", params=params)

    def audit(self, limit: int = 200) -> dict[str, Any]:
        """The user's own audit records, newest last: ``{user, records, total}``."""
        return self._request("GET", "/v1/audit", params={"limit": limit})

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None,
                   should_stop: Callable[[], bool] = lambda: False) -> Iterator[str | dict[str, Any]]:
        """Ask the server; yields each token (``str``) as it comes, then the answer (``dict``).

        Stops early (closing the stream, which cancels the answer on the
        server) once ``should_stop()`` is true. Raises TeamOffline when the
        connection drops, TeamError when the server refuses or fails.
        """
        body = {"question": question, "stream": True, "history": [list(t) for t in history or []]}
        timeout = httpx.Timeout(STREAM_READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        answered = False
        try:
            with self._http.stream("POST", "/v1/ask", json=body, timeout=timeout) as response:
                if response.status_code >= 400 or response.is_redirect:
                    response.read()
                    self._check(response)
                for line in response.iter_lines():
                    if should_stop():
                        return
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if "error" in event:
                        error = event["error"] or {}
                        raise TeamError(str(error.get("message") or "The server could not finish the answer."),
                                        status=500, code=error.get("code"))
                    if "token" in event and len(event) == 1:
                        yield str(event["token"])
                    else:
                        answered = True
                        yield event
        except httpx.TransportError as exc:
            raise self._offline(exc) from exc
        except json.JSONDecodeError as exc:
            raise TeamError(f"The server at {self.url} sent an answer Docent cannot read.") from exc
        if not answered and not should_stop():
            # The stream ended without its answer: the server went away mid-way.
            raise TeamOffline(f"The connection to {self.url} ended before the answer was complete.")
