"""The one summary a backtest result shows."""

from __future__ import annotations

import math
from typing import Final

import numpy.typing as npt

from morningstar.core.metrics._common import as_series, check_periods_per_year
from morningstar.core.metrics._drawdown import _max_drawdown_kernel
from morningstar.core.metrics._returns import (
    annual_volatility,
    cagr,
    equity_curve,
    sharpe,
    simple_returns,
    sortino,
    total_return,
)
from morningstar.core.metrics._trades import exposure, trade_stats

#: Keys of :func:`summary`, in display order. Renaming one is a breaking change.
SUMMARY_KEYS: Final[tuple[str, ...]] = (
    "bars",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "longest_drawdown",
    "exposure",
    "trade_count",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_win",
    "avg_loss",
    "best_trade",
    "worst_trade",
)


def summary(
    equity: npt.ArrayLike,
    trades_pnl: npt.ArrayLike,
    position: npt.ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
) -> dict[str, float]:
    """Return every headline metric of a run, keyed by :data:`SUMMARY_KEYS` (in that order).

    Args:
        equity: account value at each bar (positive).
        trades_pnl: P&L of each closed trade, in the account currency.
        position: position held during each bar; as long as ``equity``.
        periods_per_year: annualisation factor (:func:`periods_per_year`).
        risk_free: risk-free return per bar, for the Sharpe ratio only.

    Returns:
        Fractions stay fractions (0.12 = 12 %); durations and counts are numbers of bars and
        trades as floats:

        ``bars`` equity bars; ``total_return``; ``cagr``; ``annual_volatility``; ``sharpe``;
        ``sortino`` (required return 0); ``calmar``; ``max_drawdown`` (depth, <= 0);
        ``max_drawdown_duration`` (bars from the deepest drawdown's peak to its recovery or the
        last bar); ``longest_drawdown`` (longest time under water, bars); ``exposure``;
        ``trade_count``; ``win_rate``; ``profit_factor``; ``expectancy``; ``avg_win``;
        ``avg_loss``; ``best_trade``; ``worst_trade``. Undefined values are NaN (see each
        function), never missing keys.

    Raises:
        ValueError: a NaN/inf anywhere, a non-positive equity, ``position`` not as long as
            ``equity``, or a bad ``periods_per_year``/``risk_free``.
    """
    eq = as_series(equity, "equity")
    pos = as_series(position, "position")
    if pos.size != eq.size:
        raise ValueError(
            f"position has {pos.size} bars but equity has {eq.size}: pass one position per bar"
        )
    ppy = check_periods_per_year(periods_per_year)
    r = simple_returns(eq)
    # one compounded curve and one drawdown pass serve max drawdown, its duration and the longest
    # spell under water (max_drawdown() and longest_drawdown() would each recompute both)
    depth, _, _, _, duration, longest = _max_drawdown_kernel(equity_curve(r))
    growth = cagr(r, ppy)
    # calmar() without recomputing the CAGR and the drawdown (same definition)
    calmar_ratio = growth / abs(depth) if depth < 0.0 and math.isfinite(growth) else math.nan
    trades = trade_stats(trades_pnl)
    values = (
        float(eq.size),
        total_return(r),
        growth,
        annual_volatility(r, ppy),
        sharpe(r, ppy, risk_free),
        sortino(r, ppy),
        calmar_ratio,
        depth,
        float(duration),
        float(longest),
        exposure(pos),
        float(trades.count),
        trades.win_rate,
        trades.profit_factor,
        trades.expectancy,
        trades.avg_win,
        trades.avg_loss,
        trades.best,
        trades.worst,
    )
    return dict(zip(SUMMARY_KEYS, values, strict=True))
