"""The named features of :mod:`morningstar.model.features` (private): what each one computes.

Every feature is a scale-free function of the bars up to and including the current one (log
returns, ratios to the price, bounded oscillators, z-scores, calendar angles), built from
:mod:`morningstar.core.indicators`, so that one model serves any price level and no value ever
depends on a later bar. Each entry records

* ``warmup``: leading NaN rows on a gap-free series (the indicator's lookback);
* ``memory``: extra bars a recursive indicator (EMA, Wilder smoothing) needs to forget where its
  series started, i.e. until the weight of the seed falls below ``1e-10``. Window features have
  no memory. Live trading must feed at least ``warmup + memory`` bars before the first row it
  uses, so that the numbers match a computation over the full history (to ~1e-10).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from morningstar.core import indicators as ind
from morningstar.model.specs import DEFAULT_FEATURES

__all__ = ["DEFAULT_FEATURES", "FEATURES", "BarArrays", "FeatureDef"]

FloatArray = npt.NDArray[np.float64]

_FORGET_WEIGHT = 1e-10
_NS_PER_S = 1_000_000_000
_DAY_S = 86_400


@dataclass(frozen=True)
class BarArrays:
    """The bar columns as float64 arrays, and the open times in epoch nanoseconds (UTC)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    times_ns: npt.NDArray[np.int64]


@dataclass(frozen=True)
class FeatureDef:
    """One named feature: its description, warm-up, memory and function of the bars."""

    name: str
    description: str
    warmup: int
    memory: int
    compute: Callable[[BarArrays], FloatArray]


def _forget(alpha: float) -> int:
    """Bars after which an exponential smoother (weight ``alpha``) has forgotten its seed."""
    return math.ceil(math.log(_FORGET_WEIGHT) / math.log1p(-alpha))


def _log_return(k: int) -> Callable[[BarArrays], FloatArray]:
    def compute(b: BarArrays) -> FloatArray:
        out = np.full(b.close.size, np.nan)
        if b.close.size > k:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[k:] = np.log(b.close[k:] / b.close[:-k])
        return out

    return compute


def _volatility(n: int) -> Callable[[BarArrays], FloatArray]:
    return lambda b: ind.rolling_volatility(b.close, n)


def _rsi(n: int) -> Callable[[BarArrays], FloatArray]:
    return lambda b: (ind.rsi(b.close, n) - 50.0) / 50.0


def _atr_pct(n: int) -> Callable[[BarArrays], FloatArray]:
    return lambda b: ind.atr(b.high, b.low, b.close, n) / b.close


def _bollinger_position(n: int, k: float) -> Callable[[BarArrays], FloatArray]:
    return lambda b: ind.zscore(b.close, n) / k


def _macd_hist(b: BarArrays) -> FloatArray:
    out: FloatArray = ind.macd(b.close, 12, 26, 9).hist / b.close
    return out


def _adx(n: int) -> Callable[[BarArrays], FloatArray]:
    return lambda b: ind.adx(b.high, b.low, b.close, n) / 100.0


def _di_diff(n: int) -> Callable[[BarArrays], FloatArray]:
    def compute(b: BarArrays) -> FloatArray:
        plus = ind.plus_di(b.high, b.low, b.close, n)
        minus = ind.minus_di(b.high, b.low, b.close, n)
        out: FloatArray = (plus - minus) / 100.0
        return out

    return compute


def _ema_ratio(fast: int, slow: int) -> Callable[[BarArrays], FloatArray]:
    def compute(b: BarArrays) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out: FloatArray = np.log(ind.ema(b.close, fast) / ind.ema(b.close, slow))
        return out

    return compute


def _range_pct(b: BarArrays) -> FloatArray:
    out: FloatArray = (b.high - b.low) / b.close
    return out


def _close_location(b: BarArrays) -> FloatArray:
    span = b.high - b.low
    with np.errstate(divide="ignore", invalid="ignore"):
        loc = np.where(span > 0.0, (b.close - b.low) / span, 0.5)
    out: FloatArray = np.where(np.isfinite(span), loc - 0.5, np.nan)
    return out


def _body(b: BarArrays) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.log(b.close / b.open)
    return out


def _volume_z(n: int) -> Callable[[BarArrays], FloatArray]:
    def compute(b: BarArrays) -> FloatArray:
        with np.errstate(invalid="ignore"):
            logv = np.log1p(np.where(b.volume >= 0.0, b.volume, np.nan))
        return ind.zscore(logv, n)

    return compute


def _donchian_position(n: int) -> Callable[[BarArrays], FloatArray]:
    def compute(b: BarArrays) -> FloatArray:
        ch = ind.donchian(b.high, b.low, n)
        span = ch.upper - ch.lower
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = np.where(span > 0.0, (b.close - ch.lower) / span - 0.5, 0.0)
        out: FloatArray = np.where(np.isfinite(span), pos, np.nan)
        return out

    return compute


