"""Training targets from the bars AFTER each decision bar: signal, volatility, regime, excursions.

Labels look ahead by design (they are what the model learns to predict); features never do, so a
label can only be used for training once its ``horizon`` future bars exist. Definitions for bar
``t`` with close ``c_t`` and horizon ``h`` (:class:`LabelSpec`):

* ``sigma_t``: volatility known at ``t``: the sample standard deviation (``ddof=1``) of the last
  ``vol_window`` log returns (:func:`morningstar.core.indicators.rolling_volatility`), per bar.
* **signal** (triple barrier): half-width ``b_t = max(barrier_mult * sigma_t * sqrt(h),
  min_barrier)`` in log return, barriers ``U = c_t * exp(b_t)`` and ``L = c_t * exp(-b_t)``.
  Bars ``j = t+1 .. t+h`` are walked in order and the first that touches a barrier decides
  (touch = ``high >= U`` or ``low <= L``; equal counts):

  - ``open_j >= U``: **up**, ``open_j <= L``: **down** (a gap through a barrier: the open is the
    first trade of the bar, so the order is known);
  - ``high_j >= U`` and ``low_j <= L``: **neutral** — both barriers inside one bar and the order
    is unknown; the conservative label is "no trade" (a long might have been stopped first, and
    a short too), which never teaches the model a win that may not have happened;
  - only ``high_j >= U``: **up**; only ``low_j <= L``: **down**.

  No touch within ``h`` bars (the vertical barrier): **neutral**.
* **volatility**: the realised per-bar volatility of the NEXT ``h`` log returns
  ``r_{t+1} .. r_{t+h}``, same estimator as ``sigma_t`` (``ddof=1``).
* **forward_return**: ``ln(c_{t+h} / c_t)``.
* **regime** (first rule that matches): **high_vol** when ``volatility > high_vol_mult *
  sigma_t``; **trend_up** when ``forward_return > trend_threshold * sigma_t * sqrt(h)``;
  **trend_down** when ``forward_return < -trend_threshold * sigma_t * sqrt(h)``; else **range**.
* **sl** / **tp**: maximum adverse / favourable excursion over bars ``t+1 .. t+h`` for a long
  entered at ``c_t``, in multiples of ``sigma_t * c_t``: ``sl = max(0, c_t - min low) / (sigma_t
  * c_t)``, ``tp = max(0, max high - c_t) / (sigma_t * c_t)``.

Unknown values (``-1`` for the classes, NaN for the numbers) where fewer than ``h`` bars follow
``t`` (the last ``h`` bars), where ``sigma_t`` is not known (the first ``vol_window`` bars) or is
0 (then ``sl``, ``tp`` and the regime are unknown; the signal too unless ``min_barrier > 0``), or
where a NaN bar lies among the bars needed. ``Labels.mask`` marks the bars where every label is
known. The kernels are numba loops, O(n * h) at worst (the barrier walk stops at the first touch).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import cast

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core import indicators as ind
from morningstar.core.prediction import SIGNAL_NAMES
from morningstar.model._bars import check_bars
from morningstar.model.specs import LabelSpec

__all__ = [
    "REGIME_CLASSES",
    "SIGNAL_CLASSES",
    "LabelSpec",
    "Labels",
    "make_labels",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]

#: Signal classes, by label value (0, 1, 2); -1 is unknown.
SIGNAL_CLASSES: tuple[str, ...] = SIGNAL_NAMES  # the predictor port's class order
#: Regime classes, by label value (0 .. 3); -1 is unknown.
REGIME_CLASSES: tuple[str, ...] = ("trend_up", "trend_down", "range", "high_vol")

_DOWN, _NEUTRAL, _UP = 0, 1, 2
_TREND_UP, _TREND_DOWN, _RANGE, _HIGH_VOL = 0, 1, 2, 3


@dataclass(frozen=True)
class Labels:
    """Labels of every bar, arrays of ``len(bars)`` aligned with the bars.

    Attributes:
        signal: int8, index into :data:`SIGNAL_CLASSES` (0 down, 1 neutral, 2 up), -1 unknown.
        volatility: realised per-bar volatility of the next ``horizon`` log returns, NaN unknown.
        regime: int8, index into :data:`REGIME_CLASSES`, -1 unknown.
        sl: maximum adverse excursion of a long from ``c_t``, in ``sigma_t * c_t``; NaN unknown.
        tp: maximum favourable excursion of a long from ``c_t``, in ``sigma_t * c_t``; NaN unknown.
        sigma: ``sigma_t``, the per-bar volatility known at ``t``; NaN during its warm-up.
        mask: True where every label above is known.
        forward_return: ``ln(c_{t+h} / c_t)``, NaN unknown.
        index: the bars' open times.
    """

    signal: Int8Array
    volatility: FloatArray
    regime: Int8Array
    sl: FloatArray
    tp: FloatArray
    sigma: FloatArray
    mask: npt.NDArray[np.bool_]
    forward_return: FloatArray
    index: pd.DatetimeIndex

    def __len__(self) -> int:
        return int(self.signal.size)

    def balance(self) -> dict[str, dict[str, float]]:
        """Share of each signal and regime class among the bars where all labels are known."""
        known = int(self.mask.sum())
        out: dict[str, dict[str, float]] = {}
        for name, values, classes in (
            ("signal", self.signal, SIGNAL_CLASSES),
            ("regime", self.regime, REGIME_CLASSES),
        ):
            counts = np.bincount(values[self.mask].astype(np.int64), minlength=len(classes))
            out[name] = {
                c: (float(counts[k]) / known if known else 0.0) for k, c in enumerate(classes)
            }
        return out


# -------------------------------------------------------------------------------------- kernels


@numba.njit(cache=True)
def _triple_barrier_nb(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    width: FloatArray,
    horizon: int,
) -> Int8Array:
    """First barrier touched within ``horizon`` bars (0 down, 1 neutral, 2 up, -1 unknown)."""
    n = close.size
    out = np.full(n, -1, dtype=np.int8)
    for t in range(n - horizon):
        w = width[t]
        c = close[t]
        if not (w > 0.0 and np.isfinite(w) and np.isfinite(c)):
            continue
        upper = c * np.exp(w)
        lower = c * np.exp(-w)
        label = 1
        for j in range(t + 1, t + horizon + 1):
            o = open_[j]
            h = high[j]
            lo = low[j]
            if not (np.isfinite(o) and np.isfinite(h) and np.isfinite(lo)):
                label = -1
                break
            if o >= upper:
                label = 2
                break
            if o <= lower:
                label = 0
                break
            hit_up = h >= upper
            hit_down = lo <= lower
            if hit_up and hit_down:
                label = 1
                break
            if hit_up:
                label = 2
                break
            if hit_down:
                label = 0
                break
        out[t] = label
    return out


@numba.njit(cache=True)
def _excursions_nb(
    high: FloatArray, low: FloatArray, horizon: int
) -> tuple[FloatArray, FloatArray]:
    """Highest high and lowest low of bars ``t+1 .. t+horizon`` (NaN when one is missing)."""
    n = high.size
    top = np.full(n, np.nan)
    bottom = np.full(n, np.nan)
    for t in range(n - horizon):
        hi = -np.inf
        lo = np.inf
        ok = True
        for j in range(t + 1, t + horizon + 1):
            if not (np.isfinite(high[j]) and np.isfinite(low[j])):
                ok = False
                break
            hi = max(hi, high[j])
            lo = min(lo, low[j])
        if ok:
            top[t] = hi
            bottom[t] = lo
    return top, bottom


# ------------------------------------------------------------------------------------ labelling


def _shift_back(values: FloatArray, k: int) -> FloatArray:
    """``out[t] = values[t + k]`` (NaN for the last ``k``)."""
    out = np.full(values.size, np.nan)
    if values.size > k:
        out[:-k] = values[k:]
    return out


def make_labels(bars: pd.DataFrame, spec: LabelSpec | None = None) -> Labels:
    """Compute every label of every bar (see the module docstring for the rules).

    Args:
        bars: OHLCV contract frame (strictly increasing times, positive prices; NaN bars allowed).
        spec: label parameters (default :class:`LabelSpec`).

    Returns:
        The labels, arrays of ``len(bars)``; the last ``horizon`` bars are always unknown.

    Raises:
        DataFormatError: the bars break the OHLCV contract.
        UserInputError: no bars.
    """
    spec = spec or LabelSpec()
    data = check_bars(bars, where="make_labels")
    h = spec.horizon
    o, hi, lo, c = (data[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    o, hi, lo, c = (np.ascontiguousarray(a) for a in (o, hi, lo, c))
    sigma = ind.rolling_volatility(c, spec.vol_window)
    sqrt_h = math.sqrt(h)
    with np.errstate(invalid="ignore"):
        width = np.maximum(spec.barrier_mult * sigma * sqrt_h, spec.min_barrier)
    width[~np.isfinite(sigma)] = np.nan
    signal = _triple_barrier_nb(o, hi, lo, c, width, h)

    volatility = _shift_back(ind.rolling_volatility(c, h), h)
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = np.log(_shift_back(c, h) / c)
    top, bottom = _excursions_nb(hi, lo, h)
    has_sigma = np.isfinite(sigma) & (sigma > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(has_sigma, sigma * c, np.nan)
        tp = np.maximum(top - c, 0.0) / unit
        sl = np.maximum(c - bottom, 0.0) / unit
        trend = spec.trend_threshold * sigma * sqrt_h
        regime = np.select(
            [
                volatility > spec.high_vol_mult * sigma,
                forward > trend,
                forward < -trend,
            ],
            [_HIGH_VOL, _TREND_UP, _TREND_DOWN],
            default=_RANGE,
        ).astype(np.int8)
    regime_known = has_sigma & np.isfinite(volatility) & np.isfinite(forward)
    regime[~regime_known] = -1
    tp[~np.isfinite(tp)] = np.nan
    sl[~np.isfinite(sl)] = np.nan
    mask = (signal >= 0) & (regime >= 0) & np.isfinite(sl) & np.isfinite(tp)
    logger.debug("labels: %d bars, %d fully known", c.size, int(mask.sum()))
    return Labels(
        signal=signal,
        volatility=volatility,
        regime=regime,
        sl=sl,
        tp=tp,
        sigma=sigma,
        mask=mask,
        forward_return=forward,
        index=cast(pd.DatetimeIndex, data.index),
    )
