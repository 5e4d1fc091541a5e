"""MorningstarModel: load a trained artifact, predict every active head for the latest bar or all bars.

::

    model = MorningstarModel.load("~/.local/share/morningstar/models/binance_btc_usdt_5m-v1")
    model.predict(bars)        # dict for the last bar: signal, confidence, probabilities, ...
    model.predict_batch(bars)  # PredictionBatch: the same numbers for every bar (backtests)

Both paths prepare the inputs with the artifact's scaler through
:func:`morningstar.model.features.prepare_inputs` and decode the network's outputs with the same
function; ``predict`` runs the network on the last window only, ``predict_batch`` on every
complete window in batches of ``batch_size`` under ``torch.inference_mode()``. The numbers agree
to float32 rounding (matrix products over a batch of 1 and of 1024 may sum in another order:
differences of ~1e-7, tested at 1e-5). Both validate the bars once (``check_bars``: capitalised
column names or a ``timestamp`` column are read as the OHLCV contract) and use the validated frame
for everything after. Alternative data is joined as of each bar's close with the timeframe
recorded in the artifact at training, never one inferred from the bars given (an inferred
timeframe depends on later bars). A bar gets a prediction only when its window is complete and
``sigma_t`` is finite and > 0 (training uses the same samples): ``predict`` raises
:class:`~morningstar.errors.DataValidationError` otherwise, ``predict_batch`` marks it invalid.

Outputs per bar (keys of active heads only; see :mod:`morningstar.core.prediction`):

* ``probabilities = softmax(logits / T + b)`` with the temperature ``T`` and bias ``b`` fitted on
  the validation window; ``signal`` its argmax, ``confidence`` its max;
* ``volatility = m · sigma_t`` (``m`` the volatility head, ``sigma_t`` the label spec's realised
  volatility of the last ``vol_window`` log returns, known at the bar);
* ``regime`` the argmax of the regime head's softmax;
* ``sl_mult`` / ``tp_mult``: predicted adverse / favourable excursions over the horizon in
  multiples of ``sigma_t``, for a trade in the signal's direction (long when neutral or when the
  signal head is off). The heads predict them for a long; a short swaps them (its adverse
  excursion is the long's favourable one). Levels from the bar's close ``c``:
  long ``sl = c · (1 - sl_mult · sigma_t)``, ``tp = c · (1 + tp_mult · sigma_t)``;
  short ``sl = c · (1 + sl_mult · sigma_t)``, ``tp = c · (1 - tp_mult · sigma_t)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from morningstar.config import NetworkSpec, TrainSpec
from morningstar.core.indicators import rolling_volatility
from morningstar.core.prediction import SIGNAL_VALUES, Prediction, PredictionBatch
from morningstar.core.timeframe import Timeframe
from morningstar.errors import DataValidationError, UserInputError
from morningstar.model import artifact as art
from morningstar.model._bars import check_bars, resolve_timeframe
from morningstar.model._torch import require_torch, resolve_device
from morningstar.model.evaluation import apply_calibration, softmax
from morningstar.model.features import FeatureScaler, FeatureSpec, PreparedInputs, prepare_inputs
from morningstar.model.labels import REGIME_CLASSES, LabelSpec

__all__ = ["MorningstarModel"]

log = logging.getLogger(__name__)
_DEFAULT_BATCH = 1024


def _spec_diff(mine: FeatureSpec, theirs: FeatureSpec) -> str:
    a, b = mine.model_dump(), theirs.model_dump()
    keys = [k for k in a if a[k] != b.get(k)]
    return "; ".join(f"{k}: artifact {a[k]!r} vs given {b.get(k)!r}" for k in keys[:2])


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise UserInputError(
            f"batch_size must be an integer >= 1, got {batch_size!r}",
            where="MorningstarModel.predict_batch",
        )
    if batch_size < 1:
        raise UserInputError(
            f"batch_size must be >= 1, got {batch_size}", where="MorningstarModel.predict_batch"
        )
    return int(batch_size)


def _timeframe(value: object, path: Path | None) -> Timeframe | None:
    """The model's bar timeframe from an argument or the manifest (None: not recorded)."""
    if value is None or isinstance(value, Timeframe):
        return value
    if not isinstance(value, str):
        raise UserInputError(
            f"unreadable timeframe {value!r}",
            where=str(path) if path else "MorningstarModel",
            hint="a timeframe such as '5m' or '1h'",
        )
    return resolve_timeframe(pd.DatetimeIndex([]), value)


