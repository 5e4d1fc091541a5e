"""Parameter sweeps: grid or random search over a strategy's declared parameter bounds.

* Each distinct indicator is computed once for the whole sweep (:meth:`Bars.ind` memoises it
  on the shared bars), then every combination only derives its signals and runs the engine.
* Memory stays bounded: one combination is simulated at a time per worker and only its metrics
  are kept — never a combinations × bars matrix.
* Every value is checked against the parameter's declaration first (a bad value is an error, not
  a skipped combination); combinations that break a strategy's relations (e.g. ``fast >= slow``)
  are skipped and counted.
* A grid larger than ``max_combinations`` is refused with a hint (narrow the ranges or draw a
  random sample), so a sweep over the declared bounds cannot run for days by accident.
* Parallel over combinations with threads (``n_jobs``); the engine, indicator and metric kernels
  are compiled numba code that releases the GIL.
* Ranking: higher is better, except for the metrics in :data:`LOWER_IS_BETTER`; combinations
  with a non-finite metric (an infinite profit factor without any loss, a NaN Sharpe without
  returns) or fewer than ``min_trades`` trades rank after all the others.
"""

from __future__ import annotations

import difflib
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
from morningstar.core.metrics import SUMMARY_KEYS, periods_per_year, summary
from morningstar.core.timeframe import Timeframe
from morningstar.data.ohlcv import to_contract
from morningstar.errors import StrategyError, UserInputError
from morningstar.research.backtest import Result, backtest, resolve_strategy, resolve_timeframe
from morningstar.strategies import Bars, ParamValue, Strategy

__all__ = ["LOWER_IS_BETTER", "RANKABLE_METRICS", "SweepResult", "parameter_grid", "sweep"]

#: Metrics a sweep can rank by: the backtest summary plus the final equity.
RANKABLE_METRICS: tuple[str, ...] = (*SUMMARY_KEYS, "final_equity")
#: Metrics where a smaller value is better (everything else: larger is better; drawdown depths
#: are negative fractions, so -0.1 beats -0.3).
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"annual_volatility", "max_drawdown_duration", "longest_drawdown"}
)
#: Default largest grid a sweep runs.
MAX_COMBINATIONS = 20_000


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
) -> dict[str, list[ParamValue]]:
    """Values per parameter: ``space`` where given, else the declared grid (bounds and step).

    Parameters absent from ``space`` keep their default when ``space`` is given. Every value is
    checked and converted by its :class:`~morningstar.strategies.Param` declaration.

    Raises:
        StrategyError: an unknown parameter (with a close match), an empty list of values, or a
            value of the wrong type, out of bounds or not finite (one line naming it).
    """
    declared = {p.name: p for p in strategy.params}
    if space is None:
        return {name: list(p.grid()) for name, p in declared.items() if p.kind != "bool"}
    grid: dict[str, list[ParamValue]] = {}
    for name, values in space.items():
        spec = declared.get(name)
        if spec is None:
            strategy.resolve({name: None})  # raises the one-line unknown-parameter error
            raise AssertionError("unreachable")  # pragma: no cover
        checked = [spec.check(v, strategy.name) for v in values]
        if not checked:
            raise StrategyError(
                "no values to sweep", where=f"{strategy.name}.{name}", hint="give at least one"
            )
        grid[name] = checked
    return grid


