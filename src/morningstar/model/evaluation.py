"""Per-head evaluation against naive baselines on the same window (numpy only, no torch).

Every head is scored on the held-out test window next to a baseline that needs no model:

=============  ==============================================  ==========================================
head           metrics                                         baseline (same window)
=============  ==============================================  ==========================================
signal         log loss, Brier score, macro-F1, accuracy,      class priors of the training window
               expected calibration error (10 bins)            (argmax prior for F1 / accuracy)
volatility     MAE of sigma (per bar), QLIKE of the variance   the last realised volatility ``sigma_t``
regime         log loss, macro-F1, accuracy                    majority class (priors for log loss)
sl / tp        MAE in multiples of sigma_t                     a fixed ATR multiple, the median of the
                                                               training window (``k · ATR_t``)
=============  ==============================================  ==========================================

``beats_baseline`` compares the head's main metric (log loss; QLIKE; macro-F1; MAE) with the
baseline's and is reported as it comes, whichever way it goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "apply_calibration",
    "brier_score",
    "class_priors",
    "expected_calibration_error",
    "log_loss",
    "macro_f1",
    "qlike",
    "score_regime",
    "score_signal",
    "score_sltp",
    "score_volatility",
    "softmax",
]

FloatArray = npt.NDArray[np.float64]
_EPS = 1e-12


def softmax(z: np.ndarray) -> FloatArray:
    """Row-wise softmax (max-shifted)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def apply_calibration(logits: np.ndarray, calibration: Mapping[str, Any]) -> FloatArray:
    """Calibrated class probabilities ``softmax(logits / T + b)`` (float64): what training
    scores and what the wrapper predicts."""
    z = logits.astype(np.float64) / float(calibration["temperature"])
    return softmax(z + np.asarray(calibration["bias"], dtype=np.float64))


