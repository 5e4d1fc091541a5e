"""Parameter sweeps: grid or random search over a strategy's declared parameter bounds.

* Each distinct indicator is computed once for the whole sweep (:meth:`Bars.ind` memoises it
  on the shared bars), then every combination only derives its signals and runs the engine.
* Memory stays bounded: one combination is simulated at a time per worker and only its metrics
  are kept — never a combinations × bars matrix.
* Combinations that break a strategy's relations (e.g. ``fast >= slow``) are skipped and counted.
* Parallel over combinations with threads (``n_jobs``); the engine kernel is compiled numba code.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from morningstar.core.engine import Costs, EngineOptions, OrderLimits, Sizing, Stops, simulate
from morningstar.core.metrics import periods_per_year, summary
from morningstar.core.timeframe import Timeframe
from morningstar.data.ohlcv import to_contract
from morningstar.errors import StrategyError, UserInputError
from morningstar.research.backtest import Result, backtest, resolve_strategy, resolve_timeframe
from morningstar.strategies import Bars, ParamValue, Strategy

__all__ = ["SweepResult", "parameter_grid", "sweep"]


@dataclass(frozen=True)
class SweepResult:
    """All evaluated combinations, best first by ``metric``.

    Attributes:
        table: one row per combination: parameter columns then metric columns, sorted by
            ``metric`` descending (NaN last).
        metric: the ranking metric.
        n_trials: combinations evaluated (for the deflated Sharpe ratio of the winner).
        n_skipped: combinations refused by the strategy's parameter relations.
        best_params: parameters of the first row.
        best: the full :class:`Result` of the best combination (trades, equity, report).
    """

    table: pd.DataFrame
    metric: str
    n_trials: int
    n_skipped: int
    best_params: dict[str, ParamValue]
    best: Result = field(repr=False)

    def top(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` best combinations."""
        return self.table.head(n)


def parameter_grid(
    strategy: Strategy, space: Mapping[str, Sequence[object]] | None = None
) -> dict[str, list[object]]:
    """Values per parameter: ``space`` where given, else the declared grid (bounds and step).

    Parameters absent from ``space`` keep their default when ``space`` is given.
    """
    declared = {p.name: p for p in strategy.params}
    for name in space or {}:
        if name not in declared:
            strategy.resolve({name: None})  # raises the one-line unknown-parameter error
    if space is None:
        return {name: list(p.grid()) for name, p in declared.items() if p.kind != "bool"}
    return {name: list(values) for name, values in space.items()}


def _combinations(
    grid: Mapping[str, list[object]], method: str, n_iter: int, seed: int
) -> Iterable[dict[str, object]]:
    names = list(grid)
    if method == "grid":
        for values in itertools.product(*(grid[n] for n in names)):
            yield dict(zip(names, values, strict=True))
        return
    if method != "random":
        raise UserInputError(f"unknown sweep method {method!r}", hint="use grid or random")
    sizes = [len(grid[n]) for n in names]
    total = math.prod(sizes)
    rng = np.random.default_rng(seed)
    picks = rng.choice(total, size=min(n_iter, total), replace=False)
    for flat in picks:
        idx = np.unravel_index(int(flat), sizes)
        yield {n: grid[n][int(i)] for n, i in zip(names, idx, strict=True)}


def sweep(
    data: pd.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    space: Mapping[str, Sequence[object]] | None = None,
    *,
    method: str = "grid",
    n_iter: int = 100,
    seed: int = 0,
    metric: str = "sharpe",
    top: int = 10,
    costs: Costs | None = None,
    stops: Stops | None = None,
    sizing: Sizing | None = None,
    limits: OrderLimits | None = None,
    options: EngineOptions | None = None,
    init_cash: float = 10_000.0,
    timeframe: str | Timeframe | None = None,
    calendar: str = "crypto",
    n_jobs: int | None = None,
) -> SweepResult:
    """Evaluate many parameter combinations of ``strategy`` on ``data``.

    Args:
        data: OHLCV bars (one asset).
        strategy: name, ``file.py:Class``, class or instance.
        space: values per parameter (``{"fast": range(5, 55, 5)}``); None = the declared grids.
        method: ``grid`` (every combination) or ``random`` (``n_iter`` distinct draws).
        n_iter: draws for the random method.
        seed: random seed.
        metric: a key of the backtest metrics to rank by (higher is better).
        top: kept for the caller's display; the full table is returned.
        costs, stops, sizing, limits, options, init_cash, timeframe, calendar: as in
            :func:`~morningstar.research.backtest`.
        n_jobs: worker threads (default: CPU count, capped at 8; 1 = serial).

    Raises:
        StrategyError: unknown parameter names, or no valid combination.
        UserInputError: unknown method or metric.
    """
    del top
    strat = resolve_strategy(strategy)
    bars_df = to_contract(data, where="sweep data")
    index = pd.DatetimeIndex(bars_df.index)
    arrays = {c: bars_df[c].to_numpy(dtype=np.float64) for c in bars_df.columns}
    bars = Bars(arrays["open"], arrays["high"], arrays["low"], arrays["close"], arrays["volume"])
    ppy = periods_per_year(resolve_timeframe(timeframe, index), calendar)
    grid = parameter_grid(strat, space)
    valid: list[dict[str, ParamValue]] = []
    skipped = 0
    for combo in _combinations(grid, method, n_iter, seed):
        try:
            valid.append(strat.resolve(combo))
        except StrategyError:
            skipped += 1
    if not valid:
        raise StrategyError(
            f"no valid parameter combination among {skipped}", where=strat.name,
            hint="check the ranges against the strategy's relations (e.g. fast < slow)",
        )  # fmt: skip

    def run(params: dict[str, ParamValue]) -> dict[str, Any]:
        sig = strat.signals(bars, params)
        res = simulate(
            bars.open, bars.high, bars.low, bars.close,
            long_entries=sig.long_entries, long_exits=sig.long_exits,
            short_entries=sig.short_entries, short_exits=sig.short_exits,
            init_cash=init_cash, costs=costs, sizing=sizing, stops=stops, limits=limits,
            options=options, stop_loss_dist=sig.stop_distance, take_profit_dist=sig.target_distance,
        )  # fmt: skip
        closed = res.closed_trades
        stats = summary(res.equity, closed["pnl"], res.position, ppy)
        stats["final_equity"] = res.final_equity
        return {**params, **stats}

    # warm the indicator cache and the compiled kernels serially, then fan out
    rows = [run(valid[0])]
    workers = n_jobs if n_jobs is not None else min(8, os.cpu_count() or 1)
    if workers > 1 and len(valid) > 8:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows += list(pool.map(run, valid[1:]))
    else:
        rows += [run(p) for p in valid[1:]]
    table = pd.DataFrame(rows)
    if metric not in table.columns:
        raise UserInputError(
            f"unknown metric {metric!r}",
            hint=f"use one of {', '.join(c for c in table.columns if c not in grid)}",
        )
    table = table.sort_values(metric, ascending=False, na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    best_params = {k: valid[0][k] for k in valid[0]}
    first = table.iloc[0]
    for k in best_params:
        value = first[k]
        best_params[k] = value.item() if isinstance(value, np.generic) else value
    best = backtest(
        bars_df, strat, best_params, costs=costs, stops=stops, sizing=sizing, limits=limits,
        options=options, init_cash=init_cash, timeframe=timeframe, calendar=calendar,
    )  # fmt: skip
    return SweepResult(
        table=table,
        metric=metric,
        n_trials=len(valid),
        n_skipped=skipped,
        best_params=best_params,
        best=best,
    )
