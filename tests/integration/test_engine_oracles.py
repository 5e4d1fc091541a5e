"""Cross-check the engine against vectorbt and backtesting.py on real data.

Three real files × three long-only signal sets (EMA 10/50 cross, SMA 20/100 cross, Donchian
20/10 breakout), next-open fills, 0.1 % fee per fill, all the cash in each trade. The semantic
alignment (see ``docs/engine.md``, "Oracles"):

* vectorbt ``Portfolio.from_signals`` fills at the ``price`` of the bar where the signal sits, so
  the signals are shifted one bar forward and ``price=open``; ``size=inf`` buys with all the cash
  and vectorbt then takes the fee out of that cash exactly like us
  (``qty = cash / (price * (1 + fee))``). Equity = vectorbt's ``value()`` (cash + position at
  the close). vectorbt leaves the last position open: so do we by default. Index tz-naive.
* backtesting.py places market orders in ``next()`` at bar t and fills them at the open of t+1
  (``trade_on_close=False``), like us. It trades whole units only: ``FractionalBacktest`` scales
  prices by ``fractional_unit`` so that a unit is 1e-8 of the asset, and rounds the quantity DOWN
  to it. We reproduce that with ``OrderLimits(qty_step=1e-8)``; without it the two differ by the
  rounding (up to ~1e-8 relative per trade, so ~1e-9 on the final equity, above our tolerance).
  "All-in" is the largest relative size it accepts, ``size = 1 - 2**-53`` (it treats sizes in
  (0, 1) as a fraction of the available margin and includes the commission in the unit cost).
  Its first ``next()`` call is at bar 1, so a signal on bar 0 would be ignored: the signals here
  cannot fire on bar 0 (they need a previous bar). Open trades at the end stay open
  (``finalize_trades=False``, which warns: filtered below by its exact message).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from morningstar.core.engine import Costs, EngineResult, ExitReason, OrderLimits, simulate

pytestmark = pytest.mark.shared_data

FILES = ["genetrader/BINANCE_BTC_USDT-1h.csv", "lean/OANDA_EURUSD-1h.csv", "lean/US_SPY-1D.csv"]
CASH = 10_000.0
FEE = 0.001
UNIT = 1e-8  # backtesting.py fractional unit = our quantity step in the backtesting.py oracle
ALL_IN = 1 - 2**-53  # the largest relative size backtesting.py accepts
REL = 1e-9


def _crosses(fast: pd.Series, slow: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Entries where fast crosses above slow, exits where it crosses below (NaN: no signal)."""
    entries = (fast > slow) & (fast.shift(1) <= slow.shift(1))
    exits = (fast < slow) & (fast.shift(1) >= slow.shift(1))
    return entries.to_numpy(dtype=bool), exits.to_numpy(dtype=bool)


