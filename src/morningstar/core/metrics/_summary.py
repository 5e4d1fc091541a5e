"""The one summary a backtest result shows, computed in one compiled pass over the equity curve."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from morningstar.core.metrics._common import (
    FloatArray,
    as_series,
    check_periods_per_year,
    check_rate,
    ratio,
)
from morningstar.core.metrics._drawdown import DRAWDOWN_START, drawdown_finish, drawdown_step
from morningstar.core.metrics._trades import trade_stats

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

# error codes of _equity_pass
_OK: Final = 0
_EQUITY_NOT_FINITE: Final = 1
_EQUITY_NOT_POSITIVE: Final = 2
_POSITION_NOT_FINITE: Final = 3

# slots of the statistics array _equity_pass fills
_S_SUM: Final = 0  # sum of the returns
_S_SUM_RF: Final = 1  # sum of the excess returns r - rf
_S_SQ_RF: Final = 2  # sum of squared deviations of r - rf from their mean
_S_DOWN: Final = 3  # sum of min(r, 0) ** 2
_S_GROWTH: Final = 4  # prod(1 + r), the compounded curve's last value
_S_DEPTH: Final = 5  # max drawdown depth (<= 0)
_S_DURATION: Final = 6  # bars from its peak to the recovery (or the last bar)
_S_LONGEST: Final = 7  # longest spell under water
_S_EXPOSED: Final = 8  # bars with a non-zero position
_S_CONSTANT: Final = 9  # 1.0 when every return is the same number
_S_SQ: Final = 10  # sum of squared deviations of r from their mean
_S_CONSTANT_RF: Final = 11  # 1.0 when every excess return r - rf is the same number
_S_COUNT: Final = 12


@njit(nogil=True, cache=True)
def _equity_pass(
    equity: FloatArray, position: FloatArray, rf: float
) -> tuple[int, int, FloatArray]:
    """One pass over the curve (and one more over its returns for the variance).

    Returns ``(code, bad index, statistics)``. The returns, the compounded curve and the drawdown
    are computed exactly as :func:`simple_returns`, :func:`equity_curve` and the drawdown kernel
    do (same operations in the same order), so the values match the individual metric functions.
    """
    out = np.zeros(_S_COUNT, dtype=np.float64)
    n = equity.shape[0]
    exposed = 0
    bad = False
    for i in range(n):  # no early exit, so that it vectorises; the slow scan runs on errors only
        value = equity[i]
        p = position[i]
        bad |= not (value > 0.0 and value < math.inf and abs(p) < math.inf)
        exposed += p != 0.0
    if bad:
        for i in range(n):
            value = equity[i]
            if not math.isfinite(value):
                return _EQUITY_NOT_FINITE, i, out
            if value <= 0.0:
                return _EQUITY_NOT_POSITIVE, i, out
            if not math.isfinite(position[i]):
                return _POSITION_NOT_FINITE, i, out
    out[_S_EXPOSED] = exposed
    total = 0.0
    total_rf = 0.0
    down = 0.0
    curve = 1.0
    # drawdown on the compounded curve (anchor 1.0 at bar 0), as _max_drawdown_kernel
    peak, peak_at, depth, start, trough, recovery, longest = DRAWDOWN_START
    lo = lo_rf = math.inf
    hi = hi_rf = -math.inf
    for i in range(1, n):
        r = equity[i] / equity[i - 1] - 1.0
        total += r
        x = r - rf
        total_rf += x
        lo = min(lo, r)
        hi = max(hi, r)
        lo_rf = min(lo_rf, x)
        hi_rf = max(hi_rf, x)
        if r < 0.0:
            down += r * r
        curve = curve * (1.0 + r)
        peak, peak_at, depth, start, trough, recovery, longest = drawdown_step(
            curve, i, peak, peak_at, depth, start, trough, recovery, longest
        )
    depth, start, trough, recovery, duration, longest = drawdown_finish(
        n, peak_at, depth, start, trough, recovery, longest
    )
    m = n - 1
    out[_S_SUM] = total
    out[_S_SUM_RF] = total_rf
    out[_S_DOWN] = down
    out[_S_GROWTH] = curve
    out[_S_DEPTH] = depth
    out[_S_DURATION] = duration
    out[_S_LONGEST] = longest
    if m >= 2:
        out[_S_CONSTANT] = hi == lo
        out[_S_CONSTANT_RF] = hi_rf == lo_rf
        mean = total / m
        mean_rf = total_rf / m
        sq = 0.0
        sq_rf = 0.0
        for i in range(1, n):
            r = equity[i] / equity[i - 1] - 1.0
            d = r - mean
            sq += d * d
            d = (r - rf) - mean_rf
            sq_rf += d * d
        out[_S_SQ] = sq
        out[_S_SQ_RF] = sq_rf
    return _OK, -1, out


_ERRORS: Final = {
    _EQUITY_NOT_FINITE: "equity[{i}] is {v}: metrics reject NaN and inf; "
    "drop or fill the gap before computing metrics",
    _EQUITY_NOT_POSITIVE: "equity[{i}] is {v}: returns need a positive equity curve "
    "(stop the run at ruin, or pass returns directly)",
    _POSITION_NOT_FINITE: "position[{i}] is {v}: metrics reject NaN and inf; "
    "drop or fill the gap before computing metrics",
}


def _contiguous(values: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array, got shape {arr.shape}")
    return arr


def summary(
    equity: npt.ArrayLike,
    trades_pnl: npt.ArrayLike,
    position: npt.ArrayLike,
    periods_per_year: float,
    risk_free: float = 0.0,
) -> dict[str, float]:
    """Return every headline metric of a run, keyed by :data:`SUMMARY_KEYS` (in that order).

    The time-series metrics come from one compiled pass over the equity curve (plus one for the
    variance); they equal the individual functions (:func:`total_return`, :func:`cagr`,
    :func:`sharpe`, :func:`max_drawdown`, ...) on ``simple_returns(equity)`` up to the rounding
    of the summation order (a few ulps).

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
    eq = _contiguous(equity, "equity")
    pos = _contiguous(position, "position")
    if pos.size != eq.size:
        raise ValueError(
            f"position has {pos.size} bars but equity has {eq.size}: pass one position per bar"
        )
    ppy = check_periods_per_year(periods_per_year)
    rf = check_rate(risk_free, "risk_free")
    pnl = as_series(trades_pnl, "pnl")
    code, bad, s = _equity_pass(eq, pos, rf)
    if code != _OK:
        source = eq if code != _POSITION_NOT_FINITE else pos
        raise ValueError(_ERRORS[code].format(i=bad, v=source[bad]))
    m = eq.size - 1  # number of returns
    nan = math.nan
    growth_total = float(s[_S_GROWTH])
    depth = float(s[_S_DEPTH])
    if m >= 1:
        with np.errstate(over="ignore"):  # cagr(): (1 + total) ** (1 / years) - 1
            growth = float(np.power(growth_total, 1.0 / (m / ppy))) - 1.0
    else:
        growth = nan
    vol = sharpe_ratio = sortino_ratio = nan
    if m >= 2:
        std = 0.0 if s[_S_CONSTANT] else math.sqrt(float(s[_S_SQ]) / (m - 1))
        vol = std * math.sqrt(ppy)
        std_rf = 0.0 if s[_S_CONSTANT_RF] else math.sqrt(float(s[_S_SQ_RF]) / (m - 1))
        sharpe_ratio = ratio(float(s[_S_SUM_RF]) / m, std_rf) * math.sqrt(ppy)
        risk = math.sqrt(float(s[_S_DOWN]) / m) * math.sqrt(ppy)
        sortino_ratio = ratio(float(s[_S_SUM]) / m * ppy, risk)
    calmar_ratio = growth / abs(depth) if depth < 0.0 and math.isfinite(growth) else nan
    trades = trade_stats(pnl)
    values = (
        float(eq.size),
        growth_total - 1.0,
        growth,
        vol,
        sharpe_ratio,
        sortino_ratio,
        calmar_ratio,
        depth,
        float(s[_S_DURATION]),
        float(s[_S_LONGEST]),
        float(s[_S_EXPOSED]) / eq.size if eq.size else nan,
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
