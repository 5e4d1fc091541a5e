"""Resample bars to a higher timeframe with correct OHLCV aggregation.

A target bar covers ``[t, t + target)`` with ``t`` on the target grid, anchored at the Unix epoch
(00:00 UTC for daily bars; weekly bars start on Monday 00:00 UTC). Aggregation: open = first open,
high = max high, low = min low, close = last close, volume = sum. Each output bar is stamped with
its bin's OPEN time (the OHLCV contract), never with the time of the first source bar in it.

A bin with missing source bars (an outage, a weekend, a session end) is still emitted from the bars
it has, and counted as *partial* in the result; only the trailing bin that is not finished yet (its
end lies after the end of the last source bar) is dropped, since its values would still change.

Daily bars of markets whose trading day does not start at midnight UTC take a ``session_start``:
for forex and CME futures the day starts at 17:00 New York time (DST-aware), so a daily bar covers
one trading session and carries that session's open time (21:00 or 22:00 UTC the day before) —
no Sunday stub bars made of a few hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from morningstar.core.timeframe import Timeframe
from morningstar.data.ohlcv import INDEX_NAME, empty_ohlcv, to_contract
from morningstar.errors import UserInputError

__all__ = ["ResampleResult", "resample_ohlcv"]

_WEEK_ORIGIN_NS = 4 * 86_400 * 1_000_000_000  # 1970-01-05 was a Monday


@dataclass(frozen=True)
class ResampleResult:
    """Resampled bars plus what happened to the bins."""

    frame: pd.DataFrame
    bins: int
    partial_bins: int
    dropped_unfinished: bool


#: Trading-day start per calendar: (time zone, minutes after local midnight).
SESSION_STARTS: dict[str, tuple[str, int]] = {
    "forex": ("America/New_York", 17 * 60),
    "cme": ("America/New_York", 17 * 60),
}


def _session_bins(ts: np.ndarray, tz: str, minutes: int) -> tuple[np.ndarray, int]:
    """Open time (UTC ns) of the trading session of each bar, and the end of the last session."""
    local = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    naive = local.tz_localize(None)
    offset = pd.Timedelta(minutes=minutes)
    opens = (naive - offset).normalize() + offset
    bins = opens.tz_localize(tz).tz_convert("UTC").asi8
    last_end = (opens[-1:] + pd.Timedelta(days=1)).tz_localize(tz).tz_convert("UTC").asi8[0]
    return np.asarray(bins, dtype=np.int64), int(last_end)


def resample_ohlcv(
    frame: pd.DataFrame,
    source: Timeframe,
    target: Timeframe,
    *,
    session_start: tuple[str, int] | None = None,
) -> ResampleResult:
    """Aggregate bars of ``source`` timeframe into bars of ``target`` timeframe.

    Args:
        frame: valid bars (strictly increasing timestamps, see the validation module).
        source: timeframe of ``frame``.
        target: a whole multiple of ``source``.
        session_start: for a ``1d`` target, the trading day's start as (time zone, minutes after
            local midnight), e.g. :data:`SESSION_STARTS` ``["forex"]``; None = 00:00 UTC.

    Raises:
        UserInputError: ``target`` is not a multiple of ``source`` or not larger, or the input is
            not strictly increasing.
    """
    if target.seconds <= source.seconds or target.seconds % source.seconds:
        raise UserInputError(
            f"cannot resample {source} to {target}",
            hint=f"the target must be a whole multiple of {source} larger than it (e.g. 1h, 4h, 1d)",
        )
    df = to_contract(frame)
    if len(df) == 0:
        return ResampleResult(empty_ohlcv(), 0, 0, False)
    ts = pd.DatetimeIndex(df.index).asi8
    if np.any(np.diff(ts) <= 0):
        raise UserInputError(
            "bars are not strictly increasing",
            hint="validate the data first (`morningstar data check`) and drop duplicates",
        )
    if session_start is not None and target.seconds == 86_400:
        bin_open_all, last_end = _session_bins(ts, *session_start)
        bin_id = bin_open_all
    else:
        origin = _WEEK_ORIGIN_NS if target.seconds % 604_800 == 0 else 0
        bin_id = (ts - origin) // target.ns
        bin_open_all = bin_id * target.ns + origin
        last_end = int(bin_open_all[-1] + target.ns)
    starts = np.flatnonzero(np.r_[True, bin_id[1:] != bin_id[:-1]])
    ends = np.r_[starts[1:], len(ts)] - 1
    open_ = df["open"].to_numpy()[starts]
    high = np.maximum.reduceat(df["high"].to_numpy(), starts)
    low = np.minimum.reduceat(df["low"].to_numpy(), starts)
    close = df["close"].to_numpy()[ends]
    volume = np.add.reduceat(df["volume"].to_numpy(), starts)
    bin_open = bin_open_all[starts]
    counts = ends - starts + 1
    expected = target.seconds // source.seconds
    dropped = False
    last_source_end = ts[-1] + source.ns
    if last_end > last_source_end:
        keep = slice(0, len(starts) - 1)
        dropped = True
    else:
        keep = slice(0, len(starts))
    index = pd.DatetimeIndex(bin_open[keep].view("datetime64[ns]"), name=INDEX_NAME).tz_localize(
        "UTC"
    )
    out = pd.DataFrame(
        {
            "open": open_[keep],
            "high": high[keep],
            "low": low[keep],
            "close": close[keep],
            "volume": volume[keep],
        },
        index=index,
    )
    partial = int(np.count_nonzero(counts[keep] < expected))
    return ResampleResult(out, bins=len(out), partial_bins=partial, dropped_unfinished=dropped)
