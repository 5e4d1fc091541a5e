"""The FastAPI application factory of Morningstar's REST API.

Routes: ``GET /health`` (open), ``GET /api/status``, ``GET /api/llm/active``,
``GET /api/llm/history``, ``GET /api/llm/metrics``, ``GET /metrics`` (Prometheus), and the
workflow's monitoring (``/api/pnl``, ``/api/equity``, ``/api/positions``, ``/api/trades``,
``/api/predictions/latest``, ``/api/llm/analysis/latest``, ``/api/system``,
``/api/performance``, ``/api/runs``, ``/api/runs/{run_id}``). Everything but
``/health`` needs the token when one is configured (see :mod:`morningstar.api.auth`); the
interactive docs (``/docs``, ``/openapi.json``) are served only when the API is open (loopback,
no token).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from morningstar import __version__
from morningstar.api.auth import api_token, require_token
from morningstar.api.routes import health_router, llm_router, prometheus_router, status_router
from morningstar.api.routes.monitoring import router as monitoring_router
from morningstar.config import Settings
from morningstar.llm.monitor import LLMMonitor
from morningstar.logs import register_secrets
from morningstar.monitoring import MonitoringService
from morningstar.store.db import Database

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        where = (
            ".".join(loc[1:]) if loc and loc[0] in {"query", "path", "header"} else ".".join(loc)
        )
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = list(exc.errors()) if isinstance(exc, RequestValidationError) else []
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "detail": _describe(errors),
            "errors": jsonable_encoder(
                [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
            ),
        },
    )


def create_app(
    settings: Settings, *, monitor: LLMMonitor | None = None, db: Database | None = None
) -> FastAPI:
    """Build the REST API.

    Args:
        settings: the settings (``api.host`` / ``api.token`` decide authentication; ``llm``
            configures a monitor built here).
        monitor: the LLM monitor to show; None = one built from ``settings`` on ``db`` and
            closed when the app shuts down.
        db: the database ``/health`` pings (and the built monitor writes to); None = none.

    Returns:
        The FastAPI app; services are on ``app.state`` (``monitor``, ``db``, ``settings``,
        ``monitoring``: the workflow's read model, None without ``db``).

    Raises:
        ConfigError: ``api.host`` is not a loopback address and ``api.token`` is not set.
    """
    token = api_token(settings.api)
    if token is not None:
        register_secrets([token.decode("utf-8")])
    owned = monitor is None
    the_monitor = monitor if monitor is not None else LLMMonitor.from_settings(settings, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                the_monitor.close()

    open_docs = token is None
    app = FastAPI(
        title="Morningstar",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if open_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if open_docs else None,
    )
    app.state.settings = settings
    app.state.monitor = the_monitor
    app.state.db = db
    app.state.monitoring = MonitoringService(db) if db is not None else None
    app.state.api_token = token
    app.add_exception_handler(RequestValidationError, _validation_error)
    protected = [Depends(require_token)]
    app.include_router(health_router)
    app.include_router(status_router, dependencies=protected)
    app.include_router(llm_router, dependencies=protected)
    app.include_router(prometheus_router, dependencies=protected)
    app.include_router(monitoring_router, dependencies=protected)
    logger.debug(
        "API built for %s:%d (%s)",
        settings.api.host,
        settings.api.port,
        "token required" if token else "open, loopback",
    )
    return app
