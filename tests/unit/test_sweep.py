from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from morningstar.core.engine import Costs
from morningstar.errors import StrategyError, UserInputError
from morningstar.research import backtest
from morningstar.research.sweep import parameter_grid, sweep
from morningstar.strategies import BUILTIN_STRATEGIES, Bars
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
    """Only metrics per combination are kept (bounded memory): the table is combos × metrics."""
    result = sweep(bars(3000), "ema_cross", {"fast": [5, 10], "slow": [20, 40]}, n_jobs=1)
    assert result.table.shape[0] == 4 and result.table.shape[1] < 30
    assert (
        isinstance(result.table, pd.DataFrame) and np.isfinite(result.table["final_equity"]).all()
    )
