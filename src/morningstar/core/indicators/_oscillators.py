"""Momentum and trend-strength oscillators: RSI, +DI, -DI, ADX (all on a 0-100 scale)."""

from __future__ import annotations

import numpy.typing as npt

from morningstar.core.indicators import _kernels
from morningstar.core.indicators._common import (
    FloatArray,
    as_bars,
    as_series,
    check_period,
    segments,
)


def rsi(close: npt.ArrayLike, n: int = 14) -> FloatArray:
    """Relative strength index with Wilder's smoothing, as TA-Lib ``RSI``.

    ``RSI = 100 * avg_gain / (avg_gain + avg_loss)`` where gains and losses are the positive and
    negative close-to-close changes; the first averages (at index ``n``) are the plain means of
    the first ``n`` changes, then ``avg = (avg * (n - 1) + change) / n``. Unitless, in [0, 100].

    A window with no movement at all (``avg_gain + avg_loss == 0``) gives 50, the neutral
    value; TA-Lib gives 0 there. The result does not depend on the price scale.

    Args:
        close: closing prices.
        n: Wilder period, ``>= 1`` (TA-Lib accepts ``>= 2``; its ``n = 1`` returns the prices).

    Returns:
        float64 array of ``len(close)``; warm-up: the first ``n`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: ``close`` is not 1-D numeric or ``n < 1``.
    """
    arr = as_series(close, "close")
    n = check_period(n, "n")
    out: FloatArray = _kernels.rsi_nb(arr, n, *segments(arr))
    return out


def _dmi(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    h, lo, c = as_bars((high, "high"), (low, "low"), (close, "close"))
    n = check_period(n, "n")
    plus, minus, adx_ = _kernels.dmi_nb(h, lo, c, n, *segments(h, lo, c))
    return plus, minus, adx_


def plus_di(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14
) -> FloatArray:
    """Plus directional indicator, as TA-Lib ``PLUS_DI``.

    ``+DI = 100 * S(+DM) / S(TR)`` with ``+DM = high - high[-1]`` when it is positive and larger
    than ``low[-1] - low`` (else 0), and Wilder sums ``S = S - S/n + v`` seeded (as TA-Lib) with
    the plain sum of the first ``n - 1`` values. 0 when ``S(TR)`` is 0. Unitless, in [0, 100].

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
    return _dmi(high, low, close, n)[0]


def minus_di(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14
) -> FloatArray:
    """Minus directional indicator, as TA-Lib ``MINUS_DI``.

    ``-DI = 100 * S(-DM) / S(TR)`` with ``-DM = low[-1] - low`` when it is positive and larger
    than ``high - high[-1]`` (else 0); smoothing as :func:`plus_di`. Unitless, in [0, 100].

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
    return _dmi(high, low, close, n)[1]


def adx(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14) -> FloatArray:
    """Average directional index, as TA-Lib ``ADX``.

    ``DX = 100 * |+DI - -DI| / (+DI + -DI)``; the first ADX (index ``2n - 1``) is the mean of the
    first ``n`` DX values, then ``ADX = (ADX * (n - 1) + DX) / n``. A bar whose DX is undefined
    (no range or no directional movement in the smoothed sums) leaves the ADX unchanged, as in
    TA-Lib. Unitless, in [0, 100]; it measures trend strength, not direction.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        n: Wilder period, ``>= 1``.

    Returns:
        float64 array of the input length; warm-up: the first ``2n - 1`` values are NaN.

    Raises:
        TypeError: ``n`` is not an integer.
        ValueError: an input is not 1-D numeric, the lengths differ, or ``n < 1``.
    """
    return _dmi(high, low, close, n)[2]
