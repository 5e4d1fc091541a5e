"""Moving averages and MACD."""

from __future__ import annotations

from typing import NamedTuple

import numpy.typing as npt

from morningstar.core.indicators import _kernels
from morningstar.core.indicators._common import FloatArray, as_series, check_period, segments


class MACD(NamedTuple):
    """The three MACD series, each the length of the input."""

    macd: FloatArray
    signal: FloatArray
    hist: FloatArray


def sma(x: npt.ArrayLike, n: int) -> FloatArray:
    """Simple moving average: the mean of the last ``n`` values, current bar included.

    ``sma[t] = (x[t-n+1] + ... + x[t]) / n``, in the units of ``x``. Same as TA-Lib ``SMA``.

    Computed in O(len) with sums of deviations from a shift that are recomputed every ``n``
    bars, so rounding never accumulates over the whole series; a window of identical values
    gives exactly that value.

    Args:
        x: the series (prices, or anything numeric).
        n: window length, ``>= 1``.

    Returns:
        float64 array of ``len(x)``; warm-up: the first ``n - 1`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: ``x`` is not 1-D numeric or ``n < 1``.
    """
    arr = as_series(x, "x")
    n = check_period(n, "n")
    out: FloatArray = _kernels.moments_nb(arr, n, 0, False, False, *segments(arr))[0]
    return out


def ema(x: npt.ArrayLike, n: int) -> FloatArray:
    """Exponential moving average with ``alpha = 2 / (n + 1)``, seeded as TA-Lib ``EMA`` does.

    The first value, at index ``n - 1``, is the simple mean of the first ``n`` values; then
    ``ema[t] = ema[t-1] + alpha * (x[t] - ema[t-1])``. Units of ``x``.

    Args:
        x: the series.
        n: span, ``>= 1`` (``n = 1`` returns ``x``).

    Returns:
        float64 array of ``len(x)``; warm-up: the first ``n - 1`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: ``x`` is not 1-D numeric or ``n < 1``.
    """
    arr = as_series(x, "x")
    n = check_period(n, "n")
    out: FloatArray = _kernels.ema_nb(arr, n, *segments(arr))
    return out


def macd(close: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """Moving average convergence/divergence, as TA-Lib ``MACD``.

    ``macd = EMA_fast(close) - EMA_slow(close)``, ``signal = EMA_signal(macd)``,
    ``hist = macd - signal``; units of ``close``. As in TA-Lib both EMAs start at index
    ``slow - 1``: the slow one seeded with the mean of ``close[0:slow]``, the fast one with the
    mean of the ``fast`` closes ending at ``slow - 1`` (so the fast EMA differs from
    ``ema(close, fast)`` during the first bars; the difference decays geometrically). The signal
    EMA is seeded with the mean of the first ``signal`` MACD values.

    Args:
        close: closing prices.
        fast: fast EMA span, ``>= 1``.
        slow: slow EMA span, ``> fast``.
        signal: signal EMA span, ``>= 1``.

    Returns:
        ``MACD(macd, signal, hist)``; warm-up: the first ``slow + signal - 2`` values of all three
        are NaN (TA-Lib's alignment, although the MACD line itself is defined from ``slow - 1``).

    Raises:
        TypeError: a period is not an integer.
        ValueError: ``close`` is not 1-D numeric, a period is ``< 1`` or ``fast >= slow``.
    """
    arr = as_series(close, "close")
    fast = check_period(fast, "fast")
    slow = check_period(slow, "slow")
    signal = check_period(signal, "signal")
    if fast >= slow:
        raise ValueError(f"fast must be shorter than slow, got fast={fast}, slow={slow}")
    line, sig, hist = _kernels.macd_nb(arr, fast, slow, signal, *segments(arr))
    return MACD(line, sig, hist)
