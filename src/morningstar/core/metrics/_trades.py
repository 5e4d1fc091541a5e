"""Trade statistics and market exposure."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from morningstar.core.metrics._common import as_series


@dataclass(frozen=True)
class TradeStats:
    """Statistics of closed trades, in the unit of the input (currency P&L or per-trade return).

    A trade with P&L exactly 0 (breakeven) is neither a win nor a loss; it counts in ``count``,
    ``win_rate`` and ``expectancy``.

    Attributes:
        count: number of trades.
        win_rate: winning trades / all trades, in [0, 1]; NaN without trades.
        profit_factor: gross profit / gross loss (``sum(wins) / |sum(losses)|``); ``inf`` with
            wins and no loss, 0.0 with losses and no win, NaN with neither (no trades, or only
            breakevens). backtesting.py reports NaN for "no loss"; ``inf`` keeps "never lost"
            distinct from "undefined" and still sorts above every finite value.
        expectancy: mean P&L per trade (= win_rate x avg_win + loss_rate x avg_loss); NaN
            without trades.
        avg_win: mean P&L of winning trades; NaN without wins.
        avg_loss: mean P&L of losing trades, a negative number; NaN without losses.
        best: largest P&L; NaN without trades.
        worst: smallest P&L; NaN without trades.
    """

    count: int
    win_rate: float
    profit_factor: float
    expectancy: float
    avg_win: float
    avg_loss: float
    best: float
    worst: float


def trade_stats(pnl: npt.ArrayLike) -> TradeStats:
    """Return the :class:`TradeStats` of closed trades' P&L (or returns), in trade order.

    Raises:
        ValueError: not one-dimensional, or a NaN/inf P&L.
    """
    p = as_series(pnl, "pnl")
    count = int(p.size)
    if count == 0:
        nan = math.nan
        return TradeStats(0, nan, nan, nan, nan, nan, nan, nan)
    wins = p[p > 0.0]
    losses = p[p < 0.0]
    gross_profit = float(wins.sum())
    gross_loss = float(-losses.sum())
    if gross_loss > 0.0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0.0 else math.nan
    return TradeStats(
        count=count,
        win_rate=wins.size / count,
        profit_factor=profit_factor,
        expectancy=float(p.mean()),
        avg_win=float(wins.mean()) if wins.size else math.nan,
        avg_loss=float(losses.mean()) if losses.size else math.nan,
        best=float(p.max()),
        worst=float(p.min()),
    )


def exposure(position: npt.ArrayLike) -> float:
    """Return the fraction of bars with a non-zero position (long or short), in [0, 1].

    ``position`` is the position (size, signed or not) held during each bar. NaN for no bars.

    Raises:
        ValueError: not one-dimensional, or a NaN/inf position.
    """
    pos = as_series(position, "position")
    if pos.size == 0:
        return math.nan
    return float(np.count_nonzero(pos)) / pos.size
