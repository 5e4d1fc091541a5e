"""Train the EnhancedHybridModel: chronological split with embargo, early stopping, calibration,
evaluation of every head against its baseline on the held-out test window.

Windows (bar positions, half-open; ``e`` = embargo bars, at least the label horizon, so no
training label looks into the validation window and no validation label into the test window)::

    |------------ train ------------|e|--- val ---|e|--- test ---|
     scaler fitted here, weights      early stop,    scored once, vs baselines
     fitted here                      calibration

With ``walk_forward_folds = k > 1`` the test share is cut into ``k`` consecutive windows; fold
``i`` trains on every bar before its validation window (expanding, anchored at the first bar) and
is scored on its own test window (``morningstar.core.splits.walk_forward_splits``). The returned
model is the last fold's; the headline test metrics pool the out-of-sample predictions of every
fold, each against the baselines of its own training window.

Losses (a weighted sum, :class:`~morningstar.config.LossWeights`):

* signal: cross-entropy with class weights ``n / (k · n_c)`` from the training window (clipped
  to [0.1, 10]); then calibrated on the validation window by temperature scaling plus a per-class
  bias (``softmax(z / T + b)``, fitted by minimising the validation log loss), because the class
  weights shift the predicted priors and a temperature alone cannot undo a shift;
* volatility: squared error of ``log m`` against ``log(vol_{t+1..t+h} / sigma_t)`` (the head
  predicts the multiplier ``m > 0`` of the last realised volatility);
* regime: class-weighted cross-entropy;
* sl / tp: absolute error (L1: the head learns the conditional median, the metric is the MAE)
  on the excursions in multiples of sigma (clipped at 50).

Determinism: on CPU, the same seed, data, settings and thread count give bit-identical weights
and metrics (``torch.manual_seed``, deterministic algorithms, a numpy ``Generator`` for the batch
order; see :func:`morningstar.model._torch.deterministic`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.config import NetworkSpec, TrainSpec
from morningstar.core.splits import walk_forward_splits
from morningstar.core.timeframe import Timeframe
from morningstar.errors import UserInputError
from morningstar.model import evaluation as ev
from morningstar.model._bars import check_bars, read_bars, resolve_timeframe
from morningstar.model._fit import Data, Trainer, collect, select
from morningstar.model._torch import deterministic, resolve_device
from morningstar.model.features import (
    FeatureScaler,
    FeatureSpec,
    compute_features,
)
from morningstar.model.labels import REGIME_CLASSES, SIGNAL_CLASSES, LabelSpec, make_labels

__all__ = ["EpochLog", "FoldWindows", "TrainResult", "bars_sha256", "plan_windows", "train_model"]

log = logging.getLogger(__name__)
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FoldWindows:
    """One fold's windows as half-open bar positions ``(start, stop)``."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def as_dict(self, index: pd.DatetimeIndex) -> dict[str, Any]:
        """Positions and first/last bar times of each window."""
        out: dict[str, Any] = {}
        for name in ("train", "val", "test"):
            start, stop = getattr(self, name)
            out[name] = {
                "start": int(start),
                "stop": int(stop),
                "first": str(index[start]) if stop > start else None,
                "last": str(index[stop - 1]) if stop > start else None,
            }
        return out


@dataclass(frozen=True)
class EpochLog:
    """What one epoch did (passed to the ``on_epoch`` callback, kept in the history)."""

    fold: int
    folds: int
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_signal_accuracy: float | None
    best: bool
    seconds: float


@dataclass
class TrainResult:
    """A trained model and everything the artifact records about it."""

    network: Any  # EnhancedHybridModel (torch), on CPU, in eval mode
    scaler: FeatureScaler
    features: FeatureSpec
    labels: LabelSpec
    network_spec: NetworkSpec
    training: TrainSpec
    calibration: dict[str, Any]
    metrics: dict[str, Any]
    windows: list[dict[str, Any]]
    history: list[EpochLog]
    train_seconds: float
    device: str
    data: dict[str, Any] = field(default_factory=dict)
    timeframe: str | None = None  # the bar timeframe (caller's, else inferred from training bars)


def bars_sha256(bars: pd.DataFrame) -> str:
    """SHA-256 of the bar arrays: int64 open times (ns) then open/high/low/close/volume float64."""
    data = read_bars(bars, "bars")  # the contract frame: same hash for any accepted layout
    digest = hashlib.sha256()
    index = pd.DatetimeIndex(data.index)
    digest.update(np.ascontiguousarray(index.asi8, dtype=np.int64).tobytes())
    for column in ("open", "high", "low", "close", "volume"):
        digest.update(np.ascontiguousarray(data[column].to_numpy(), dtype=np.float64).tobytes())
    return digest.hexdigest()


