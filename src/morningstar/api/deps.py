"""Services of the API, read from ``app.state`` (set by :func:`morningstar.api.create_app`)."""

from __future__ import annotations

from fastapi import Request

from morningstar.llm.monitor import LLMMonitor
from morningstar.store.db import Database

__all__ = ["get_db", "get_monitor"]


async def get_monitor(request: Request) -> LLMMonitor:
    """The LLM monitor the app was built with."""
    monitor: LLMMonitor = request.app.state.monitor
    return monitor


async def get_db(request: Request) -> Database | None:
    """The database the app was built with, if any."""
    db: Database | None = request.app.state.db
    return db
