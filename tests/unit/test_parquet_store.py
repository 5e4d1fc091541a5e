from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from morningstar.data.ohlcv import from_arrays, is_contract
from morningstar.data.parquet_store import OHLCVStore
from morningstar.errors import DataNotFoundError, StorageError, UserInputError

START_MS = 1_704_067_200_000


def bars(start: int, n: int, step_ms: int = 300_000, price: float = 100.0) -> pd.DataFrame:
    ts = START_MS + (start + np.arange(n)) * step_ms
    close = price + np.arange(n, dtype=float)
    return from_arrays(ts, close, close + 1, close - 1, close, np.ones(n))


def test_write_load_round_trip(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    df = bars(0, 1000)
    result = store.write("Binance", "BTC/USDT", "5m", df)
    assert result.rows_added == 1000 and result.rows_after == 1000
    assert result.path == tmp_path / "ohlcv" / "binance" / "BTC_USDT-5m.parquet"
    loaded = store.load("binance", "btc_usdt", "5m")
    assert is_contract(loaded)
    pd.testing.assert_frame_equal(loaded, df)


def test_merge_without_duplicates_newer_wins(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    store.write("binance", "BTC/USDT", "5m", bars(0, 100))
    result = store.write("binance", "BTC/USDT", "5m", bars(90, 20, price=500.0))
    assert (result.rows_before, result.rows_added, result.rows_replaced, result.rows_after) == (
        100,
        10,
        10,
        110,
    )
    loaded = store.load("binance", "BTC/USDT", "5m")
    assert loaded.index.is_unique and loaded.index.is_monotonic_increasing
    assert loaded["close"].iloc[90] == 500.0
    assert loaded["close"].iloc[89] == 189.0


def test_merge_out_of_order_chunks(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    store.write("x", "A/B", "5m", bars(50, 50))
    store.write("x", "A/B", "5m", bars(0, 50))
    loaded = store.load("x", "A/B", "5m")
    assert len(loaded) == 100 and loaded.index.is_monotonic_increasing
    assert (np.diff(loaded.index.asi8) == 300_000 * 1_000_000).all()


def test_replace(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    store.write("x", "A/B", "5m", bars(0, 100))
    result = store.write("x", "A/B", "5m", bars(0, 10), replace=True)
    assert result.rows_after == 10


def test_range_load_is_half_open(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    store.write("x", "A/B", "1h", bars(0, 200_000, step_ms=3_600_000))
    part = store.load("x", "A/B", "1h", "2024-01-02", "2024-01-03")
    assert len(part) == 24
    assert part.index[0] == pd.Timestamp("2024-01-02T00:00Z")
    assert part.index[-1] == pd.Timestamp("2024-01-02T23:00Z")
    assert len(store.load("x", "A/B", "1h", start="2046-01-01")) == 200_000 - 192_864


def test_list_and_info_from_metadata(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    assert store.list() == []
    store.write("binance", "ETH/USDT", "1h", bars(0, 10, step_ms=3_600_000))
    store.write("binance", "BTC/USDT", "5m", bars(0, 5))
    infos = store.list()
    assert [(i.venue, str(i.pair), str(i.timeframe), i.rows) for i in infos] == [
        ("binance", "BTC/USDT", "5m", 5),
        ("binance", "ETH/USDT", "1h", 10),
    ]
    assert infos[0].first == pd.Timestamp(START_MS, unit="ms", tz="UTC")
    assert infos[0].last == infos[0].first + pd.Timedelta(minutes=20)
    assert store.last_timestamp("binance", "BTC/USDT", "5m") == infos[0].last
    assert store.last_timestamp("binance", "BTC/USDT", "1h") is None


def test_unknown_dataset_suggests_close_match(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    with pytest.raises(DataNotFoundError, match="nothing is stored yet"):
        store.load("binance", "BTC/USDT", "5m")
    store.write("binance", "BTC/USDT", "5m", bars(0, 5))
    with pytest.raises(
        DataNotFoundError,
        match=r"no stored data for binance BTC/USDT 1h — did you mean binance BTC/USDT 5m\?",
    ):
        store.load("binance", "BTC/USDT", "1h")


def test_bad_inputs(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    with pytest.raises(UserInputError, match="invalid venue"):
        store.path("bin/ance", "BTC/USDT", "5m")
    with pytest.raises(UserInputError, match="duplicate timestamps"):
        store.write("x", "A/B", "5m", pd.concat([bars(0, 3), bars(0, 3)]))
    store.write("x", "A/B", "5m", bars(0, 3))
    with pytest.raises(UserInputError, match="invalid start"):
        store.load("x", "A/B", "5m", start="not a date")


def test_corrupt_file_is_a_storage_error(tmp_path: Path) -> None:
    store = OHLCVStore(tmp_path)
    path = store.path("x", "A/B", "5m")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(StorageError, match="unreadable Parquet file"):
        store.list()


def test_failed_write_leaves_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = OHLCVStore(tmp_path)
    store.write("x", "A/B", "5m", bars(0, 10))
    import pyarrow.parquet as pq

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(StorageError, match=r"cannot write market data \(disk full\)"):
        store.write("x", "A/B", "5m", bars(10, 10))
    monkeypatch.undo()
    assert len(store.load("x", "A/B", "5m")) == 10
    assert not list(store.path("x", "A/B", "5m").parent.glob("*.tmp"))


def _writer(root: str, offset: int) -> None:
    store = OHLCVStore(root)
    for chunk in range(20):
        store.write("x", "A/B", "5m", bars(offset + chunk * 10, 10))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), off)) for off in (0, 200)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    loaded = OHLCVStore(tmp_path).load("x", "A/B", "5m")
    assert len(loaded) == 400 and loaded.index.is_unique and loaded.index.is_monotonic_increasing
