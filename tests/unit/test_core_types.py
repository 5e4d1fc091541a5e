from __future__ import annotations

import pytest

from morningstar.core import Pair, parse_pair, parse_timeframe


@pytest.mark.parametrize(
    ("text", "seconds", "canonical", "freq"),
    [
        ("1m", 60, "1m", "1min"),
        ("5m", 300, "5m", "5min"),
        ("15m", 900, "15m", "15min"),
        ("1h", 3600, "1h", "1h"),
        ("4h", 14_400, "4h", "4h"),
        ("1D", 86_400, "1d", "1D"),
        ("1d", 86_400, "1d", "1D"),
        ("1w", 604_800, "1w", "7D"),
        ("90m", 5400, "90m", "90min"),
        ("30s", 30, "30s", "30s"),
    ],
)
def test_parse_timeframe(text: str, seconds: int, canonical: str, freq: str) -> None:
    tf = parse_timeframe(text)
    assert tf.seconds == seconds
    assert str(tf) == canonical
    assert tf.pandas_freq == freq
    assert tf.ms == seconds * 1000


@pytest.mark.parametrize("text", ["", "5", "m5", "1M", "1y", "-1h", "0m", "1.5h"])
def test_parse_timeframe_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="timeframe"):
        parse_timeframe(text)


def test_bars_per_year() -> None:
    assert parse_timeframe("1h").bars_per_year() == 365 * 24
    assert parse_timeframe("1d").bars_per_year(trading_days=252) == 252


@pytest.mark.parametrize(
    ("text", "pair", "stem"),
    [
        ("BTC/USDT", Pair("BTC", "USDT"), "BTC_USDT"),
        ("btc_usdt", Pair("BTC", "USDT"), "BTC_USDT"),
        ("ETH-BTC", Pair("ETH", "BTC"), "ETH_BTC"),
        ("BTC/USDT:USDT", Pair("BTC", "USDT", "USDT"), "BTC_USDT_USDT"),
    ],
)
def test_parse_pair(text: str, pair: Pair, stem: str) -> None:
    assert parse_pair(text) == pair
    assert pair.file_stem == stem
    assert parse_pair(str(pair)) == pair


@pytest.mark.parametrize("text", ["BTC", "BTC/", "/USDT", "BTC USDT", ""])
def test_parse_pair_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        parse_pair(text)
