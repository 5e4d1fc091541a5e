"""The OHLCV contract every part of Morningstar relies on.

A bar frame is a :class:`pandas.DataFrame` with

* index ``timestamp``: ``datetime64[ns, UTC]``, the bar's OPEN time, strictly increasing;
* columns ``open, high, low, close, volume`` in that order, all ``float64``.

:func:`to_contract` gives any frame that shape (types and order only — it never drops, fills or sorts
rows: content problems are the job of :mod:`morningstar.data.validation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from morningstar.core.types import OHLCV_COLUMNS
from morningstar.errors import DataFormatError

__all__ = [
    "INDEX_NAME",
    "OHLCV_COLUMNS",
    "empty_ohlcv",
    "from_arrays",
    "is_contract",
    "to_contract",
]

INDEX_NAME = "timestamp"
_INDEX_DTYPE = "datetime64[ns, UTC]"


def empty_ohlcv() -> pd.DataFrame:
    """An empty bar frame with the contract's index and columns."""
    index = pd.DatetimeIndex([], dtype=_INDEX_DTYPE, name=INDEX_NAME)
    return pd.DataFrame({c: np.empty(0, dtype=np.float64) for c in OHLCV_COLUMNS}, index=index)


def from_arrays(
    timestamps_ms: Sequence[int] | np.ndarray,
    open_: Sequence[float] | np.ndarray,
    high: Sequence[float] | np.ndarray,
    low: Sequence[float] | np.ndarray,
    close: Sequence[float] | np.ndarray,
    volume: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Build a bar frame from epoch-millisecond open times and price/volume arrays."""
    ts = np.asarray(timestamps_ms, dtype=np.int64).astype("datetime64[ms]").astype("datetime64[ns]")
    index = pd.DatetimeIndex(ts, name=INDEX_NAME).tz_localize("UTC")
    data = {
        "open": np.asarray(open_, dtype=np.float64),
        "high": np.asarray(high, dtype=np.float64),
        "low": np.asarray(low, dtype=np.float64),
        "close": np.asarray(close, dtype=np.float64),
        "volume": np.asarray(volume, dtype=np.float64),
    }
    return pd.DataFrame(data, index=index)


def is_contract(frame: pd.DataFrame) -> bool:
    """True when ``frame`` already has the contract's index type, name and float64 columns."""
    return (
        isinstance(frame.index, pd.DatetimeIndex)
        and str(frame.index.dtype) == _INDEX_DTYPE
        and frame.index.name == INDEX_NAME
        and tuple(frame.columns) == OHLCV_COLUMNS
        and all(frame[c].dtype == np.float64 for c in OHLCV_COLUMNS)
    )


def to_contract(frame: pd.DataFrame, *, where: str = "data") -> pd.DataFrame:
    """Return ``frame`` with the contract's index and column types (no row is changed or dropped).

    Accepts a ``timestamp`` column or a datetime index; naive timestamps are taken as UTC.

    Raises:
        DataFormatError: a column is missing or not numeric, or timestamps cannot be read.
    """
    if is_contract(frame):
        return frame
    df = frame
    if not isinstance(df.index, pd.DatetimeIndex):
        if INDEX_NAME not in df.columns:
            raise DataFormatError(
                "no timestamp: expected a DatetimeIndex or a 'timestamp' column",
                where=where,
                hint="name the bar open-time column 'timestamp'",
            )
        df = df.set_index(INDEX_NAME)
    lowered = {str(c).lower(): c for c in df.columns}
    missing = [c for c in OHLCV_COLUMNS if c not in lowered]
    if missing:
        raise DataFormatError(
            f"missing column(s) {', '.join(missing)}",
            where=where,
            hint=f"an OHLCV frame needs {', '.join(OHLCV_COLUMNS)}",
        )
    try:
        index = pd.DatetimeIndex(df.index)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"unreadable timestamps ({exc})", where=where) from exc
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    index = index.as_unit("ns").rename(INDEX_NAME)
    data: dict[str, np.ndarray] = {}
    for col in OHLCV_COLUMNS:
        values = df[lowered[col]]
        try:
            data[col] = pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataFormatError(
                f"column {col!r} is not numeric ({exc})",
                where=where,
                hint="prices and volume must be numbers; remove text rows",
            ) from exc
    return pd.DataFrame(data, index=index)
