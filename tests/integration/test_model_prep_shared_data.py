"""Model data preparation on real bars: Binance BTC/USDT 5m (2024, ~72k bars, no gaps).

Class balance, where labels are unknown, the scaler on a training window, live slices against the
full history, and point in time on real prices. Runtimes are printed (``pytest -s``), never
asserted: speed lives in ``benchmarks/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from morningstar.data.ohlcv import to_contract
from morningstar.model.features import (
    FeatureScaler,
    FeatureSpec,
    clean_bars,
    compute_features,
    prepare_inputs,
)
from morningstar.model.labels import REGIME_CLASSES, SIGNAL_CLASSES, LabelSpec, make_labels

pytestmark = pytest.mark.shared_data

FILE = "genetrader/BINANCE_BTC_USDT-5m.csv"


@pytest.fixture(scope="module")
def btc(shared_data: Path) -> pd.DataFrame:
    path = shared_data / FILE
    assert path.is_file(), f"{path} is missing from the shared data folder"
    return clean_bars(to_contract(pd.read_csv(path), where=FILE), timeframe="5m", where=FILE)


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{label}: {time.perf_counter() - start:.3f} s")
    return out


def test_labels_and_inputs_on_the_full_file(btc: pd.DataFrame) -> None:
    n = len(btc)
    assert n > 70_000
    spec, label_spec = FeatureSpec(), LabelSpec()
    x = timed(f"compute_features ({n} bars)", compute_features, btc, spec, timeframe="5m")
    train_end = int(0.6 * n)
    scaler = FeatureScaler.fit(x[:train_end], kind=spec.scaler, clip=spec.clip)
    prepared = timed(f"prepare_inputs ({n} bars)", prepare_inputs, btc, spec, scaler)
    labels = timed(f"make_labels ({n} bars)", make_labels, btc, label_spec)

    # no NaN in the features after the warm-up (the file has no gap)
    assert not np.isnan(x[spec.warmup :]).any()
    assert np.isnan(x[: spec.warmup]).any(axis=1).all()
    # every sample after the warm-up is valid; scaled values are rarely clipped
    first = spec.warmup + spec.seq_len - 1
    assert prepared.positions[prepared.valid].tolist() == list(range(first, n))
    clipped = np.mean(np.abs(scaler.transform(x[spec.warmup :])) >= spec.clip)
    assert clipped < 0.01

    # labels: unknown exactly during sigma's warm-up and for the last horizon bars
    h, w = label_spec.horizon, label_spec.vol_window
    assert not labels.mask[:w].any() and not labels.mask[n - h :].any()
    assert labels.mask[w : n - h].all()
    for name in ("volatility", "sl", "tp", "forward_return"):
        values = getattr(labels, name)
        assert np.isfinite(values[w : n - h]).all(), name
        assert np.isnan(values[n - h :]).all(), name
    assert (labels.signal[n - h :] == -1).all() and (labels.regime[n - h :] == -1).all()

    balance = labels.balance()
    print("class balance:", {k: {c: round(v, 3) for c, v in b.items()} for k, b in balance.items()})
    for name, classes in (("signal", SIGNAL_CLASSES), ("regime", REGIME_CLASSES)):
        shares = balance[name]
        assert list(shares) == list(classes)
        assert max(shares.values()) < 0.8, (name, shares)
        assert min(shares.values()) > 0.05, (name, shares)
    # up and down are about as frequent on a year of BTC
    assert 0.5 < balance["signal"]["up"] / balance["signal"]["down"] < 2.0
    # excursions are in units of sigma_t * close: a few sigmas over 24 bars
    assert 1.0 < float(np.median(labels.tp[labels.mask])) < 10.0
    assert 1.0 < float(np.median(labels.sl[labels.mask])) < 10.0


def test_live_slices_match_the_full_history(btc: pd.DataFrame) -> None:
    spec = FeatureSpec()
    x = compute_features(btc, spec)
    scaler = FeatureScaler.fit(x[:20_000], kind=spec.scaler, clip=spec.clip)
    full = prepare_inputs(btc, spec, scaler)
    for end in (spec.min_history, 30_000, len(btc)):
        live = prepare_inputs(btc.iloc[end - spec.min_history : end], spec, scaler)
        sample = end - spec.seq_len  # the full-history sample ending at row end - 1
        assert full.positions[sample] == end - 1 and live.index[-1] == full.index[sample]
        np.testing.assert_allclose(live.sequence[-1], full.sequence[sample], rtol=0, atol=1e-6)


def test_point_in_time_on_real_prices(btc: pd.DataFrame) -> None:
    spec = FeatureSpec(seq_len=32)
    bars = btc.iloc[:5000]
    t = 3000
    changed = bars.copy()
    changed.iloc[t + 1 :, :4] = changed.iloc[t + 1 :, :4].to_numpy()[::-1]  # another future
    a, b = compute_features(bars, spec), compute_features(changed, spec)
    assert np.array_equal(a[: t + 1], b[: t + 1], equal_nan=True)
    assert not np.array_equal(a[t + 1 :], b[t + 1 :], equal_nan=True)
    la, lb = make_labels(bars), make_labels(changed)
    horizon = LabelSpec().horizon
    assert np.array_equal(la.signal[: t + 1 - horizon], lb.signal[: t + 1 - horizon])