class MorningstarModel:
    """A trained model ready to predict (CPU by default).

    Build it with :meth:`load` (an artifact directory) or :meth:`from_training` (a
    :class:`~morningstar.model.training.TrainResult`); :meth:`save` writes an artifact.

    Args:
        timeframe: the bar timeframe the model was trained on (default: the manifest's
            ``timeframe``); required when the feature spec has alternative-data columns, whose
            as-of join needs each bar's close.
        device: ``cpu`` (default), ``cuda`` or ``auto``.

    Raises:
        ConfigError: ``cuda`` requested and CUDA is not available.
        UserInputError: a model with alternative-data columns and no timeframe.
    """

    def __init__(
        self,
        network: Any,
        *,
        features: FeatureSpec,
        labels: LabelSpec,
        network_spec: NetworkSpec,
        scaler: FeatureScaler,
        calibration: Mapping[str, Any],
        manifest: Mapping[str, Any] | None = None,
        path: Path | None = None,
        device: str = "cpu",
        timeframe: Timeframe | str | None = None,
    ) -> None:
        self.torch = require_torch()
        device = resolve_device(device, where="MorningstarModel device")
        self.network = network.to(device).eval()
        self.features = features
        self.labels = labels
        self.network_spec = network_spec
        self.scaler = scaler
        self.calibration = dict(calibration)
        self.manifest = dict(manifest or {})
        self.path = path
        self.device = device
        chosen = timeframe if timeframe is not None else self.manifest.get("timeframe")
        self.timeframe: Timeframe | None = _timeframe(chosen, path)
        if features.alt_columns and self.timeframe is None:
            raise UserInputError(
                "the model uses alternative data but records no bar timeframe (needed to join "
                "it as of each bar's close)",
                where=str(path) if path else "MorningstarModel",
                hint="retrain it with this version of morningstar (train_model(timeframe=...))",
            )
        self.heads: tuple[str, ...] = network_spec.heads.active
        self.regime_names: tuple[str, ...] = tuple(
            self.manifest.get("regime_classes") or REGIME_CLASSES
        )
        self._calibration = {"temperature": self.calibration.get("temperature", 1.0),
                             "bias": self.calibration.get("bias", [0.0, 0.0, 0.0])}  # fmt: skip

    # ------------------------------------------------------------------ building
    @classmethod
    def from_training(cls, result: Any, *, device: str = "cpu") -> MorningstarModel:
        """Wrap a fresh :class:`~morningstar.model.training.TrainResult` (no file written)."""
        return cls(
            result.network,
            features=result.features,
            labels=result.labels,
            network_spec=result.network_spec,
            scaler=result.scaler,
            calibration=result.calibration,
            manifest=_manifest(result),
            device=device,
            timeframe=getattr(result, "timeframe", None),
        )

    @classmethod
    def load(
        cls, path: str | Path, *, features: FeatureSpec | None = None, device: str = "cpu"
    ) -> MorningstarModel:
        """Load the artifact in ``path``.

        Args:
            path: the artifact directory (``weights.pt`` + ``model.json``).
            features: the feature spec the caller will feed; must equal the artifact's.
            device: ``cpu`` (default), ``cuda`` or ``auto`` (cuda when a GPU is visible).

        Raises:
            UserInputError: missing or incomplete artifact, unsupported format version, a feature
                spec that differs from the artifact's, weights that do not fit the network
                described by the manifest, or an alternative-data model whose manifest records
                no timeframe (one line each, naming the directory).
            ConfigError: ``cuda`` requested and CUDA is not available (one line).
        """
        require_torch()
        device = resolve_device(device, where="MorningstarModel.load(device=...)")
        from morningstar.model.network import EnhancedHybridModel

        folder = Path(path).expanduser()
        manifest = art.read_manifest(folder)
        try:
            saved_features = FeatureSpec.model_validate(manifest["features"])
            labels = LabelSpec.model_validate(manifest["labels"])
            net_spec = NetworkSpec.model_validate(manifest["network"])
            scaler = FeatureScaler.from_dict(manifest["scaler"])
        except Exception as exc:  # KeyError, pydantic ValidationError, scaler errors
            raise UserInputError(
                f"incompatible model.json ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
                where=str(folder),
                hint="retrain the model with this version of morningstar",
            ) from exc
        if features is not None and features != saved_features:
            raise UserInputError(
                f"feature spec mismatch ({_spec_diff(saved_features, features)})",
                where=str(folder),
                hint="use the artifact's feature spec (MorningstarModel.load(path).features) or "
                "retrain with yours",
            )
        n_regimes = len(manifest.get("regime_classes") or REGIME_CLASSES)
        network = EnhancedHybridModel(len(saved_features.names), net_spec, n_regimes=n_regimes)
        state = art.load_weights(folder)
        expected = network.state_dict()
        for key, tensor in expected.items():
            got = state.get(key)
            if got is None or tuple(got.shape) != tuple(tensor.shape):
                shape = None if got is None else tuple(got.shape)
                raise UserInputError(
                    f"weights do not fit the network: {key} has shape {shape}, expected "
                    f"{tuple(tensor.shape)}",
                    where=str(folder / art.WEIGHTS_FILE),
                    hint="the weights and model.json come from different models: retrain",
                )
        extra = sorted(set(state) - set(expected))
        if extra:
            raise UserInputError(
                f"weights hold tensors the network does not have ({', '.join(extra[:3])})",
                where=str(folder / art.WEIGHTS_FILE),
                hint="the weights and model.json come from different models: retrain",
            )
        network.load_state_dict(state)
        return cls(
            network,
            features=saved_features,
            labels=labels,
            network_spec=net_spec,
            scaler=scaler,
            calibration=manifest.get("calibration") or {},
            manifest=manifest,
            path=folder,
            device=device,
        )

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write the artifact (``weights.pt`` + ``model.json``) into ``path``; returns it.

        ``extra`` entries (e.g. ``source``) are added to the manifest.
        """
        manifest = {**self.manifest, **extra}
        if self.timeframe is not None:
            manifest["timeframe"] = str(self.timeframe)
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        folder = art.write_artifact(path, state, manifest)
        self.path = folder
        return folder

    # ------------------------------------------------------------------ info
    @property
    def metrics(self) -> dict[str, Any]:
        """The test-window metrics per head vs baselines recorded at training."""
        return dict(self.manifest.get("metrics") or {})

    @property
    def min_history(self) -> int:
        """Bars to pass to :meth:`predict` so that the latest window matches the full history."""
        return max(self.features.min_history, self.labels.vol_window + 2)

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"MorningstarModel(heads={self.heads}, seq_len={self.features.seq_len}{where})"

    # ------------------------------------------------------------------ prediction
    def prepare(self, bars: pd.DataFrame, *, alt: pd.DataFrame | None = None) -> PreparedInputs:
        """Scaled input windows of ``bars`` with the training scaler (step b of the cycle).

        Alternative data is joined with the model's :attr:`timeframe` (the training one).
        """
        return prepare_inputs(bars, self.features, self.scaler, timeframe=self.timeframe, alt=alt)

    def _run(self, sequences: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
        torch = self.torch
        parts: dict[str, list[np.ndarray]] = {h: [] for h in self.heads}
        with torch.inference_mode():
            for start in range(0, sequences.shape[0], batch_size):
                chunk = np.array(sequences[start : start + batch_size], dtype=np.float32)
                out = self.network(torch.from_numpy(chunk).to(self.device))
                for head, value in out.items():
                    parts[head].append(value.float().cpu().numpy().astype(np.float64))
        width = {
            "signal": (3,),
            "volatility": (),
            "regime": (len(self.regime_names),),
            "sltp": (2,),
        }
        return {h: np.concatenate(v) if v else np.empty((0, *width[h])) for h, v in parts.items()}

    def _decode(
        self, raw: Mapping[str, np.ndarray], sigma: np.ndarray, close: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Head outputs → prediction columns (one row per window); shared by both paths."""
        cols: dict[str, np.ndarray] = {}
        direction = np.ones(sigma.size)
        if "signal" in raw:
            probs = apply_calibration(raw["signal"], self._calibration)
            cls = probs.argmax(axis=1)
            cols["probabilities"] = probs
            cols["confidence"] = probs.max(axis=1)
            cols["signal_value"] = np.asarray(SIGNAL_VALUES, dtype=np.int8)[cls]
            direction = np.where(cols["signal_value"] < 0, -1.0, 1.0)
        if "volatility" in raw:
            cols["volatility"] = raw["volatility"] * sigma
        if "regime" in raw:
            probs = softmax(raw["regime"])
            cols["regime_probabilities"] = probs
            cols["regime"] = probs.argmax(axis=1).astype(np.int8)
        if "sltp" in raw:
            long_sl, long_tp = raw["sltp"][:, 0], raw["sltp"][:, 1]
            short = direction < 0
            sl_mult = np.where(short, long_tp, long_sl)
            tp_mult = np.where(short, long_sl, long_tp)
            cols["sl_mult"], cols["tp_mult"] = sl_mult, tp_mult
            cols["sl"] = close * (1.0 - direction * sl_mult * sigma)
            cols["tp"] = close * (1.0 + direction * tp_mult * sigma)
        return cols

    def _sigma(self, bars: pd.DataFrame) -> np.ndarray:
        return np.asarray(
            rolling_volatility(bars["close"].to_numpy(dtype=np.float64), self.labels.vol_window),
            dtype=np.float64,
        )

    def _batch(
        self, bars: pd.DataFrame, positions: np.ndarray, cols: dict[str, np.ndarray]
    ) -> PredictionBatch:
        n = len(bars)
        valid = np.zeros(n, dtype=bool)
        valid[positions] = True

        def spread(values: np.ndarray, fill: float | int, dtype: Any = np.float64) -> np.ndarray:
            out = np.full((n, *values.shape[1:]), fill, dtype=dtype)
            out[positions] = values
            return out

        kwargs: dict[str, Any] = {}
        if "probabilities" in cols:
            kwargs["signal_value"] = spread(cols["signal_value"], 0, np.int8)
            kwargs["probabilities"] = spread(cols["probabilities"], np.nan)
            kwargs["confidence"] = spread(cols["confidence"], np.nan)
        if "volatility" in cols:
            kwargs["volatility"] = spread(cols["volatility"], np.nan)
        if "regime" in cols:
            kwargs["regime"] = spread(cols["regime"], -1, np.int8)
            kwargs["regime_probabilities"] = spread(cols["regime_probabilities"], np.nan)
        for key in ("sl_mult", "tp_mult", "sl", "tp"):
            if key in cols:
                kwargs[key] = spread(cols[key], np.nan)
        return PredictionBatch(
            index=pd.DatetimeIndex(bars.index),
            valid=valid,
            regime_names=self.regime_names,
            source="morningstar_model",
            **kwargs,
        )

    def predict_batch(
        self,
        bars: pd.DataFrame,
        *,
        alt: pd.DataFrame | None = None,
        batch_size: int = _DEFAULT_BATCH,
    ) -> PredictionBatch:
        """Predictions for every bar of ``bars``.

        Rows without a prediction (``valid`` False: an incomplete window, a NaN in it, or
        ``sigma_t`` not finite or 0) hold NaN, ``-1`` for the regime and ``0`` for
        ``signal_value``. Vectorised: one feature pass, then the network over all usable
        windows in batches of ``batch_size``. Row ``t`` depends on bars ``0..t`` (and alt rows
        known by the close of bar ``t``) only.

        Raises:
            UserInputError / DataFormatError: not an OHLCV frame, too few bars for one window, or
                ``batch_size < 1``.
        """
        batch_size = _check_batch_size(batch_size)
        data = check_bars(bars, where="MorningstarModel.predict_batch")
        prepared = self.prepare(data, alt=alt)
        sigma_all = self._sigma(data)
        windows = np.flatnonzero(prepared.valid)
        sigma = sigma_all[prepared.positions[windows]]
        usable = np.isfinite(sigma) & (sigma > 0.0)
        windows, sigma = windows[usable], sigma[usable]
        positions = prepared.positions[windows]
        raw = self._run(prepared.sequence[windows], batch_size)
        close = data["close"].to_numpy(dtype=np.float64)
        cols = self._decode(raw, sigma, close[positions])
        return self._batch(data, positions, cols)

    def prediction(self, bars: pd.DataFrame, *, alt: pd.DataFrame | None = None) -> Prediction:
        """The :class:`Prediction` for the last bar of ``bars``.

        Pass at least :attr:`min_history` bars for numbers equal to those computed on the full
        history (a shorter history gives slightly different recursive indicators).

        Raises:
            UserInputError / DataFormatError: not an OHLCV frame or too few bars.
            DataValidationError: the last window has a missing (NaN) value, or ``sigma_t`` at the
                last bar is not finite or is 0 (flat prices over the last ``vol_window`` bars).
        """
        data = check_bars(bars, where="MorningstarModel.predict")
        prepared = self.prepare(data, alt=alt)
        if not bool(prepared.valid[-1]):
            raise DataValidationError(
                f"the last {self.features.seq_len}-bar window ending {prepared.index[-1]} has "
                "missing values (NaN in the bars or not enough history for a feature)",
                where="MorningstarModel.predict",
                hint=f"pass at least {self.min_history} clean bars (see clean_bars)",
            )
        sigma = self._sigma(data)[-1:]
        if not np.isfinite(sigma).all():
            raise DataValidationError(
                "volatility sigma_t is not computable at the last bar",
                where="MorningstarModel.predict",
                hint=f"pass at least {self.labels.vol_window + 2} bars with finite closes",
            )
        if not (sigma > 0.0).all():
            raise DataValidationError(
                f"volatility sigma_t is 0 at the last bar (flat closes over the last "
                f"{self.labels.vol_window} bars): no stop / target can be placed",
                where="MorningstarModel.predict",
                hint="wait for the price to move (training never saw such a bar either)",
            )
        raw = self._run(prepared.sequence[-1:], 1)
        close = float(data["close"].iloc[-1])
        cols = self._decode(raw, sigma, np.array([close]))
        batch = self._batch(data.iloc[-1:], np.array([0]), cols)
        return batch.row(0)

    def predict(self, bars: pd.DataFrame, *, alt: pd.DataFrame | None = None) -> dict[str, Any]:
        """The workflow's call: a dict with one entry per active head for the last bar.

        Keys: ``signal``, ``signal_value``, ``confidence``, ``probabilities`` (signal head);
        ``volatility``; ``regime``, ``regime_probabilities``; ``sl_mult``, ``tp_mult``, ``sl``,
        ``tp`` (SL/TP head). See the module docstring for units and formulas.
        """
        return self.prediction(bars, alt=alt).as_dict()


def _manifest(result: Any) -> dict[str, Any]:
    """The manifest entries of a :class:`~morningstar.model.training.TrainResult`."""
    network = result.network
    return {
        "features": result.features.model_dump(mode="json"),
        "labels": result.labels.model_dump(mode="json"),
        "network": result.network_spec.model_dump(mode="json"),
        "training": TrainSpec.model_validate(result.training).model_dump(mode="json"),
        "n_features": len(result.features.names),
        "feature_names": list(result.features.names),
        "n_parameters": int(sum(p.numel() for p in network.parameters())),
        "timeframe": getattr(result, "timeframe", None),
        "scaler": result.scaler.to_dict(),
        "calibration": result.calibration,
        "signal_classes": result.data.get("signal_classes"),
        "regime_classes": result.data.get("regime_classes"),
        "data": {k: v for k, v in result.data.items() if not k.endswith("_classes")},
        "windows": result.windows,
        "metrics": result.metrics,
        "history": [vars(h) for h in result.history],
        "train_seconds": result.train_seconds,
        "device": result.device,
    }
