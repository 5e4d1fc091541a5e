"""The predictor port (core.prediction) and the strategy-signal predictor (no torch needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from morningstar.core.prediction import (
    SIGNAL_NAMES,
    Prediction,
    PredictionBatch,
    Predictor,
    signal_name,
)
from morningstar.errors import StrategyError
from morningstar.model.predictors import ModelPredictor, StrategySignalPredictor
from morningstar.strategies import Bars, load_strategy
from tests.fakes.exchange_server import make_bars
from tests.fakes.predictor import ScriptedPredictor


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars(1500, "1h", seed=3)


def test_prediction_as_dict_keeps_active_heads_only() -> None:
    p = Prediction(
        signal="up", confidence=0.7, probabilities={"down": 0.1, "neutral": 0.2, "up": 0.7}
    )
    assert p.signal_value == 1
    assert p.as_dict() == {
        "signal": "up",
        "signal_value": 1,
        "confidence": 0.7,
        "probabilities": {"down": 0.1, "neutral": 0.2, "up": 0.7},
    }
    only_vol = Prediction(volatility=0.002, sl_mult=1.5, tp_mult=2.0, sl=98.0, tp=103.0)
    assert set(only_vol.as_dict()) == {"volatility", "sl_mult", "tp_mult", "sl", "tp"}
    assert [signal_name(v) for v in (-1, 0, 1)] == list(SIGNAL_NAMES)
    with pytest.raises(ValueError, match="signal must be one of"):
        Prediction(signal="buy")
    with pytest.raises(ValueError, match="confidence"):
        Prediction(signal="up", confidence=1.5)
    with pytest.raises(ValueError, match="-1, 0 or 1"):
        signal_name(2)


def test_batch_row_and_frame() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC", name="timestamp")
    batch = PredictionBatch(
        index=index,
        valid=np.array([False, True, True]),
        signal_value=np.array([0, -1, 1], dtype=np.int8),
        probabilities=np.array([[np.nan] * 3, [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]]),
        confidence=np.array([np.nan, 0.6, 0.7]),
        regime=np.array([-1, 0, 1], dtype=np.int8),
        regime_names=("calm", "wild"),
        regime_probabilities=np.array([[np.nan, np.nan], [0.9, 0.1], [0.2, 0.8]]),
    )
    row = batch.row(-1)
    assert row.signal == "up" and row.regime == "wild" and row.timestamp == index[2]
    assert row.regime_probabilities == {"calm": 0.2, "wild": 0.8}
    assert batch.row(1).signal == "down"
    with pytest.raises(ValueError, match="no prediction at bar 0"):
        batch.row(0)
    with pytest.raises(IndexError):
        batch.row(3)
    frame = batch.to_frame()
    assert list(frame.columns) == ["valid", "signal_value", "p_down", "p_neutral", "p_up",
                                   "confidence", "regime"]  # fmt: skip
    assert frame["regime"].isna().tolist() == [True, False, False]


def test_strategy_predictor_maps_entries_and_exits(bars: pd.DataFrame) -> None:
    predictor = StrategySignalPredictor("ema_cross", {"fast": 5, "slow": 20})
    assert isinstance(predictor, Predictor)
    batch = predictor.predict_batch(bars)
    cls = load_strategy("ema_cross")
    arrays = {c: bars[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    sig = cls().signals(Bars(**arrays), cls.resolve({"fast": 5, "slow": 20}))
    assert batch.signal_value is not None and batch.probabilities is not None
    expected = np.where(sig.long_entries, 1, np.where(sig.long_exits, -1, 0))
    np.testing.assert_array_equal(batch.signal_value, expected)
    assert sig.long_entries.sum() > 3 and sig.long_exits.sum() > 3
    np.testing.assert_array_equal(batch.probabilities.argmax(axis=1) - 1, expected)
    assert batch.sl is None and batch.regime is None  # ema_cross has no stop; no regime
    no_exits = StrategySignalPredictor("ema_cross", {"fast": 5, "slow": 20}, exits=False)
    assert no_exits.predict_batch(bars).signal_value.min() == 0  # type: ignore[union-attr]
    last = predictor.predict(bars)
    assert last.as_dict() == batch.row(-1).as_dict()
    assert set(last.as_dict()) == {"signal", "signal_value", "confidence", "probabilities",
                                   "volatility"}  # fmt: skip
    with pytest.raises(StrategyError, match="did you mean"):
        StrategySignalPredictor("ema_crosss")


def test_strategy_predictor_levels_and_point_in_time(bars: pd.DataFrame) -> None:
    predictor = StrategySignalPredictor("bollinger_atr")  # exits map to -1
    batch = predictor.predict_batch(bars)
    assert batch.sl is not None and batch.sl_mult is not None
    assert batch.tp is None  # bollinger_atr defines a stop, no target
    close = bars["close"].to_numpy()
    value = batch.signal_value
    assert value is not None
    longs, shorts = value == 1, value == -1
    assert longs.any() and shorts.any()
    ok = np.isfinite(batch.sl) & np.isfinite(batch.sl_mult)
    assert np.all(batch.sl[longs & ok] < close[longs & ok])
    assert np.all(batch.sl[shorts & ok] > close[shorts & ok])
    sigma_close = batch.volatility * close  # type: ignore[operator]
    np.testing.assert_allclose(np.abs(batch.sl - close)[ok], (batch.sl_mult * sigma_close)[ok])
    # bars after t never change the prediction at t
    t = 900
    changed = bars.copy()
    changed.iloc[t + 1 :, :4] *= 1.3
    again = predictor.predict_batch(changed)
    for name in ("signal_value", "volatility", "sl"):
        np.testing.assert_array_equal(getattr(again, name)[: t + 1], getattr(batch, name)[: t + 1])
    assert predictor.predict(bars.iloc[: t + 1]).as_dict() == batch.row(t).as_dict()


def test_scripted_fake_and_model_predictor_follow_the_port(bars: pd.DataFrame) -> None:
    fake = ScriptedPredictor([1, 0, -1])
    assert isinstance(fake, Predictor)
    assert fake.predict(bars.iloc[:3]).signal == "down" and fake.calls == 1
    assert isinstance(ModelPredictor(object()), Predictor)


def test_batch_row_reads_every_column_of_its_bar() -> None:
    """``row(i)`` (read from the columns as lists, cached) equals the arrays at ``i``."""
    n = 6
    index = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), n)
    regime_probs = rng.dirichlet(np.ones(2), n)
    vol = rng.uniform(0.001, 0.01, n)
    vol[2] = np.nan
    batch = PredictionBatch(
        index=index, valid=np.array([False, True, True, True, True, True]),
        signal_value=np.array([0, 1, -1, 0, 1, -1], dtype=np.int8), probabilities=probs,
        confidence=probs.max(axis=1), volatility=vol,
        regime=np.array([-1, 0, 1, -1, 1, 0], dtype=np.int8), regime_probabilities=regime_probs,
        regime_names=("calm", "trend"), sl_mult=np.full(n, 1.5), tp_mult=np.full(n, np.nan),
        sl=np.linspace(90.0, 95.0, n), tp=np.linspace(105.0, 110.0, n), source="test",
    )  # fmt: skip
    with pytest.raises(ValueError):
        batch.row(0)
    for i in range(1, n):
        p = batch.row(i)
        assert p.timestamp == index[i] and p.timestamp.tz is not None and p.source == "test"
        assert p.signal == signal_name(int(batch.signal_value[i]))  # type: ignore[index]
        assert isinstance(p.signal_value, int) and isinstance(p.confidence, float)
        assert p.confidence == probs[i].max()
        assert p.probabilities == dict(zip(SIGNAL_NAMES, probs[i].tolist(), strict=True))
        assert p.volatility == (None if i == 2 else vol[i])
        if i == 3:
            assert p.regime is None and p.regime_probabilities is None
        else:
            assert p.regime == ("calm", "trend")[int(batch.regime[i])]  # type: ignore[index]
            assert p.regime_probabilities == {"calm": regime_probs[i, 0],
                                              "trend": regime_probs[i, 1]}  # fmt: skip
        assert (p.sl_mult, p.tp_mult, p.sl, p.tp) == (1.5, None, batch.sl[i], batch.tp[i])  # type: ignore[index]
    assert batch.row(-1) == batch.row(n - 1)
