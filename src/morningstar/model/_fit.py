"""The inner loop of one training fold: samples, batches, losses, fit, calibration (torch).

Private to :mod:`morningstar.model.training`, which plans the windows and scores the folds.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.config import NetworkSpec, TrainSpec
from morningstar.core.indicators import atr
from morningstar.core.timeframe import Timeframe
from morningstar.model._bars import check_bars
from morningstar.model._torch import require_torch
from morningstar.model.features import FeatureScaler, FeatureSpec, prepare_inputs
from morningstar.model.labels import REGIME_CLASSES

__all__ = ["Data", "Trainer", "class_weights", "collect", "select"]

IntArray = npt.NDArray[np.int64]
_ATR_PERIOD = 14
_CLIP_MULT = 50.0


def class_weights(y: np.ndarray, k: int) -> np.ndarray:
    """``n / (k · n_c)`` per class (balanced weights), clipped to [0.1, 10]."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    weights = y.size / (k * np.maximum(counts, 1.0))
    return np.clip(weights, 0.1, 10.0)


@dataclass
class Data:
    """Everything the loop needs, per sample (one sample = one bar with a full window)."""

    sequences: np.ndarray  # (n_windows, seq_len, F) float32 view
    sample_window: IntArray  # window index of each usable sample
    positions: IntArray  # bar position of each usable sample
    signal: IntArray
    vol_ratio: np.ndarray
    vol_true: np.ndarray
    sigma: np.ndarray
    regime: IntArray
    sltp: np.ndarray
    atr_in_sigma: np.ndarray


def collect(
    bars: pd.DataFrame,
    features: FeatureSpec,
    scaler: FeatureScaler,
    labels: Any,
    timeframe: Timeframe | str | None,
    alt: pd.DataFrame | None,
) -> Data:
    """The samples of ``bars``: windows with no NaN, known labels and ``sigma_t > 0``.

    ``bars`` is read through ``check_bars`` (a contract frame passes through unchanged), so the
    closes, highs and lows come from the same validated frame as the features.
    """
    bars = check_bars(bars, where="train_model")
    prepared = prepare_inputs(bars, features, scaler, timeframe=timeframe, alt=alt)
    positions = np.asarray(prepared.positions, dtype=np.int64)
    sigma_all = np.asarray(labels.sigma, dtype=np.float64)
    usable = np.asarray(prepared.valid, dtype=bool) & np.asarray(labels.mask, dtype=bool)[positions]
    usable &= np.isfinite(sigma_all[positions]) & (sigma_all[positions] > 0)
    windows = np.flatnonzero(usable).astype(np.int64)
    pos = positions[windows]
    sigma = sigma_all[pos]
    close = bars["close"].to_numpy(dtype=np.float64)
    atr_all = atr(
        bars["high"].to_numpy(dtype=np.float64),
        bars["low"].to_numpy(dtype=np.float64),
        close,
        _ATR_PERIOD,
    )
    vol_true = np.asarray(labels.volatility, dtype=np.float64)[pos]
    sltp = np.stack(
        [
            np.asarray(labels.sl, dtype=np.float64)[pos],
            np.asarray(labels.tp, dtype=np.float64)[pos],
        ],
        axis=1,
    )
    return Data(
        sequences=prepared.inputs["sequence"],
        sample_window=windows,
        positions=pos,
        signal=np.asarray(labels.signal, dtype=np.int64)[pos],
        vol_ratio=np.clip(vol_true / sigma, 1e-3, 1e3),
        vol_true=vol_true,
        sigma=sigma,
        regime=np.asarray(labels.regime, dtype=np.int64)[pos],
        sltp=np.clip(sltp, 0.0, _CLIP_MULT),
        atr_in_sigma=atr_all[pos] / (sigma * close[pos]),
    )


def select(data: Data, window: tuple[int, int]) -> IntArray:
    return np.flatnonzero((data.positions >= window[0]) & (data.positions < window[1])).astype(
        np.int64
    )


