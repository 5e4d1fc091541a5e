from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from morningstar.core.engine import Costs
from morningstar.errors import StrategyError, UserInputError
from morningstar.research import backtest
from morningstar.research.sweep import parameter_grid, sweep
from morningstar.strategies import BUILTIN_STRATEGIES, Bars, Param, Signals, Strategy
from tests.unit.test_research import bars


def test_grid_sweep_matches_individual_backtests() -> None:
    df = bars(2000)
    space = {"fast": [5, 10, 20], "slow": [10, 30, 60]}
    result = sweep(df, "ema_cross", space, costs=Costs(fee_bps=10), n_jobs=2)
    assert result.n_trials == 7 and result.n_skipped == 2  # 10/10 and 20/10 break fast < slow
    assert list(result.table["sharpe"]) == sorted(result.table["sharpe"], reverse=True)
    for _, row in result.table.iterrows():
        single = backtest(
            df, "ema_cross", {"fast": row["fast"], "slow": row["slow"]}, costs=Costs(fee_bps=10)
        )
        assert row["final_equity"] == single.metrics["final_equity"]
        assert row["trade_count"] == single.metrics["trade_count"]
        assert row["sharpe"] == pytest.approx(single.metrics["sharpe"], rel=1e-12, nan_ok=True)
    best = result.table.iloc[0]
    assert result.best_params == {
        "fast": int(best["fast"]),
        "slow": int(best["slow"]),
        "allow_short": False,
    }
    assert result.best.metrics["final_equity"] == best["final_equity"]


def test_random_sweep_draws_distinct_combinations() -> None:
    result = sweep(bars(1500), "sma_cross", method="random", n_iter=25, seed=1, n_jobs=1)
    combos = result.table[["fast", "slow"]].apply(tuple, axis=1)
    assert combos.is_unique
    assert result.n_trials + result.n_skipped == 25


def test_each_indicator_is_computed_once() -> None:
    df = bars(500)
    b = Bars(*(df[c].to_numpy() for c in df.columns))
    strat = BUILTIN_STRATEGIES["ema_cross"]()
    for fast in (5, 10):
        for slow in (20, 30):
            strat.signals(b, strat.resolve({"fast": fast, "slow": slow}))
    assert len(b._cache) == 4  # EMA 5, 10, 20, 30 — not 8


def test_declared_grid_and_errors() -> None:
    strat = BUILTIN_STRATEGIES["rsi_reversion"]()
    grid = parameter_grid(strat)
    assert grid["lower"] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0]
    with pytest.raises(StrategyError, match="did you mean 'fast'"):
        sweep(bars(300), "ema_cross", {"fsat": [1, 2]})
    with pytest.raises(StrategyError, match="no valid parameter combination"):
        sweep(bars(300), "ema_cross", {"fast": [50], "slow": [20]})
    with pytest.raises(UserInputError, match="unknown metric 'sharp'"):
        sweep(bars(300), "ema_cross", {"fast": [5], "slow": [20]}, metric="sharp")
    with pytest.raises(UserInputError, match="unknown sweep method"):
        sweep(bars(300), "ema_cross", {"fast": [5], "slow": [20]}, method="bayes")


