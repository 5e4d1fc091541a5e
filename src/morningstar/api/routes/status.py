"""``GET /api/status``: the LLM monitor's status (``get_monitor_status()``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from morningstar.api.deps import get_monitor
from morningstar.api.schemas import StatusOut, json_response
from morningstar.llm.monitor import LLMMonitor

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["status"])


@router.get("/status", response_model=StatusOut)
async def status(monitor: Annotated[LLMMonitor, Depends(get_monitor)]) -> Response:
    """Uptime, request counts, ``failed_requests``, ``avg_response_time`` (s), system figures.

    Totals come from the database (every process) through a cache refreshed in the background
    about every second, so a request never waits for a table scan.
    """
    return json_response(StatusOut.model_validate(monitor.status()))
