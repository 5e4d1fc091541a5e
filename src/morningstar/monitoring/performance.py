"""Performance metrics of a run from its stored equity curve and round trips.

Computed with :mod:`morningstar.core.metrics` (empyrical's conventions): per-bar simple returns
of the account's equity at the end of each bar (the last cycle persisted for the bar), Sharpe
and Sortino annualised with ``periods_per_year(timeframe, calendar)`` of the run (e.g. 8,760 for
``1h`` bars of the ``crypto`` calendar), maximum drawdown as a negative fraction, and win rate /
profit factor over the round trips' net P&L (fees included). Non-finite values (too few bars,
no losses) are reported as ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from morningstar.core.metrics import max_drawdown, periods_per_year, sharpe, sortino, trade_stats
from morningstar.core.metrics import total_return as _total_return
from morningstar.core.timeframe import parse_timeframe
from morningstar.monitoring.trades import RoundTrip

__all__ = ["METRIC_KEYS", "annualisation", "bar_equity", "finite", "performance"]

#: Keys of one block of :func:`performance`.
METRIC_KEYS = (
    "bars", "total_return", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
    "profit_factor",
)  # fmt: skip


def finite(value: float | None) -> float | None:
    """``value`` as a float, ``None`` when it is ``None``, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def annualisation(timeframe: str, calendar: str = "crypto") -> float:
    """Bars per year of the run's timeframe and calendar (:func:`core.metrics.periods_per_year`)."""
    return periods_per_year(parse_timeframe(timeframe), calendar)


def bar_equity(
    rows: Sequence[tuple[Any, ...]],
) -> list[tuple[datetime, float]]:
    """The equity at the end of each bar: the last row (in persist order) per ``bar_ts``.

    ``rows`` are :meth:`WorkflowStore.equity` tuples ``(bar_ts, seq, equity, ...)`` in ``seq``
    order; the result is sorted by bar time.
    """
    last: dict[datetime, float] = {}
    for row in rows:
        last[row[0]] = float(row[2])
    return sorted(last.items())


def _block(equity: Sequence[float], trades: Sequence[RoundTrip], ppy: float) -> dict[str, Any]:
    eq = np.asarray(equity, dtype=np.float64)
    returns = eq[1:] / eq[:-1] - 1.0 if eq.size >= 2 else np.empty(0)
    stats = trade_stats(np.asarray([t.pnl for t in trades], dtype=np.float64))
    return {
        "bars": int(eq.size),
        "total_return": finite(_total_return(returns)),
        "sharpe": finite(sharpe(returns, ppy)),
        "sortino": finite(sortino(returns, ppy)),
        "max_drawdown": finite(max_drawdown(returns).depth),
        "trades": stats.count,
        "win_rate": finite(stats.win_rate),
        "profit_factor": finite(stats.profit_factor),
    }


def performance(
    curve: Sequence[tuple[datetime, float]],
    trades: Sequence[RoundTrip],
    periods: float,
    window: int | None = None,
) -> dict[str, Any]:
    """Metrics since inception and over the last ``window`` bars.

    Args:
        curve: ``(bar time, equity)`` per bar, oldest first (:func:`bar_equity`).
        trades: the run's round trips.
        periods: bars per year (:func:`annualisation`).
        window: bars of the rolling block (its trades: those exited within it); ``None``:
            no rolling block.

    Returns:
        ``{"periods_per_year", "inception": {...}, "rolling": {...} | None, "window"}``, each
        block with the :data:`METRIC_KEYS`.
    """
    values = [v for _, v in curve]
    out: dict[str, Any] = {
        "periods_per_year": periods,
        "window": window,
        "inception": _block(values, trades, periods),
        "rolling": None,
    }
    if window is not None and curve:
        part = curve[-window:]
        start = part[0][0]
        out["rolling"] = _block(
            [v for _, v in part], [t for t in trades if t.exit_time >= start], periods
        )
    return out