def ema_cross(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    close = df["close"]
    return _crosses(
        close.ewm(span=10, adjust=False).mean(), close.ewm(span=50, adjust=False).mean()
    )


def sma_cross(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    close = df["close"]
    return _crosses(close.rolling(20).mean(), close.rolling(100).mean())


def donchian_breakout(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Enter above the previous 20-bar high, leave below the previous 10-bar low."""
    upper = df["high"].rolling(20).max().shift(1)
    lower = df["low"].rolling(10).min().shift(1)
    return (
        (df["close"] > upper).to_numpy(dtype=bool),
        (df["close"] < lower).to_numpy(dtype=bool),
    )


SIGNALS = {"ema_10_50": ema_cross, "sma_20_100": sma_cross, "donchian_20_10": donchian_breakout}
CASES = [pytest.param(f, s, id=f"{Path(f).stem}-{s}") for f in FILES for s in SIGNALS]


@cache
def _load(root: str, name: str) -> pd.DataFrame:
    df = pd.read_csv(Path(root) / name, index_col="timestamp")
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True), name="timestamp")
    return df.astype("float64")


def _case(root: Path, name: str, signal: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    df = _load(str(root), name)
    entries, exits = SIGNALS[signal](df)
    assert not entries[0] and not exits[0]  # backtesting.py never looks at bar 0
    assert entries.sum() >= 5, "too few signals for a meaningful comparison"
    return df, entries, exits


def _ours(df: pd.DataFrame, entries: np.ndarray, exits: np.ndarray, step: float) -> EngineResult:
    return simulate(
        df["open"].to_numpy(), df["high"].to_numpy(), df["low"].to_numpy(), df["close"].to_numpy(),
        long_entries=entries, long_exits=exits, timestamps=df.index, init_cash=CASH,
        costs=Costs(fee_bps=FEE * 1e4), limits=OrderLimits(qty_step=step),
    )  # fmt: skip


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a / b - 1.0)))


@pytest.mark.parametrize(("name", "signal"), CASES)
def test_matches_vectorbt(shared_data: Path, name: str, signal: str) -> None:
    import vectorbt as vbt

    df, entries, exits = _case(shared_data, name, signal)
    ours = _ours(df, entries, exits, step=0.0)

    index = df.index.tz_localize(None)
    shift = lambda a: pd.Series(a, index=index).shift(1, fill_value=False)  # noqa: E731
    pf = vbt.Portfolio.from_signals(
        pd.Series(df["close"].to_numpy(), index=index), shift(entries), shift(exits),
        price=pd.Series(df["open"].to_numpy(), index=index), fees=FEE, size=np.inf,
        init_cash=CASH, direction="longonly",
    )  # fmt: skip
    theirs = pf.trades.values

    assert ours.n_trades == len(theirs)
    np.testing.assert_array_equal(ours.trades["entry_bar"], theirs["entry_idx"])
    np.testing.assert_array_equal(ours.trades["exit_bar"], theirs["exit_idx"])
    np.testing.assert_array_equal(
        ours.trades["exit_reason"] == ExitReason.OPEN, theirs["status"] == 0
    )  # vectorbt: 0 = open
    np.testing.assert_allclose(ours.trades["entry_price"], theirs["entry_price"], rtol=REL)
    np.testing.assert_allclose(ours.trades["exit_price"], theirs["exit_price"], rtol=REL)
    np.testing.assert_allclose(ours.trades["size"], theirs["size"], rtol=REL)
    np.testing.assert_allclose(ours.trades["pnl"], theirs["pnl"], rtol=REL, atol=1e-9 * CASH)
    np.testing.assert_allclose(ours.trades["return"], theirs["return"], rtol=REL, atol=1e-12)
    value = pf.value().to_numpy()
    assert _max_rel(ours.equity, value) <= REL
    assert ours.final_equity == pytest.approx(value[-1], rel=REL)


@pytest.mark.filterwarnings("ignore:Some trades remain open at the end of backtest:UserWarning")
@pytest.mark.filterwarnings(
    "ignore:DatetimeIndex.dayofweek is deprecated:pandas.errors.Pandas4Warning"
)  # backtesting/_stats.py 0.6.6 on pandas 3
@pytest.mark.parametrize(("name", "signal"), CASES)
def test_matches_backtesting_py(shared_data: Path, name: str, signal: str) -> None:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    df, entries, exits = _case(shared_data, name, signal)
    ours = _ours(df, entries, exits, step=UNIT)

    class Signals(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            if entries[i] and not self.position:
                self.buy(size=ALL_IN)
            elif exits[i] and self.position:
                self.position.close()

    data = df.rename(columns=str.capitalize)
    data.index = data.index.tz_localize(None)
    bt = FractionalBacktest(
        data, Signals, cash=CASH, commission=FEE, trade_on_close=False, exclusive_orders=True,
        fractional_unit=UNIT,
    )  # fmt: skip
    stats = bt.run()
    closed = stats["_trades"]
    still_open = stats["_strategy"].trades

    ours_closed = ours.closed_trades
    assert len(ours_closed) == len(closed)
    assert ours.n_trades - len(ours_closed) == len(still_open)
    np.testing.assert_array_equal(ours_closed["entry_bar"], closed["EntryBar"].to_numpy())
    np.testing.assert_array_equal(ours_closed["exit_bar"], closed["ExitBar"].to_numpy())
    np.testing.assert_allclose(ours_closed["entry_price"], closed["EntryPrice"], rtol=REL)
    np.testing.assert_allclose(ours_closed["exit_price"], closed["ExitPrice"], rtol=REL)
    np.testing.assert_allclose(ours_closed["size"], closed["Size"], rtol=REL)
    np.testing.assert_allclose(ours_closed["pnl"], closed["PnL"], rtol=REL, atol=1e-9 * CASH)
    equity = stats["_equity_curve"]["Equity"].to_numpy()
    assert _max_rel(ours.equity, equity) <= REL
    assert ours.final_equity == pytest.approx(stats["Equity Final [$]"], rel=REL)
