"""The typed entry point of the portfolio mode: several assets sharing one cash balance.

Validate, convert, run :func:`~morningstar.core.engine.portfolio_kernel.run_portfolio_kernel`,
package a :class:`~morningstar.core.engine.PortfolioEngineResult`. Semantics (missing bars, order
of exits and entries across assets, sizing on the total equity, free cash and shorts) are in
``docs/engine.md``, "Portfolio mode".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.engine import kernel as _k
from morningstar.core.engine import portfolio_kernel as _pk
from morningstar.core.engine._inputs import (
    KERNEL_ERRORS,
    bool_array,
    engine_params,
    stop_mode,
    timestamps_ns,
)
from morningstar.core.engine.result import PortfolioEngineResult
from morningstar.core.engine.types import (
    PORTFOLIO_TRADE_DTYPE,
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

__all__ = ["simulate_portfolio"]

F64_2D = npt.NDArray[np.float64]
_SIGNALS = ("long_entries", "long_exits", "short_entries", "short_exits")


def _matrix(name: str, values: npt.ArrayLike, shape: tuple[int, int] | None) -> F64_2D:
    """``values`` as a contiguous ``(n_bars, n_assets)`` float64 array."""
    try:
        arr = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EngineInputError(f"{name} is not numeric", where=name) from exc
    if arr.ndim != 2:
        raise EngineInputError(
            f"{name} must be two-dimensional (bars x assets), got shape {arr.shape}",
            where=name,
            hint="one column per asset, NaN where an asset has no bar",
        )
    if shape is not None and arr.shape != shape:
        raise EngineInputError(
            f"{name} has shape {arr.shape} for {shape[0]} bars x {shape[1]} assets",
            where=name,
            hint="align it with close",
        )
    return arr


def _asset_names(assets: Sequence[str] | None, close: object, m: int) -> tuple[str, ...]:
    if assets is None:
        if isinstance(close, pd.DataFrame):
            assets = [str(c) for c in close.columns]
        else:
            return tuple(f"asset_{j}" for j in range(m))
    names = tuple(assets)
    if len(names) != m:
        raise EngineInputError(
            f"{len(names)} asset names for {m} price columns", where="assets",
            hint="give one name per column of close",
        )  # fmt: skip
    for name in names:
        if not isinstance(name, str) or not name:
            raise EngineInputError(f"asset name {name!r} is not a non-empty string", where="assets")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise EngineInputError(f"asset {name!r} is given twice", where="assets")
        seen.add(name)
    return names


class _Where:
    """Formats the ``where`` of an error at an (asset, bar) cell."""

    def __init__(self, assets: tuple[str, ...], ts: npt.NDArray[np.int64] | None) -> None:
        self.assets = assets
        self.ts = ts

    def __call__(self, bar: int, asset: int, prefix: str = "") -> str:
        where = f"{prefix}asset {self.assets[asset]!r}, bar {bar}"
        if self.ts is not None:
            where += f" ({pd.Timestamp(int(self.ts[bar]), unit='ns', tz='UTC').isoformat()})"
        return where

    def first(self, mask: npt.NDArray[np.bool_]) -> tuple[int, int] | None:
        """``(bar, asset)`` of the first True cell in time order, or None."""
        if not mask.any():
            return None
        bar, asset = np.argwhere(mask)[0]
        return int(bar), int(asset)


def _distances(
    name: str,
    values: npt.ArrayLike | None,
    fraction: float | None,
    shape: tuple[int, int],
    where: _Where,
) -> tuple[int, float, F64_2D | None]:
    """(mode, fraction, distances) of one stop rule."""
    mode, frac = stop_mode(name, values is not None, fraction)
    if values is None:
        return mode, frac, None
    arr = _matrix(name, values, shape)
    bad = where.first((arr <= 0.0) | np.isinf(arr))
    if bad is not None:
        raise EngineInputError(
            f"{name} holds a zero, negative or infinite distance",
            where=where(*bad, prefix=f"{name} at "),
            hint="distances are prices > 0; NaN means no stop for the trades signalled that bar",
        )
    return mode, frac, arr


def simulate_portfolio(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    *,
    long_entries: npt.ArrayLike | None = None,
    long_exits: npt.ArrayLike | None = None,
    short_entries: npt.ArrayLike | None = None,
    short_exits: npt.ArrayLike | None = None,
    assets: Sequence[str] | None = None,
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
) -> PortfolioEngineResult:
    """Backtest several assets with one shared cash balance, from precomputed signals.

    Every array is ``(n_bars, n_assets)`` on the union of the assets' bar times: an asset with
    no bar at a time has NaN for its four prices there (no fill, no stop check; its position is
    marked at its last close) and no signal. Each asset follows the single-asset rules of
    :func:`~morningstar.core.engine.simulate` (fill timing, conflicts, reversals, stops, costs,
    end of data) on its own bars. Across assets, at each fill moment (an open with
    ``next_open`` timing, a close with ``close`` timing) every exit is filled before any entry,
    entries are filled in asset order, and each entry is sized on the total equity marked at
    that moment and capped by the free cash left (cash minus twice the entry notional of the
    open shorts: proceeds and collateral). See ``docs/engine.md``, "Portfolio mode".

    Args:
        open_, high, low, close: ``(n_bars, n_assets)`` prices; a missing bar is four NaN.
            A DataFrame ``close`` gives the asset names when ``assets`` is None.
        long_entries, long_exits, short_entries, short_exits: ``(n_bars, n_assets)`` boolean
            signals known at each bar's close; ``None`` = never. False where there is no bar.
        assets: one name per column (default: ``close``'s columns, or ``asset_0``, ...); the
            order is the order entries are filled in within a bar.
        timestamps: the bars' open times (union of the assets'), as for ``simulate``.
        init_cash: starting cash in quote currency, shared by every asset.
        costs, sizing, stops, limits, options: as for ``simulate``, applied to every asset;
            ``FractionSizing`` / ``VolTargetSizing`` are fractions of the total equity.
        volatility: ``(n_bars, n_assets)`` volatility estimates (fraction of price).
        stop_loss_dist, take_profit_dist, trailing_dist: ``(n_bars, n_assets)`` stop distances
            in price units, read at the entry's signal bar; NaN means no such stop.

    Returns:
        Equity, cash, positions and values per bar, and the trades with their asset.

    Raises:
        EngineInputError: an argument or a price is invalid (the message names the asset and
            the bar where it can).
    """
    costs = Costs() if costs is None else costs
    sizing = FractionSizing() if sizing is None else sizing
    stops = Stops() if stops is None else stops
    limits = OrderLimits() if limits is None else limits
    options = EngineOptions() if options is None else options
    cash = check_number("simulate_portfolio", "init_cash", init_cash, low_open=True)

    c = _matrix("close", close, None)
    n, m = c.shape
    if n == 0 or m == 0:
        raise EngineInputError(f"no bars or no assets to simulate (shape {c.shape})", where="close")
    names = _asset_names(assets, close, m)
    o = _matrix("open", open_, (n, m))
    h = _matrix("high", high, (n, m))
    lo = _matrix("low", low, (n, m))
    signals = {
        name: bool_array(name, values, (n, m))
        for name, values in zip(
            _SIGNALS, (long_entries, long_exits, short_entries, short_exits), strict=True
        )
    }
    ts = timestamps_ns(timestamps, n)
    where = _Where(names, ts)

    missing = np.isnan(c)
    for name, values in signals.items():
        bad = where.first(values & missing)
        if bad is not None:
            raise EngineInputError(
                f"{name} is set where the asset has no bar",
                where=where(*bad),
                hint="a signal needs the asset's bar: set it False where close is NaN",
            )

    needs_vol = costs.vol_slippage_k > 0.0 or isinstance(sizing, VolTargetSizing)
    vol = np.empty((0, m), dtype=np.float64)
    if volatility is not None:
        vol = _matrix("volatility", volatility, (n, m))
        bad = where.first((vol < 0.0) | np.isinf(vol))
        if bad is not None:
            raise EngineInputError(
                "volatility holds a negative or infinite value",
                where=where(*bad, prefix="volatility at "),
                hint="a per-bar volatility is a fraction >= 0; NaN marks an unknown estimate",
            )
    elif needs_vol:
        raise EngineInputError(
            "a volatility array is required by vol_slippage_k or VolTargetSizing",
            where="volatility",
            hint="pass e.g. the rolling standard deviation of bar returns, one column per asset",
        )

    rules = (
        _distances("stop_loss_dist", stop_loss_dist, stops.stop_loss, (n, m), where),
        _distances("take_profit_dist", take_profit_dist, stops.take_profit, (n, m), where),
        _distances("trailing_dist", trailing_dist, stops.trailing_stop, (n, m), where),
    )
    if any(arr is not None for _, _, arr in rules):
        stop_dist = np.full((n, m, 3), np.nan)
        for column, (_, _, arr) in enumerate(rules):
            if arr is not None:
                stop_dist[:, :, column] = arr
    else:
        stop_dist = np.empty((0, m, 3), dtype=np.float64)
    params = engine_params(
        cash, costs, sizing, stops, limits, options,
        ((rules[0][0], rules[0][1]), (rules[1][0], rules[1][1]), (rules[2][0], rules[2][1])),
    )  # fmt: skip

    # every trade starts with an entry signal: their count bounds the number of trades
    le, se = signals["long_entries"], signals["short_entries"]
    capacity = int(np.count_nonzero(le)) + int(np.count_nonzero(se)) + 1
    series = np.empty((2, n), dtype=np.float64)
    equity, cash_out = series[0], series[1]
    cells = np.empty((2, n, m), dtype=np.float64)
    position, value = cells[0], cells[1]
    table = np.empty((capacity, _k.T_COUNT), dtype=np.float64)
    trade_asset = np.empty(capacity, dtype=np.int64)
    n_skipped = np.zeros(m, dtype=np.int64)
    status, bad_bar, bad_asset, n_trades = _pk.run_portfolio_kernel(
        o, h, lo, c, le, signals["long_exits"], se, signals["short_exits"], vol, stop_dist,
        params, equity, cash_out, position, value, table, trade_asset, n_skipped,
    )  # fmt: skip
    if status == _pk.ERR_NO_BARS:
        raise EngineInputError(
            "the asset has no bar: every price is NaN",
            where=f"asset {names[bad_asset]!r}",
            hint="drop it or give it prices",
        )
    if status != _k.OK:
        message = KERNEL_ERRORS[status]
        if status == _k.ERR_NON_FINITE:
            message += " (a missing bar has all four prices NaN, a present one none)"
        raise EngineInputError(
            message,
            where=where(bad_bar, bad_asset),
            hint=(
                f"open={float(o[bad_bar, bad_asset])!r} high={float(h[bad_bar, bad_asset])!r} "
                f"low={float(lo[bad_bar, bad_asset])!r} close={float(c[bad_bar, bad_asset])!r}"
            ),
        )
    trades = np.empty(n_trades, dtype=PORTFOLIO_TRADE_DTYPE)
    trades["asset"] = trade_asset[:n_trades]
    for column, name in enumerate(_k.T_COLUMNS):
        trades[name] = table[:n_trades, column]
    if ts is None:  # no timestamps: times are bar numbers
        trades["entry_time"] = trades["entry_bar"]
        trades["exit_time"] = trades["exit_bar"]
    else:
        trades["entry_time"] = ts[trades["entry_bar"]]
        trades["exit_time"] = ts[trades["exit_bar"]]
    return PortfolioEngineResult(
        assets=names,
        equity=equity,
        cash=cash_out,
        position=position,
        value=value,
        trades=trades,
        has_bar=~missing,
        timestamps=ts,
        init_cash=cash,
        n_skipped=n_skipped,
        fill_timing=options.fill_timing,
    )
