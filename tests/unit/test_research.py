from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from morningstar.core.engine import Costs, FractionSizing, simulate
from morningstar.data.ohlcv import from_arrays
from morningstar.errors import StrategyError, UserInputError
from morningstar.research import backtest, backtest_portfolio, sweep
from morningstar.research.report import monthly_returns
from morningstar.strategies import BUILTIN_STRATEGIES, Bars


def bars(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    ts = 1_704_067_200_000 + np.arange(n) * 3_600_000
    return from_arrays(ts, open_, high, low, close, rng.uniform(1, 5, n))


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_backtest_equals_the_engine_on_the_strategy_signals(name: str) -> None:
    df = bars()
    result = backtest(df, name, costs=Costs(fee_bps=10))
    strat = BUILTIN_STRATEGIES[name]()
    sig = strat.signals(Bars(*(df[c].to_numpy() for c in df.columns)), strat.resolve())
    direct = simulate(
        df["open"].to_numpy(), df["high"].to_numpy(), df["low"].to_numpy(), df["close"].to_numpy(),
        long_entries=sig.long_entries, long_exits=sig.long_exits,
        costs=Costs(fee_bps=10), stop_loss_dist=sig.stop_distance,
    )  # fmt: skip
    np.testing.assert_array_equal(result.equity.to_numpy(), direct.equity)
    assert result.metrics["final_equity"] == direct.final_equity
    assert len(result.trades) == direct.n_trades
    assert result.metrics["trade_count"] == len(direct.closed_trades)
    assert result.equity.index.equals(df.index)


def test_result_exports() -> None:
    result = backtest(bars(), "ema_cross", {"fast": 5, "slow": 30}, costs=Costs(fee_bps=10))
    data = json.loads(result.to_json())
    assert data["strategy"] == "ema_cross"
    assert data["params"] == {"fast": 5, "slow": 30, "allow_short": False}
    assert data["settings"]["timeframe"] == "1h"
    assert data["metrics"]["trade_count"] == result.metrics["trade_count"] > 0
    page = result.to_html()
    assert page.startswith("<!DOCTYPE html>") and "main-chart" in page and "monthly" in page
    assert "total_return" in page and "plotly" in page.lower()


def test_monthly_returns_compound_to_the_total() -> None:
    result = backtest(bars(6000), "sma_cross", costs=Costs(fee_bps=5))
    table = monthly_returns(result.equity)
    values = table.to_numpy().ravel()
    total = float(np.prod(1 + values[np.isfinite(values)]) - 1)
    assert total == pytest.approx(result.metrics["total_return"], rel=1e-9)


def test_bad_inputs() -> None:
    with pytest.raises(StrategyError, match="unknown strategy 'ema'"):
        backtest(bars(), "ema")
    with pytest.raises(StrategyError, match=r"ema_cross.fast: 1 is not >= 2"):
        backtest(bars(), "ema_cross", {"fast": 1})
    with pytest.raises(UserInputError, match="need at least 2 bars"):
        backtest(bars().iloc[:1], "ema_cross")
    with pytest.raises(UserInputError, match="not strictly increasing"):
        backtest(bars().iloc[::-1], "ema_cross")


def _ruinous() -> pd.DataFrame:
    """Up, down (ema_cross with shorts goes short), then a gap to 6x: the short loses it all."""
    close = np.r_[np.linspace(50, 100, 50), np.linspace(100, 50, 50), np.full(100, 300.0)]
    index = pd.date_range("2024-01-01", periods=close.size, freq="h", tz="UTC")
    return pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999,
                         "close": close, "volume": 1.0}, index=index)  # fmt: skip


def test_a_ruined_account_is_one_clear_error() -> None:
    params = {"fast": 3, "slow": 10, "allow_short": True}
    with pytest.raises(UserInputError) as info:
        backtest(_ruinous(), "ema_cross", params)
    text = str(info.value)
    assert (
        "backtest ema_cross: the account is ruined at bar 100 (2024-01-05 04:00:00+00:00)" in text
    )
    assert "add a stop-loss" in text and "\n" not in text
    with pytest.raises(UserInputError, match="portfolio backtest ema_cross: the account is ruined"):
        backtest_portfolio({"A": _ruinous()}, "ema_cross", params)
    # a sweep ranks the ruined combination last, with no return metrics, and keeps the others
    space = {"fast": [3], "slow": [10], "allow_short": [False, True]}
    table = sweep(_ruinous(), "ema_cross", space, n_jobs=1).table
    assert list(table["allow_short"]) == [False, True]
    ruined = table.iloc[1]
    assert ruined["final_equity"] < 0 and np.isnan(ruined["sharpe"])
    assert np.isnan(ruined["trade_count"])
    # with the short sized at a tenth of the account, it survives the 6x gap
    half = backtest(_ruinous(), "ema_cross", params, sizing=FractionSizing(0.1))
    assert half.metrics["final_equity"] > 0
