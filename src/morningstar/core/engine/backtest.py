"""The typed entry point of the engine: validate, convert, run the kernel, package the result."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.engine import kernel as _k
from morningstar.core.engine.result import EngineResult
from morningstar.core.engine.types import (
    TRADE_DTYPE,
    Costs,
    EngineInputError,
    EngineOptions,
    FractionSizing,
    NotionalSizing,
    OrderLimits,
    Sizing,
    Stops,
    VolTargetSizing,
    check_number,
)

__all__ = ["simulate"]

_EMPTY = np.empty(0, dtype=np.float64)
_KERNEL_ERRORS = {
    _k.ERR_NON_FINITE: "a price is NaN or infinite",
    _k.ERR_NON_POSITIVE: "a price is zero or negative",
    _k.ERR_BAD_RANGE: "the bar is inconsistent: low must be <= open, close <= high",
}


def _float_array(name: str, values: npt.ArrayLike, n: int | None) -> npt.NDArray[np.float64]:
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


def _bool_array(name: str, values: npt.ArrayLike | None, n: int) -> npt.NDArray[np.bool_]:
    if values is None:
        return np.zeros(n, dtype=np.bool_)
    arr = np.asarray(values)
    if arr.dtype != np.bool_:
        raise EngineInputError(
            f"{name} must be a boolean array, got dtype {arr.dtype}",
            where=name,
            hint="pass e.g. (fast > slow) & (fast.shift() <= slow.shift()), with NaN as False",
        )
    if arr.shape != (n,):
        raise EngineInputError(f"{name} has shape {arr.shape} for {n} bars", where=name)
    return np.ascontiguousarray(arr)


def _timestamps(
    values: npt.ArrayLike | pd.DatetimeIndex | None, n: int
) -> npt.NDArray[np.int64] | None:
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


def _distance(
    name: str, values: npt.ArrayLike | None, fraction: float | None, n: int
) -> tuple[int, float, npt.NDArray[np.float64]]:
    """(mode, fraction, distances) of one stop rule."""
    if values is None:
        if fraction is None:
            return _k.STOP_NONE, 0.0, _EMPTY
        return _k.STOP_FRACTION, float(fraction), _EMPTY
    if fraction is not None:
        raise EngineInputError(
            f"{name} is given both as a fraction (Stops) and as per-bar distances",
            where=name,
            hint="choose one of the two forms",
        )
    arr = _float_array(name, values, n)
    if np.any(arr <= 0.0) or np.any(np.isinf(arr)):
        raise EngineInputError(
            f"{name} holds a zero, negative or infinite distance",
            where=name,
            hint="distances are prices > 0; NaN means no stop for the trades signalled that bar",
        )
    return _k.STOP_DISTANCE, 0.0, arr


def simulate(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    *,
    long_entries: npt.ArrayLike | None = None,
    long_exits: npt.ArrayLike | None = None,
    short_entries: npt.ArrayLike | None = None,
    short_exits: npt.ArrayLike | None = None,
    timestamps: npt.ArrayLike | pd.DatetimeIndex | None = None,
    init_cash: float = 10_000.0,
    costs: Costs | None = None,
    sizing: Sizing | None = None,
    stops: Stops | None = None,
    limits: OrderLimits | None = None,
    options: EngineOptions | None = None,
    volatility: npt.ArrayLike | None = None,
    stop_loss_dist: npt.ArrayLike | None = None,
    take_profit_dist: npt.ArrayLike | None = None,
    trailing_dist: npt.ArrayLike | None = None,
) -> EngineResult:
    """Backtest one asset from precomputed signals.

    Signals are known at the close of their bar. With the default ``next_open`` timing a signal
    on bar t fills at the open of bar t+1; with ``EngineOptions(fill_timing="close")`` it fills
    at the close of bar t. An exit signal or an opposite entry closes the position; an opposite
    entry then opens the reverse position at the same price. Entry and exit of the same side on
    one bar, or long and short entries on one bar, cancel each other. See ``docs/engine.md``.

    Args:
        open_, high, low, close: bar prices (finite, > 0, ``low <= open, close <= high``).
        long_entries, long_exits, short_entries, short_exits: boolean arrays; ``None`` = never.
        timestamps: bar open times (int64 epoch ns UTC, datetime64 or a DatetimeIndex), used for
            the trade times and the pandas index; bar numbers when ``None``.
        init_cash: starting cash in quote currency.
        costs: fees and slippage (default: none).
        sizing: ``FractionSizing`` (default: all the equity), ``NotionalSizing`` or
            ``VolTargetSizing``; always capped by the cash available, fees included.
        stops: stop-loss / take-profit / trailing stop as fractions of the entry price.
        limits: minimum size, minimum notional and quantity step.
        options: fill timing and end-of-data handling.
        volatility: per-bar volatility estimate (fraction of price, e.g. rolling std of
            returns) known at each bar's close; needed by ``vol_slippage_k`` and vol targeting.
        stop_loss_dist, take_profit_dist, trailing_dist: per-bar stop distances in price units
            (e.g. 2 × ATR), read at the entry's signal bar; NaN means no such stop for that trade.

    Returns:
        The equity curve, the position series and the trades (see :class:`EngineResult`).

    Raises:
        EngineInputError: an argument or a price is invalid (the message names it).
    """
    costs = Costs() if costs is None else costs
    sizing = FractionSizing() if sizing is None else sizing
    stops = Stops() if stops is None else stops
    limits = OrderLimits() if limits is None else limits
    options = EngineOptions() if options is None else options
    cash = check_number("simulate", "init_cash", init_cash, low_open=True)

    c = _float_array("close", close, None)
    n = c.shape[0]
    if n == 0:
        raise EngineInputError("no bars to simulate", where="close")
    o = _float_array("open", open_, n)
    h = _float_array("high", high, n)
    lo = _float_array("low", low, n)
    le = _bool_array("long_entries", long_entries, n)
    lx = _bool_array("long_exits", long_exits, n)
    se = _bool_array("short_entries", short_entries, n)
    sx = _bool_array("short_exits", short_exits, n)
    ts = _timestamps(timestamps, n)

    if isinstance(sizing, FractionSizing):
        size_mode, size_value, size_cap = _k.SIZE_FRACTION, sizing.fraction, 1.0
    elif isinstance(sizing, NotionalSizing):
        size_mode, size_value, size_cap = _k.SIZE_NOTIONAL, sizing.notional, 1.0
    elif isinstance(sizing, VolTargetSizing):
        size_mode, size_value = _k.SIZE_VOL_TARGET, sizing.target_per_bar
        size_cap = sizing.max_fraction
    else:
        raise EngineInputError(
            f"unknown sizing {sizing!r}",
            where="sizing",
            hint="use FractionSizing, NotionalSizing or VolTargetSizing",
        )

    needs_vol = costs.vol_slippage_k > 0.0 or isinstance(sizing, VolTargetSizing)
    vol = _EMPTY
    if volatility is not None:
        vol = _float_array("volatility", volatility, n)
        if np.any(vol < 0.0) or np.any(np.isinf(vol)):
            raise EngineInputError(
                "volatility holds a negative or infinite value",
                where="volatility",
                hint="a per-bar volatility is a fraction >= 0; NaN marks an unknown estimate",
            )
    elif needs_vol:
        raise EngineInputError(
            "a volatility array is required by vol_slippage_k or VolTargetSizing",
            where="volatility",
            hint="pass e.g. the rolling standard deviation of bar returns",
        )

    sl_mode, sl_frac, sl_arr = _distance("stop_loss_dist", stop_loss_dist, stops.stop_loss, n)
    tp_mode, tp_frac, tp_arr = _distance("take_profit_dist", take_profit_dist, stops.take_profit, n)
    tr_mode, tr_frac, tr_arr = _distance("trailing_dist", trailing_dist, stops.trailing_stop, n)
    if _k.STOP_DISTANCE in (sl_mode, tp_mode, tr_mode):
        stop_dist = np.full((n, 3), np.nan)
        for column, (mode, arr) in enumerate(
            ((sl_mode, sl_arr), (tp_mode, tp_arr), (tr_mode, tr_arr))
        ):
            if mode == _k.STOP_DISTANCE:
                stop_dist[:, column] = arr
    else:
        stop_dist = np.empty((0, 3), dtype=np.float64)

    params = np.zeros(_k.P_COUNT, dtype=np.float64)
    params[_k.P_INIT_CASH] = cash
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

    # every trade starts with an entry signal: their count bounds the number of trades
    capacity = int(np.count_nonzero(le)) + int(np.count_nonzero(se)) + 1
    # one allocation for both series: two large ones in a row make glibc give memory back to
    # the OS and fault it in again on every call (measured: +3 ms per million bars)
    series = np.empty((2, n), dtype=np.float64)
    equity, position = series[0], series[1]
    table = np.empty((capacity, _k.T_COUNT), dtype=np.float64)
    status, bad_bar, n_trades, n_skipped = _k.run_kernel(
        o, h, lo, c, le, lx, se, sx, vol, stop_dist, params, equity, position, table
    )
    if status != _k.OK:
        where = f"bar {bad_bar}"
        if ts is not None:
            where += f" ({pd.Timestamp(int(ts[bad_bar]), unit='ns', tz='UTC').isoformat()})"
        raise EngineInputError(
            _KERNEL_ERRORS[status],
            where=where,
            hint=(
                f"open={float(o[bad_bar])!r} high={float(h[bad_bar])!r} "
                f"low={float(lo[bad_bar])!r} close={float(c[bad_bar])!r}"
            ),
        )
    trades = np.empty(n_trades, dtype=TRADE_DTYPE)
    for column, name in enumerate(_k.T_COLUMNS):
        trades[name] = table[:n_trades, column]
    if ts is None:  # no timestamps: times are bar numbers
        trades["entry_time"] = trades["entry_bar"]
        trades["exit_time"] = trades["exit_bar"]
    else:
        trades["entry_time"] = ts[trades["entry_bar"]]
        trades["exit_time"] = ts[trades["exit_bar"]]
    return EngineResult(
        equity=equity,
        position=position,
        trades=trades,
        timestamps=ts,
        init_cash=cash,
        n_skipped=n_skipped,
        fill_timing=options.fill_timing,
    )
