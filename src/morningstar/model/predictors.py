"""Predictors the workflow can run with: the trained model, or any strategy of the engine.

Both implement :class:`morningstar.core.prediction.Predictor` (``predict(bars) -> Prediction``
for the last bar, ``predict_batch(bars) -> PredictionBatch`` for every bar).

:class:`StrategySignalPredictor` maps a strategy's signals (computed on each bar's close) to a
prediction, bar by bar:

=====================  ==========================================================================
field                  value
=====================  ==========================================================================
signal_value           ``+1`` on a long entry, ``-1`` on a short entry; with ``exits=True``
                       (default) also ``-1`` on a long exit and ``+1`` on a short exit (an exit
                       says "no longer bullish / bearish"); entries win over exits on the same
                       bar; ``0`` otherwise
confidence             ``1.0`` (a rule has no probability); probabilities one-hot
volatility             realised volatility of the last ``vol_window`` log returns (known at t)
sl / tp                from the strategy's ``stop_distance`` / ``target_distance`` (price
                       distances) when it defines them, in the signal's direction from the close
                       (long when the signal is 0); ``sl_mult`` / ``tp_mult`` the same distances
                       in multiples of ``sigma_t · close``
regime                 not predicted (None)
=====================  ==========================================================================

Strategy signals are point in time (a strategy never sees later bars), so the predictor is too.
This module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from morningstar.core.indicators import rolling_volatility
from morningstar.core.prediction import Prediction, PredictionBatch
from morningstar.data.ohlcv import to_contract
from morningstar.errors import UserInputError
from morningstar.strategies import Bars, Strategy, resolve_strategy

__all__ = ["AltSource", "ModelPredictor", "StrategySignalPredictor"]

#: Alternative data for a model that uses it: a frame (index = publication times, UTC), or a
#: callable given the bars of the call and returning such a frame (e.g. a store query up to now).
AltSource: TypeAlias = pd.DataFrame | Callable[[pd.DataFrame], pd.DataFrame]


class StrategySignalPredictor:
    """Any strategy of the engine as a predictor (see the module docstring for the mapping).

    Args:
        strategy: a strategy name (``"ema_cross"``), a ``file.py:Class`` spec, a Strategy class
            or instance.
        params: strategy parameters (checked by the strategy; defaults for the rest).
        vol_window: log returns in the realised volatility (the ``volatility`` field).
        exits: map exits to opposite signals (see the table above).

    Raises:
        StrategyError: unknown strategy or bad parameters.
    """

    def __init__(
        self,
        strategy: str | type[Strategy] | Strategy,
        params: Mapping[str, object] | None = None,
        *,
        vol_window: int = 48,
        exits: bool = True,
    ) -> None:
        self.strategy: Strategy = resolve_strategy(strategy)
        self.params = type(self.strategy).resolve(params)
        if vol_window < 2:
            raise UserInputError(f"vol_window must be >= 2, got {vol_window}", where="vol_window")
        self.vol_window = vol_window
        self.exits = exits

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"StrategySignalPredictor({self.strategy.name}({args}))"

    def predict_batch(self, bars: pd.DataFrame) -> PredictionBatch:
        """Predictions for every bar (row ``t`` from bars ``0..t`` only)."""
        data = to_contract(bars, where="bars")
        arrays: dict[str, Any] = {
            c: data[c].to_numpy(dtype=np.float64)
            for c in ("open", "high", "low", "close", "volume")
        }
        signals = self.strategy.signals(Bars(**arrays), self.params)
        n = len(data)
        up = np.asarray(signals.long_entries, dtype=bool).copy()
        down = (
            np.zeros(n, dtype=bool)
            if signals.short_entries is None
            else np.asarray(signals.short_entries, dtype=bool).copy()
        )
        if self.exits:
            entry = up | down
            down |= np.asarray(signals.long_exits, dtype=bool) & ~entry
            if signals.short_exits is not None:
                up |= np.asarray(signals.short_exits, dtype=bool) & ~entry
        value = np.where(up & ~down, 1, np.where(down & ~up, -1, 0)).astype(np.int8)
        probabilities = np.zeros((n, 3))
        probabilities[np.arange(n), value.astype(np.int64) + 1] = 1.0
        close = arrays["close"]
        sigma = np.asarray(rolling_volatility(close, self.vol_window), dtype=np.float64)
        kwargs: dict[str, Any] = {}
        direction = np.where(value < 0, -1.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            if signals.stop_distance is not None:
                stop = np.asarray(signals.stop_distance, dtype=np.float64)
                kwargs["sl"] = close - direction * stop
                kwargs["sl_mult"] = np.where(sigma > 0, stop / (sigma * close), np.nan)
            if signals.target_distance is not None:
                target = np.asarray(signals.target_distance, dtype=np.float64)
                kwargs["tp"] = close + direction * target
                kwargs["tp_mult"] = np.where(sigma > 0, target / (sigma * close), np.nan)
        return PredictionBatch(
            index=pd.DatetimeIndex(data.index),
            valid=np.ones(n, dtype=bool),
            signal_value=value,
            probabilities=probabilities,
            confidence=np.ones(n),
            volatility=sigma,
            source=f"strategy:{self.strategy.name}",
            **kwargs,
        )

    def predict(self, bars: pd.DataFrame) -> Prediction:
        """The prediction for the last bar of ``bars``.

        Raises:
            UserInputError: no bars.
        """
        if len(bars) == 0:
            raise UserInputError("no bars", where="StrategySignalPredictor.predict")
        return self.predict_batch(bars).row(-1)


class ModelPredictor:
    """The trained :class:`~morningstar.model.wrapper.MorningstarModel` as a predictor.

    Args:
        model: the model.
        alt: alternative data, required when the model's feature spec has ``alt_columns``: a
            frame, or a callable ``alt(bars) -> frame`` called on every ``predict`` /
            ``predict_batch`` with the bars given. Either way the index holds the times each row
            became known; the model joins them as of each bar's close (with the training
            timeframe), so rows published later never reach a bar.

    Raises:
        UserInputError: the model needs alternative data and ``alt`` is None, or ``alt`` is
            neither a frame nor a callable.
    """

    def __init__(self, model: Any, *, alt: AltSource | None = None) -> None:
        needed = tuple(getattr(getattr(model, "features", None), "alt_columns", ()) or ())
        if needed and alt is None:
            raise UserInputError(
                f"the model needs alternative data ({', '.join(needed)})",
                where="ModelPredictor",
                hint="pass alt=<frame indexed by publication time> or alt=<callable(bars) -> "
                "frame>",
            )
        if alt is not None and not (isinstance(alt, pd.DataFrame) or callable(alt)):
            raise UserInputError(
                f"alt must be a DataFrame or a callable, got {type(alt).__name__}",
                where="ModelPredictor",
            )
        self.model = model
        self.alt = alt

    def __repr__(self) -> str:
        return f"ModelPredictor({self.model!r})"

    def _alt(self, bars: pd.DataFrame) -> pd.DataFrame | None:
        if self.alt is None or isinstance(self.alt, pd.DataFrame):
            return self.alt
        return self.alt(bars)

    def predict(self, bars: pd.DataFrame) -> Prediction:
        """The model's prediction for the last bar (every active head)."""
        return self.model.prediction(bars, alt=self._alt(bars))  # type: ignore[no-any-return]

    def predict_batch(self, bars: pd.DataFrame) -> PredictionBatch:
        """The model's predictions for every bar."""
        return self.model.predict_batch(bars, alt=self._alt(bars))  # type: ignore[no-any-return]
