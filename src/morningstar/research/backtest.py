"""``backtest()``: DataFrame in, :class:`Result` with trades, equity and metrics out.

The public research API that the CLI, the strategist agent and the trading workflow call. It joins
a strategy (typed parameters, point-in-time signals), the engine (``morningstar.core.engine``,
semantics in ``docs/engine.md``) and the metrics (``morningstar.core.metrics``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from morningstar.core.engine import (
    Costs,
    EngineOptions,
    EngineResult,
    OrderLimits,
    Sizing,
    Stops,
    simulate,
)
from morningstar.core.metrics import periods_per_year, summary
from morningstar.core.timeframe import Timeframe, parse_timeframe
from morningstar.data.csv_import import timeframe_from_steps
from morningstar.data.ohlcv import to_contract
from morningstar.errors import UserInputError
from morningstar.strategies import Bars, ParamValue, Signals, Strategy, resolve_strategy

__all__ = ["Result", "backtest", "require_solvent", "resolve_strategy", "resolve_timeframe"]


@dataclass(frozen=True)
class Result:
    """A finished backtest.

    Attributes:
        strategy: strategy name.
        params: the resolved parameters.
        trades: one row per trade (entry/exit time and price, size, fees, P&L, return, exit reason).
        equity: account value at each bar's close.
        position: signed quantity held at each bar's close.
        metrics: :func:`morningstar.core.metrics.summary` keys plus ``final_equity``.
        bars: the bars the backtest ran on.
        signals: the strategy's signals (with its indicators, for reports).
        engine: the raw engine result (arrays).
        settings: costs, sizing, stops and options as plain values (for saving and comparing).
    """

    strategy: str
    params: dict[str, ParamValue]
    trades: pd.DataFrame
    equity: pd.Series
    position: pd.Series
    metrics: dict[str, float]
    bars: pd.DataFrame = field(repr=False)
    signals: Signals = field(repr=False)
    engine: EngineResult = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: strategy, params, settings and metrics (NaN/inf as strings)."""

        def clean(v: float) -> float | str:
            return v if math.isfinite(v) else str(v)

        return {
            "strategy": self.strategy,
            "params": self.params,
            "settings": self.settings,
            "period": [str(self.bars.index[0]), str(self.bars.index[-1])]
            if len(self.bars)
            else None,
            "metrics": {k: clean(float(v)) for k, v in self.metrics.items()},
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_html(self, title: str | None = None) -> str:
        """A self-contained HTML report (Plotly): price with trades, equity, drawdown, monthly
        returns heatmap and the metrics table."""
        from morningstar.research.report import render_html

        return render_html(self, title=title)


def backtest(
    data: pd.DataFrame,
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
    volatility: np.ndarray | None = None,
) -> Result:
    """Backtest ``strategy`` on ``data`` (one asset).

    Args:
        data: OHLCV bars (the contract of :mod:`morningstar.data.ohlcv`; strictly increasing).
        strategy: a built-in name (``"ema_cross"``), ``"file.py:Class"``, a class or an instance.
        params: strategy parameters (checked against the declared bounds).
        costs: fees and slippage, e.g. ``Costs(fee_bps=10)`` for 0.1 %.
        sizing: fraction of equity (default: all of it), fixed notional or volatility target.
        stops: stop-loss / take-profit / trailing stop as fractions of the entry price; a
            strategy's own ``stop_distance`` / ``target_distance`` arrays are used as well.
        limits: minimum size / notional and quantity step.
        options: fill timing (next open by default) and end-of-data handling.
        init_cash: starting cash.
        timeframe: bar timeframe for annualisation (default: inferred from the index).
        calendar: ``crypto``, ``forex``, ``cme`` or ``equity`` (annualisation).
        volatility: per-bar volatility (fraction of price) for vol-scaled slippage / sizing.

    Returns:
        A :class:`Result`.

    Raises:
        StrategyError: unknown strategy or bad parameters (one line, with a hint).
        UserInputError: bad data or engine settings.
    """
    bars_df = to_contract(data, where="backtest data")
    if len(bars_df) < 2:
        raise UserInputError("need at least 2 bars to backtest", where="backtest data")
    index = pd.DatetimeIndex(bars_df.index)
    steps = np.diff(index.asi8)  # the contract's index is UTC nanoseconds
    if not bool((steps > 0).all()):
        raise UserInputError(
            "bars are not strictly increasing",
            where="backtest data",
            hint="validate the data first (`morningstar data check`)",
        )
    strat = resolve_strategy(strategy)
    resolved = strat.resolve(params)
    arrays = {c: bars_df[c].to_numpy(dtype=np.float64) for c in bars_df.columns}
    bars = Bars(arrays["open"], arrays["high"], arrays["low"], arrays["close"], arrays["volume"])
    sig = strat.signals(bars, resolved)
    result = simulate(
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        long_entries=sig.long_entries,
        long_exits=sig.long_exits,
        short_entries=sig.short_entries,
        short_exits=sig.short_exits,
        timestamps=index,
        init_cash=init_cash,
        costs=costs,
        sizing=sizing,
        stops=stops,
        limits=limits,
        options=options,
        volatility=volatility,
        stop_loss_dist=sig.stop_distance,
        take_profit_dist=sig.target_distance,
    )
    require_solvent(result.equity, index, f"backtest {strat.name or type(strat).__name__}")
    frames = result.to_pandas(index)
    tf = resolve_timeframe(timeframe, steps)
    closed = result.closed_trades
    metrics = summary(
        result.equity,
        closed["pnl"] if len(closed) else np.empty(0),
        result.position,
        periods_per_year(tf, calendar),
    )
    metrics["final_equity"] = result.final_equity
    metrics["open_trades"] = float(result.n_trades - len(closed))
    settings = {
        "init_cash": init_cash,
        "timeframe": str(tf),
        "calendar": calendar,
        "costs": _plain(costs or Costs()),
        "sizing": _plain(sizing) if sizing is not None else {"fraction": 1.0},
        "stops": _plain(stops or Stops()),
        "limits": _plain(limits or OrderLimits()),
        "options": _plain(options or EngineOptions()),
    }
    return Result(
        strategy=strat.name or type(strat).__name__,
        params=resolved,
        trades=frames.trades,
        equity=frames.equity,
        position=frames.position,
        metrics=metrics,
        bars=bars_df,
        signals=sig,
        engine=result,
        settings=settings,
    )


def resolve_timeframe(
    timeframe: str | Timeframe | None, index: pd.DatetimeIndex | npt.NDArray[np.int64]
) -> Timeframe:
    """``timeframe`` as a :class:`Timeframe`; when None, the most common step of ``index`` (bar
    times, or the nanosecond steps between them already computed).

    Raises:
        UserInputError: an unreadable timeframe, or none given and none can be inferred.
    """
    if isinstance(timeframe, Timeframe):
        return timeframe
    if timeframe is not None:
        try:
            return parse_timeframe(timeframe)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
    steps = np.diff(index.as_unit("ns").asi8) if isinstance(index, pd.DatetimeIndex) else index
    inferred = timeframe_from_steps(steps)
    if inferred is None:
        raise UserInputError("cannot infer the timeframe", hint="pass timeframe='1h'")
    return inferred


def require_solvent(equity: npt.NDArray[np.float64], index: pd.DatetimeIndex, where: str) -> None:
    """Raise a one-line error when the account is ruined: equity at or below zero at some bar.

    A short that runs against the account can lose more than the equity; returns, Sharpe and
    drawdown have no meaning after that, so the run is refused rather than summarised.
    """
    ruined = np.flatnonzero(equity <= 0.0)
    if ruined.size:
        bar = int(ruined[0])
        raise UserInputError(
            f"the account is ruined at bar {bar} ({index[bar]}): equity {equity[bar]:,.2f}",
            where=where,
            hint="a position lost more than the account: add a stop-loss or size smaller "
            "(e.g. --stop-loss 0.05 or --fraction 0.5)",
        )


def _plain(obj: object) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return {"type": type(obj).__name__, **asdict(obj)}
    return {"value": repr(obj)}
