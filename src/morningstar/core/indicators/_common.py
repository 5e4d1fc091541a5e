"""Input validation and NaN-segment bookkeeping shared by the indicator functions (private)."""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]


def as_series(values: npt.ArrayLike, name: str) -> FloatArray:
    """Return ``values`` as a contiguous, writeable 1-D float64 array (copying only when needed).

    Raises:
        ValueError: the values are not numbers or not one-dimensional.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of numbers ({exc})") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got an array of shape {arr.shape}")
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        # one numba specialisation only: read-only views (pandas copy-on-write) are copied
        arr = np.array(arr, dtype=np.float64, order="C")
    return arr


def as_bars(*named: tuple[npt.ArrayLike, str]) -> list[FloatArray]:
    """Convert several series (``(values, name)`` pairs) and check that they have the same length.

    Raises:
        ValueError: a series is invalid, or the lengths differ (the message lists them).
    """
    arrays = [as_series(values, name) for values, name in named]
    lengths = {arr.size for arr in arrays}
    if len(lengths) > 1:
        sizes = ", ".join(
            f"{name}={arr.size}" for arr, (_, name) in zip(arrays, named, strict=True)
        )
        raise ValueError(f"input series must have the same length, got {sizes}")
    return arrays


def check_period(value: int, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer ``>= minimum``.

    Raises:
        TypeError: the value is not an integer (``bool`` and ``float`` are refused).
        ValueError: the value is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    period = int(value)
    if period < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {period}")
    return period


def check_positive_float(value: float, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite ``float`` that is positive (or zero when ``allow_zero``).

    Raises:
        ValueError: the value is not a finite number in the allowed range.
    """
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number < 0.0 or (number == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def segments(*arrays: FloatArray) -> tuple[IndexArray, IndexArray]:
    """Start and end (exclusive) of each maximal run of bars where every array is finite.

    Each run is processed as an independent series, so a missing value (NaN or ±inf) gives NaN
    output at that bar and the indicator warms up again from the next finite bar.
    """
    valid = np.isfinite(arrays[0])
    for arr in arrays[1:]:
        valid &= np.isfinite(arr)
    if valid.all():
        size = arrays[0].size
        return np.zeros(1, dtype=np.int64), np.full(1, size, dtype=np.int64)
    edges = np.diff(np.concatenate(([0], valid.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1).astype(np.int64)
    ends = np.flatnonzero(edges == -1).astype(np.int64)
    return starts, ends