def test_sweep_keeps_no_bar_matrix() -> None:
    """Memory is bounded: 64 combinations on 200k bars never hold a combinations x bars matrix.

    Bars and the 16 distinct EMAs take about 35 MB; the equity and position series of all 64
    combinations alone would be 64 x 2 x 1.6 MB = 205 MB.
    """
    import tracemalloc

    df = bars(200_000)
    space = {"fast": [2, 3, 4, 5, 6, 7, 8, 9], "slow": [20, 25, 30, 35, 40, 45, 50, 55]}
    sweep(df, "ema_cross", {"fast": [2], "slow": [20]}, n_jobs=1)  # compile outside the trace
    tracemalloc.start()
    try:
        result = sweep(df, "ema_cross", space, n_jobs=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.n_trials == 64 and result.table.shape[0] == 64
    assert result.table.shape[1] < 30  # combinations x (parameters + metrics)
    one_series = 200_000 * 8
    assert peak < 40 * one_series, f"peak {peak / 2**20:.0f} MB"
    assert np.isfinite(result.table["final_equity"]).all()


def test_bad_values_are_errors_not_skipped_combinations() -> None:
    df = bars(300)
    with pytest.raises(StrategyError, match=r"ema_cross.fast.*nan is not a finite number"):
        sweep(df, "ema_cross", {"fast": [5, float("nan")], "slow": [20]})
    with pytest.raises(StrategyError, match=r"ema_cross.fast.*is not a finite number"):
        sweep(df, "ema_cross", {"fast": [5, 10**400], "slow": [20]})  # beyond float range
    with pytest.raises(StrategyError, match=r"ema_cross.fast.*0 is not >= 2"):
        sweep(df, "ema_cross", {"fast": [0, 5], "slow": [20]})
    with pytest.raises(StrategyError, match=r"ema_cross.slow.*no values to sweep"):
        sweep(df, "ema_cross", {"fast": [5], "slow": []})
    # only the relation fast < slow skips a combination
    result = sweep(df, "ema_cross", {"fast": [5, 30], "slow": [20]}, n_jobs=1)
    assert result.n_trials == 1 and result.n_skipped == 1


def test_arguments_are_checked_before_any_combination_runs() -> None:
    df = bars(300)
    space = {"fast": [5], "slow": [20]}
    with pytest.raises(UserInputError, match=r"unknown metric 'sharp'.*did you mean 'sharpe'"):
        sweep(df, "ema_cross", space, metric="sharp")
    with pytest.raises(UserInputError, match="unknown metric 'allow_short'"):
        sweep(df, "ema_cross", space, metric="allow_short")
    for bad in (0, -3):
        with pytest.raises(UserInputError, match="n_iter must be >= 1"):
            sweep(df, "ema_cross", space, method="random", n_iter=bad)
    with pytest.raises(UserInputError, match="min_trades must be >= 0"):
        sweep(df, "ema_cross", space, min_trades=-1)
    # the declared grid of ema_cross has ~200k combinations: refused with a hint, not run
    with pytest.raises(UserInputError, match=r"198,602 combinations.*--method random"):
        sweep(df, "ema_cross")
    sample = sweep(df, "ema_cross", method="random", n_iter=5, seed=3, n_jobs=1)
    assert sample.n_trials + sample.n_skipped == 5


def test_ranking_direction_non_finite_and_min_trades() -> None:
    df = bars(1500)
    space = {"fast": [3, 5, 8, 13], "slow": [21, 34, 55, 89]}
    by_vol = sweep(df, "ema_cross", space, metric="annual_volatility", n_jobs=1).table
    assert list(by_vol["annual_volatility"]) == sorted(by_vol["annual_volatility"])
    by_pf = sweep(df, "ema_cross", space, metric="profit_factor", n_jobs=1).table
    finite = np.isfinite(by_pf["profit_factor"].to_numpy())
    # finite values first, best first; inf / NaN after them
    assert finite[: finite.sum()].all() and not finite[finite.sum() :].any()
    assert list(by_pf["profit_factor"][finite]) == sorted(
        by_pf["profit_factor"][finite], reverse=True
    )
    most = int(by_pf["trade_count"].max())
    picky = sweep(df, "ema_cross", space, metric="sharpe", min_trades=most, n_jobs=1)
    assert picky.table["trade_count"].iloc[0] == most
    assert picky.best_params["fast"] == picky.table["fast"].iloc[0]


def test_indicator_cache_is_bounded_and_never_stale() -> None:
    df = bars(1000)
    arrays = [df[c].to_numpy() for c in df.columns]
    one = arrays[3].nbytes  # one indicator result of these bars
    b = Bars(*arrays, cache_bytes=3 * one)
    from morningstar.core.indicators import ema

    for n in (5, 6, 7, 8, 9):
        b.ind(ema, b.close, n)
    assert len(b._cache) == 3 and b._cache.nbytes <= 3 * one  # least recently used evicted
    assert np.array_equal(b.ind(ema, b.close, 5), ema(b.close, 5), equal_nan=True)  # recomputed
    # a temporary array keyed by identity: the memo keeps it alive, so its id is never reused
    # by another array while the entry exists (the stale-result bug of keying by id alone)
    fresh = Bars(*arrays)
    stale = 0
    for k in range(50):
        tmp = b.close * (1.0 + k / 100.0)
        got = fresh.ind(ema, tmp, 5)
        want = ema(tmp, 5)
        del tmp  # with an id-only key the next temporary reuses this id: 49 stale results
        stale += not np.array_equal(got, want, equal_nan=True)
    assert stale == 0


def test_threaded_sweep_equals_serial() -> None:
    df = bars(3000)
    space = {"fast": [3, 5, 8, 13, 21], "slow": [34, 55, 89]}
    serial = sweep(df, "sma_cross", space, n_jobs=1).table
    threaded = sweep(df, "sma_cross", space, n_jobs=2).table
    pd.testing.assert_frame_equal(serial, threaded)


def test_indicator_cache_under_threads_with_a_tight_budget() -> None:
    """Eight threads share one memo that holds two results: entries are evicted while others
    read them; every answer must still be right and the budget kept."""
    from concurrent.futures import ThreadPoolExecutor

    from morningstar.core.indicators import ema, sma

    df = bars(2000)
    b = Bars(*(df[c].to_numpy() for c in df.columns), cache_bytes=2 * 2000 * 8)
    calls = [(fn, n) for n in range(2, 30) for fn in (ema, sma)] * 4

    def check(call: tuple[object, int]) -> bool:
        fn, n = call
        got = b.ind(fn, b.close, n)  # type: ignore[arg-type]
        return bool(np.array_equal(got, fn(b.close, n), equal_nan=True))  # type: ignore[operator]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(check, calls))
    assert b._cache.nbytes <= 2 * 2000 * 8 and len(b._cache) <= 2


class _Knobs(Strategy):
    """Six fine-grained knobs: 10**24 combinations, more than one int64 index can number."""

    name = "knobs"
    params = tuple(Param(f"k{i}", "float", 0.5, 0.0, 1.0, 1e-4) for i in range(6))

    def signals(self, bars: Bars, params: Mapping[str, object]) -> Signals:
        level = float(params["k0"])  # type: ignore[arg-type]
        up = bars.close > bars.close.mean() * (0.5 + level)
        return Signals(up, ~up)


def test_random_sweep_over_a_space_beyond_int64() -> None:
    df = bars(300)
    space = {f"k{i}": list(np.linspace(0.0, 1.0, 10_001)) for i in range(6)}
    first = sweep(df, _Knobs(), space, method="random", n_iter=12, seed=7, n_jobs=1)
    again = sweep(df, _Knobs(), space, method="random", n_iter=12, seed=7, n_jobs=1)
    assert first.n_trials == 12 and first.n_skipped == 0
    names = [f"k{i}" for i in range(6)]
    assert first.table[names].apply(tuple, axis=1).is_unique
    pd.testing.assert_frame_equal(first.table, again.table)  # the seed reproduces the draw
    with pytest.raises(UserInputError, match=r"n_iter=30 is more than max_combinations=20"):
        sweep(df, _Knobs(), space, method="random", n_iter=30, max_combinations=20)
