from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from morningstar.core import Pair, parse_timeframe
from morningstar.data.csv_import import infer_timeframe, parse_file_name, read_ohlcv_csv
from morningstar.data.ohlcv import is_contract
from morningstar.errors import DataFormatError

T0 = pd.Timestamp("2024-01-01T00:00:00Z")
EXPECTED_TIMES = [T0 + pd.Timedelta(minutes=5 * i) for i in range(3)]
EXPECTED = np.array(
    [
        [100.0, 101.0, 99.0, 100.5, 10.0],
        [100.5, 102.0, 100.0, 101.5, 11.0],
        [101.5, 103.0, 101.0, 102.5, 12.0],
    ]
)


def write(tmp_path: Path, text: str, name: str = "BINANCE_BTC_USDT-5m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LAYOUTS = {
    "iso": (
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,100,101,99,100.5,10\n"
        "2024-01-01T00:05:00Z,100.5,102,100,101.5,11\n"
        "2024-01-01T00:10:00Z,101.5,103,101,102.5,12\n"
    ),
    "epoch_ms": (
        "open_time,Open,High,Low,Close,Volume\n"
        "1704067200000,100,101,99,100.5,10\n"
        "1704067500000,100.5,102,100,101.5,11\n"
        "1704067800000,101.5,103,101,102.5,12\n"
    ),
    "epoch_s": (
        "unix,o,h,l,c,v\n"
        "1704067200,100,101,99,100.5,10\n"
        "1704067500,100.5,102,100,101.5,11\n"
        "1704067800,101.5,103,101,102.5,12\n"
    ),
    "binance_klines": (
        "1704067200000,100,101,99,100.5,10,1704067499999,1000,5,4,400,0\n"
        "1704067500000,100.5,102,100,101.5,11,1704067799999,1100,6,5,500,0\n"
        "1704067800000,101.5,103,101,102.5,12,1704068099999,1200,7,6,600,0\n"
    ),
    "binance_klines_us": (
        "1704067200000000,100,101,99,100.5,10,1704067499999999,1000,5,4,400,0\n"
        "1704067500000000,100.5,102,100,101.5,11,1704067799999999,1100,6,5,500,0\n"
        "1704067800000000,101.5,103,101,102.5,12,1704068099999999,1200,7,6,600,0\n"
    ),
    "date_time": (
        "Date,Time,Open,High,Low,Close,Volume\n"
        "2024-01-01,00:00,100,101,99,100.5,10\n"
        "2024-01-01,00:05,100.5,102,100,101.5,11\n"
        "2024-01-01,00:10,101.5,103,101,102.5,12\n"
    ),
    "metatrader": (
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\n"
        "2024.01.01\t00:00:00\t100\t101\t99\t100.5\t10\n"
        "2024.01.01\t00:05:00\t100.5\t102\t100\t101.5\t11\n"
        "2024.01.01\t00:10:00\t101.5\t103\t101\t102.5\t12\n"
    ),
    "dayfirst": (
        "Gmt time,Open,High,Low,Close,Volume\n"
        "01.01.2024 00:00:00.000,100,101,99,100.5,10\n"
        "01.01.2024 00:05:00.000,100.5,102,100,101.5,11\n"
        "01.01.2024 00:10:00.000,101.5,103,101,102.5,12\n"
    ),
    "reversed_cdd": (
        "https://www.CryptoDataDownload.com\n"
        "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n"
        "1704067800000,2024-01-01 00:10:00,BTCUSDT,101.5,103,101,102.5,12,1200,7\n"
        "1704067500000,2024-01-01 00:05:00,BTCUSDT,100.5,102,100,101.5,11,1100,6\n"
        "1704067200000,2024-01-01 00:00:00,BTCUSDT,100,101,99,100.5,10,1000,5\n"
    ),
    "semicolon_offset": (
        "timestamp;open;high;low;close;volume\n"
        "2024-01-01T01:00:00+01:00;100;101;99;100.5;10\n"
        "2024-01-01T01:05:00+01:00;100.5;102;100;101.5;11\n"
        "2024-01-01T01:10:00+01:00;101.5;103;101;102.5;12\n"
    ),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_read_to_same_bars(tmp_path: Path, layout: str) -> None:
    result = read_ohlcv_csv(write(tmp_path, LAYOUTS[layout]))
    frame = result.frame
    assert is_contract(frame)
    assert list(frame.index) == EXPECTED_TIMES
    np.testing.assert_array_equal(frame.to_numpy(), EXPECTED)
    assert result.rows_read == 3
    assert result.reversed_order == (layout == "reversed_cdd")


def test_reversed_and_banner_are_noted(tmp_path: Path) -> None:
    result = read_ohlcv_csv(write(tmp_path, LAYOUTS["reversed_cdd"]))
    assert "rows were newest-first: read in reverse" in result.notes
    assert "skipped a banner line before the header" in result.notes


def test_partly_unordered_file_is_not_sorted(tmp_path: Path) -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:05:00Z,1,1,1,1,1\n"
        "2024-01-01T00:00:00Z,1,1,1,1,1\n"
        "2024-01-01T00:10:00Z,1,1,1,1,1\n"
    )
    frame = read_ohlcv_csv(write(tmp_path, text)).frame
    assert not frame.index.is_monotonic_increasing  # validation reports it, import does not fix