def plan_windows(first: int, stop: int, spec: TrainSpec, embargo: int) -> list[FoldWindows]:
    """The train / validation / test windows of every fold over bar positions ``[first, stop)``.

    Raises:
        UserInputError: too few bars for the fractions, the embargo and the folds.
    """
    span = stop - first
    n_test_total = round(span * spec.test_fraction)
    n_val = round(span * spec.val_fraction)
    folds = spec.walk_forward_folds
    n_test = n_test_total // folds
    n_train = span - n_test * folds - embargo - n_val - embargo
    if n_test < 10 or n_val < 10 or n_train < 50:
        raise UserInputError(
            f"{span} usable bars are too few for train/val/test windows "
            f"(test {n_test} x {folds} fold(s), val {n_val}, embargo {embargo} twice)",
            where="model.training",
            hint="give more bars, fewer folds, or a smaller embargo / label horizon",
        )
    splits = walk_forward_splits(
        span, train=n_train + embargo + n_val, test=n_test, anchored=True, embargo=embargo
    )
    out = []
    for split in splits[:folds]:
        fit_stop = int(first + split.train[-1] + 1)
        val = (fit_stop - n_val, fit_stop)
        train = (int(first + split.train[0]), val[0] - embargo)
        test = (int(first + split.test_start), int(first + split.test_end))
        out.append(FoldWindows(train, val, test))
    return out


