"""Per-feature scaling fitted on the training window (private; public in ``model.features``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from morningstar.errors import UserInputError
from morningstar.model.specs import ScalerKind

__all__ = ["FeatureScaler", "ScalerKind"]

logger = logging.getLogger(__name__)

_KINDS: tuple[ScalerKind, ...] = ("robust", "standard")
_FORMAT = "morningstar.feature_scaler"
_VERSION = 1
# IQR of a standard normal distribution: robust scales are comparable with standard deviations
_IQR_NORMAL = 1.3489795003921634
_TINY = 1e-12


def _as_matrix(x: npt.ArrayLike, where: str, *, ndims: tuple[int, ...]) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserInputError(
            f"features are not numbers ({exc})", where=where, hint="pass a numeric array"
        ) from exc
    if arr.ndim not in ndims:
        shapes = " or ".join(f"{d}-D" for d in ndims)
        raise UserInputError(
            f"expected a {shapes} array (rows, features), got shape {arr.shape}",
            where=where,
            hint="pass the matrix returned by compute_features (one row per bar)",
        )
    return arr


def _check_clip(clip: float, where: str) -> float:
    value = float(clip)
    if not math.isfinite(value) or value <= 0.0:
        raise UserInputError(
            f"clip must be a finite number > 0, got {clip!r}", where=where, hint="e.g. clip=5.0"
        )
    return value


@dataclass(frozen=True, eq=False)
class FeatureScaler:
    """Centre and scale each feature column, then clip to ``[-clip, clip]``.

    ``robust``: centre = median, scale = interquartile range / 1.349 (the IQR of a standard normal,
    so that the scale of Gaussian data equals its standard deviation). ``standard``: centre = mean,
    scale = standard deviation (``ddof=0``). Statistics ignore NaN; a column that is constant or
    has no finite value gets scale 1 (and centre 0 when it has no finite value).

    Fit it on the training window only (:meth:`fit` uses exactly the rows it is given) and store
    it with the model (:meth:`to_dict`), so that backtest and live scale with the same numbers.

    Attributes:
        kind: ``"robust"`` or ``"standard"``.
        clip: scaled values are clipped to ``[-clip, clip]``.
        center: per-feature centre (float64, read-only).
        scale: per-feature scale, > 0 (float64, read-only).
    """

    kind: ScalerKind
    clip: float
    center: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        where = "FeatureScaler"
        if self.kind not in _KINDS:
            raise UserInputError(
                f"unknown scaler kind {self.kind!r}", where=where, hint="use robust or standard"
            )
        object.__setattr__(self, "clip", _check_clip(self.clip, where))
        center = np.array(self.center, dtype=np.float64).reshape(-1)
        scale = np.array(self.scale, dtype=np.float64).reshape(-1)
        if center.shape != scale.shape:
            raise UserInputError(
                f"center has {center.size} values but scale has {scale.size}", where=where
            )
        if not (np.all(np.isfinite(center)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise UserInputError(
                "center must be finite and scale finite and > 0",
                where=where,
                hint="refit the scaler with FeatureScaler.fit",
            )
        center.flags.writeable = False
        scale.flags.writeable = False
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", scale)

    @property
    def n_features(self) -> int:
        """Number of feature columns the scaler expects."""
        return int(self.center.size)

    @classmethod
    def fit(cls, x: npt.ArrayLike, kind: ScalerKind = "robust", clip: float = 5.0) -> FeatureScaler:
        """Fit the per-column statistics on the rows given (the training window only).

        Args:
            x: features, shape ``(rows, features)``; NaN is ignored column by column.
            kind: ``"robust"`` (median / IQR) or ``"standard"`` (mean / std).
            clip: bound of the scaled values, > 0.

        Returns:
            The fitted scaler.

        Raises:
            UserInputError: ``x`` is not 2-D, has no row, or contains ±inf; bad kind or clip.
        """
        where = "FeatureScaler.fit"
        arr = _as_matrix(x, where, ndims=(2,))
        if arr.shape[0] == 0:
            raise UserInputError(
                "no rows to fit on", where=where, hint="pass the training window's feature rows"
            )
        if np.isinf(arr).any():
            col = int(np.nonzero(np.isinf(arr).any(axis=0))[0][0])
            raise UserInputError(
                f"infinite value in column {col}",
                where=where,
                hint="features must be finite or NaN; check the input bars",
            )
        center = np.zeros(arr.shape[1])
        scale = np.ones(arr.shape[1])
        empty: list[int] = []
        for j in range(arr.shape[1]):  # one pass per feature column, not per bar
            col_values = arr[:, j]
            values = col_values[~np.isnan(col_values)]
            if values.size == 0:
                empty.append(j)
                continue
            if kind == "robust":
                q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
                center[j], spread = q50, (q75 - q25) / _IQR_NORMAL
            else:
                center[j], spread = values.mean(), values.std()
            scale[j] = spread if spread > _TINY * max(1.0, abs(center[j])) else 1.0
        if empty:
            logger.warning("scaler fitted with no finite value in column(s) %s", empty)
        return cls(kind=kind, clip=clip, center=center, scale=scale)

    def transform(self, x: npt.ArrayLike, *, allow_nan: bool = True) -> npt.NDArray[np.float32]:
        """Scale and clip features; NaN stays NaN (a missing value, not a number to clip).

        Args:
            x: shape ``(rows, features)`` or ``(samples, seq_len, features)``.
            allow_nan: when False a NaN is an error (use it where every value must be known).

        Returns:
            float32 array of the same shape: ``clip((x - center) / scale, -clip, clip)``.

        Raises:
            UserInputError: wrong number of dimensions or columns, ±inf, or NaN when not allowed.
        """
        where = "FeatureScaler.transform"
        arr = _as_matrix(x, where, ndims=(2, 3))
        if arr.shape[-1] != self.n_features:
            raise UserInputError(
                f"expected {self.n_features} feature columns, got {arr.shape[-1]}",
                where=where,
                hint="use the scaler fitted with the same FeatureSpec (features + alt columns)",
            )
        if np.isinf(arr).any():
            raise UserInputError(
                "infinite feature value",
                where=where,
                hint="features must be finite or NaN; check the input bars",
            )
        if not allow_nan and np.isnan(arr).any():
            raise UserInputError(
                f"{int(np.isnan(arr).any(axis=-1).sum())} row(s) contain NaN",
                where=where,
                hint="drop the warm-up rows or pass allow_nan=True",
            )
        scaled = (arr - self.center) / self.scale
        np.clip(scaled, -self.clip, self.clip, out=scaled)
        return scaled.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (floats round-trip exactly through ``json``)."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "kind": self.kind,
            "clip": self.clip,
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureScaler:
        """Rebuild a scaler from :meth:`to_dict`'s output.

        Raises:
            UserInputError: a key is missing, the format or version is unknown, or a value is bad.
        """
        where = "FeatureScaler.from_dict"
        missing = [k for k in ("kind", "clip", "center", "scale") if k not in data]
        if missing:
            raise UserInputError(
                f"missing key(s) {', '.join(missing)}",
                where=where,
                hint="pass the dict written by FeatureScaler.to_dict",
            )
        if data.get("format", _FORMAT) != _FORMAT or data.get("version", _VERSION) != _VERSION:
            raise UserInputError(
                f"unknown scaler format {data.get('format')!r} version {data.get('version')!r}",
                where=where,
                hint=f"expected {_FORMAT} version {_VERSION}",
            )
        try:
            center = np.asarray(data["center"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
            clip = float(data["clip"])
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"bad numbers ({exc})", where=where) from exc
        kind = str(data["kind"])
        if kind not in _KINDS:
            raise UserInputError(
                f"unknown scaler kind {kind!r}", where=where, hint="use robust or standard"
            )
        return cls(kind=kind, clip=clip, center=center, scale=scale)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureScaler):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.clip == other.clip
            and np.array_equal(self.center, other.center)
            and np.array_equal(self.scale, other.scale)
        )

    __hash__ = None  # type: ignore[assignment]