def test_missing_volume_is_zero_and_noted(tmp_path: Path) -> None:
    text = "date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1.5,2,1,1.8\n"
    result = read_ohlcv_csv(write(tmp_path, text, "US_SPY-1D.csv"))
    assert result.frame["volume"].tolist() == [0.0, 0.0]
    assert "no volume column: volume set to 0" in result.notes


def test_unknown_layout_error_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "when,price,qty\n2024-01-01,1,2\n")
    with pytest.raises(DataFormatError) as info:
        read_ohlcv_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: unknown CSV layout: missing open, high, low, close")
    assert "when, price, qty" in message
    assert "\n" not in message


def test_missing_time_column(tmp_path: Path) -> None:
    path = write(tmp_path, "open,high,low,close\n1,2,0.5,1\n")
    with pytest.raises(DataFormatError, match="missing time"):
        read_ohlcv_csv(path)


def test_non_numeric_price_names_line(tmp_path: Path) -> None:
    text = LAYOUTS["iso"].replace("100.5,102,100,101.5,11", "100.5,oops,100,101.5,11")
    path = write(tmp_path, text)
    with pytest.raises(
        DataFormatError, match=rf"{path}, line 3: column 'high' has a non-numeric value 'oops'"
    ):
        read_ohlcv_csv(path)


def test_bad_time_names_row(tmp_path: Path) -> None:
    text = LAYOUTS["iso"].replace("2024-01-01T00:05:00Z", "yesterday")
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match=r"data row 2: unreadable time 'yesterday'"):
        read_ohlcv_csv(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="file is empty"):
        read_ohlcv_csv(write(tmp_path, ""))
    with pytest.raises(DataFormatError, match="no data rows"):
        read_ohlcv_csv(write(tmp_path, "timestamp,open,high,low,close,volume\n"))
    with pytest.raises(DataFormatError, match="file not found"):
        read_ohlcv_csv(tmp_path / "absent.csv")


def test_numbers_that_are_not_times(tmp_path: Path) -> None:
    path = write(tmp_path, "time,open,high,low,close\n5,1,1,1,1\n6,1,1,1,1\n")
    with pytest.raises(DataFormatError, match="not epoch times"):
        read_ohlcv_csv(path)


def test_sha256_identifies_content(tmp_path: Path) -> None:
    a = read_ohlcv_csv(write(tmp_path, LAYOUTS["iso"], "a.csv"))
    b = read_ohlcv_csv(write(tmp_path, LAYOUTS["iso"], "b.csv"))
    c = read_ohlcv_csv(write(tmp_path, LAYOUTS["epoch_s"], "c.csv"))
    assert a.sha256 == b.sha256 != c.sha256


