"""Monitoring of the trading workflow: P&L, equity, positions, trades, predictions, LLM, runs.

Every route reads :class:`~morningstar.monitoring.MonitoringService` (``app.state.monitoring``,
built by :func:`~morningstar.api.create_app` when the app has a database). ``run_id`` omitted =
the latest run. 503 when the app has no database or the database fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from morningstar.api.schemas import (
    EquityOut,
    LatestLLMAnalysisOut,
    MonitoringStatusOut,
    PerformanceOut,
    PnlOut,
    PositionsOut,
    PredictionsOut,
    RunDetailOut,
    RunsOut,
    TradesOut,
    json_response,
)
from morningstar.errors import StorageError
from morningstar.monitoring import MonitoringService

__all__ = ["MAX_LIMIT", "router"]

#: Largest ``limit`` of the list routes.
MAX_LIMIT = 1_000
_RUN_PATTERN = "^[0-9A-Za-z_-]+$"

router = APIRouter(prefix="/api", tags=["monitoring"])


async def get_monitoring(request: Request) -> MonitoringService:
    """The app's monitoring service; 503 when the app has no database."""
    service: MonitoringService | None = getattr(request.app.state, "monitoring", None)
    if service is None:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="no database: start the API with a database to monitor the workflow",
        )
    return service


Service = Annotated[MonitoringService, Depends(get_monitoring)]
RunId = Annotated[
    str | None,
    Query(min_length=1, max_length=32, pattern=_RUN_PATTERN, description="default: latest run"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _aware(since: datetime | None) -> datetime | None:
    if since is not None and since.tzinfo is None:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="since: give a time zone (e.g. 2024-01-01T00:00:00Z)",
        )
    return since


def _answer(schema: type[BaseModel], read: Callable[[], Any]) -> Response:
    try:
        body = read()
    except StorageError as exc:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=exc.one_line()
        ) from exc
    return json_response(schema.model_validate(body))


@router.get("/pnl", response_model=PnlOut)
def pnl(service: Service, run_id: RunId = None) -> Response:
    """Realised and unrealised P&L: total, per pair, per strategy."""
    return _answer(PnlOut, lambda: service.get_latest_pnl(run_id))


@router.get("/equity", response_model=EquityOut)
def equity(
    service: Service,
    run_id: RunId = None,
    since: Annotated[datetime | None, Query(description="bars opened at or after")] = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000, description="last points")] = None,
) -> Response:
    """The equity curve: the account at the end of each bar, oldest first."""
    start = _aware(since)
    return _answer(EquityOut, lambda: service.get_equity_curve(run_id, since=start, limit=limit))


@router.get("/positions", response_model=PositionsOut)
def positions(service: Service, run_id: RunId = None) -> Response:
    """The open positions as of the run's latest marked cycle."""
    return _answer(PositionsOut, lambda: service.get_open_positions(run_id))


@router.get("/trades", response_model=TradesOut)
def trades(service: Service, run_id: RunId = None, limit: Limit = 50) -> Response:
    """The most recent round trips (entry/exit, P&L, fees, exit reason, LLM verdict)."""
    return _answer(TradesOut, lambda: service.get_recent_trades(limit, run_id))


@router.get("/predictions/latest", response_model=PredictionsOut)
def predictions(service: Service, run_id: RunId = None) -> Response:
    """The model's last prediction per pair."""
    return _answer(PredictionsOut, lambda: service.get_last_model_predictions(run_id))


@router.get("/llm/analysis/latest", response_model=LatestLLMAnalysisOut)
def llm_analysis(service: Service, run_id: RunId = None) -> Response:
    """The LLM supervisor's latest assessment (null when it was never consulted)."""
    return _answer(LatestLLMAnalysisOut, lambda: service.get_last_llm_analysis(run_id))


@router.get("/system", response_model=MonitoringStatusOut)
def system(service: Service) -> Response:
    """Running runs, last cycle per pair, errors of the last hour, risk state, this process."""
    return _answer(MonitoringStatusOut, service.get_system_status)


@router.get("/performance", response_model=PerformanceOut)
def performance(
    service: Service,
    run_id: RunId = None,
    window: Annotated[
        int, Query(ge=2, le=1_000_000, description="bars of the rolling block")
    ] = 720,
) -> Response:
    """Sharpe, Sortino, max drawdown, win rate, profit factor: inception and rolling window."""
    return _answer(PerformanceOut, lambda: service.get_performance_metrics(run_id, window=window))


@router.get("/runs", response_model=RunsOut)
def runs(
    service: Service,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(running|finished|failed|stopped)$")
    ] = None,
    mode: Annotated[str | None, Query(pattern="^(backtest|paper|live)$")] = None,
    limit: Limit = 50,
) -> Response:
    """Workflow runs, newest first."""

    def read() -> dict[str, Any]:
        items = service.list_runs(status=status_, mode=mode, limit=limit)
        return {"count": len(items), "items": items}

    return _answer(RunsOut, read)


@router.get("/runs/{run_id}", response_model=RunDetailOut)
def run(
    service: Service,
    run_id: Annotated[str, Path(min_length=1, max_length=32, pattern=_RUN_PATTERN)],
) -> Response:
    """One run with its account and its last cycle per pair (404 when unknown)."""
    try:
        found = service.get_run(run_id)
    except StorageError as exc:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=exc.one_line()
        ) from exc
    if found is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no run {run_id!r}")
    return json_response(RunDetailOut.model_validate(found))
