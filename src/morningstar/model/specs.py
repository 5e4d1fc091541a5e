"""The model's feature and label specifications: light, importable without numba or pandas.

The configuration (``model.features``, ``model.labels``) and the artifacts' manifests hold these;
the code that computes features and labels lives in :mod:`morningstar.model.features` and
:mod:`morningstar.model.labels` (which re-export both classes). The feature registry (numba
kernels) is imported only when a spec names its features or asks for its warm-up.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from morningstar.model._feature_registry import FeatureDef

__all__ = ["DEFAULT_FEATURES", "FeatureSpec", "LabelSpec", "ScalerKind"]

ScalerKind = Literal["robust", "standard"]

#: The features of a default :class:`~morningstar.model.features.FeatureSpec`.
DEFAULT_FEATURES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_20",
    "vol_20",
    "rsi_14",
    "atr_pct_14",
    "bb_pos_20",
    "macd_hist",
    "adx_14",
    "ema_ratio_20_50",
    "range_pct",
    "volume_z_20",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
)


def _registry() -> Mapping[str, FeatureDef]:
    from morningstar.model._feature_registry import FEATURES

    return FEATURES


def close_matches(name: str, choices: list[str]) -> str:
    """A hint naming the closest of ``choices`` to ``name`` (or listing them all)."""
    close = difflib.get_close_matches(name, choices, n=3)
    return f"did you mean {', '.join(close)}?" if close else f"choose from {', '.join(choices)}"


class FeatureSpec(BaseModel):
    """Which features the model sees and how they are scaled and windowed.

    Attributes:
        seq_len: bars per input sequence (the window ending at the decision bar), 2..1024.
        features: names from :data:`FEATURES` (default :data:`DEFAULT_FEATURES`).
        alt_columns: columns of the alternative-data frame appended after the features; they
            should be scale-free too (rates, z-scores, ratios).
        scaler: ``"robust"`` (median / IQR) or ``"standard"`` (mean / std).
        clip: scaled values are clipped to ``[-clip, clip]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq_len: int = Field(default=64, ge=2, le=1024)
    features: tuple[str, ...] = DEFAULT_FEATURES
    alt_columns: tuple[str, ...] = ()
    scaler: ScalerKind = "robust"
    clip: float = Field(default=5.0, gt=0.0, le=1000.0)

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("features must name at least one feature")
        registry = _registry()
        known = sorted(registry)
        for name in value:
            if name not in registry:
                raise ValueError(f"unknown feature {name!r}: {close_matches(name, known)}")
        dupes = sorted({n for n in value if value.count(n) > 1})
        if dupes:
            raise ValueError(f"feature(s) listed twice: {', '.join(dupes)}")
        return value

    @field_validator("alt_columns")
    @classmethod
    def _alt_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name.strip() for name in value):
            raise ValueError("alt_columns must be non-empty column names")
        dupes = sorted({n for n in value if value.count(n) > 1})
        if dupes:
            raise ValueError(f"alt column(s) listed twice: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _no_clash(self) -> FeatureSpec:
        clash = sorted(set(self.features) & set(self.alt_columns))
        if clash:
            raise ValueError(f"alt column(s) named like a feature: {', '.join(clash)}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Column names of the feature matrix: the features, then the alternative columns."""
        return self.features + self.alt_columns

    @property
    def warmup(self) -> int:
        """Bars before the first complete feature row on a gap-free series."""
        registry = _registry()
        return max(registry[name].warmup for name in self.features)

    @property
    def min_history(self) -> int:
        """Bars live trading should pass to :func:`prepare_inputs` for its latest sample.

        The warm-up plus the memory of the recursive indicators plus one window: with at least
        this many bars the latest sample matches the one computed on the full history to ~1e-10.
        """
        registry = _registry()
        memory = max(registry[n].warmup + registry[n].memory for n in self.features)
        return memory + self.seq_len


class LabelSpec(BaseModel):
    """Parameters of the labels (see the module docstring for the exact rules).

    Attributes:
        horizon: future bars each label looks at, 2..4096.
        vol_window: log returns in ``sigma_t``, 2..10000.
        barrier_mult: barrier half-width in ``sigma_t * sqrt(horizon)``, (0, 20].
        min_barrier: smallest barrier half-width in log return, [0, 1) (e.g. 0.002 to cover
            fees; 0 keeps purely volatility-scaled barriers).
        high_vol_mult: forward volatility above this multiple of ``sigma_t`` is ``high_vol``,
            (0, 100].
        trend_threshold: forward log return beyond this multiple of ``sigma_t * sqrt(horizon)``
            is a trend, (0, 20].
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: int = Field(default=24, ge=2, le=4096)
    vol_window: int = Field(default=48, ge=2, le=10_000)
    barrier_mult: float = Field(default=1.5, gt=0.0, le=20.0)
    min_barrier: float = Field(default=0.0, ge=0.0, lt=1.0)
    high_vol_mult: float = Field(default=1.5, gt=0.0, le=100.0)
    trend_threshold: float = Field(default=0.5, gt=0.0, le=20.0)

    @property
    def warmup(self) -> int:
        """Leading bars without ``sigma_t`` (so without labels) on a gap-free series."""
        return self.vol_window
