"""The workflow's predictor port: what a predictor says about a bar, one bar or every bar.

A predictor (the trained :class:`~morningstar.model.wrapper.MorningstarModel`, or a strategy
wrapped by :class:`~morningstar.model.predictors.StrategySignalPredictor`) answers, for the bar
that just closed, with a :class:`Prediction`:

=====================  ==========================================================================
key                    meaning
=====================  ==========================================================================
signal                 ``"down"``, ``"neutral"`` or ``"up"``
signal_value           ``-1``, ``0`` or ``+1``
confidence             probability of the predicted class (calibrated), in ``[0, 1]``
probabilities          ``{"down": p, "neutral": p, "up": p}`` (sum 1)
volatility             expected volatility: standard deviation of one bar's log return over the
                       next ``horizon`` bars (a fraction per bar, e.g. ``0.002``)
regime                 market regime name (e.g. ``"trend_up"``) + ``regime_probabilities``
sl_mult / tp_mult      stop-loss / take-profit distance in multiples of ``sigma`` (the
                       volatility per bar known at the bar, the label spec's ``sigma_t``)
sl / tp                price levels of the stop and the target for a trade in the direction of
                       the signal, entered at the bar's close (long when the signal is neutral)
=====================  ==========================================================================

A field is ``None`` when its head is inactive; :meth:`Prediction.as_dict` keeps only the keys of
active heads. :class:`PredictionBatch` holds the same numbers for every bar of a series as
arrays aligned to the bars, for backtests. Where there is no prediction (``valid`` is False:
before warm-up, a window with missing data, or no usable volatility ``sigma_t``) the float
columns hold NaN, ``regime`` holds ``-1`` and ``signal_value`` holds ``0``: check ``valid``, not
the signal. ``batch.row(i)`` is the :class:`Prediction` of bar ``i``.

Every predictor is point in time: the prediction for bar ``t`` depends on bars ``0..t`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "SIGNAL_NAMES",
    "SIGNAL_VALUES",
    "Prediction",
    "PredictionBatch",
    "Predictor",
    "signal_name",
]

#: Signal classes in the order of the probability columns.
SIGNAL_NAMES: Final = ("down", "neutral", "up")
#: ``signal_value`` of each class of :data:`SIGNAL_NAMES`.
SIGNAL_VALUES: Final = (-1, 0, 1)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int8]


def signal_name(value: int) -> str:
    """``-1 -> "down"``, ``0 -> "neutral"``, ``1 -> "up"``.

    Raises:
        ValueError: any other value.
    """
    if value not in SIGNAL_VALUES:
        raise ValueError(f"signal value must be -1, 0 or 1, got {value!r}")
    return SIGNAL_NAMES[SIGNAL_VALUES.index(value)]


def _round_trip(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Prediction:
    """A predictor's answer for one bar (see the module docstring for every field).

    ``None`` marks an inactive head; ``timestamp`` is the OPEN time of the bar the prediction is
    made at (the decision is taken at that bar's close).
    """

    timestamp: pd.Timestamp | None = None
    signal: str | None = None
    signal_value: int | None = None
    confidence: float | None = None
    probabilities: Mapping[str, float] | None = None
    volatility: float | None = None
    regime: str | None = None
    regime_probabilities: Mapping[str, float] | None = None
    sl_mult: float | None = None
    tp_mult: float | None = None
    sl: float | None = None
    tp: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.signal is not None and self.signal not in SIGNAL_NAMES:
            raise ValueError(f"signal must be one of {SIGNAL_NAMES}, got {self.signal!r}")
        if self.signal is not None and self.signal_value is None:
            object.__setattr__(self, "signal_value", SIGNAL_VALUES[SIGNAL_NAMES.index(self.signal)])
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")

    def as_dict(self) -> dict[str, Any]:
        """The active heads' keys only, JSON-friendly (floats, strings, dicts)."""
        out: dict[str, Any] = {}
        if self.signal is not None:
            out["signal"] = self.signal
            out["signal_value"] = self.signal_value
            out["confidence"] = _round_trip(self.confidence)
            if self.probabilities is not None:
                out["probabilities"] = {k: float(v) for k, v in self.probabilities.items()}
        if self.volatility is not None:
            out["volatility"] = float(self.volatility)
        if self.regime is not None:
            out["regime"] = self.regime
            if self.regime_probabilities is not None:
                out["regime_probabilities"] = {
                    k: float(v) for k, v in self.regime_probabilities.items()
                }
        for key in ("sl_mult", "tp_mult", "sl", "tp"):
            value = getattr(self, key)
            if value is not None:
                out[key] = float(value)
        return out


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True, eq=False)
class PredictionBatch:
    """Predictions for every bar of a series, columnar, aligned to ``index`` (the bars' index).

    Rows without a prediction (:attr:`valid` False: warm-up, missing data, no usable
    ``sigma_t``) hold NaN in the float columns, ``-1`` in ``regime`` and ``0`` in
    ``signal_value``. A column is ``None`` when its head is inactive.

    Attributes:
        index: the bars' index (OPEN times), one row per bar.
        signal_value: int8 ``-1 / 0 / +1`` (``0`` also where ``probabilities`` is NaN; check
            :attr:`valid`).
        probabilities: float64 ``(n, 3)``, columns :data:`SIGNAL_NAMES`.
        confidence: float64, max calibrated probability.
        volatility: float64, expected per-bar volatility over the horizon.
        regime: int8 index into ``regime_names`` (``-1`` = none).
        regime_probabilities: float64 ``(n, len(regime_names))``.
        sl_mult, tp_mult: float64, multiples of sigma.
        sl, tp: float64 price levels (direction of the signal, entry at the close).
        valid: bool, True where the predictor produced a prediction.

    The columns are read as Python lists cached at the first :meth:`row`: do not modify the
    arrays after that.
    """

    index: pd.DatetimeIndex
    valid: npt.NDArray[np.bool_]
    signal_value: IntArray | None = None
    probabilities: FloatArray | None = None
    confidence: FloatArray | None = None
    volatility: FloatArray | None = None
    regime: IntArray | None = None
    regime_probabilities: FloatArray | None = None
    regime_names: tuple[str, ...] = ()
    sl_mult: FloatArray | None = None
    tp_mult: FloatArray | None = None
    sl: FloatArray | None = None
    tp: FloatArray | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)

    @cached_property
    def _lists(self) -> dict[str, Any]:
        """The columns as Python lists (built once, on the first :meth:`row`): reading one
        element of a list is far cheaper than indexing a numpy array or a pandas index."""
        out: dict[str, Any] = {"valid": self.valid.tolist(), "ns": self.index.asi8.tolist()}
        for key in ("signal_value", "probabilities", "confidence", "volatility", "regime",
                    "regime_probabilities", "sl_mult", "tp_mult", "sl", "tp"):  # fmt: skip
            column = getattr(self, key)
            out[key] = None if column is None else np.asarray(column).tolist()
        return out

    def row(self, i: int) -> Prediction:
        """The :class:`Prediction` of bar ``i`` (negative counts from the end).

        Raises:
            IndexError: ``i`` out of range.
            ValueError: no prediction at that bar (warm-up or missing data).
        """
        n = len(self.index)
        pos = i + n if i < 0 else i
        if not 0 <= pos < n:
            raise IndexError(f"bar {i} is out of range for {n} bars")
        cols = self._lists
        if not cols["valid"][pos]:
            raise ValueError(f"no prediction at bar {pos} ({self.index[pos]}): warm-up or NaN")
        index = self.index
        timestamp = pd.Timestamp(cols["ns"][pos], unit=index.unit, tz=index.tz)
        kwargs: dict[str, Any] = {"timestamp": timestamp, "source": self.source}
        signal = cols["signal_value"]
        if signal is not None:
            value = int(signal[pos])
            kwargs["signal"] = signal_name(value)
            kwargs["signal_value"] = value
            probs = cols["probabilities"]
            if probs is not None:
                kwargs["probabilities"] = dict(zip(SIGNAL_NAMES, probs[pos], strict=True))
            confidence = cols["confidence"]
            if confidence is not None:
                kwargs["confidence"] = confidence[pos]
        volatility = cols["volatility"]
        if volatility is not None:
            kwargs["volatility"] = _opt(volatility[pos])
        regime = cols["regime"]
        if regime is not None and regime[pos] >= 0:
            kwargs["regime"] = self.regime_names[regime[pos]]
            regime_probs = cols["regime_probabilities"]
            if regime_probs is not None:
                kwargs["regime_probabilities"] = dict(
                    zip(self.regime_names, regime_probs[pos], strict=True)
                )
        for key in ("sl_mult", "tp_mult", "sl", "tp"):
            column = cols[key]
            if column is not None:
                kwargs[key] = _opt(column[pos])
        return Prediction(**kwargs)

    def to_frame(self) -> pd.DataFrame:
        """One column per scalar field (probabilities as ``p_down`` / ``p_neutral`` / ``p_up``)."""
        data: dict[str, Any] = {"valid": self.valid}
        if self.signal_value is not None:
            data["signal_value"] = self.signal_value
        if self.probabilities is not None:
            for j, name in enumerate(SIGNAL_NAMES):
                data[f"p_{name}"] = self.probabilities[:, j]
        if self.confidence is not None:
            data["confidence"] = self.confidence
        if self.volatility is not None:
            data["volatility"] = self.volatility
        if self.regime is not None:
            data["regime"] = pd.Categorical.from_codes(
                self.regime.astype(np.int64), categories=pd.Index(list(self.regime_names))
            )
        for key in ("sl_mult", "tp_mult", "sl", "tp"):
            column = getattr(self, key)
            if column is not None:
                data[key] = column
        return pd.DataFrame(data, index=self.index)


@runtime_checkable
class Predictor(Protocol):
    """The port the trading workflow asks for predictions (step c of the cycle).

    ``bars`` is an OHLCV frame (the data layer's contract), oldest first; the prediction is for
    its LAST bar and depends on no later bar.
    """

    def predict(self, bars: pd.DataFrame) -> Prediction:
        """The prediction for the last bar of ``bars``."""
        ...

    def predict_batch(self, bars: pd.DataFrame) -> PredictionBatch:
        """Predictions for every bar of ``bars`` (row ``t`` uses bars ``0..t`` only)."""
        ...