def _seconds_of_day(b: BarArrays) -> FloatArray:
    out: FloatArray = ((b.times_ns // _NS_PER_S) % _DAY_S).astype(np.float64)
    return out


def _day_of_week(b: BarArrays) -> FloatArray:
    # 1970-01-01 was a Thursday: (days + 3) % 7 numbers Monday 0 .. Sunday 6
    out: FloatArray = ((b.times_ns // (_DAY_S * _NS_PER_S) + 3) % 7).astype(np.float64)
    return out


def _hour_sin(b: BarArrays) -> FloatArray:
    return np.sin(2.0 * np.pi * _seconds_of_day(b) / _DAY_S)


def _hour_cos(b: BarArrays) -> FloatArray:
    return np.cos(2.0 * np.pi * _seconds_of_day(b) / _DAY_S)


def _dow_sin(b: BarArrays) -> FloatArray:
    return np.sin(2.0 * np.pi * _day_of_week(b) / 7.0)


def _dow_cos(b: BarArrays) -> FloatArray:
    return np.cos(2.0 * np.pi * _day_of_week(b) / 7.0)


def _build() -> dict[str, FeatureDef]:
    wilder14 = _forget(1.0 / 14.0)
    defs = [
        FeatureDef("ret_1", "log return over 1 bar: ln(close / close[-1])", 1, 0, _log_return(1)),
        FeatureDef("ret_5", "log return over 5 bars", 5, 0, _log_return(5)),
        FeatureDef("ret_20", "log return over 20 bars", 20, 0, _log_return(20)),
        FeatureDef("ret_60", "log return over 60 bars", 60, 0, _log_return(60)),
        FeatureDef("vol_20", "std of the last 20 log returns (per bar)", 20, 0, _volatility(20)),
        FeatureDef("vol_60", "std of the last 60 log returns (per bar)", 60, 0, _volatility(60)),
        FeatureDef("rsi_7", "(RSI(7) - 50) / 50, in [-1, 1]", 7, _forget(1 / 7), _rsi(7)),
        FeatureDef("rsi_14", "(RSI(14) - 50) / 50, in [-1, 1]", 14, wilder14, _rsi(14)),
        FeatureDef("atr_pct_14", "ATR(14) / close", 14, wilder14, _atr_pct(14)),
        FeatureDef(
            "bb_pos_20",
            "position in the Bollinger bands (20, 2): z-score of close / 2 (+-1 at the bands)",
            19,
            0,
            _bollinger_position(20, 2.0),
        ),
        FeatureDef(
            "macd_hist",
            "MACD(12, 26, 9) histogram / close",
            33,
            _forget(2 / 27) + _forget(2 / 10),
            _macd_hist,
        ),
        FeatureDef("adx_14", "ADX(14) / 100, in [0, 1]", 27, 2 * wilder14, _adx(14)),
        FeatureDef(
            "di_diff_14", "(+DI(14) - -DI(14)) / 100, in [-1, 1]", 14, wilder14, _di_diff(14)
        ),
        FeatureDef(
            "ema_ratio_20_50",
            "ln(EMA(20) / EMA(50))",
            49,
            _forget(2 / 51),
            _ema_ratio(20, 50),
        ),
        FeatureDef("range_pct", "(high - low) / close", 0, 0, _range_pct),
        FeatureDef(
            "close_loc",
            "where the close sits in the bar's range, in [-0.5, 0.5] (0 for a flat bar)",
            0,
            0,
            _close_location,
        ),
        FeatureDef("body", "ln(close / open)", 0, 0, _body),
        FeatureDef(
            "donchian_pos_20",
            "where the close sits in the 20-bar high-low channel, in [-0.5, 0.5]",
            19,
            0,
            _donchian_position(20),
        ),
        FeatureDef(
            "volume_z_20",
            "z-score of ln(1 + volume) over 20 bars (0 when the volume is constant)",
            19,
            0,
            _volume_z(20),
        ),
        FeatureDef("hour_sin", "sin of the bar's open time of day (UTC)", 0, 0, _hour_sin),
        FeatureDef("hour_cos", "cos of the bar's open time of day (UTC)", 0, 0, _hour_cos),
        FeatureDef("dow_sin", "sin of the bar's open day of week (UTC)", 0, 0, _dow_sin),
        FeatureDef("dow_cos", "cos of the bar's open day of week (UTC)", 0, 0, _dow_cos),
    ]
    return {d.name: d for d in defs}


#: Every feature :class:`~morningstar.model.features.FeatureSpec` accepts, by name.
FEATURES: Mapping[str, FeatureDef] = MappingProxyType(_build())
