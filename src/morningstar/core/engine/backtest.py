"""The typed entry point of the engine: validate, convert, run the kernel, package the result."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.engine import kernel as _k
from morningstar.core.engine._inputs import (
    EMPTY,
    KERNEL_ERRORS,
    bool_array,
    engine_params,
    float_array,
    stop_mode,
    timestamps_ns,
)
from morningstar.core.engine.result import EngineResult
from morningstar.core.engine.types import (
    TRADE_DTYPE,
    Costs,
    EngineInputError,
    EngineOptions,
    FractionSizing,
    OrderLimits,
    Sizing,
    Stops,
    VolTargetSizing,
    check_number,
)

__all__ = ["simulate"]


def _distance(
    name: str, values: npt.ArrayLike | None, fraction: float | None, n: int
) -> tuple[int, float, npt.NDArray[np.float64]]:
    """(mode, fraction, distances) of one stop rule."""
    mode, frac = stop_mode(name, values is not None, fraction)
    if values is None:
        return mode, frac, EMPTY
    arr = float_array(name, values, n)
    if np.any(arr <= 0.0) or np.any(np.isinf(arr)):
        raise EngineInputError(
            f"{name} holds a zero, negative or infinite distance",
            where=name,
            hint="distances are prices > 0; NaN means no stop for the trades signalled that bar",
        )
    return mode, frac, arr


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

    c = float_array("close", close, None)
    n = c.shape[0]
    if n == 0:
        raise EngineInputError("no bars to simulate", where="close")
    o = float_array("open", open_, n)
    h = float_array("high", high, n)
    lo = float_array("low", low, n)
    le = bool_array("long_entries", long_entries, (n,))
    lx = bool_array("long_exits", long_exits, (n,))
    se = bool_array("short_entries", short_entries, (n,))
    sx = bool_array("short_exits", short_exits, (n,))
    ts = timestamps_ns(timestamps, n)

    needs_vol = costs.vol_slippage_k > 0.0 or isinstance(sizing, VolTargetSizing)
    vol = EMPTY
    if volatility is not None:
        vol = float_array("volatility", volatility, n)
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

    params = engine_params(
        cash, costs, sizing, stops, limits, options,
        ((sl_mode, sl_frac), (tp_mode, tp_frac), (tr_mode, tr_frac)),
    )  # fmt: skip

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
            KERNEL_ERRORS[status],
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
