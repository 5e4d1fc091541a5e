"""``GET /api/status``: the LLM monitor's status (``get_monitor_status()``), from memory."""

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

    Reads the monitor's in-memory state only (no database query).
    """
    return json_response(StatusOut.model_validate(monitor.status()))
