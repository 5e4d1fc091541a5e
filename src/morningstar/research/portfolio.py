"""``backtest_portfolio()``: several assets' DataFrames in, a :class:`PortfolioResult` out.

The portfolio counterpart of :func:`morningstar.research.backtest`: one strategy runs on every
asset (on that asset's own bars, so its signals stay point-in-time), and the engine's portfolio
mode (:func:`morningstar.core.engine.simulate_portfolio`, semantics in ``docs/engine.md``,
"Portfolio mode") trades them all from one shared cash balance on the union of their bar times.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.engine import (
    Costs,
    EngineOptions,
    FractionSizing,
    OrderLimits,
    PortfolioEngineResult,
    Sizing,
    Stops,
    simulate_portfolio,
)
from morningstar.core.engine._inputs import bool_array, float_array
from morningstar.core.metrics import periods_per_year, summary
from morningstar.core.timeframe import Timeframe
from morningstar.data.ohlcv import to_contract
from morningstar.errors import StrategyError, UserInputError
from morningstar.research.backtest import require_solvent, resolve_strategy, resolve_timeframe
from morningstar.strategies import Bars, ParamValue, Signals, Strategy

__all__ = ["PortfolioResult", "backtest_portfolio"]


@dataclass(frozen=True)
class PortfolioResult:
    """A finished portfolio backtest.

    Attributes:
        strategy: strategy name.
        assets: the asset names, in the order entries are filled within a bar.
        params: the resolved parameters of each asset.
        trades: one row per trade, the single-asset trade columns after an ``asset`` column.
        equity: total account value (cash + positions at their last close) at each bar.
        cash: the shared cash at each bar.
        positions: signed quantity held at each bar's close, one column per asset.
        values: position × the asset's last close, one column per asset.
        metrics: :func:`morningstar.core.metrics.summary` of the total equity (exposure: bars
            with any position) plus ``final_equity``, ``open_trades`` and ``skipped_entries``.
        per_asset: one row per asset: ``bars``, ``trade_count``, ``open_trades``, ``pnl``,
            ``realized_pnl``, ``fees``, ``win_rate``, ``exposure``, ``final_value``,
            ``skipped`` (see :meth:`PortfolioEngineResult.breakdown`) and ``contribution``
            (``pnl`` as a fraction of the initial cash; they add up to the total return).
        bars: each asset's bars.
        signals: each asset's strategy signals (on its own bars).
        engine: the raw engine result (arrays).
        settings: costs, sizing, stops, limits and options as plain values.
    """

    strategy: str
    assets: tuple[str, ...]
    params: dict[str, dict[str, ParamValue]]
    trades: pd.DataFrame
    equity: pd.Series
    cash: pd.Series
    positions: pd.DataFrame
    values: pd.DataFrame
    metrics: dict[str, float]
    per_asset: pd.DataFrame
    bars: dict[str, pd.DataFrame] = field(repr=False)
    signals: dict[str, Signals] = field(repr=False)
    engine: PortfolioEngineResult = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: strategy, assets, params, settings, period, metrics and the
        per-asset breakdown (NaN/inf as strings)."""
        index = self.equity.index
        per_asset = {
            str(asset): {str(k): _clean(v) for k, v in row.items()}
            for asset, row in self.per_asset.to_dict(orient="index").items()
        }
        return {
            "strategy": self.strategy,
            "assets": list(self.assets),
            "params": self.params,
            "settings": self.settings,
            "period": [str(index[0]), str(index[-1])] if len(index) else None,
            "metrics": {k: _clean(v) for k, v in self.metrics.items()},
            "per_asset": per_asset,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, default=str)