@pytest.mark.parametrize(
    ("name", "venue", "pair", "tf"),
    [
        ("BINANCE_BTC_USDT-5m.csv", "binance", Pair("BTC", "USDT"), "5m"),
        ("OANDA_EURUSD-1h.csv", "oanda", Pair("EUR", "USD"), "1h"),
        ("US_SPY-1D.csv", "us", Pair("SPY", "USD"), "1d"),
        ("BINANCE_XRP_USDT_PERP-5m.csv", "binance", Pair("XRP", "USDT", "USDT"), "5m"),
        ("BTC_USDT-15m.csv", None, Pair("BTC", "USDT"), "15m"),
    ],
)
def test_parse_file_name(name: str, venue: str | None, pair: Pair, tf: str) -> None:
    assert parse_file_name(name) == (venue, pair, parse_timeframe(tf))


def test_parse_file_name_unknown() -> None:
    assert parse_file_name("prices.csv") == (None, None, None)


def test_infer_timeframe() -> None:
    idx = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 03:00", "2024-01-01 04:00"], tz="UTC"
    )
    assert infer_timeframe(idx) == parse_timeframe("1h")
    assert infer_timeframe(idx[:1]) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1704067200000,1,2,0.5,1.5,3\n,1,2,0.5,1.5,3\n", r"data row 2: missing time \(empty\)"),
        ("1704067200000,1,2,0.5,1.5,3\n99999999999999999,1,2,0.5,1.5,3\n", "out of range"),
        (
            "20240101,1,2,0.5,1.5,3\n20240199,1,2,0.5,1.5,3\n",
            "data row 2: unreadable date '20240199'",
        ),
        (
            "2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n2024-01-01T01:00:00Z,1,2,0.5,1.5,3,9\n",
            "Expected 6 fields in line 3",
        ),
        ("11/01/2024,1,2,0.5,1.5,3\n12/01/2024,1,2,0.5,1.5,3\n", "ambiguous: no day above 12"),
        (
            "11/01/2024,1,2,0.5,1.5,3\n13/01/2024,1,2,0.5,1.5,3\n01/14/2024,1,2,0.5,1.5,3\n",
            "mixes day/month",
        ),
    ],
)
def test_bad_times_are_refused_never_guessed(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "timestamp,open,high,low,close,volume\n" + text)
    with pytest.raises(DataFormatError, match=message):
        read_ohlcv_csv(path)


def test_slash_dates_use_one_order_for_the_whole_column(tmp_path: Path) -> None:
    text = (
        "date,open,high,low,close\n"
        "11/01/2024,1,2,0.5,1.5\n12/01/2024,1,2,0.5,1.5\n13/01/2024,1,2,0.5,1.5\n"
    )
    frame = read_ohlcv_csv(write(tmp_path, text)).frame
    assert [ts.day for ts in frame.index] == [11, 12, 13]
    assert {ts.month for ts in frame.index} == {1}


def test_fractional_epoch_seconds_are_kept(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close\n1704067200.5,1,2,0.5,1.5\n1704067201.25,1,2,0.5,1.5\n"
    frame = read_ohlcv_csv(write(tmp_path, text)).frame
    assert list(frame.index) == [
        T0 + pd.Timedelta(milliseconds=500),
        T0 + pd.Timedelta(milliseconds=1250),
    ]


def test_gzip_file(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "BINANCE_BTC_USDT-5m.csv.gz"
    path.write_bytes(gzip.compress(LAYOUTS["iso"].encode()))
    result = read_ohlcv_csv(path)
    np.testing.assert_array_equal(result.frame.to_numpy(), EXPECTED)
    assert parse_file_name(path)[0] == "binance"


def test_row_numbers_of_a_newest_first_file_are_file_lines(tmp_path: Path) -> None:
    from morningstar.data.validation import validate

    text = LAYOUTS["reversed_cdd"].replace(
        "1704067500000,2024-01-01 00:05:00,BTCUSDT,100.5,102,100,101.5",
        "1704067500000,2024-01-01 00:05:00,BTCUSDT,100.5,99,100,101.5",  # high < low on line 4
    )
    imported = read_ohlcv_csv(write(tmp_path, text))
    assert imported.line_numbers.tolist() == [5, 4, 3]
    _, report = validate(
        imported.frame, "5m", calendar="crypto", policies={"ohlc_inconsistent": "warn"},
        row_numbers=imported.line_numbers,
    )  # fmt: skip
    issue = report.issue("ohlc_inconsistent")
    assert issue is not None and issue.examples[0].row == 4
