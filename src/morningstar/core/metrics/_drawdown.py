"""Drawdowns: the drawdown series, the maximum drawdown with its dates, and the Calmar ratio.

Drawdowns are measured on the equity curve compounded from the returns with an anchor bar of
1.0 in front (:func:`equity_curve`), as empyrical does: index ``k`` is the bar after ``k``
returns, so for ``returns = simple_returns(equity)`` the indices are bars of ``equity`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from morningstar.core.metrics._common import FloatArray, as_compoundable
from morningstar.core.metrics._returns import cagr, equity_curve


@dataclass(frozen=True)
class Drawdown:
    """The deepest peak-to-trough fall of an equity curve.

    Attributes:
        depth: ``trough / peak - 1``, a fraction in ``[-1, 0]`` (-0.2 = 20 % below the peak);
            0.0 when the curve never falls below a previous peak.
        start: bar of the peak the fall starts from (the last bar at that level before the fall).
        trough: bar of the lowest point.
        recovery: first bar after the trough back at or above the peak; None when the curve has
            not recovered by its last bar.
        duration: bars from ``start`` to ``recovery``, or to the last bar when not recovered.

    Without any drawdown: ``Drawdown(0.0, 0, 0, 0, 0)``.
    """

    depth: float
    start: int
    trough: int
    recovery: int | None
    duration: int

    @property
    def recovered(self) -> bool:
        """True when the curve is back at its peak by the last bar."""
        return self.recovery is not None


# The running state of a drawdown scan: (peak, peak_at, depth, start, trough, recovery, longest).
DrawdownState = tuple[float, int, float, int, int, int, int]
DRAWDOWN_START: DrawdownState = (1.0, 0, 0.0, 0, 0, -1, 0)


@njit(nogil=True, cache=True, inline="always")
def drawdown_step(
    value: float,
    i: int,
    peak: float,
    peak_at: int,
    depth: float,
    start: int,
    trough: int,
    recovery: int,
    longest: int,
) -> DrawdownState:
    """Fold bar ``i`` of an equity curve into the drawdown state (one pass, no look-back).

    The deepest fall's recovery is the first bar back at its peak: while that peak is still the
    running peak, the next bar at or above it is the recovery.
    """
    if value >= peak:
        gap = i - peak_at
        if gap > 1 and gap > longest:
            longest = gap
        if recovery < 0 and depth < 0.0 and start == peak_at:
            recovery = i
        return value, i, depth, start, trough, recovery, longest
    fall = (value - peak) / peak
    if fall < depth:
        return peak, peak_at, fall, peak_at, i, -1, longest
    return peak, peak_at, depth, start, trough, recovery, longest


@njit(nogil=True, cache=True, inline="always")
def drawdown_finish(
    n: int, peak_at: int, depth: float, start: int, trough: int, recovery: int, longest: int
) -> tuple[float, int, int, int, int, int]:
    """(depth, start, trough, recovery or -1, duration, longest spell under water) of an
    ``n``-bar curve from the final scan state; all zero without a drawdown."""
    if depth == 0.0:
        return 0.0, 0, 0, 0, 0, 0
    if peak_at < n - 1:
        longest = max(longest, n - 1 - peak_at)
    duration = (recovery if recovery >= 0 else n - 1) - start
    return depth, start, trough, recovery, duration, longest


@njit(nogil=True, cache=True)
def _max_drawdown_kernel(equity: FloatArray) -> tuple[float, int, int, int, int, int]:
    """Return (depth, start, trough, recovery or -1, duration, longest underwater spell)."""
    n = equity.shape[0]
    peak, peak_at, depth, start, trough, recovery, longest = DRAWDOWN_START
    if n:
        peak = equity[0]
    for i in range(1, n):
        peak, peak_at, depth, start, trough, recovery, longest = drawdown_step(
            equity[i], i, peak, peak_at, depth, start, trough, recovery, longest
        )
    return drawdown_finish(n, peak_at, depth, start, trough, recovery, longest)


def drawdown_series(returns: npt.ArrayLike) -> FloatArray:
    """Return the drawdown of every bar of ``equity_curve(returns)``: ``equity / running_peak - 1``.

    ``len(returns) + 1`` values in ``[-1, 0]``, the first (the anchor) always 0.

    Raises:
        ValueError: a NaN/inf, or a return below -1.
    """
    equity = equity_curve(returns)
    peak = np.maximum.accumulate(equity)
    out: FloatArray = (equity - peak) / peak
    return out


def max_drawdown(returns: npt.ArrayLike) -> Drawdown:
    """Return the maximum drawdown of ``equity_curve(returns)`` with its peak, trough and recovery.

    ``depth`` equals empyrical ``max_drawdown`` (a negative fraction). Ties between equally deep
    troughs resolve to the earliest. An empty series is the anchor bar alone: no drawdown.

    Raises:
        ValueError: a NaN/inf, or a return below -1.
    """
    depth, start, trough, recovery, duration, _ = _max_drawdown_kernel(equity_curve(returns))
    return Drawdown(
        depth=float(depth),
        start=int(start),
        trough=int(trough),
        recovery=int(recovery) if recovery >= 0 else None,
        duration=int(duration),
    )


def longest_drawdown(returns: npt.ArrayLike) -> int:
    """Return the longest time under water, in bars, from a peak to its recovery.

    A spell not recovered by the last bar counts up to the last bar (backtesting.py's
    "Max. Drawdown Duration"). 0 when the curve never falls below a previous peak.

    Raises:
        ValueError: a NaN/inf, or a return below -1.
    """
    return int(_max_drawdown_kernel(equity_curve(returns))[5])


def calmar(returns: npt.ArrayLike, periods_per_year: float) -> float:
    """Return the Calmar ratio, ``cagr / |max drawdown depth|`` over the whole series.

    NaN when there is no drawdown, when the CAGR is NaN (empty series) or infinite
    (empyrical ``calmar_ratio``).

    Raises:
        ValueError: a NaN/inf, a return below -1, or a bad ``periods_per_year``.
    """
    r = as_compoundable(returns)
    growth = cagr(r, periods_per_year)
    depth = max_drawdown(r).depth
    if depth >= 0.0 or not math.isfinite(growth):
        return math.nan
    return growth / abs(depth)
