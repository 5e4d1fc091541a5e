"""The ML model: point-in-time features, labels, the EnhancedHybridModel, training, the wrapper.

``bars`` → :mod:`~morningstar.model.features` (clean, features, scaler, sequences) →
:class:`~morningstar.model.network.EnhancedHybridModel` (trained by
:func:`~morningstar.model.training.train_model` on :mod:`~morningstar.model.labels`) →
:class:`~morningstar.model.wrapper.MorningstarModel` (``load``, ``predict``, ``predict_batch``),
which implements the workflow's predictor port (:mod:`morningstar.core.prediction`) next to
:class:`~morningstar.model.predictors.StrategySignalPredictor`. See ``docs/model.md``.

PyTorch is an optional extra (``pip install 'morningstar[ml]'``): this package and its specs import
without it, and so do the names below (each is loaded on first use, so importing the settings
does not pull in numba, pandas or torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from morningstar.model.features import prepare_inputs
    from morningstar.model.labels import make_labels
    from morningstar.model.predictors import ModelPredictor, StrategySignalPredictor
    from morningstar.model.specs import FeatureSpec, LabelSpec
    from morningstar.model.training import TrainResult, train_model
    from morningstar.model.wrapper import MorningstarModel

__all__ = [
    "FeatureSpec",
    "LabelSpec",
    "ModelPredictor",
    "MorningstarModel",
    "StrategySignalPredictor",
    "TrainResult",
    "make_labels",
    "prepare_inputs",
    "train_model",
]

_HOMES = {
    "FeatureSpec": "specs",
    "LabelSpec": "specs",
    "ModelPredictor": "predictors",
    "MorningstarModel": "wrapper",
    "StrategySignalPredictor": "predictors",
    "TrainResult": "training",
    "make_labels": "labels",
    "prepare_inputs": "features",
    "train_model": "training",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