class Trainer:
    """One fold: fit, early-stop, calibrate, predict."""

    def __init__(
        self,
        data: Data,
        net_spec: NetworkSpec,
        spec: TrainSpec,
        n_features: int,
        device: str,
    ) -> None:
        torch = require_torch()
        from morningstar.model.network import EnhancedHybridModel

        self.torch = torch
        self.data = data
        self.net_spec = net_spec
        self.spec = spec
        self.device = device
        self.heads = net_spec.heads.active
        self.weights = net_spec.loss_weights
        self.model = EnhancedHybridModel(n_features, net_spec, n_regimes=len(REGIME_CLASSES)).to(
            device
        )
        self.signal_w: Any = None
        self.regime_w: Any = None

    def _batch(self, idx: np.ndarray) -> tuple[Any, dict[str, Any]]:
        torch, d = self.torch, self.data
        x = torch.from_numpy(np.ascontiguousarray(d.sequences[d.sample_window[idx]])).to(
            self.device
        )
        y = {
            "signal": torch.from_numpy(d.signal[idx]).to(self.device),
            "volatility": torch.from_numpy(d.vol_ratio[idx].astype(np.float32)).to(self.device),
            "regime": torch.from_numpy(d.regime[idx]).to(self.device),
            "sltp": torch.from_numpy(d.sltp[idx].astype(np.float32)).to(self.device),
        }
        return x, y

    def _loss(self, out: Mapping[str, Any], y: Mapping[str, Any]) -> Any:
        f = self.torch.nn.functional
        total = 0.0
        for head in self.heads:
            weight = getattr(self.weights, head)
            if head == "signal":
                part = f.cross_entropy(out[head], y[head], weight=self.signal_w)
            elif head == "regime":
                part = f.cross_entropy(out[head], y[head], weight=self.regime_w)
            elif head == "volatility":
                part = ((self.torch.log(out[head]) - self.torch.log(y[head])) ** 2).mean()
            else:
                part = f.l1_loss(out[head], y[head])
            total = total + weight * part
        return total

    def fit(
        self, train: IntArray, val: IntArray, on_epoch: Callable[[float, float, Any], None]
    ) -> None:
        torch, spec = self.torch, self.spec
        d = self.data
        self.signal_w = torch.tensor(
            class_weights(d.signal[train], 3), dtype=torch.float32, device=self.device
        )
        self.regime_w = torch.tensor(
            class_weights(d.regime[train], len(REGIME_CLASSES)),
            dtype=torch.float32,
            device=self.device,
        )
        optimiser = torch.optim.AdamW(
            self.model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay
        )
        rng = np.random.default_rng(spec.seed)
        best = math.inf
        best_state = copy.deepcopy(self.model.state_dict())
        stale = 0
        for _epoch in range(spec.epochs):
            started = time.perf_counter()
            self.model.train()
            order = train[rng.permutation(train.size)]
            total, count = 0.0, 0
            for start in range(0, order.size, spec.batch_size):
                idx = order[start : start + spec.batch_size]
                x, y = self._batch(idx)
                optimiser.zero_grad(set_to_none=True)
                loss = self._loss(self.model(x), y)
                loss.backward()
                if spec.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), spec.grad_clip)
                optimiser.step()
                total += float(loss.detach()) * idx.size
                count += idx.size
            val_loss, val_acc = self.evaluate_loss(val)
            improved = val_loss < best - 1e-6
            if improved:
                best, stale = val_loss, 0
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                stale += 1
            on_epoch(
                total / max(count, 1), val_loss, (val_acc, improved, time.perf_counter() - started)
            )
            if stale >= spec.patience:
                break
        self.model.load_state_dict(best_state)
        self.model.eval()

    def evaluate_loss(self, idx: IntArray) -> tuple[float, float | None]:
        """Mean validation loss and signal accuracy (eval mode, no gradient)."""
        self.model.eval()
        total, correct = 0.0, 0
        with self.torch.inference_mode():
            for start in range(0, idx.size, 2048):
                part = idx[start : start + 2048]
                x, y = self._batch(part)
                out = self.model(x)
                total += float(self._loss(out, y)) * part.size
                if "signal" in out:
                    correct += int((out["signal"].argmax(dim=1) == y["signal"]).sum())
        accuracy = correct / idx.size if "signal" in self.heads else None
        return total / max(idx.size, 1), accuracy

    def raw_outputs(self, idx: IntArray) -> dict[str, np.ndarray]:
        """Head outputs (signal/regime logits, volatility multiplier, sl/tp) as float64 arrays."""
        self.model.eval()
        parts: dict[str, list[np.ndarray]] = {h: [] for h in self.heads}
        with self.torch.inference_mode():
            for start in range(0, idx.size, 2048):
                x, _ = self._batch(idx[start : start + 2048])
                for head, value in self.model(x).items():
                    parts[head].append(value.float().cpu().numpy().astype(np.float64))
        return {h: np.concatenate(v) if v else np.empty((0,)) for h, v in parts.items()}

    def calibrate(self, val: IntArray) -> dict[str, Any]:
        """Fit ``T`` and ``b`` of ``softmax(z / T + b)`` on the validation window (log loss)."""
        if "signal" not in self.heads:
            return {"temperature": 1.0, "bias": [0.0, 0.0, 0.0], "method": "none"}
        torch = self.torch
        logits = torch.from_numpy(self.raw_outputs(val)["signal"])
        target = torch.from_numpy(self.data.signal[val])
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS([log_t, bias], lr=0.1, max_iter=200)

        def closure() -> Any:
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits / log_t.exp() + bias, target)
            loss.backward()
            return loss

        before = float(torch.nn.functional.cross_entropy(logits, target))
        optimiser.step(closure)
        temperature = float(log_t.detach().exp())
        centred = (bias - bias.mean()).detach().numpy().tolist()
        after = float(
            torch.nn.functional.cross_entropy(logits / temperature + torch.tensor(centred), target)
        )
        if not math.isfinite(after) or after > before:  # never worse than no calibration
            return {"temperature": 1.0, "bias": [0.0, 0.0, 0.0], "method": "none",
                    "val_log_loss_before": before, "val_log_loss_after": before}  # fmt: skip
        return {
            "temperature": temperature,
            "bias": centred,
            "method": "temperature+bias",
            "val_log_loss_before": before,
            "val_log_loss_after": after,
        }
