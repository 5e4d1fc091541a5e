"""Dispersion: true range, ATR, rolling standard deviation, volatility of returns, z-score."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from morningstar.core.indicators import _kernels
from morningstar.core.indicators._common import (
    FloatArray,
    as_bars,
    as_series,
    check_period,
    check_positive_float,
    segments,
)


def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """True range, as TA-Lib ``TRANGE``: ``max(high - low, |high - close[-1]|, |low - close[-1]|)``.

    Units of the prices. The first bar has no previous close, so its value is NaN (TA-Lib does
    the same; use ``high - low`` there if you need a value).

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.

    Returns:
        float64 array of the input length; warm-up: the first value is NaN.

    Raises:
        ValueError: an input is not 1-D numeric or the lengths differ.
    """
    h, lo, c = as_bars((high, "high"), (low, "low"), (close, "close"))
    out: FloatArray = _kernels.true_range_nb(h, lo, c, *segments(h, lo, c))
    return out


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14) -> FloatArray:
    """Average true range with Wilder's smoothing, as TA-Lib ``ATR``.

    The first value (index ``n``) is the mean of the true ranges of bars ``1..n``; then
    ``atr[t] = (atr[t-1] * (n - 1) + tr[t]) / n``. Units of the prices.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        n: Wilder period, ``>= 1``.

    Returns:
        float64 array of the input length; warm-up: the first ``n`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: an input is not 1-D numeric, the lengths differ, or ``n < 1``.
    """
    h, lo, c = as_bars((high, "high"), (low, "low"), (close, "close"))
    n = check_period(n, "n")
    out: FloatArray = _kernels.atr_nb(h, lo, c, n, *segments(h, lo, c))
    return out


def rolling_std(x: npt.ArrayLike, n: int, ddof: int = 0) -> FloatArray:
    """Rolling standard deviation over the last ``n`` values, current bar included.

    ``sqrt(sum((x_i - mean)^2) / (n - ddof))``, units of ``x``. ``ddof=0`` (population, the
    default) is TA-Lib ``STDDEV`` and the deviation of Bollinger bands; ``ddof=1`` is the sample
    estimate. O(len), with the bounded-drift sums described in :func:`sma`; a window of identical
    values gives exactly 0. TA-Lib's running sums of squares lose precision when the mean is
    large relative to the deviation; these sums do not.

    Args:
        x: the series.
        n: window length, ``> ddof``.
        ddof: delta degrees of freedom, ``>= 0``.

    Returns:
        float64 array of ``len(x)``; warm-up: the first ``n - 1`` values are NaN.

    Raises:
        TypeError: ``n`` or ``ddof`` is not an integer.
        ValueError: ``x`` is not 1-D numeric, ``ddof < 0`` or ``n <= ddof``.
    """
    arr = as_series(x, "x")
    ddof = check_period(ddof, "ddof", minimum=0)
    n = check_period(n, "n", minimum=ddof + 1)
    var = _kernels.moments_nb(arr, n, ddof, True, False, *segments(arr))[1]
    out: FloatArray = np.sqrt(var)
    return out


def rolling_volatility(
    close: npt.ArrayLike, n: int, annualization: float | None = None
) -> FloatArray:
    """Volatility: sample standard deviation (``ddof=1``) of the last ``n`` log returns.

    ``r[t] = ln(close[t] / close[t-1])``; ``vol[t] = std(r[t-n+1..t], ddof=1)``, optionally
    times ``sqrt(annualization)``. Unitless (a fraction per bar, or per year when annualised).

    Args:
        close: strictly positive closing prices.
        n: number of returns in the window, ``>= 2``.
        annualization: bars per year (e.g. 252 for daily equities, 365 for daily crypto, 8760
            for hourly crypto); ``None`` leaves the volatility per bar.

    Returns:
        float64 array of ``len(close)``; warm-up: the first ``n`` values are NaN (``n`` returns
        need ``n + 1`` prices).

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: ``close`` is not 1-D numeric, has a finite value ``<= 0``, ``n < 2``, or
            ``annualization`` is not a finite number ``> 0``.
    """
    c = as_series(close, "close")
    n = check_period(n, "n", minimum=2)
    scale = (
        1.0
        if annualization is None
        else math.sqrt(check_positive_float(annualization, "annualization"))
    )
    finite = np.isfinite(c)
    if np.any(c[finite] <= 0.0):
        raise ValueError("close must be strictly positive to take log returns")
    returns = np.full(c.size, np.nan)
    with np.errstate(all="ignore"):  # non-finite prices give NaN returns: the gap policy
        returns[1:] = np.log(c[1:] / c[:-1])
    var = _kernels.moments_nb(returns, n, 1, True, False, *segments(returns))[1]
    out: FloatArray = np.sqrt(var)
    if scale != 1.0:
        out *= scale
    return out


def zscore(x: npt.ArrayLike, n: int) -> FloatArray:
    """Rolling z-score: ``(x[t] - mean) / std`` over the last ``n`` values, current bar included.

    ``mean`` is :func:`sma` and ``std`` the population deviation (``ddof=0``), so that
    ``zscore == k`` exactly on the upper Bollinger band of width ``k``; ``|z| <= sqrt(n - 1)``.
    Unitless. A window of identical values (zero deviation) gives 0.

    Args:
        x: the series.
        n: window length, ``>= 2``.

    Returns:
        float64 array of ``len(x)``; warm-up: the first ``n - 1`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: ``x`` is not 1-D numeric or ``n < 2``.
    """
    arr = as_series(x, "x")
    n = check_period(n, "n", minimum=2)
    out: FloatArray = _kernels.moments_nb(arr, n, 0, True, True, *segments(arr))[2]
    return out
