"""Training on real bars (BTC/USDT 5m from ../shared/data): the loss goes down, the artifact
records the data and every head is scored against its baseline. A few seconds on 2 cores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from morningstar.config import NetworkSpec, TrainSpec
from morningstar.model._torch import torch_available
from tests.conftest import need

pytestmark = pytest.mark.shared_data


def test_training_loss_decreases_on_real_btc(shared_data: Path, tmp_path: Path) -> None:
    need(torch_available(), "PyTorch is not installed: pip install 'morningstar[ml]'")
    from morningstar.data.csv_import import read_ohlcv_csv
    from morningstar.model.features import FeatureSpec
    from morningstar.model.labels import LabelSpec
    from morningstar.model.training import bars_sha256, train_model
    from morningstar.model.wrapper import MorningstarModel

    bars = read_ohlcv_csv(shared_data / "genetrader" / "BINANCE_BTC_USDT-5m.csv").frame
    bars = bars.iloc[-6000:]
    result = train_model(
        bars,
        features=FeatureSpec(seq_len=32),
        labels=LabelSpec(horizon=12, vol_window=48),
        network=NetworkSpec(conv_channels=16, hidden=16),
        training=TrainSpec(
            epochs=4, patience=10, batch_size=128, lr=3e-3, torch_threads=1, device="cpu"
        ),
    )
    losses = [h.train_loss for h in result.history]
    assert len(losses) == 4
    assert losses[-1] < losses[0], losses
    assert all(np.isfinite(losses))
    test = result.metrics["test"]
    assert set(test) == {"signal", "volatility", "regime", "sltp"}
    # on real 5m bars volatility clusters: the volatility head must beat "last realised vol"
    assert test["volatility"]["model"]["qlike"] < test["volatility"]["baseline"]["qlike"]
    model = MorningstarModel.from_training(result)
    path = model.save(tmp_path / "btc-v1", source={"kind": "csv"})
    loaded = MorningstarModel.load(path)
    assert loaded.manifest["data"]["sha256"] == bars_sha256(bars)
    assert loaded.manifest["data"]["first_bar"] == str(bars.index[0])
    assert loaded.predict(bars) == model.predict(bars)
