"""Monitoring: read models of the trading workflow's runs (application layer, read-only).

:class:`MonitoringService` (``MonitoringService(db)``) and the mission's functions, each taking
the service or a database: :func:`get_latest_pnl`, :func:`get_equity_curve`,
:func:`get_open_positions`, :func:`get_recent_trades`, :func:`get_last_model_predictions`,
:func:`get_last_llm_analysis`, :func:`get_system_status`, plus
:func:`get_performance_metrics`. ``run_id=None`` means the latest run. See ``docs/monitoring.md``.
"""

from __future__ import annotations

from morningstar.monitoring.service import (
    MonitoringService,
    get_equity_curve,
    get_last_llm_analysis,
    get_last_model_predictions,
    get_latest_pnl,
    get_open_positions,
    get_performance_metrics,
    get_recent_trades,
    get_system_status,
)
from morningstar.monitoring.trades import RoundTrip, round_trips

__all__ = [
    "MonitoringService",
    "RoundTrip",
    "get_equity_curve",
    "get_last_llm_analysis",
    "get_last_model_predictions",
    "get_latest_pnl",
    "get_open_positions",
    "get_performance_metrics",
    "get_recent_trades",
    "get_system_status",
    "round_trips",
]
