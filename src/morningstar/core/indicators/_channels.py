"""Price channels: Bollinger bands and Donchian channels."""

from __future__ import annotations

from typing import NamedTuple

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


class BollingerBands(NamedTuple):
    """Middle (SMA), upper and lower bands, each the length of the input."""

    middle: FloatArray
    upper: FloatArray
    lower: FloatArray


class DonchianChannel(NamedTuple):
    """Upper (highest high), lower (lowest low) and middle lines, each the length of the input."""

    upper: FloatArray
    lower: FloatArray
    middle: FloatArray


def bollinger(close: npt.ArrayLike, n: int = 20, k: float = 2.0) -> BollingerBands:
    """Bollinger bands, as TA-Lib ``BBANDS`` with a simple moving average.

    ``middle = sma(close, n)``, ``upper = middle + k * std``, ``lower = middle - k * std`` where
    ``std`` is the *population* deviation (``ddof=0``) of the same window. Units of ``close``.

    Args:
        close: closing prices.
        n: window length, ``>= 1``.
        k: band width in standard deviations, finite and ``>= 0``.

    Returns:
        ``BollingerBands(middle, upper, lower)``; warm-up: the first ``n - 1`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: ``close`` is not 1-D numeric, ``n < 1``, or ``k`` is negative or not finite.
    """
    arr = as_series(close, "close")
    n = check_period(n, "n")
    width = check_positive_float(k, "k", allow_zero=True)
    middle, var, _ = _kernels.moments_nb(arr, n, 0, True, False, *segments(arr))
    offset = np.sqrt(var) * width
    return BollingerBands(middle, middle + offset, middle - offset)


def donchian(high: npt.ArrayLike, low: npt.ArrayLike, n: int = 20) -> DonchianChannel:
    """Donchian channel: highest high and lowest low of the last ``n`` bars, current bar included.

    ``upper = max(high[t-n+1..t])`` (TA-Lib ``MAX``), ``lower = min(low[t-n+1..t])`` (TA-Lib
    ``MIN``), ``middle = (upper + lower) / 2``. Units of the prices. For a breakout signal,
    compare the close with the *previous* bar's channel (the current bar is inside its own).
    O(len) (monotonic deque).

    Args:
        high: bar highs.
        low: bar lows.
        n: window length, ``>= 1``.

    Returns:
        ``DonchianChannel(upper, lower, middle)``; warm-up: the first ``n - 1`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: an input is not 1-D numeric, the lengths differ, or ``n < 1``.
    """
    h, lo = as_bars((high, "high"), (low, "low"))
    n = check_period(n, "n")
    starts, ends = segments(h, lo)
    upper: FloatArray = _kernels.extreme_nb(h, n, True, starts, ends)
    lower: FloatArray = _kernels.extreme_nb(lo, n, False, starts, ends)
    return DonchianChannel(upper, lower, (upper + lower) * 0.5)
