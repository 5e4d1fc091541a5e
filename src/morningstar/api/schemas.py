"""Response schemas of the REST API (pydantic), separate from the monitor's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic_core
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AccountOut",
    "ActiveCallOut",
    "ActiveOut",
    "AggregatesOut",
    "CallRecordOut",
    "CycleErrorOut",
    "EquityOut",
    "EquityPointOut",
    "HealthOut",
    "HistoryOut",
    "KeyStatsOut",
    "LLMAnalysisOut",
    "LastCycleOut",
    "LatestLLMAnalysisOut",
    "MetricsBlockOut",
    "MonitoringStatusOut",
    "PerformanceOut",
    "PnlBucketOut",
    "PnlOut",
    "PnlTotalOut",
    "PositionOut",
    "PositionsOut",
    "PredictionOut",
    "PredictionsOut",
    "RunDetailOut",
    "RunOut",
    "RunStatusOut",
    "RunsOut",
    "StatusOut",
    "SystemOut",
    "TradeOut",
    "TradesOut",
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


# -- monitoring of the trading workflow (``/api/pnl``, ``/api/equity``, ...) --------------------


class RunOut(_Out):
    """One workflow run."""

    run_id: str
    mode: Literal["backtest", "paper", "live"]
    strategy: str
    pairs: list[str]
    timeframe: str
    calendar: str
    status: Literal["running", "finished", "failed", "stopped"]
    started_at: datetime
    finished_at: datetime | None
    last_bar_ts: datetime | None = Field(description="open time of the newest persisted bar")
    cycles: int = Field(description="cycles persisted")
    error: str | None


class RunsOut(_Out):
    """``GET /api/runs``: runs, newest first."""

    count: int
    items: list[RunOut]


class LastCycleOut(_Out):
    """The newest cycle of one pair of a run."""

    cycle_id: str
    bar_ts: datetime
    persisted_at: datetime
    action: str | None
    llm_verdict: str | None
    risk_state: str | None


class AccountOut(_Out):
    """The account after a run's latest marked cycle (quote currency)."""

    bar_ts: datetime
    equity: float
    cash: float
    realized_pnl: float
    unrealized_pnl: float
    drawdown: float = Field(description="1 - equity / peak, a fraction >= 0")
    risk_state: str | None


class RunDetailOut(RunOut):
    """``GET /api/runs/{run_id}``: a run, its account and its last cycle per pair."""

    last_cycles: dict[str, LastCycleOut]
    account: AccountOut | None


class PnlTotalOut(_Out):
    """A run's P&L from its latest equity snapshot (realised: fees included)."""

    realized_pnl: float
    unrealized_pnl: float
    total_pnl: float
    fees: float | None
    equity: float
    cash: float
    drawdown: float


class PnlBucketOut(_Out):
    """P&L of one pair or strategy: closed round trips (net of fees) + open positions."""

    realized_pnl: float
    unrealized_pnl: float
    total_pnl: float
    fees: float = Field(description="fees of the closed trades")
    trades: int = Field(description="closed trades")


class PnlOut(_Out):
    """``GET /api/pnl``: the latest P&L of a run (null run_id: no run)."""

    run_id: str | None
    as_of: datetime | None = Field(description="open time of the bar of the latest snapshot")
    total: PnlTotalOut | None
    by_pair: dict[str, PnlBucketOut]
    by_strategy: dict[str, PnlBucketOut]


class EquityPointOut(_Out):
    """The account at the end of one bar."""

    ts: datetime
    equity: float
    cash: float
    realized_pnl: float
    unrealized_pnl: float
    drawdown: float
    risk_state: str | None


class EquityOut(_Out):
    """``GET /api/equity``: the equity curve, oldest first."""

    run_id: str | None
    points: list[EquityPointOut]


class PositionOut(_Out):
    """One open position (side +1 long, -1 short; quantity in base units)."""

    pair: str
    side: int
    quantity: float
    entry_price: float
    mark_price: float
    stop_loss: float | None
    take_profit: float | None
    unrealized_pnl: float
    opened_at: datetime
    as_of: datetime = Field(description="open time of the bar it was marked at")
    strategy: str


class PositionsOut(_Out):
    """``GET /api/positions``: the open positions of a run."""

    run_id: str | None
    positions: list[PositionOut]


class TradeOut(_Out):
    """One closed round trip (pnl = gross_pnl - fees)."""

    pair: str
    side: int
    quantity: float
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    gross_pnl: float
    fees: float
    pnl: float
    return_pct: float
    exit_reason: str
    entry_order_id: str
    exit_order_id: str
    strategy: str | None
    llm_verdict: str | None


class TradesOut(_Out):
    """``GET /api/trades``: the most recent round trips, newest first."""

    run_id: str | None
    trades: list[TradeOut]


class PredictionOut(_Out):
    """The last prediction of one pair."""

    cycle_id: str
    bar_ts: datetime
    strategy: str
    prediction: dict[str, Any] | None
    action: str | None


class PredictionsOut(_Out):
    """``GET /api/predictions/latest``: the last prediction per pair."""

    run_id: str | None
    predictions: dict[str, PredictionOut]


class LLMAnalysisOut(_Out):
    """The LLM supervisor's latest assessment and what the decision made of it."""

    cycle_id: str
    pair: str
    bar_ts: datetime
    strategy: str
    verdict: str | None = Field(description="approve, reduce, veto or abstain")
    supervision: dict[str, Any] | None
    proposal: dict[str, Any] | None
    final: dict[str, Any] | None
    rejections: list[Any] | None


class LatestLLMAnalysisOut(_Out):
    """``GET /api/llm/analysis/latest``."""

    run_id: str | None
    analysis: LLMAnalysisOut | None


class CycleErrorOut(_Out):
    """One step error of a cycle."""

    run_id: str
    cycle_id: str
    pair: str
    step: str
    error_type: str
    message: str
    outcome: str
    attempts: int
    at: datetime


class RunStatusOut(RunOut):
    """A running run with its last cycle per pair and its risk state."""

    last_cycle: dict[str, dict[str, datetime]]
    risk_state: str | None


class MetricsBlockOut(_Out):
    """Metrics over a span of bars (null: undefined, e.g. too few bars or no losses)."""

    bars: int
    total_return: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None = Field(description="a negative fraction")
    trades: int
    win_rate: float | None
    profit_factor: float | None


class PerformanceOut(_Out):
    """``GET /api/performance``: metrics since inception and over the last ``window`` bars."""

    run_id: str | None
    timeframe: str | None
    periods_per_year: float | None
    window: int | None
    inception: MetricsBlockOut | None
    rolling: MetricsBlockOut | None


class MonitoringStatusOut(_Out):
    """``GET /api/system``: running runs, errors of the last hour, this process."""

    as_of: datetime
    running: int
    runs: list[RunStatusOut]
    errors_last_hour: int
    recent_errors: list[CycleErrorOut]
    process: SystemOut
