"""Every indicator against TA-Lib (the oracle), on real data and on random data.

First the NaN masks must be identical (our warm-up is TA-Lib's lookback); then, after the warm-up:

- outputs with units (prices, price differences, standard deviations, volatility):
  ``|ours - TA-Lib| <= 1e-9 * S`` with ``S = max |TA-Lib output|`` over the series, i.e. relative
  to the series' scale rather than element by element (MACD crosses zero and deviations get tiny,
  where an element-wise relative error measures TA-Lib's rounding, not a disagreement);
- unitless bounded outputs (RSI, +DI, -DI, ADX on 0-100, and the z-score): ``1e-9`` absolute.

Where our numerics deliberately differ from TA-Lib's the test says so: TA-Lib computes variances
as ``E[x^2] - E[x]^2`` with running sums (exact enough for these tolerances except for the
z-score over 2-3 bars of BTC-level prices, hence ``n >= 10`` there), and its RSI of a window
without any movement is 0 where ours is 50 (no such window occurs in these series).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import talib

from morningstar.core import indicators as ind

Arr = npt.NDArray[np.float64]

REAL_FILES = {
    "btc_usdt_1h": "genetrader/BINANCE_BTC_USDT-1h.csv",
    "eurusd_1h": "lean/OANDA_EURUSD-1h.csv",
    "spy_1d": "lean/US_SPY-1D.csv",
}
RANDOM = {"random": 100.0, "random_micro_price": 2e-5}


@dataclass(frozen=True)
class Bars:
    high: Arr
    low: Arr
    close: Arr


def random_bars(level: float, size: int = 20_000, seed: int = 11) -> Bars:
    rng = np.random.default_rng(seed)
    close = level * np.exp(np.cumsum(rng.normal(0.0, 0.01, size)))
    open_ = np.concatenate([[level], close[:-1]]) * np.exp(rng.normal(0.0, 0.002, size))
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    return Bars(
        top * (1.0 + rng.exponential(0.004, size)),
        bottom * (1.0 - rng.exponential(0.004, size)),
        close,
    )


@pytest.fixture(
    scope="module",
    params=[
        *(pytest.param(name, marks=pytest.mark.shared_data) for name in REAL_FILES),
        *RANDOM,
    ],
)
def bars(request: pytest.FixtureRequest) -> Bars:
    name = request.param
    if name in RANDOM:
        return random_bars(RANDOM[name])
    folder: Path = request.getfixturevalue("shared_data")
    frame = pd.read_csv(folder / REAL_FILES[name], usecols=["high", "low", "close"])
    return Bars(*(frame[col].to_numpy(dtype=np.float64) for col in ("high", "low", "close")))


def agree(ours: Arr, oracle: Arr, *, absolute: bool = False) -> None:
    """Same warm-up (NaN mask), then agreement to 1e-9 (absolute, or relative to the scale)."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(oracle), err_msg="warm-up differs")
    valid = ~np.isnan(oracle)
    assert valid.any(), "nothing to compare"
    scale = 1.0 if absolute else float(np.max(np.abs(oracle[valid])))
    worst = float(np.max(np.abs(ours[valid] - oracle[valid])))
    assert worst <= 1e-9 * scale, f"max |diff| {worst:.3e} > {1e-9 * scale:.3e}"


@pytest.mark.parametrize("n", [2, 14, 50])
def test_sma(bars: Bars, n: int) -> None:
    agree(ind.sma(bars.close, n), talib.SMA(bars.close, n))


@pytest.mark.parametrize("n", [2, 12, 50])
def test_ema(bars: Bars, n: int) -> None:
    agree(ind.ema(bars.close, n), talib.EMA(bars.close, n))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd(bars: Bars, fast: int, slow: int, signal: int) -> None:
    for ours, oracle in zip(
        ind.macd(bars.close, fast, slow, signal),
        talib.MACD(bars.close, fast, slow, signal),
        strict=True,
    ):
        agree(ours, oracle)


@pytest.mark.parametrize("n", [2, 14, 50])
def test_rsi(bars: Bars, n: int) -> None:
    agree(ind.rsi(bars.close, n), talib.RSI(bars.close, n), absolute=True)


def test_true_range(bars: Bars) -> None:
    agree(
        ind.true_range(bars.high, bars.low, bars.close),
        talib.TRANGE(bars.high, bars.low, bars.close),
    )


@pytest.mark.parametrize("n", [2, 14, 50])
def test_atr(bars: Bars, n: int) -> None:
    h, lo, c = bars.high, bars.low, bars.close
    agree(ind.atr(h, lo, c, n), talib.ATR(h, lo, c, n))


@pytest.mark.parametrize("n", [2, 14, 50])
def test_directional_indicators_and_adx(bars: Bars, n: int) -> None:
    h, lo, c = bars.high, bars.low, bars.close
    agree(ind.plus_di(h, lo, c, n), talib.PLUS_DI(h, lo, c, n), absolute=True)
    agree(ind.minus_di(h, lo, c, n), talib.MINUS_DI(h, lo, c, n), absolute=True)
    agree(ind.adx(h, lo, c, n), talib.ADX(h, lo, c, n), absolute=True)


@pytest.mark.parametrize(("n", "k"), [(5, 1.0), (20, 2.0), (50, 2.5)])
def test_bollinger(bars: Bars, n: int, k: float) -> None:
    upper, middle, lower = talib.BBANDS(bars.close, n, k, k, 0)
    ours = ind.bollinger(bars.close, n, k)
    agree(ours.middle, middle)
    agree(ours.upper, upper)
    agree(ours.lower, lower)


@pytest.mark.parametrize("n", [2, 20, 55])
def test_donchian(bars: Bars, n: int) -> None:
    upper, lower, middle = ind.donchian(bars.high, bars.low, n)
    agree(upper, talib.MAX(bars.high, n))
    agree(lower, talib.MIN(bars.low, n))
    agree(middle, (talib.MAX(bars.high, n) + talib.MIN(bars.low, n)) / 2)


@pytest.mark.parametrize("n", [2, 14, 50])
def test_rolling_std(bars: Bars, n: int) -> None:
    agree(ind.rolling_std(bars.close, n), talib.STDDEV(bars.close, n, 1.0))
    sample = talib.STDDEV(bars.close, n, 1.0) * np.sqrt(n / (n - 1))
    agree(ind.rolling_std(bars.close, n, ddof=1), sample)


@pytest.mark.parametrize("n", [2, 20, 60])
def test_rolling_volatility(bars: Bars, n: int) -> None:
    # TA-Lib's STDDEV is the population deviation: rescale to the sample one (ddof=1)
    returns = np.concatenate([[np.nan], np.log(bars.close[1:] / bars.close[:-1])])
    oracle = talib.STDDEV(returns, n, 1.0) * np.sqrt(n / (n - 1))
    agree(ind.rolling_volatility(bars.close, n), oracle)
    agree(ind.rolling_volatility(bars.close, n, annualization=365.0), oracle * np.sqrt(365.0))


@pytest.mark.parametrize("n", [10, 20, 50])
def test_zscore(bars: Bars, n: int) -> None:
    mean, std = talib.SMA(bars.close, n), talib.STDDEV(bars.close, n, 1.0)
    ours = ind.zscore(bars.close, n)
    flat = std == 0.0  # TA-Lib gives 0/0 there; ours is defined as 0
    assert (ours[flat] == 0.0).all()
    with np.errstate(divide="ignore", invalid="ignore"):
        oracle = np.where(flat, 0.0, (bars.close - mean) / std)
    agree(ours, oracle, absolute=True)
