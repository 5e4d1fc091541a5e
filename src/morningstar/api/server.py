"""Run the REST API with uvicorn: :func:`serve` for ``morningstar serve``, and
:class:`BackgroundServer` for tests and benchmarks (a real server in a thread, ephemeral port).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from morningstar.api.app import create_app
from morningstar.api.auth import api_token
from morningstar.config import Settings
from morningstar.errors import UserInputError
from morningstar.llm.monitor import LLMMonitor
from morningstar.store.db import Database, open_database

__all__ = ["BackgroundServer", "serve"]

logger = logging.getLogger(__name__)


def serve(
    settings: Settings,
    *,
    monitor: LLMMonitor | None = None,
    db: Database | None = None,
    log_level: str = "info",
) -> None:
    """Serve the API on ``settings.api.host:settings.api.port`` until interrupted (Ctrl-C).

    Args:
        settings: the settings.
        monitor: the LLM monitor to show; None = one built from ``settings`` on ``db``.
        db: the database; None = :func:`~morningstar.store.db.open_database` on
            ``settings.database_url`` (migrated), disposed of at exit.
        log_level: uvicorn's log level.

    Raises:
        ConfigError: a non-loopback ``api.host`` without ``api.token``, or a bad database URL.
        StorageError: the database cannot be opened.
        UserInputError: the address is already in use or cannot be bound.
    """
    api_token(settings.api)  # fail before opening anything
    owned_db = db is None
    the_db = db if db is not None else open_database(settings.database_url)
    owned_monitor = monitor is None
    the_monitor = monitor if monitor is not None else LLMMonitor.from_settings(settings, the_db)
    try:
        app = create_app(settings, monitor=the_monitor, db=the_db)
        config = uvicorn.Config(
            app,
            host=settings.api.host,
            port=settings.api.port,
            log_level=log_level,
            access_log=False,
        )
        try:
            uvicorn.Server(config).run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind
            raise UserInputError(
                f"cannot serve on {settings.api.host}:{settings.api.port}",
                where="api.host / api.port",
                hint="is another server using that port? change api.port",
            ) from exc
    finally:
        if owned_monitor:
            the_monitor.close()
        if owned_db:
            the_db.dispose()


class BackgroundServer:
    """A real uvicorn server in a daemon thread, on an ephemeral port by default.

    Use it as a context manager::

        with BackgroundServer(app) as server:
            httpx.get(f"{server.url}/health")

    Args:
        app: the ASGI app.
        host: the address to bind (loopback by default).
        port: the port; 0 = a free one chosen by the system.
        log_level: uvicorn's log level (its logging configuration is left alone).
    """

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_level=log_level, log_config=None, access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="morningstar-api",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> BackgroundServer:
        """Start serving; return once the server accepts connections.

        Raises:
            RuntimeError: it did not start within ``timeout_s``.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit, wait for its thread, close the socket."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():  # pragma: no cover - a request handler is stuck
            logger.warning("the API server thread did not stop within %.0f s", timeout_s)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
