"""``GET /metrics``: the Prometheus exposition of the monitor's registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import generate_latest

from morningstar.api.deps import get_monitor
from morningstar.llm.monitor import LLMMonitor

__all__ = ["CONTENT_TYPE", "router"]

#: The Prometheus text format 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(monitor: Annotated[LLMMonitor, Depends(get_monitor)]) -> Response:
    """Every metric of the monitor's registry, in the Prometheus text format."""
    return Response(generate_latest(monitor.registry), media_type=CONTENT_TYPE)
