"""``/api/llm``: calls in flight, history of finished calls, aggregates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status

from morningstar.api.deps import get_monitor
from morningstar.api.schemas import (
    ActiveOut,
    AggregatesOut,
    CallRecordOut,
    HistoryOut,
    json_response,
    raw_json_response,
)
from morningstar.errors import StorageError
from morningstar.llm.monitor import LLMMonitor
from morningstar.store.models import LLM_CALL_STATUSES

__all__ = ["MAX_LIMIT", "MAX_OFFSET", "router"]

#: Largest page of ``/api/llm/history``.
MAX_LIMIT = 1_000
#: Largest offset of ``/api/llm/history`` (deeper pages: filter by model/caller/status).
MAX_OFFSET = 1_000_000

router = APIRouter(prefix="/api/llm", tags=["llm"])
Monitor = Annotated[LLMMonitor, Depends(get_monitor)]


@router.get("/active", response_model=ActiveOut)
async def active(monitor: Monitor) -> Response:
    """Calls in flight in this process, oldest first, with elapsed seconds and stall flag."""
    items = monitor.active()
    body = {"count": len(items), "items": items}
    return json_response(ActiveOut.model_validate(body, from_attributes=True))


@router.get("/history", response_model=HistoryOut)
def history(
    monitor: Monitor,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="records skipped")] = 0,
    model: Annotated[str | None, Query(max_length=128)] = None,
    caller: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[
        str | None, Query(alias="status", description=f"one of {', '.join(LLM_CALL_STATUSES)}")
    ] = None,
    text: Annotated[
        bool, Query(description="include the captured prompt and response of each call")
    ] = False,
) -> Response:
    """Finished calls, newest first; from the database, so calls of every process show.

    The captured prompt and response are left out (null) unless ``text=true``: a page stays
    small; ``/api/llm/calls/{id}`` gives one call whole.
    """
    if status_ is not None and status_ not in LLM_CALL_STATUSES:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"status: {status_!r} is not one of {', '.join(LLM_CALL_STATUSES)}",
        )
    try:
        records = monitor.history(
            limit=limit, offset=offset, model=model, caller=caller, status=status_,
            include_text=text,
        )  # fmt: skip
    except StorageError as exc:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=exc.one_line()
        ) from exc
    items = [r.to_row() for r in records]  # the columns, in CallRecordOut's order
    return raw_json_response(
        {"limit": limit, "offset": offset, "count": len(items), "items": items}
    )


@router.get("/calls/{call_id}", response_model=CallRecordOut)
def call(
    monitor: Monitor,
    call_id: Annotated[str, Path(min_length=1, max_length=32, pattern="^[0-9a-f]+$")],
) -> Response:
    """One finished call, with its captured prompt and response (404 when unknown)."""
    try:
        records = monitor.history(limit=1, call_id=call_id)
    except StorageError as exc:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=exc.one_line()
        ) from exc
    if not records:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND, detail=f"no LLM call {call_id!r}"
        )
    return json_response(CallRecordOut.model_validate(records[0], from_attributes=True))


@router.get("/metrics", response_model=AggregatesOut)
async def metrics(monitor: Monitor) -> Response:
    """Per-model and per-caller aggregates of this process's finished calls."""
    return json_response(AggregatesOut.model_validate(monitor.aggregates()))
