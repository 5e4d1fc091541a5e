"""ScriptedPredictor: a fake of the workflow's predictor port that answers from a script."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from morningstar.core.prediction import SIGNAL_NAMES, Prediction, PredictionBatch

__all__ = ["ScriptedPredictor"]


class ScriptedPredictor:
    """Answers signal ``script[t % len(script)]`` (-1 / 0 / +1) at bar ``t``, confidence 1.

    ``calls`` counts :meth:`predict` calls (for tests of the workflow's cycle).
    """

    def __init__(self, script: Sequence[int] = (0,), volatility: float = 0.01) -> None:
        self.script = [int(s) for s in script]
        self.volatility = volatility
        self.calls = 0

    def predict_batch(self, bars: pd.DataFrame) -> PredictionBatch:
        n = len(bars)
        values = np.array([self.script[t % len(self.script)] for t in range(n)], dtype=np.int8)
        probs = np.zeros((n, len(SIGNAL_NAMES)))
        probs[np.arange(n), values.astype(np.int64) + 1] = 1.0
        return PredictionBatch(
            index=pd.DatetimeIndex(bars.index),
            valid=np.ones(n, dtype=bool),
            signal_value=values,
            probabilities=probs,
            confidence=np.ones(n),
            volatility=np.full(n, self.volatility),
            source="scripted",
        )

    def predict(self, bars: pd.DataFrame) -> Prediction:
        self.calls += 1
        return self.predict_batch(bars).row(-1)
