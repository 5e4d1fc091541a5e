"""Input checks shared by :mod:`morningstar.model.features` and :mod:`morningstar.model.labels`."""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.data.csv_import import timeframe_from_steps
from morningstar.data.ohlcv import to_contract
from morningstar.errors import DataFormatError, UserInputError

__all__ = ["check_bars", "read_bars", "resolve_timeframe", "utc_ns"]

_NS_PER_S = 1_000_000_000


def read_bars(bars: pd.DataFrame, where: str) -> pd.DataFrame:
    """Return ``bars`` as a non-empty contract frame (no content check).

    Raises:
        DataFormatError: not a DataFrame, or not readable as OHLCV bars.
        UserInputError: no bars.
    """
    if not isinstance(bars, pd.DataFrame):
        raise DataFormatError(
            f"expected a pandas DataFrame of bars, got {type(bars).__name__}",
            where=where,
            hint="pass an OHLCV frame (morningstar.data.ohlcv)",
        )
    data = to_contract(bars, where=where)
    if len(data) == 0:
        raise UserInputError("no bars", where=where, hint="pass a frame with at least one bar")
    return data


def check_bars(bars: pd.DataFrame, where: str = "bars") -> pd.DataFrame:
    """Return ``bars`` as a contract frame with strictly increasing times and positive prices.

    NaN bars are allowed (indicators restart after them); a finite price ``<= 0`` is not.

    Raises:
        DataFormatError: not OHLCV bars, times not strictly increasing, or a price ``<= 0``.
        UserInputError: no bars.
    """
    data = read_bars(bars, where)
    index = cast(pd.DatetimeIndex, data.index)
    if not (index.is_monotonic_increasing and index.is_unique):
        raise DataFormatError(
            "bar timestamps are not strictly increasing",
            where=where,
            hint="clean the bars first (clean_bars sorts and removes duplicates)",
        )
    prices = data[["open", "high", "low", "close"]].to_numpy()
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(prices) & (prices <= 0.0)
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        raise DataFormatError(
            f"price <= 0 at row {row} ({index[row].isoformat()})",
            where=where,
            hint="clean the bars first (clean_bars)",
        )
    return data


def resolve_timeframe(index: pd.DatetimeIndex, timeframe: Timeframe | str | None) -> Timeframe:
    """The given timeframe, or the most common step between bars when None.

    Raises:
        UserInputError: an unreadable timeframe, or too few bars to infer one.
    """
    if isinstance(timeframe, Timeframe):
        return timeframe
    if isinstance(timeframe, str):
        try:
            return parse_timeframe(timeframe)
        except ValueError as exc:
            raise UserInputError(str(exc), where="timeframe") from exc
    steps = np.diff(index.asi8)
    inferred = timeframe_from_steps(steps[steps >= _NS_PER_S])  # the most common step
    if inferred is None:
        raise UserInputError(
            "cannot infer the timeframe: fewer than 2 bars at least 1 s apart",
            where="timeframe",
            hint="pass timeframe='5m' (or the bars' timeframe)",
        )
    return inferred


def utc_ns(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Epoch nanoseconds (UTC) of a DatetimeIndex; naive times are taken as UTC."""
    idx = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return cast(npt.NDArray[np.int64], idx.as_unit("ns").asi8)
