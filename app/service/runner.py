"""Running the local API: uvicorn in a background thread (the window, tests,
benchmarks) or in the foreground (``docent serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn

from app.core.network import is_loopback_host
from app.errors import UsageError
from app.service.engine import Service
from app.service.http import create_app

log = logging.getLogger(__name__)


def check_exposure(host: str, *, auth: bool, has_keys: bool) -> None:
    """Refuse to open the library to the network without keys.

    Raises:
        UsageError: ``--no-auth`` on an address other machines can reach, or
            such an address while no key exists yet.
    """
    if is_loopback_host(host):
        return
    if not auth:
        raise UsageError(f"--no-auth is allowed only on this machine's loopback address (127.0.0.1); {host} "
                         "can be reached from other machines. Drop --no-auth and create a key with "
                         "`docent keys create NAME`.")
    if not has_keys:
        raise UsageError(f"Docent will not listen on {host} without API keys: anyone who can reach it could "
                         "read your documents. Create one first with `docent keys create NAME`, then start "
                         "`docent serve` again.")


def _config(service: Service, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(service), host=host, port=port, log_level="warning", access_log=False,
        lifespan="off", backlog=4096, timeout_keep_alive=5,
        # Uvicorn's own limit answers a bare 503; Docent's queue answers with Retry-After instead.
        limit_concurrency=None,
    )


class ServerThread:
    """The API served from a background thread of this process.

    ``port=0`` takes any free port; :attr:`port` says which one.
    """

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.host = host
        self._server = uvicorn.Server(_config(service, host, port))
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._run, name="docent-api", daemon=True)
        self._failure: BaseException | None = None
        self.port = port

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._failure = exc

    def start(self, timeout: float = 30) -> "ServerThread":
        """Start listening; raises ``UsageError`` when the port cannot be used."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise UsageError(f"The local API could not listen on {self.host}:{self.port}"
                                 f"{'' if self._failure is None else f' ({self._failure})'}: the port may be "
                                 "in use by another program. Choose another port.")
            self._thread.join(0.02)
            timeout -= 0.02
            if timeout <= 0:
                raise UsageError(f"The local API did not start on {self.host}:{self.port}.")
        for server in self._server.servers:
            for sock in server.sockets:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    self.port = sock.getsockname()[1]
                    break
        return self

    @property
    def url(self) -> str:
        """The base address, e.g. ``http://127.0.0.1:8731``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop listening and wait for open requests to end (a few seconds at most)."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)


class _ForegroundServer(uvicorn.Server):
    """Uvicorn, stopping gracefully on Ctrl+C or SIGTERM and then returning.

    Uvicorn raises the signal again once it has shut down, which would end
    the process before ``docent serve`` closes the library (and leaves its
    clean-shutdown mark); here the caller carries on instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve_foreground(service: Service, host: str, port: int) -> None:
    """Serve until Ctrl+C or SIGTERM, then return (a second Ctrl+C stops at once)."""
    server = _ForegroundServer(_config(service, host, port))
    try:
        server.run()
    except SystemExit:  # uvicorn exits this way when it cannot bind
        pass
    if not server.started:
        raise UsageError(f"The local API could not listen on {host}:{port}: the port may be in use by another "
                         "program. Choose another with --port.")
