"""Input checks and array aliases shared by the metric modules."""

from __future__ import annotations

import math
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]


def as_series(values: npt.ArrayLike, name: str) -> FloatArray:
    """Return ``values`` as a 1-D float64 array of finite numbers.

    Raises:
        ValueError: not one-dimensional, or a NaN/inf is present (metrics never skip gaps silently:
            a NaN in an equity curve or a return series is a bug upstream, not missing data).
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not bool(finite.all()):
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{name}[{bad}] is {arr[bad]}: metrics reject NaN and inf; "
            "drop or fill the gap before computing metrics"
        )
    return arr


def as_compoundable(values: npt.ArrayLike, name: str = "returns") -> FloatArray:
    """Like :func:`as_series`, and every simple return is at least -1 (equity never below 0).

    Raises:
        ValueError: see :func:`as_series`; or a return below -100 %.
    """
    arr = as_series(values, name)
    if arr.size and float(arr.min()) < -1.0:
        bad = int(np.flatnonzero(arr < -1.0)[0])
        raise ValueError(
            f"{name}[{bad}] is {arr[bad]}: a simple return below -1 (-100 %) means negative "
            "equity, which has no compounded return"
        )
    return arr


def check_periods_per_year(periods_per_year: float) -> float:
    """Return ``periods_per_year`` as a float; it must be finite and positive.

    Raises:
        ValueError: zero, negative, NaN or inf.
    """
    value = float(periods_per_year)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(
            f"periods_per_year must be a finite positive number, got {periods_per_year!r} "
            "(use periods_per_year(timeframe, calendar))"
        )
    return value


def check_rate(value: float, name: str) -> float:
    """Return a per-period rate as a float; it must be finite.

    Raises:
        ValueError: NaN or inf.
    """
    rate = float(value)
    if not math.isfinite(rate):
        raise ValueError(f"{name} must be a finite per-period return, got {value!r}")
    return rate


def check_window(window: int, minimum: int) -> int:
    """Return the rolling window length; an integer of at least ``minimum`` bars.

    Raises:
        ValueError: not an integer, or shorter than ``minimum``.
    """
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise ValueError(f"window must be an integer number of bars, got {window!r}")
    if int(window) < minimum:
        raise ValueError(f"window must be at least {minimum} bars, got {window}")
    return int(window)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with the empyrical conventions for a zero denominator.

    ``x / 0`` is ``+inf`` or ``-inf`` by the sign of ``x``; ``0 / 0`` is NaN.
    """
    if denominator == 0.0:
        if numerator == 0.0:
            return math.nan
        return math.copysign(math.inf, numerator)
    return numerator / denominator