def class_priors(y: npt.ArrayLike, k: int) -> FloatArray:
    """Class frequencies of ``y`` (integers ``0..k-1``), Laplace-smoothed so none is zero."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=k).astype(np.float64)
    priors: FloatArray = (counts + 1.0) / (counts.sum() + k)
    return priors


def log_loss(y: npt.ArrayLike, probs: npt.ArrayLike) -> float:
    """Mean negative log-likelihood of the true classes (natural log)."""
    p = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    picked = p[np.arange(labels.size), labels]
    return float(-np.mean(np.log(np.clip(picked, _EPS, 1.0))))


def brier_score(y: npt.ArrayLike, probs: npt.ArrayLike) -> float:
    """Multi-class Brier score: mean over samples of ``sum_k (p_k - 1[y = k])^2``."""
    p = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(p.shape[1])[np.asarray(y, dtype=np.int64)]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def macro_f1(y: npt.ArrayLike, pred: npt.ArrayLike, k: int) -> float:
    """Unweighted mean of the per-class F1 scores (a class never true nor predicted scores 0)."""
    truth = np.asarray(y, dtype=np.int64)
    guess = np.asarray(pred, dtype=np.int64)
    scores = []
    for c in range(k):
        tp = float(np.sum((guess == c) & (truth == c)))
        fp = float(np.sum((guess == c) & (truth != c)))
        fn = float(np.sum((guess != c) & (truth == c)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0)
    return float(np.mean(scores))


def expected_calibration_error(y: npt.ArrayLike, probs: npt.ArrayLike, bins: int = 10) -> float:
    """ECE of the top-class confidence: ``sum_b |acc_b - conf_b| · n_b / n`` over equal-width bins."""
    p = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(y, dtype=np.int64)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == truth).astype(np.float64)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += abs(correct[sel].mean() - conf[sel].mean()) * sel.sum()
    return float(total / max(truth.size, 1))


def qlike(true_vol: npt.ArrayLike, pred_vol: npt.ArrayLike) -> float:
    """QLIKE loss of variance forecasts: mean of ``v/h - ln(v/h) - 1`` (``v = true^2``,
    ``h = pred^2``; 0 for a perfect forecast, robust to noise in the realised proxy).

    Zero true volatilities (flat windows) are floored at 1e-12 of variance.
    """
    v = np.maximum(np.asarray(true_vol, dtype=np.float64) ** 2, _EPS)
    h = np.maximum(np.asarray(pred_vol, dtype=np.float64) ** 2, _EPS)
    ratio = v / h
    return float(np.mean(ratio - np.log(ratio) - 1.0))


def _classifier(y: np.ndarray, probs: np.ndarray, k: int) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    return {
        "log_loss": log_loss(y, probs),
        "brier": brier_score(y, probs),
        "macro_f1": macro_f1(y, pred, k),
        "accuracy": float(np.mean(pred == y)),
        "ece": expected_calibration_error(y, probs),
    }


def score_signal(
    y: npt.ArrayLike, probs: npt.ArrayLike, baseline_probs: npt.ArrayLike
) -> dict[str, Any]:
    """Signal head vs the class priors of the training window (main metric: log loss).

    Args:
        y: true classes.
        probs: ``(n, 3)`` calibrated probabilities.
        baseline_probs: ``(n, 3)`` the training window's class priors, one row per sample (rows
            differ between walk-forward folds).
    """
    truth = np.asarray(y, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    model = _classifier(truth, p, p.shape[1])
    base = _classifier(truth, np.asarray(baseline_probs, dtype=np.float64), p.shape[1])
    return {
        "n": int(truth.size),
        "model": model,
        "baseline": {"name": "class priors (training window)", **base},
        "main_metric": "log_loss",
        "beats_baseline": bool(model["log_loss"] < base["log_loss"]),
        "class_counts": np.bincount(truth, minlength=p.shape[1]).tolist(),
    }


def score_regime(
    y: npt.ArrayLike, probs: npt.ArrayLike, baseline_probs: npt.ArrayLike
) -> dict[str, Any]:
    """Regime head vs the training window's majority class (main metric: macro-F1).

    Args:
        y: true classes.
        probs: ``(n, k)`` predicted probabilities.
        baseline_probs: ``(n, k)`` the training window's class priors; their argmax, the
            majority class, is the baseline's prediction for macro-F1 and accuracy, and the
            priors themselves give its log loss and Brier score.
    """
    truth = np.asarray(y, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[1]
    model = _classifier(truth, p, k)
    base = _classifier(truth, np.asarray(baseline_probs, dtype=np.float64), k)
    return {
        "n": int(truth.size),
        "model": model,
        "baseline": {"name": "majority class (training window)", **base},
        "main_metric": "macro_f1",
        "beats_baseline": bool(model["macro_f1"] > base["macro_f1"]),
        "class_counts": np.bincount(truth, minlength=k).tolist(),
    }


def score_volatility(
    true_vol: npt.ArrayLike, pred_vol: npt.ArrayLike, last_vol: npt.ArrayLike
) -> dict[str, Any]:
    """Volatility head vs the last realised volatility ``sigma_t`` (main metric: QLIKE)."""
    t = np.asarray(true_vol, dtype=np.float64)
    p = np.asarray(pred_vol, dtype=np.float64)
    b = np.asarray(last_vol, dtype=np.float64)
    model = {"mae": float(np.mean(np.abs(p - t))), "qlike": qlike(t, p)}
    base = {"mae": float(np.mean(np.abs(b - t))), "qlike": qlike(t, b)}
    return {
        "n": int(t.size),
        "model": model,
        "baseline": {"name": "last realised volatility sigma_t", **base},
        "main_metric": "qlike",
        "beats_baseline": bool(model["qlike"] < base["qlike"]),
        "mean_true": float(np.mean(t)),
    }


def score_sltp(
    true_mult: npt.ArrayLike, pred_mult: npt.ArrayLike, baseline_mult: npt.ArrayLike
) -> dict[str, Any]:
    """SL/TP heads vs a fixed ATR multiple (main metric: mean of the stop's and target's MAE).

    Args:
        true_mult: ``(n, 2)`` realised adverse / favourable excursions in multiples of sigma.
        pred_mult: ``(n, 2)`` predictions, same units.
        baseline_mult: ``(n, 2)`` the baseline ``k · ATR_t`` expressed in multiples of sigma
            (``k`` per column: the training window's median excursion in ATRs).
    """
    t = np.asarray(true_mult, dtype=np.float64)
    p = np.asarray(pred_mult, dtype=np.float64)
    b = np.asarray(baseline_mult, dtype=np.float64)

    def errors(x: np.ndarray) -> dict[str, float]:
        sl = float(np.mean(np.abs(x[:, 0] - t[:, 0])))
        tp = float(np.mean(np.abs(x[:, 1] - t[:, 1])))
        return {"mae_sl": sl, "mae_tp": tp, "mae": (sl + tp) / 2}

    model, base = errors(p), errors(b)
    return {
        "n": int(t.shape[0]),
        "model": model,
        "baseline": {"name": "fixed ATR multiple (training-window median)", **base},
        "main_metric": "mae",
        "beats_baseline": bool(model["mae"] < base["mae"]),
    }
