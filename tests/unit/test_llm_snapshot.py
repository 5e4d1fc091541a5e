"""The market snapshot of ``llm ask`` and the supervisor: point in time, and its numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from morningstar.core.indicators import atr, rsi
from morningstar.data.ohlcv import from_arrays
from morningstar.data.parquet_store import OHLCVStore
from morningstar.errors import DataNotFoundError, UserInputError
from morningstar.services.llm import stored_snapshot

HOUR_MS = 3_600_000


def _bars(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    ts = 1_704_067_200_000 + HOUR_MS * np.arange(n)  # 2024-01-01 hourly
    return ts, open_, high, low, close


def _store(tmp_path: Path, arrays: tuple[np.ndarray, ...]) -> OHLCVStore:
    store = OHLCVStore(tmp_path / "data")
    ts, o, h, low, c = arrays
    store.write("binance", "BTC/USDT", "1h", from_arrays(ts, o, h, low, c, np.ones(len(ts))),
                replace=True)  # fmt: skip
    return store


def test_a_snapshot_sees_nothing_after_its_time(tmp_path: Path) -> None:
    arrays = _bars(600, 1)
    store = _store(tmp_path, arrays)
    as_of = "2024-01-15T12:00:00+00:00"  # bar 347 (opening 11:00) closes then
    first = stored_snapshot(store, pair="BTC/USDT", as_of=as_of)
    assert first["as_of"] == as_of and first["venue"] == "binance"
    ts, o, h, low, c = arrays
    k = 348  # the bar opening 12:00 and every later one: changed wildly
    changed = (ts, o.copy(), h.copy(), low.copy(), c.copy())
    for a in changed[1:]:
        a[k:] *= 3.0
    again = stored_snapshot(_store(tmp_path, changed), pair="BTC/USDT", as_of=as_of)
    assert again == first
    close = c[:k]
    assert first["close"] == close[-1]
    assert first["rsi"] == pytest.approx(rsi(close[-200:], 14)[-1])
    assert first["atr"] == pytest.approx(atr(h[:k][-200:], low[:k][-200:], close[-200:], 14)[-1])
    assert first["regime"] in ("trending", "ranging", "volatile")


def test_snapshot_errors_are_one_line(tmp_path: Path) -> None:
    store = _store(tmp_path, _bars(300, 2))
    with pytest.raises(DataNotFoundError, match="no stored data for ETH/USDT"):
        stored_snapshot(store, pair="ETH/USDT")
    with pytest.raises(UserInputError, match="only 10 stored bar"):
        stored_snapshot(store, pair="BTC/USDT", as_of="2024-01-01T10:00")
    for bad in ("", "yesterday-ish"):
        with pytest.raises(UserInputError, match="cannot read"):
            stored_snapshot(store, pair="BTC/USDT", as_of=bad)
