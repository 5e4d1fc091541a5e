from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core import parse_timeframe
from morningstar.data.ohlcv import from_arrays
from morningstar.data.resample import resample_ohlcv
from morningstar.errors import UserInputError

M5, H1 = parse_timeframe("5m"), parse_timeframe("1h")
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def bars(n: int, start_ms: int = START_MS, step_ms: int = 300_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) + rng.uniform(0, 1, n)
    low = np.minimum(open_, close) - rng.uniform(0, 1, n)
    ts = start_ms + np.arange(n) * step_ms
    return from_arrays(ts, open_, high, low, close, rng.uniform(1, 10, n))


def test_aggregation_matches_pandas_resample() -> None:
    df = bars(24 * 12 * 3)  # three whole days of 5m bars
    out = resample_ohlcv(df, M5, H1)
    expected = df.resample("1h", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    assert out.bins == 72 and out.partial_bins == 0 and not out.dropped_unfinished
    pd.testing.assert_frame_equal(out.frame, expected, check_freq=False)


def test_unfinished_last_bin_is_dropped_and_partial_counted() -> None:
    df = bars(12 * 5 + 7)  # 5 full hours + 7 bars of the sixth
    out = resample_ohlcv(df, M5, H1)
    assert out.bins == 5 and out.dropped_unfinished
    df = df.drop(df.index[13:20])  # an outage inside the second hour
    out = resample_ohlcv(df, M5, H1)
    assert out.bins == 5 and out.partial_bins == 1
    assert out.frame.index[1] == pd.Timestamp("2024-01-01T01:00Z")  # stamped with the bin open


def test_bins_are_anchored_to_the_grid_not_the_first_bar() -> None:
    df = bars(12 * 3, start_ms=START_MS + 25 * 60_000)  # starts at 00:25
    out = resample_ohlcv(df, M5, H1)
    assert out.frame.index[0] == pd.Timestamp("2024-01-01T00:00Z")
    assert out.partial_bins == 1  # the first hour only has 7 of 12 bars


def test_weekly_bins_start_on_monday() -> None:
    df = bars(24 * 20, step_ms=3_600_000, start_ms=START_MS + 2 * 86_400_000)  # from Wednesday
    out = resample_ohlcv(df, H1, parse_timeframe("1w"))
    assert all(ts.day_of_week == 0 for ts in out.frame.index)


@pytest.mark.parametrize(("src", "dst"), [("1h", "5m"), ("1h", "1h"), ("5m", "7m")])
def test_bad_target(src: str, dst: str) -> None:
    with pytest.raises(UserInputError, match="cannot resample"):
        resample_ohlcv(bars(10), parse_timeframe(src), parse_timeframe(dst))


def test_unsorted_input_is_refused() -> None:
    df = bars(10).iloc[::-1]
    with pytest.raises(UserInputError, match="not strictly increasing"):
        resample_ohlcv(df, M5, H1)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), factor=st.sampled_from([2, 3, 6, 12, 24]), drop=st.integers(0, 50))
def test_invariants(n: int, factor: int, drop: int) -> None:
    df = bars(n, seed=n)
    if drop and n > drop:
        df = df.drop(df.index[drop // 2 : drop])
    target = parse_timeframe(f"{5 * factor}m")
    out = resample_ohlcv(df, M5, target).frame
    if len(out):
        covered = df[df.index < out.index[-1] + pd.Timedelta(seconds=target.seconds)]
        assert np.isclose(out["volume"].sum(), covered["volume"].sum())
        assert out["high"].max() == covered["high"].max()
        assert out["low"].min() == covered["low"].min()
        assert (out["high"] >= out[["open", "close"]].max(axis=1)).all()
        assert (out["low"] <= out[["open", "close"]].min(axis=1)).all()
        assert out.index.is_monotonic_increasing and out.index.is_unique


def test_forex_daily_bars_follow_the_new_york_session() -> None:
    """A 17:00 New York day: five sessions a week, no Sunday stubs, across a DST change."""
    from morningstar.data.resample import SESSION_STARTS

    # hourly bars Sunday 2024-03-03 22:00 UTC .. Friday 2024-03-15 21:00 UTC, weekend removed
    idx = pd.date_range("2024-03-03 22:00", "2024-03-15 21:00", freq="1h", tz="UTC")
    ny = idx.tz_convert("America/New_York")
    weekend = (
        ((ny.day_of_week == 4) & (ny.hour >= 17))
        | (ny.day_of_week == 5)
        | ((ny.day_of_week == 6) & (ny.hour < 17))
    )
    idx = idx[~weekend]
    n = len(idx)
    df = from_arrays(
        idx.as_unit("ms").asi8, np.ones(n), np.ones(n) * 2, np.ones(n) * 0.5, np.ones(n), np.ones(n)
    )
    out = resample_ohlcv(df, H1, parse_timeframe("1d"), session_start=SESSION_STARTS["forex"])
    assert out.bins == 10 and not out.dropped_unfinished
    opens = out.frame.index.tz_convert("America/New_York")
    assert all(t.hour == 17 for t in opens)  # every session opens at 17:00 New York
    assert sorted({t.day_of_week for t in opens}) == [0, 1, 2, 3, 6]  # Sun..Thu evenings
    # the US DST change on 2024-03-10 moves the session open from 22:00 to 21:00 UTC
    assert out.frame.index[0].hour == 22 and out.frame.index[-1].hour == 21
    assert (out.frame["volume"] == 24).all()  # the change falls in the weekend: 24-hour sessions
