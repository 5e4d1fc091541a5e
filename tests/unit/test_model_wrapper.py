"""MorningstarModel: predict / predict_batch agree, no look-ahead, save / load round trip, errors.

Needs PyTorch (the ``ml`` extra): skipped with the reason outside CI, a failure in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from morningstar.config import HeadsSpec, NetworkSpec, TrainSpec
from morningstar.core.prediction import Predictor
from morningstar.errors import DataFormatError, DataValidationError, UserInputError
from morningstar.model._torch import torch_available
from morningstar.model.features import FeatureSpec
from morningstar.model.labels import LabelSpec
from tests.conftest import need
from tests.fakes.exchange_server import make_bars

FEATURES = FeatureSpec(seq_len=16)
LABELS = LabelSpec(horizon=8, vol_window=24)


@pytest.fixture(autouse=True)
def torch_needed() -> None:
    need(torch_available(), "PyTorch is not installed: pip install 'morningstar[ml]'")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars(2200, "1h", seed=21)


def train(bars: pd.DataFrame, heads: HeadsSpec | None = None) -> Any:
    from morningstar.model.training import train_model
    from morningstar.model.wrapper import MorningstarModel

    result = train_model(
        bars,
        features=FEATURES,
        labels=LABELS,
        network=NetworkSpec(conv_channels=8, hidden=8, heads=heads or HeadsSpec()),
        training=TrainSpec(epochs=2, batch_size=128, torch_threads=1, device="cpu"),
    )
    return MorningstarModel.from_training(result)


@pytest.fixture(scope="module")
def model(bars: pd.DataFrame) -> Any:
    if not torch_available():
        pytest.skip("PyTorch is not installed")
    return train(bars)


@pytest.fixture(scope="module")
def saved(model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model.save(tmp_path_factory.mktemp("models") / "tiny-v1", source={"kind": "test"})  # type: ignore[no-any-return]


def test_predict_returns_every_active_head(model: Any, bars: pd.DataFrame) -> None:
    out = model.predict(bars)
    assert set(out) == {"signal", "signal_value", "confidence", "probabilities", "volatility",
                        "regime", "regime_probabilities", "sl_mult", "tp_mult", "sl", "tp"}  # fmt: skip
    probs = out["probabilities"]
    assert list(probs) == ["down", "neutral", "up"]
    assert sum(probs.values()) == pytest.approx(1.0)
    assert out["confidence"] == max(probs.values())
    assert out["signal"] == max(probs, key=probs.get)
    assert out["signal_value"] == {"down": -1, "neutral": 0, "up": 1}[out["signal"]]
    assert out["volatility"] > 0 and out["sl_mult"] > 0 and out["tp_mult"] > 0
    close = float(bars["close"].iloc[-1])
    direction = -1 if out["signal"] == "down" else 1
    assert (out["sl"] - close) * direction < 0 < (out["tp"] - close) * direction
    assert sum(out["regime_probabilities"].values()) == pytest.approx(1.0)
    json.dumps(out)  # JSON-friendly


def test_batch_equals_per_bar_and_sees_no_future(model: Any, bars: pd.DataFrame) -> None:
    batch = model.predict_batch(bars)
    assert len(batch) == len(bars) and batch.valid.sum() > 1500
    assert not batch.valid[: FEATURES.seq_len].any()  # warm-up rows hold no prediction
    assert np.isnan(batch.probabilities[~batch.valid]).all()
    for t in (len(bars) - 1, 1800, 1000, int(np.flatnonzero(batch.valid)[0])):
        single = model.prediction(bars.iloc[: t + 1])  # bars after t are not even given
        row = batch.row(t)
        assert single.signal == row.signal and single.regime == row.regime
        for key in ("confidence", "volatility", "sl_mult", "tp_mult", "sl", "tp"):
            assert getattr(single, key) == pytest.approx(getattr(row, key), rel=1e-5), (t, key)
        for name, p in single.probabilities.items():
            assert p == pytest.approx(row.probabilities[name], abs=1e-6)
    # changing every bar after t leaves the predictions up to t unchanged
    t = 1500
    changed = bars.copy()
    other = make_bars(len(bars), "1h", seed=99).to_numpy()  # another future after t
    scale = bars["close"].iloc[t] / other[t, 3]
    changed.iloc[t + 1 :, :4] = other[t + 1 :, :4] * scale
    changed.iloc[t + 1 :, 4] = other[t + 1 :, 4]
    again = model.predict_batch(changed)
    np.testing.assert_allclose(
        again.probabilities[: t + 1], batch.probabilities[: t + 1], atol=1e-6
    )
    np.testing.assert_allclose(again.volatility[: t + 1], batch.volatility[: t + 1], rtol=1e-6)
    assert not np.allclose(again.volatility[t + 200 :], batch.volatility[t + 200 :], rtol=1e-3)


def test_save_load_round_trip_gives_identical_predictions(
    model: Any, saved: Path, bars: pd.DataFrame
) -> None:
    from morningstar.model.wrapper import MorningstarModel

    loaded = MorningstarModel.load(saved, features=FEATURES)
    a, b = model.predict_batch(bars), loaded.predict_batch(bars)
    for name in ("probabilities", "volatility", "regime_probabilities", "sl", "tp"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert model.predict(bars) == loaded.predict(bars)
    manifest = json.loads((saved / "model.json").read_text())
    assert manifest["format_version"] == 1 and manifest["source"] == {"kind": "test"}
    assert set(manifest["libraries"]) >= {"morningstar", "torch", "numpy"}
    assert manifest["data"]["n_bars"] == len(bars) and len(manifest["data"]["sha256"]) == 64
    assert set(manifest["metrics"]["test"]) == {"signal", "volatility", "regime", "sltp"}
    assert loaded.metrics["test"]["signal"]["baseline"]["name"].startswith("class priors")


def test_inactive_heads_give_no_keys(bars: pd.DataFrame) -> None:
    only = train(bars, HeadsSpec(signal=False, regime=False))
    out = only.predict(bars)
    assert set(out) == {"volatility", "sl_mult", "tp_mult", "sl", "tp"}
    close = float(bars["close"].iloc[-1])
    assert out["sl"] < close < out["tp"]  # no signal: levels for a long
    batch = only.predict_batch(bars)
    assert batch.signal_value is None and batch.regime is None


def test_predictor_port(model: Any, bars: pd.DataFrame) -> None:
    from morningstar.model.predictors import ModelPredictor

    port = ModelPredictor(model)
    assert isinstance(port, Predictor)
    assert port.predict(bars).as_dict() == model.predict(bars)
    row = port.predict_batch(bars).row(-1).as_dict()  # batch path: equal to float32 rounding
    single = model.predict(bars)
    assert row["signal"] == single["signal"] and row["regime"] == single["regime"]
    assert row["sl"] == pytest.approx(single["sl"], rel=1e-6)


def test_bad_inputs_fail_with_one_line(model: Any, bars: pd.DataFrame) -> None:
    with pytest.raises(UserInputError, match="too few"):
        model.predict(bars.iloc[:20])
    with pytest.raises(DataFormatError):
        model.predict(bars.drop(columns=["volume"]))
    with pytest.raises(DataFormatError):
        model.predict(bars["close"])
    nan_last = bars.copy()
    nan_last.iloc[-3, 3] = np.nan
    with pytest.raises(DataValidationError, match="missing values") as info:
        model.predict(nan_last)
    assert "\n" not in str(info.value)
    batch = model.predict_batch(nan_last)  # batch: those rows simply have no prediction
    assert not batch.valid[-3:].any() and batch.valid[-30]


def test_missing_and_incompatible_artifacts(saved: Path, tmp_path: Path) -> None:
    import shutil

    from morningstar.model.artifact import next_version_dir, write_artifact
    from morningstar.model.wrapper import MorningstarModel

    with pytest.raises(UserInputError, match="model directory not found"):
        MorningstarModel.load(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    (broken / "weights.pt").unlink()
    with pytest.raises(UserInputError, match=r"weights\.pt is missing"):
        MorningstarModel.load(broken)
    with pytest.raises(UserInputError, match=r"feature spec mismatch.*seq_len"):
        MorningstarModel.load(saved, features=FeatureSpec(seq_len=32))

    def edited(name: str, change: Any) -> Path:
        folder = tmp_path / name
        shutil.copytree(saved, folder)
        manifest = json.loads((folder / "model.json").read_text())
        change(manifest)
        (folder / "model.json").write_text(json.dumps(manifest))
        return folder

    newer = edited("newer", lambda m: m.update(format_version=99))
    with pytest.raises(UserInputError, match="format version 99"):
        MorningstarModel.load(newer)
    wider = edited("wider", lambda m: m["network"].update(hidden=16))
    with pytest.raises(UserInputError, match="weights do not fit the network") as info:
        MorningstarModel.load(wider)
    assert "\n" not in str(info.value)
    with pytest.raises(UserInputError, match="already saved"):
        write_artifact(saved, {}, {})
    assert next_version_dir(saved.parent, "tiny") == saved.parent / "tiny-v2"
    assert next_version_dir(tmp_path / "empty", "x").name == "x-v1"


def test_everything_but_training_works_without_torch(tmp_path: Path) -> None:
    code = """