def _combinations(
    grid: Mapping[str, list[ParamValue]], method: str, n_iter: int, seed: int
) -> Iterable[dict[str, ParamValue]]:
    names = list(grid)
    if method == "grid":
        for values in itertools.product(*(grid[n] for n in names)):
            yield dict(zip(names, values, strict=True))
        return
    sizes = [len(grid[n]) for n in names]
    total = math.prod(sizes)
    rng = np.random.default_rng(seed)
    if total < 2**62:  # a flat index fits numpy's int64: draw without replacement
        for flat in rng.choice(total, size=min(n_iter, total), replace=False):
            idx = np.unravel_index(int(flat), sizes)
            yield {n: grid[n][int(i)] for n, i in zip(names, idx, strict=True)}
        return
    # a space too large for one index (many fine ranges): draw per parameter; with at least
    # 2**62 combinations and n_iter <= max_combinations, a repeat is practically impossible,
    # and a repeated draw is dropped
    seen: set[tuple[int, ...]] = set()
    while len(seen) < n_iter:
        pick = tuple(int(rng.integers(size)) for size in sizes)
        if pick not in seen:
            seen.add(pick)
            yield {n: grid[n][i] for n, i in zip(names, pick, strict=True)}


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
    min_trades: int = 0,
    max_combinations: int = MAX_COMBINATIONS,
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
        n_iter: draws for the random method (>= 1).
        seed: random seed.
        metric: one of :data:`RANKABLE_METRICS` to rank by (see the module docstring for the
            direction and where non-finite values go).
        top: kept for the caller's display; the full table is returned.
        min_trades: combinations with fewer closed trades rank last (a Sharpe ratio from two
            trades is noise).
        max_combinations: the largest grid to run (the random method draws at most
            ``n_iter``).
        costs, stops, sizing, limits, options, init_cash, timeframe, calendar: as in
            :func:`~morningstar.research.backtest`.
        n_jobs: worker threads (default: CPU count, capped at 8; 1 = serial).

    Raises:
        StrategyError: unknown parameter names, bad values, or no valid combination.
        UserInputError: unknown method or metric, ``n_iter`` or ``min_trades`` out of range, or
            a grid larger than ``max_combinations``.
    """
    del top
    if metric not in RANKABLE_METRICS:
        close = difflib.get_close_matches(metric, RANKABLE_METRICS, n=1)
        raise UserInputError(
            f"unknown metric {metric!r}",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + f"metrics: {', '.join(RANKABLE_METRICS)}",
        )
    if method not in ("grid", "random"):
        raise UserInputError(f"unknown sweep method {method!r}", hint="use grid or random")
    if method == "random" and (isinstance(n_iter, bool) or int(n_iter) < 1):
        raise UserInputError(f"n_iter must be >= 1, got {n_iter}", hint="e.g. --n-iter 200")
    if isinstance(min_trades, bool) or int(min_trades) < 0:
        raise UserInputError(f"min_trades must be >= 0, got {min_trades}")
    strat = resolve_strategy(strategy)
    bars_df = to_contract(data, where="sweep data")
    index = pd.DatetimeIndex(bars_df.index)
    arrays = {c: bars_df[c].to_numpy(dtype=np.float64) for c in bars_df.columns}
    bars = Bars(arrays["open"], arrays["high"], arrays["low"], arrays["close"], arrays["volume"])
    ppy = periods_per_year(resolve_timeframe(timeframe, index), calendar)
    grid = parameter_grid(strat, space)
    total = math.prod(len(v) for v in grid.values())
    if method == "grid" and total > max_combinations:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in grid.items())
        raise UserInputError(
            f"the grid has {total:,} combinations ({sizes}), more than "
            f"max_combinations={max_combinations:,}",
            where=f"sweep {strat.name}",
            hint="narrow the ranges (--range fast=5:50:5), or draw a sample with --method random "
            "--n-iter N",
        )
    if method == "random" and n_iter > max_combinations:
        raise UserInputError(
            f"n_iter={n_iter:,} is more than max_combinations={max_combinations:,}",
            where=f"sweep {strat.name}",
            hint="draw fewer combinations, or raise max_combinations",
        )
    valid: list[dict[str, ParamValue]] = []
    skipped = 0
    for combo in _combinations(grid, method, n_iter, seed):
        params = {**strat.defaults(), **combo}  # every value was checked by parameter_grid
        try:
            strat.check_relations(params)
        except StrategyError:
            skipped += 1
            continue
        valid.append(params)
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
        if float(res.equity.min()) <= 0.0:  # ruined: no return metrics, ranked last
            return {**params, **dict.fromkeys(SUMMARY_KEYS, math.nan),
                    "final_equity": res.final_equity}  # fmt: skip
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
    table = _ranked(pd.DataFrame(rows), metric, min_trades)
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


def _ranked(table: pd.DataFrame, metric: str, min_trades: int) -> pd.DataFrame:
    """Best first: eligible rows (finite metric, enough trades) before the rest, each group
    ordered by the metric in its direction; ties keep the evaluation order."""
    values = table[metric].to_numpy(dtype=np.float64)
    eligible = np.isfinite(values) & (table["trade_count"].to_numpy() >= min_trades)
    key = -values if metric in LOWER_IS_BETTER else values
    key = np.where(np.isnan(key), -np.inf, key)
    order = np.lexsort((-key, ~eligible))  # last key is the primary one; lexsort is stable
    return table.iloc[order].reset_index(drop=True)