def _fold_predictions(
    trainer: Trainer, data: Data, train: IntArray, test: IntArray, calibration: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Test-window predictions of the model and of each baseline, per sample."""
    raw = trainer.raw_outputs(test)
    out: dict[str, np.ndarray] = {}
    if "signal" in raw:
        out["signal_probs"] = ev.apply_calibration(raw["signal"], calibration)
        priors = ev.class_priors(data.signal[train], 3)
        out["signal_base"] = np.tile(priors, (test.size, 1))
    if "volatility" in raw:
        out["vol_pred"] = raw["volatility"] * data.sigma[test]
    if "regime" in raw:
        out["regime_probs"] = ev.softmax(raw["regime"])
        # the priors: their argmax is the majority class (F1, accuracy), their log loss finite
        priors = ev.class_priors(data.regime[train], len(REGIME_CLASSES))
        out["regime_base"] = np.tile(priors, (test.size, 1))
    if "sltp" in raw:
        out["sltp_pred"] = raw["sltp"]
        ratio = data.sltp[train] / data.atr_in_sigma[train, None]
        k = np.nanmedian(np.where(np.isfinite(ratio), ratio, np.nan), axis=0)
        out["sltp_base"] = data.atr_in_sigma[test, None] * k[None, :]
        out["sltp_k_atr"] = k
    return out


def _score(data: Data, test: IntArray, preds: Mapping[str, np.ndarray]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if "signal_probs" in preds:
        metrics["signal"] = ev.score_signal(
            data.signal[test], preds["signal_probs"], preds["signal_base"]
        )
    if "vol_pred" in preds:
        metrics["volatility"] = ev.score_volatility(
            data.vol_true[test], preds["vol_pred"], data.sigma[test]
        )
    if "regime_probs" in preds:
        metrics["regime"] = ev.score_regime(
            data.regime[test], preds["regime_probs"], preds["regime_base"]
        )
    if "sltp_pred" in preds:
        base = preds["sltp_base"]
        finite = np.isfinite(base).all(axis=1)
        metrics["sltp"] = ev.score_sltp(data.sltp[test][finite], preds["sltp_pred"][finite],
                                        base[finite])  # fmt: skip
    return metrics


def train_model(
    bars: pd.DataFrame,
    *,
    features: FeatureSpec | None = None,
    labels: LabelSpec | None = None,
    network: NetworkSpec | None = None,
    training: TrainSpec | None = None,
    timeframe: Timeframe | str | None = None,
    alt: pd.DataFrame | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Train, calibrate and evaluate the model on ``bars`` (the OHLCV contract frame).

    The bars are validated once (``check_bars``: anything ``to_contract`` reads, e.g. capitalised
    columns or a ``timestamp`` column) and the validated frame is used for everything after:
    features, labels, windows, the data hash.

    Args:
        bars: bars of one asset, oldest first (open times, UTC).
        features: feature spec (default :class:`FeatureSpec()`).
        labels: label spec (default :class:`LabelSpec()`).
        network: network spec (default :class:`NetworkSpec()`).
        training: training settings (default :class:`TrainSpec()`).
        timeframe: bar timeframe, recorded in the result (and the artifact) and used to join
            alternative data as of each bar's close, in training and at inference. Required
            when ``features.alt_columns`` is set; otherwise None infers it from the first fold's
            training window only (never from the validation or test bars).
        alt: optional alternative data (see ``morningstar.model.features.align_alt_data``).
        on_epoch: called after every epoch (progress bars, logs).

    Returns:
        The trained model (last fold), its scaler and calibration, the per-head test metrics vs
        baselines, the windows, the epoch history and the training time.

    Raises:
        UserInputError: too few bars, an embargo shorter than the label horizon, or alternative
            data columns without an explicit timeframe.
        DataFormatError: the bars are not an OHLCV frame.
        ConfigError: torch is not installed, or cuda requested without a GPU.
    """
    features = features or FeatureSpec()
    labels = labels or LabelSpec()
    network = network or NetworkSpec()
    spec = training or TrainSpec()
    embargo = labels.horizon if spec.embargo is None else spec.embargo
    if embargo < labels.horizon:
        raise UserInputError(
            f"embargo {embargo} is shorter than the label horizon {labels.horizon}: training "
            "labels would overlap the validation / test windows",
            where="model.training.embargo",
            hint=f"use >= {labels.horizon} or leave it empty",
        )
    if features.alt_columns and timeframe is None:
        raise UserInputError(
            f"the feature spec uses alternative data ({', '.join(features.alt_columns)}) but no "
            "timeframe was given",
            where="train_model",
            hint="pass timeframe='5m' (the bars' timeframe): alt data is joined as of each "
            "bar's close, the same way at inference",
        )
    frame = check_bars(bars, where="train_model")
    if spec.max_bars is not None and len(frame) > spec.max_bars:
        frame = frame.iloc[-spec.max_bars :]
    index = pd.DatetimeIndex(frame.index)
    tf = None if timeframe is None else resolve_timeframe(index, timeframe)
    device = resolve_device(spec.device)
    started = time.perf_counter()
    label_arrays = make_labels(frame, labels)
    raw = compute_features(frame, features, timeframe=tf, alt=alt)  # tf only matters for alt
    known = np.flatnonzero(np.asarray(label_arrays.mask, dtype=bool) & np.isfinite(raw).all(axis=1))
    if known.size == 0:
        raise UserInputError(
            f"no bar has both complete features and known labels among {len(frame)} bars",
            hint=f"give more than {features.warmup + features.seq_len + labels.horizon} bars",
        )
    first = max(int(known[0]), features.seq_len - 1)
    plan = plan_windows(first, int(known[-1]) + 1, spec, embargo)
    if tf is None:  # from the bars up to the end of the first training window only
        tf = resolve_timeframe(index[: plan[0].train[1]], None)
    history: list[EpochLog] = []
    pooled: dict[str, list[np.ndarray]] = {}
    pooled_test: list[np.ndarray] = []
    fold_metrics: list[dict[str, Any]] = []
    trainer: Trainer | None = None
    data: Data | None = None
    calibration: dict[str, Any] = {}
    scaler: FeatureScaler | None = None
    with deterministic(spec.seed, spec.torch_threads):
        for fold, win in enumerate(plan):
            scaler = FeatureScaler.fit(
                raw[win.train[0] : win.train[1]], kind=features.scaler, clip=features.clip
            )
            data = collect(frame, features, scaler, label_arrays, tf, alt)
            train_idx, val_idx, test_idx = (select(data, w) for w in (win.train, win.val, win.test))
            if min(train_idx.size, val_idx.size, test_idx.size) == 0:
                raise UserInputError(
                    f"fold {fold + 1}: an empty window (train {train_idx.size}, val "
                    f"{val_idx.size}, test {test_idx.size} samples)",
                    hint="give more bars or change the fractions",
                )
            trainer = Trainer(data, network, spec, len(features.names), device)

            def report(train_loss: float, val_loss: float, extra: Any, fold: int = fold) -> None:
                val_acc, improved, seconds = extra
                entry = EpochLog(fold + 1, len(plan), len([h for h in history if h.fold == fold + 1]) + 1,
                                 spec.epochs, train_loss, val_loss, val_acc, improved, seconds)  # fmt: skip
                history.append(entry)
                log.info("fold %s epoch %s: train %.4f val %.4f", fold + 1, entry.epoch,
                         train_loss, val_loss)  # fmt: skip
                if on_epoch is not None:
                    on_epoch(entry)

            trainer.fit(train_idx, val_idx, report)
            calibration = trainer.calibrate(val_idx)
            preds = _fold_predictions(trainer, data, train_idx, test_idx, calibration)
            fold_metrics.append(_score(data, test_idx, preds))
            for key, value in preds.items():
                if key != "sltp_k_atr":
                    pooled.setdefault(key, []).append(value)
            pooled_test.append(test_idx)
    assert trainer is not None and data is not None and scaler is not None
    seconds = time.perf_counter() - started
    all_test = np.concatenate(pooled_test)
    metrics: dict[str, Any] = {
        "test": _score(data, all_test, {k: np.concatenate(v) for k, v in pooled.items()}),
        "folds": fold_metrics if len(plan) > 1 else [],
        "calibration": calibration,
    }
    network_module = trainer.model.to("cpu").eval()
    return TrainResult(
        network=network_module,
        scaler=scaler,
        features=features,
        labels=labels,
        network_spec=network,
        training=spec,
        calibration=calibration,
        metrics=metrics,
        windows=[w.as_dict(index) for w in plan],
        history=history,
        train_seconds=seconds,
        device=device,
        timeframe=str(tf),
        data={
            "n_bars": len(frame),
            "first_bar": str(index[0]),
            "last_bar": str(index[-1]),
            "sha256": bars_sha256(frame),
            "embargo": embargo,
            "signal_classes": list(SIGNAL_CLASSES),
            "regime_classes": list(REGIME_CLASSES),
        },
    )
