"""Technical indicators of the research core: pure numpy/numba functions over float64 arrays.

Every function takes 1-D array-likes (numpy arrays, lists, pandas Series), converts them to
float64, and returns float64 arrays of the same length (a ``NamedTuple`` of them for the
multi-line indicators), with NaN during the warm-up. Hot loops are numba kernels compiled with
``cache=True`` (machine code is reused by later processes) and O(len) whatever the window.

Warm-up (number of leading NaN on a series without gaps):

============================  ==================================================
``sma``, ``ema``              ``n - 1``
``bollinger``, ``donchian``   ``n - 1``
``rolling_std``, ``zscore``   ``n - 1``
``rolling_volatility``        ``n`` (``n`` log returns need ``n + 1`` prices)
``true_range``                ``1`` (no previous close)
``atr``, ``rsi``              ``n``
``plus_di``, ``minus_di``     ``n``
``adx``                       ``2n - 1``
``macd`` (all three lines)    ``slow + signal - 2``
============================  ==================================================

These are exactly TA-Lib's lookbacks, and the results agree with TA-Lib to 1e-9 after them
(``tests/integration/test_indicators_talib.py``); the few deliberate differences are documented
on the functions (``rsi`` of a flat window is 50, not 0; ``rsi(n=1)`` is not the price).

Missing values: a bar is missing when any of its inputs is NaN or ±inf. Each maximal run of
non-missing bars is processed as an independent series: a missing bar gives NaN, and the
indicator warms up again from the next bar (for window indicators this is the same as "NaN
wherever the window contains a missing value"; recursive ones such as EMA or RSI restart rather
than carry a NaN forever). No value ever depends on a later bar (no look-ahead).

Periods must be integers ``>= 1`` (``>= 2`` where a deviation of returns is needed); bad
inputs raise ``ValueError`` (``TypeError`` for a non-integer period) saying what is wrong.
"""

from __future__ import annotations

from morningstar.core.indicators._averages import MACD, ema, macd, sma
from morningstar.core.indicators._channels import (
    BollingerBands,
    DonchianChannel,
    bollinger,
    donchian,
)
from morningstar.core.indicators._oscillators import adx, minus_di, plus_di, rsi
from morningstar.core.indicators._volatility import (
    atr,
    rolling_std,
    rolling_volatility,
    true_range,
    zscore,
)

__all__ = [
    "MACD",
    "BollingerBands",
    "DonchianChannel",
    "adx",
    "atr",
    "bollinger",
    "donchian",
    "ema",
    "macd",
    "minus_di",
    "plus_di",
    "rolling_std",
    "rolling_volatility",
    "rsi",
    "sma",
    "true_range",
    "zscore",
]