import sys
sys.modules["torch"] = None  # import torch now raises ImportError
import morningstar.config, morningstar.model.features, morningstar.model.labels
import morningstar.model.wrapper, morningstar.model.training, morningstar.model.predictors
from morningstar.config import load_settings
from morningstar.model.predictors import StrategySignalPredictor
from morningstar.model.wrapper import MorningstarModel
from morningstar.errors import ConfigError
from tests.fakes.exchange_server import make_bars
load_settings(use_default_path=False)
print(StrategySignalPredictor("ema_cross").predict(make_bars(300, "1h")).signal)
try:
    MorningstarModel.load(sys.argv[1])
except ConfigError as exc:
    print("ERR", exc)
"""
    repo = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", code, str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=repo, timeout=120,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] in {"down", "neutral", "up"}
    assert lines[1].startswith("ERR PyTorch is not installed") and "pip install" in lines[1]


# ---------------------------------------------------------------- review findings (PR 5 follow-up)

SIMPLE = FeatureSpec(features=("ret_1", "range_pct", "body", "hour_sin"), seq_len=16)


def untrained(features: FeatureSpec, labels: LabelSpec, bars: pd.DataFrame, **kw: Any) -> Any:
    """A MorningstarModel with random weights (no training): enough for wrapper mechanics."""
    import torch

    from morningstar.model.features import FeatureScaler, compute_features
    from morningstar.model.network import EnhancedHybridModel
    from morningstar.model.wrapper import MorningstarModel

    torch.manual_seed(0)
    spec = NetworkSpec(conv_channels=8, hidden=8)
    network = EnhancedHybridModel(len(features.names), spec)
    raw = compute_features(bars, features, timeframe="1h", alt=kw.get("alt"))
    scaler = FeatureScaler.fit(raw[:800], kind=features.scaler, clip=features.clip)
    return MorningstarModel(network, features=features, labels=labels, network_spec=spec,
                            scaler=scaler, calibration={}, timeframe="1h")  # fmt: skip


def gappy_bars() -> pd.DataFrame:
    """1h bars: 800 regular, then every other bar missing (1650 bars: 2h steps are the most
    common overall, 1h steps in any prefix ending before bar ~1600, the training window's too)."""
    full = make_bars(2500, "1h", seed=31)
    return pd.concat([full.iloc[:800], full.iloc[800::2]])


def alt_frame(bars: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """A value published every 20 minutes (so 3 rows fall between a 1h bar's close and 1h later)."""
    stamps = pd.date_range(bars.index[0], bars.index[-1] + pd.Timedelta("2h"), freq="20min")
    stamps = stamps + pd.Timedelta("7min")
    values = np.random.default_rng(seed).normal(0.0, 1.0, len(stamps))
    return pd.DataFrame({"funding": values}, index=stamps)


def test_alt_data_model_joins_with_the_training_timeframe_on_gappy_bars(tmp_path: Path) -> None:
    from morningstar.model.predictors import ModelPredictor
    from morningstar.model.training import train_model
    from morningstar.model.wrapper import MorningstarModel

    bars, alt = gappy_bars(), None
    alt = alt_frame(bars)
    spec = FeatureSpec(features=("ret_1", "range_pct", "body"), alt_columns=("funding",),
                       seq_len=16)  # fmt: skip
    settings: dict[str, Any] = {"features": spec, "labels": LABELS, "alt": alt,
        "network": NetworkSpec(conv_channels=8, hidden=8),
        "training": TrainSpec(epochs=1, batch_size=128, torch_threads=1, device="cpu")}  # fmt: skip
    with pytest.raises(UserInputError, match="no timeframe was given"):
        train_model(bars, **settings)  # inferring it would look at the test window
    result = train_model(bars, timeframe="1h", **settings)
    assert result.timeframe == "1h"
    # without alt data a missing timeframe is inferred from the first training window only
    # (1h there; 2h steps dominate the whole series)
    plain = {**settings, "features": FeatureSpec(features=("ret_1", "body"), seq_len=16)}
    del plain["alt"]
    assert train_model(bars, **plain).timeframe == "1h"
    model = MorningstarModel.from_training(result)
    loaded = MorningstarModel.load(model.save(tmp_path / "alt-v1"))
    assert json.loads((tmp_path / "alt-v1" / "model.json").read_text())["timeframe"] == "1h"
    assert str(loaded.timeframe) == "1h"

    batch = loaded.predict_batch(bars, alt=alt)
    # prefixes ending in the regular part infer 1h, the whole series 2h: the model must use 1h
    for t in (300, 499, 700, len(bars) - 1):
        assert batch.valid[t]
        single = loaded.prediction(bars.iloc[: t + 1], alt=alt)
        row = batch.row(t)
        assert single.signal == row.signal, t
        for name, p in single.probabilities.items():
            assert p == pytest.approx(row.probabilities[name], abs=1e-6), (t, name)
        assert single.sl == pytest.approx(row.sl, rel=1e-6)
    # alt rows published after a bar's close (open + 1h) never reach it
    t = 450
    close_t = bars.index[t] + pd.Timedelta("1h")
    later = alt.copy()
    later.loc[later.index > close_t, "funding"] += 5.0
    again = loaded.predict_batch(bars, alt=later)
    np.testing.assert_allclose(again.probabilities[: t + 1], batch.probabilities[: t + 1],
                               atol=1e-6)  # fmt: skip
    assert not np.allclose(again.probabilities[t + 1 :][again.valid[t + 1 :]],
                           batch.probabilities[t + 1 :][batch.valid[t + 1 :]])  # fmt: skip

    # the predictor port serves it with a frame or a callable, and refuses it without
    with pytest.raises(UserInputError, match="needs alternative data") as info:
        ModelPredictor(loaded)
    assert "\n" not in str(info.value)
    seen: list[int] = []

    def provider(given: pd.DataFrame) -> pd.DataFrame:
        seen.append(len(given))
        return alt[alt.index <= given.index[-1] + pd.Timedelta("1h")]

    for port in (ModelPredictor(loaded, alt=alt), ModelPredictor(loaded, alt=provider)):
        assert port.predict(bars.iloc[:701]).as_dict() == loaded.predict(bars.iloc[:701], alt=alt)
        np.testing.assert_array_equal(port.predict_batch(bars).probabilities, batch.probabilities)
    assert seen == [701, len(bars)]

    # an alt-data artifact without a recorded timeframe (older manifest) is refused
    folder = tmp_path / "old-alt"
    folder.mkdir()
    manifest = json.loads((tmp_path / "alt-v1" / "model.json").read_text())
    del manifest["timeframe"]
    (folder / "model.json").write_text(json.dumps(manifest))
    (folder / "weights.pt").write_bytes((tmp_path / "alt-v1" / "weights.pt").read_bytes())
    with pytest.raises(UserInputError, match="records no bar timeframe"):
        MorningstarModel.load(folder)


def test_rows_without_a_positive_sigma_have_no_prediction_in_either_path() -> None:
    # sigma_t needs 150 returns: windows complete long before (warm-up 1 + 16 bars)
    bars = make_bars(400, "1h", seed=4)
    model = untrained(SIMPLE, LabelSpec(horizon=8, vol_window=150), bars)
    batch = model.predict_batch(bars)
    assert not batch.valid[:150].any() and batch.valid[151:].all()
    vol = batch.volatility[batch.valid]
    assert np.isfinite(vol).all() and (vol > 0).all()
    assert np.isnan(batch.sl[~batch.valid]).all()
    for t in (40, 149):
        with pytest.raises(DataValidationError, match="sigma_t"):
            model.prediction(bars.iloc[: t + 1])
    assert model.prediction(bars.iloc[:200]).sl == pytest.approx(batch.row(199).sl, rel=1e-6)

    # a flat stretch: sigma_t = 0 once vol_window flat returns are in the window
    flat = make_bars(400, "1h", seed=5)
    level = float(flat["close"].iloc[199])
    flat.iloc[200:260, :4] = level
    model = untrained(SIMPLE, LabelSpec(horizon=8, vol_window=24), flat)
    batch = model.predict_batch(flat)
    # returns r_200 .. r_259 are 0: sigma_t = 0 from t = 223 (24 zero returns) to 259
    assert batch.valid[150:223].all() and not batch.valid[223:260].any() and batch.valid[260:].all()
    assert np.isnan(batch.sl[223:260]).all()  # not sl == tp == close
    with pytest.raises(DataValidationError, match="sigma_t is 0") as info:
        model.prediction(flat.iloc[:240])
    assert "\n" not in str(info.value)


def test_any_accepted_bar_layout_gives_the_same_predictions(model: Any, bars: pd.DataFrame) -> None:
    capitalised = bars.rename(columns=str.capitalize)
    with_column = bars.reset_index()  # a 'timestamp' column and a RangeIndex
    assert "timestamp" in with_column.columns
    expected = model.predict_batch(bars)
    for layout in (capitalised, with_column):
        got = model.predict_batch(layout)
        assert got.index.equals(expected.index)  # bar times, not 0..n-1 (1970)
        np.testing.assert_array_equal(got.valid, expected.valid)
        np.testing.assert_array_equal(got.probabilities, expected.probabilities)
        np.testing.assert_array_equal(got.sl, expected.sl)
        assert model.predict(layout) == model.predict(bars)
        assert model.prediction(layout).as_dict() == model.prediction(bars).as_dict()


def test_device_and_batch_size_errors_are_one_line(saved: Path, bars: pd.DataFrame) -> None:
    import torch

    from morningstar.errors import ConfigError
    from morningstar.model.wrapper import MorningstarModel

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available") as info:
            MorningstarModel.load(saved, device="cuda")
        assert "\n" not in str(info.value)
    assert MorningstarModel.load(saved, device="auto").device in {"cpu", "cuda"}
    with pytest.raises(ConfigError, match="unknown device"):
        MorningstarModel.load(saved, device="gpu")
    loaded = MorningstarModel.load(saved)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserInputError, match="batch_size") as err:
            loaded.predict_batch(bars, batch_size=bad)
        assert "\n" not in str(err.value)
    small = loaded.predict_batch(bars, batch_size=7)
    np.testing.assert_allclose(small.probabilities, loaded.predict_batch(bars).probabilities,
                               atol=1e-6)  # fmt: skip


def test_resaving_a_loaded_model_writes_fresh_creation_and_library_versions(
    saved: Path, tmp_path: Path
) -> None:
    import shutil

    from morningstar.model.artifact import library_versions
    from morningstar.model.wrapper import MorningstarModel

    old = tmp_path / "old"
    shutil.copytree(saved, old)
    manifest = json.loads((old / "model.json").read_text())
    manifest.update(created="2000-01-01T00:00:00+00:00", libraries={"morningstar": "0.0.1"})
    (old / "model.json").write_text(json.dumps(manifest))
    again = MorningstarModel.load(old).save(tmp_path / "again")
    fresh = json.loads((again / "model.json").read_text())
    assert fresh["created"] != "2000-01-01T00:00:00+00:00"
    assert fresh["libraries"] == library_versions()
    assert fresh["format_version"] == 1 and fresh["data"] == manifest["data"]
    assert fresh["timeframe"] == manifest["timeframe"] == "1h"
