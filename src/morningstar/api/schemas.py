"""Response schemas of the REST API (pydantic), separate from the monitor's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic_core
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActiveCallOut",
    "ActiveOut",
    "AggregatesOut",
    "CallRecordOut",
    "HealthOut",
    "HistoryOut",
    "KeyStatsOut",
    "StatusOut",
    "SystemOut",
    "json_response",
    "raw_json_response",
]


def json_response(body: BaseModel) -> Response:
    """``body`` serialised once by pydantic-core (the route's ``response_model`` documents it)."""
    return Response(content=body.model_dump_json(), media_type="application/json")


def raw_json_response(body: dict[str, Any]) -> Response:
    """``body`` (plain values, already in the shape of the route's ``response_model``)
    serialised by pydantic-core without validating it again: the same JSON as
    :func:`json_response` of the validated model (datetimes ISO-8601 with ``Z``), for the
    large pages of ``/api/llm/history`` (a test pins the equality)."""
    return Response(content=pydantic_core.to_json(body), media_type="application/json")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HealthOut(_Out):
    """``GET /health``: the process answers; ``database`` is the result of a ping."""

    status: Literal["ok"] = "ok"
    database: Literal["ok", "error", "absent"] = Field(
        description="ok: SELECT 1 succeeded; error: it failed (see the server log); absent: none"
    )


class SystemOut(_Out):
    """Machine and process figures (psutil)."""

    cpu_percent: float | None = Field(description="machine CPU use, 0-100")
    memory_percent: float | None = Field(description="machine memory use, 0-100")
    process_rss_mb: float | None = Field(description="this process's resident memory, MiB")
    uptime: float | None = Field(description="this process's age, seconds")


class StatusOut(_Out):
    """``GET /api/status``: the LLM monitor's status.

    Totals (requests, failures, latency, cost, by status) cover every process's calls when the
    server has a database (``source: database``, refreshed about every second), else this
    process's; active, stalled, dropped and queued calls are this process's.
    """

    source: Literal["database", "process"] = Field(description="where the totals come from")
    uptime: float = Field(description="seconds since the monitor started")
    started_at: datetime
    total_requests: int
    successful_requests: int
    failed_requests: int
    avg_response_time: float = Field(description="mean latency of finished calls, seconds")
    active_requests: int
    stalled_requests: int
    stalls_total: int
    dropped_records: int
    queue_depth: int
    cost_usd: float = Field(description="cost of calls with a known price, USD")
    by_status: dict[str, int]
    session_id: str | None
    system: SystemOut


class ActiveCallOut(_Out):
    """One LLM call in flight."""

    id: str
    provider: str
    model: str
    caller: str
    operation: str
    template_id: str | None
    prompt_excerpt: str = Field(description="first 200 characters of the prompt, redacted")
    started_at: datetime
    elapsed_s: float
    streamed: bool
    retries: int
    ttft_s: float | None
    stalled: bool


class ActiveOut(_Out):
    """``GET /api/llm/active``: calls in flight in the API's process, oldest first."""

    count: int
    items: list[ActiveCallOut]


class CallRecordOut(_Out):
    """One finished LLM call (a row of ``llm_calls``); absent tokens / unknown cost are null."""

    id: str
    session_id: str | None
    provider: str
    model: str
    caller: str
    operation: str
    template_id: str | None
    template_version: int | None
    status: str
    error_type: str | None
    error_message: str | None
    started_at: datetime
    finished_at: datetime
    latency_s: float
    ttft_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    cost_usd: float | None
    price_status: str
    cache_hit: bool
    retries: int
    streamed: bool
    cache_key: str | None
    prompt: str | None
    response: str | None


class HistoryOut(_Out):
    """``GET /api/llm/history``: finished calls, newest first."""

    limit: int
    offset: int
    count: int = Field(description="items in this page")
    items: list[CallRecordOut]


class KeyStatsOut(_Out):
    """Aggregates of one model or caller (latencies in seconds)."""

    count: int
    ok: int
    failed: int
    success_rate: float | None
    avg_latency_s: float | None
    p50_latency_s: float | None = Field(description="over the window's (or last 10,000) calls")
    p95_latency_s: float | None = Field(description="over the window's (or last 10,000) calls")
    input_tokens: int
    output_tokens: int
    calls_usage_absent: int
    cost_usd: float
    calls_price_unknown: int
    cache_hits: int


class AggregatesOut(_Out):
    """``GET /api/llm/metrics``: aggregates per model and per caller.

    From the database (every process) over the ``window`` most recent calls when the server has
    one, else over this process's calls (``window`` null).
    """

    source: Literal["database", "process"]
    window: int | None = Field(description="most recent calls aggregated; null: all of them")
    by_model: dict[str, KeyStatsOut]
    by_caller: dict[str, KeyStatsOut]