def _clean(value: object) -> object:
    """A JSON-safe scalar: numpy numbers as Python numbers, NaN/inf as strings."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _asset_params(
    strat: Strategy, params: Mapping[str, object] | None, assets: tuple[str, ...]
) -> dict[str, dict[str, ParamValue]]:
    """Each asset's resolved parameters: one mapping for all, or one mapping per asset."""
    if not params:
        shared = strat.resolve(None)
        return {asset: dict(shared) for asset in assets}
    nested = [isinstance(v, Mapping) for v in params.values()]
    if all(nested):
        for key in params:
            if key not in assets:
                close = difflib.get_close_matches(str(key), assets, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"assets: {', '.join(assets)}"
                raise UserInputError(f"parameters for unknown asset {key!r}", where="params",
                                     hint=hint)  # fmt: skip
        out: dict[str, dict[str, ParamValue]] = {}
        for asset in assets:
            given = params.get(asset)
            try:
                out[asset] = strat.resolve(given if isinstance(given, Mapping) else None)
            except StrategyError as exc:
                where = f"{exc.where} for {asset}" if exc.where else asset
                raise StrategyError(exc.message, where=where, hint=exc.hint) from None
        return out
    if any(nested):
        raise UserInputError(
            "params mixes per-asset mappings and parameter values",
            where="params",
            hint="pass {'fast': 10} for every asset, or {'BTC/USDT': {'fast': 10}, ...}",
        )
    shared = strat.resolve(params)
    return {asset: dict(shared) for asset in assets}


def _scatter(
    name: str,
    values: npt.ArrayLike | None,
    rows: npt.NDArray[np.intp] | slice,
    out: npt.NDArray[Any],
    column: int,
    asset: str,
) -> None:
    """Check one asset's per-bar ``values`` and write them into ``out[rows, column]``.

    ``values`` must have one value per bar of the asset's own data, and be boolean when
    ``out`` is (a NaN cast to bool would be True and open a trade). None is skipped.
    """
    if values is None:
        return
    where = f"{name} of {asset}"
    n = out.shape[0] if isinstance(rows, slice) else rows.shape[0]
    if out.dtype == np.bool_:
        out[rows, column] = bool_array(where, values, (n,))
    else:
        out[rows, column] = float_array(where, values, n)


def _union(indexes: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    """The sorted union of sorted, unique epoch-nanosecond arrays."""
    first = indexes[0]
    if all(ix.shape == first.shape and np.array_equal(ix, first) for ix in indexes[1:]):
        return first
    merged = np.sort(np.concatenate(indexes), kind="stable")  # merges the sorted runs
    keep = np.empty(merged.shape[0], dtype=np.bool_)
    keep[0] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


def _settings(obj: object) -> dict[str, Any]:
    return {"type": type(obj).__name__, **asdict(obj)}  # type: ignore[call-overload]


def backtest_portfolio(
    data: Mapping[str, pd.DataFrame],
    strategy: str | type[Strategy] | Strategy,
    params: Mapping[str, object] | None = None,
    *,
    costs: Costs | None = None,
    sizing: Sizing | None = None,
    stops: Stops | None = None,
    limits: OrderLimits | None = None,
    options: EngineOptions | None = None,
    init_cash: float = 10_000.0,
    timeframe: str | Timeframe | None = None,
    calendar: str = "crypto",
    volatility: Mapping[str, npt.ArrayLike] | None = None,
) -> PortfolioResult:
    """Backtest ``strategy`` on several assets sharing one cash balance.

    The strategy computes each asset's signals on that asset's own bars; the engine then runs
    on the union of the bar times (an asset without a bar at a time does not trade then and is
    marked at its last close). At each fill moment every exit comes before any entry, and
    entries are filled in the order of ``data``'s keys. ``FractionSizing(f)`` invests ``f`` of
    the total equity per entry, capped by the free cash: for ``N`` assets, ``1 / N`` is an
    equal-weight portfolio (the default sizing invests everything, i.e. in the first asset to
    signal).

    Args:
        data: asset name → OHLCV bars (the contract of :mod:`morningstar.data.ohlcv`).
        strategy: a built-in name (``"ema_cross"``), ``"file.py:Class"``, a class or an instance.
        params: one parameter mapping for every asset (``{"fast": 10}``), or one per asset
            (``{"BTC/USDT": {"fast": 10}, "ETH/USDT": {"fast": 20}}``; an asset left out gets
            the defaults).
        costs, sizing, stops, limits, options: engine settings, applied to every asset.
        init_cash: starting cash, shared by every asset.
        timeframe: bar timeframe for annualisation (default: the most common step of the
            union of the bar times).
        calendar: ``crypto``, ``forex``, ``cme`` or ``equity`` (annualisation).
        volatility: asset → per-bar volatility (fraction of price) on that asset's bars, for
            vol-scaled slippage / vol-target sizing; one series for every asset.

    Returns:
        A :class:`PortfolioResult`.

    Raises:
        StrategyError: unknown strategy or bad parameters (one line, naming the asset).
        UserInputError: bad data, asset names or engine settings.
    """
    if not isinstance(data, Mapping) or not data:
        raise UserInputError(
            "no assets to backtest", where="portfolio data",
            hint="pass a mapping of asset name to OHLCV DataFrame",
        )  # fmt: skip
    assets = tuple(str(name) for name in data)
    if len(set(assets)) != len(assets):
        raise UserInputError("two assets have the same name", where="portfolio data")
    frames: dict[str, pd.DataFrame] = {}
    for asset, frame in zip(assets, data.values(), strict=True):
        where = f"portfolio data[{asset!r}]"
        bars_df = to_contract(frame, where=where)
        if len(bars_df) < 2:
            raise UserInputError("need at least 2 bars to backtest", where=where)
        if not bool((np.diff(pd.DatetimeIndex(bars_df.index).asi8) > 0).all()):
            raise UserInputError(
                "bars are not strictly increasing", where=where,
                hint="validate the data first (`morningstar data check`)",
            )  # fmt: skip
        frames[asset] = bars_df
    if volatility is not None:
        unknown = [key for key in volatility if key not in frames]
        if unknown:
            raise UserInputError(f"volatility for unknown asset {unknown[0]!r}",
                                 where="volatility")  # fmt: skip
        missing = [asset for asset in assets if asset not in volatility]
        if missing:
            raise UserInputError(
                f"no volatility for asset {missing[0]!r}", where="volatility",
                hint="give one per-bar volatility series for every asset",
            )  # fmt: skip
    strat = resolve_strategy(strategy)
    resolved = _asset_params(strat, params, assets)

    times = _union([pd.DatetimeIndex(f.index).asi8 for f in frames.values()])
    index = pd.DatetimeIndex(times.view("M8[ns]"), name="timestamp").tz_localize("UTC")
    n, m = times.shape[0], len(assets)
    prices = {col: np.full((n, m), np.nan) for col in ("open", "high", "low", "close")}
    flags = {name: np.zeros((n, m), dtype=np.bool_) for name in
             ("long_entries", "long_exits", "short_entries", "short_exits")}  # fmt: skip
    # per-bar stop distances, allocated when a strategy gives some (NaN: no stop)
    distances: dict[str, npt.NDArray[np.float64]] = {}
    vol = np.full((n, m), np.nan) if volatility is not None else None
    signals: dict[str, Signals] = {}
    for j, (asset, bars_df) in enumerate(frames.items()):
        own = pd.DatetimeIndex(bars_df.index).asi8
        rows: npt.NDArray[np.intp] | slice = (
            slice(None) if own.shape == times.shape else np.searchsorted(times, own)
        )
        arrays = {c: bars_df[c].to_numpy(dtype=np.float64) for c in bars_df.columns}
        bars = Bars(arrays["open"], arrays["high"], arrays["low"], arrays["close"],
                    arrays["volume"])  # fmt: skip
        sig = strat.signals(bars, resolved[asset])
        signals[asset] = sig
        for col, matrix in prices.items():
            matrix[rows, j] = arrays[col]
        for name, matrix in flags.items():
            _scatter(name, getattr(sig, name), rows, matrix, j, asset)
        for name, values in (("stop_loss_dist", sig.stop_distance),
                             ("take_profit_dist", sig.target_distance)):  # fmt: skip
            if values is not None:
                matrix = distances.setdefault(name, np.full((n, m), np.nan))
                _scatter(name, values, rows, matrix, j, asset)
        if vol is not None and volatility is not None:
            _scatter("volatility", volatility[asset], rows, vol, j, asset)

    result = simulate_portfolio(
        prices["open"], prices["high"], prices["low"], prices["close"],
        **flags, assets=assets, timestamps=index, init_cash=init_cash, costs=costs,
        sizing=sizing, stops=stops, limits=limits, options=options, volatility=vol,
        stop_loss_dist=distances.get("stop_loss_dist"),
        take_profit_dist=distances.get("take_profit_dist"),
    )  # fmt: skip
    require_solvent(
        result.equity, index, f"portfolio backtest {strat.name or type(strat).__name__}"
    )
    frames_out = result.to_pandas(index)
    tf = resolve_timeframe(timeframe, index)
    closed = result.closed_trades
    metrics = summary(
        result.equity,
        closed["pnl"] if len(closed) else np.empty(0),
        np.abs(result.value).sum(axis=1),  # exposure: bars with any position
        periods_per_year(tf, calendar),
    )
    metrics["final_equity"] = result.final_equity
    metrics["open_trades"] = float(result.n_trades - len(closed))
    metrics["skipped_entries"] = float(result.n_skipped.sum())
    per_asset = result.breakdown()
    per_asset["contribution"] = per_asset["pnl"] / result.init_cash
    settings = {
        "init_cash": init_cash,
        "timeframe": str(tf),
        "calendar": calendar,
        "costs": _settings(costs or Costs()),
        "sizing": _settings(sizing or FractionSizing()),
        "stops": _settings(stops or Stops()),
        "limits": _settings(limits or OrderLimits()),
        "options": _settings(options or EngineOptions()),
    }
    return PortfolioResult(
        strategy=strat.name or type(strat).__name__,
        assets=assets,
        params=resolved,
        trades=frames_out.trades,
        equity=frames_out.equity,
        cash=frames_out.cash,
        positions=frames_out.position,
        values=frames_out.value,
        metrics=metrics,
        per_asset=per_asset,
        bars=frames,
        signals=signals,
        engine=result,
        settings=settings,
    )
