"""Input conversion shared by the single-asset and the portfolio entry points.

Arrays are checked and converted to the contiguous dtypes the kernels expect; the settings
dataclasses are packed into the kernels' float64 parameter array (``P_*`` indices). Every
problem is an :class:`EngineInputError` naming the argument.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.engine import kernel as _k
from morningstar.core.engine.types import (
    Costs,
    EngineInputError,
    EngineOptions,
    FractionSizing,
    NotionalSizing,
    OrderLimits,
    Sizing,
    Stops,
    VolTargetSizing,
)

__all__ = [
    "EMPTY",
    "KERNEL_ERRORS",
    "bool_array",
    "engine_params",
    "float_array",
    "stop_mode",
    "timestamps_ns",
]

EMPTY = np.empty(0, dtype=np.float64)
#: Message of each price error code of the kernels.
KERNEL_ERRORS = {
    _k.ERR_NON_FINITE: "a price is NaN or infinite",
    _k.ERR_NON_POSITIVE: "a price is zero or negative",
    _k.ERR_BAD_RANGE: "the bar is inconsistent: low must be <= open, close <= high",
}


def float_array(name: str, values: npt.ArrayLike, n: int | None) -> npt.NDArray[np.float64]:
    """``values`` as a contiguous one-dimensional float64 array of ``n`` values (any when None)."""
    try:
        arr = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EngineInputError(f"{name} is not numeric", where=name) from exc
    if arr.ndim != 1:
        raise EngineInputError(f"{name} must be one-dimensional, got shape {arr.shape}", where=name)
    if n is not None and arr.shape[0] != n:
        raise EngineInputError(
            f"{name} has {arr.shape[0]} values for {n} bars", where=name, hint="align it with close"
        )
    return arr


def bool_array(
    name: str, values: npt.ArrayLike | None, shape: tuple[int, ...]
) -> npt.NDArray[np.bool_]:
    """``values`` as a contiguous boolean array of ``shape`` (all False when None)."""
    if values is None:
        return np.zeros(shape, dtype=np.bool_)
    arr = np.asarray(values)
    if arr.dtype != np.bool_:
        raise EngineInputError(
            f"{name} must be a boolean array, got dtype {arr.dtype}",
            where=name,
            hint="pass e.g. (fast > slow) & (fast.shift() <= slow.shift()), with NaN as False",
        )
    if arr.shape != shape:
        bars = f"{shape[0]} bars" if len(shape) == 1 else f"{shape[0]} bars x {shape[1]} assets"
        raise EngineInputError(f"{name} has shape {arr.shape} for {bars}", where=name)
    return np.ascontiguousarray(arr)


def timestamps_ns(
    values: npt.ArrayLike | pd.DatetimeIndex | None, n: int
) -> npt.NDArray[np.int64] | None:
    """Bar times as int64 epoch nanoseconds (UTC), or None."""
    if values is None:
        return None
    if isinstance(values, pd.Series | pd.Index) and isinstance(
        values.dtype, pd.DatetimeTZDtype | np.dtypes.DateTime64DType
    ):
        values = pd.DatetimeIndex(values)
    if isinstance(values, pd.DatetimeIndex):
        index = values.tz_convert("UTC") if values.tz is not None else values
        arr = np.asarray(index.as_unit("ns").asi8, dtype=np.int64)
    else:
        raw = np.asarray(values)
        if np.issubdtype(raw.dtype, np.datetime64):
            arr = raw.astype("datetime64[ns]").view(np.int64)
        elif np.issubdtype(raw.dtype, np.integer):
            arr = raw.astype(np.int64)
        else:
            raise EngineInputError(
                f"timestamps must be int64 epoch nanoseconds or datetime64, got {raw.dtype}",
                where="timestamps",
            )
    if arr.shape != (n,):
        raise EngineInputError(f"timestamps has shape {arr.shape} for {n} bars", where="timestamps")
    return np.ascontiguousarray(arr)


def stop_mode(name: str, given: bool, fraction: float | None) -> tuple[int, float]:
    """``(mode, fraction)`` of one stop rule, given as per-bar distances (``given``) or as a
    fraction of the entry price (``Stops``), never both."""
    if not given:
        if fraction is None:
            return _k.STOP_NONE, 0.0
        return _k.STOP_FRACTION, float(fraction)
    if fraction is not None:
        raise EngineInputError(
            f"{name} is given both as a fraction (Stops) and as per-bar distances",
            where=name,
            hint="choose one of the two forms",
        )
    return _k.STOP_DISTANCE, 0.0


def _size_settings(sizing: Sizing) -> tuple[int, float, float]:
    """``(mode, value, cap)`` of a sizing rule."""
    if isinstance(sizing, FractionSizing):
        return _k.SIZE_FRACTION, sizing.fraction, 1.0
    if isinstance(sizing, NotionalSizing):
        return _k.SIZE_NOTIONAL, sizing.notional, 1.0
    if isinstance(sizing, VolTargetSizing):
        return _k.SIZE_VOL_TARGET, sizing.target_per_bar, sizing.max_fraction
    raise EngineInputError(
        f"unknown sizing {sizing!r}",
        where="sizing",
        hint="use FractionSizing, NotionalSizing or VolTargetSizing",
    )


def engine_params(
    init_cash: float,
    costs: Costs,
    sizing: Sizing,
    stops: Stops,
    limits: OrderLimits,
    options: EngineOptions,
    stop_modes: tuple[tuple[int, float], tuple[int, float], tuple[int, float]],
) -> npt.NDArray[np.float64]:
    """The kernels' parameter array (``P_*`` indices) from the validated settings.

    ``stop_modes`` holds the ``(mode, fraction)`` of the stop-loss, the take-profit and the
    trailing stop (:func:`stop_mode`).
    """
    size_mode, size_value, size_cap = _size_settings(sizing)
    (sl_mode, sl_frac), (tp_mode, tp_frac), (tr_mode, tr_frac) = stop_modes
    params = np.zeros(_k.P_COUNT, dtype=np.float64)
    params[_k.P_INIT_CASH] = init_cash
    params[_k.P_FEE_RATE] = costs.fee_bps / 1e4
    params[_k.P_SLIP_FIXED] = costs.slippage_bps / 1e4
    params[_k.P_SLIP_K] = costs.vol_slippage_k
    params[_k.P_SIZE_MODE] = size_mode
    params[_k.P_SIZE_VALUE] = size_value
    params[_k.P_SIZE_CAP] = size_cap
    params[_k.P_MIN_SIZE] = limits.min_size
    params[_k.P_MIN_NOTIONAL] = limits.min_notional
    params[_k.P_QTY_STEP] = limits.qty_step
    params[_k.P_SL_MODE] = sl_mode
    params[_k.P_SL_FRAC] = sl_frac
    params[_k.P_TP_MODE] = tp_mode
    params[_k.P_TP_FRAC] = tp_frac
    params[_k.P_TRAIL_MODE] = tr_mode
    params[_k.P_TRAIL_FRAC] = tr_frac
    params[_k.P_TARGET_FIRST] = stops.intrabar == "target_first"
    params[_k.P_FILL_AT_CLOSE] = options.fill_timing == "close"
    params[_k.P_CLOSE_AT_END] = options.close_at_end
    return params
