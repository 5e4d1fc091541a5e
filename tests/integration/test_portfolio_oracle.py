"""Cross-check the portfolio mode against vectorbt's cash-sharing portfolio on real data.

Real files: genetrader BTC, ETH and SOL 1h (SOL has 22 more bars at the end: the others have
missing bars there), and Coinbase BTC/USD daily next to SPY and QQQ daily (no bar on weekends
and holidays, about 30 % of the union's bars). EMA 10/50 crosses computed on each asset's own
bars, 0.1 % fee, a fixed notional per entry that makes the cash bind (partial fills and skipped
entries happen and are asserted to happen). Same trades (asset, bars, size, prices, P&L, open
status), same equity and cash curves to 1e-9 relative.

Semantic alignment (also in ``docs/engine.md``, "Portfolio mode"):

* ``Portfolio.from_signals(close, entries, exits, price=open, size=N, size_type="value",
  fees=0.001, init_cash=..., cash_sharing=True, group_by=True, call_seq="auto")``, index
  tz-naive, one column per asset, NaN where an asset has no bar.
* Fill timing: vectorbt fills at the ``price`` of the bar where the signal sits, so for
  ``next_open`` each asset's signals are shifted one bar forward **on its own bars** (a Friday
  signal of SPY moves to Monday, its next bar, not to Saturday where it has no price) and
  ``price=open``; for ``close`` timing the signals stay and ``price`` is the close.
* Sizing: ``NotionalSizing(N)`` is ``size=N, size_type="value"``: both buy ``N / price`` and,
  when the cash is short, ``cash / (price * (1 + fee))`` (vectorbt's ``allow_partial=True``).
  Our rounding-dust rule (free cash at or below 1e-9 of the equity is none) is vectorbt's
  ``is_close(free_cash, 0)`` after a capped buy: both skip the next entry. Slippage is zero:
  vectorbt sizes a value order at the price before slippage, we at the fill price.
* Order within a bar: ``call_seq="auto"`` sorts the orders by signed value, so every exit (a
  sale, negative) runs before every long entry (positive), and long entries of one notional
  keep the column order (its insertion sort is stable): our "exits first, then entries in
  asset order".
* Missing bars: vectorbt forward-fills the valuation price, so a position is marked at its
  asset's last close, like ours. A trade still open at the end is reported at its asset's last
  bar and close by us; vectorbt's trade record takes the union's last bar and the close there,
  NaN when the asset has no bar at the end (its ``value()`` still uses the last close).
* Shorts: vectorbt's ``free_cash`` is ours (cash minus twice the open shorts' entry notional)
  with ``lock_cash=True``. Without it vectorbt lets long entries use short proceeds (leverage).
  Its ``call_seq="auto"`` also counts a short entry as a sale (negative value) and may run it
  before another asset's exit of a smaller value, when less cash is free; we always run every
  exit first. The short case therefore passes an explicit call sequence (each bar: the columns
  that exit, then the others in column order), the order we use, and then agrees exactly.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from morningstar.core.engine import (
    Costs,
    EngineOptions,
    ExitReason,
    NotionalSizing,
    PortfolioEngineResult,
    simulate_portfolio,
)
from morningstar.data.csv_import import read_ohlcv_csv
from tests.integration.test_engine_oracles import ema_cross

pytestmark = pytest.mark.shared_data

CASH = 10_000.0
FEE = 0.001
REL = 1e-9
CRYPTO_1H = {
    "BTC": "genetrader/BINANCE_BTC_USDT-1h.csv",
    "ETH": "genetrader/BINANCE_ETH_USDT-1h.csv",
    "SOL": "genetrader/BINANCE_SOL_USDT-1h.csv",
}
MIXED_1D = {
    "BTC": "lean/COINBASE_BTC_USD-1D.csv",
    "SPY": "lean/US_SPY-1D.csv",
    "QQQ": "lean/US_QQQ-1D.csv",
}


class Book:
    """Several assets on the union of their bar times, with their own-bar EMA signals."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.assets = list(frames)
        times = np.unique(np.concatenate([f.index.asi8 for f in frames.values()]))
        self.index = pd.DatetimeIndex(times.view("M8[ns]")).tz_localize("UTC")
        n, m = len(times), len(frames)
        self.prices = {c: np.full((n, m), np.nan) for c in ("open", "high", "low", "close")}
        self.entries = np.zeros((n, m), dtype=bool)
        self.exits = np.zeros((n, m), dtype=bool)
        self.next_entries = np.zeros((n, m), dtype=bool)  # shifted to the asset's next bar
        self.next_exits = np.zeros((n, m), dtype=bool)
        for j, frame in enumerate(frames.values()):
            rows = np.searchsorted(times, frame.index.asi8)
            for column, matrix in self.prices.items():
                matrix[rows, j] = frame[column].to_numpy()
            up, down = ema_cross(frame)
            self.entries[rows, j], self.exits[rows, j] = up, down
            self.next_entries[rows[1:], j] = up[:-1]
            self.next_exits[rows[1:], j] = down[:-1]

    def frame(self, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=self.index.tz_localize(None), columns=self.assets)


@cache
def _book(root: str, files: tuple[tuple[str, str], ...]) -> Book:
    frames = {name: read_ohlcv_csv(Path(root) / path).frame for name, path in files}
    first = max(f.index[0] for f in frames.values())  # the overlap: when every asset exists
    last = min(f.index[-1] for f in frames.values())
    if all(f.index[0] == first for f in frames.values()):  # same start: keep every bar
        return Book(frames)
    return Book({k: f[(f.index >= first) & (f.index <= last)] for k, f in frames.items()})


def _ours(book: Book, notional: float, timing: str = "next_open", **signals: np.ndarray
          ) -> PortfolioEngineResult:  # fmt: skip
    p = book.prices
    return simulate_portfolio(
        p["open"], p["high"], p["low"], p["close"], **signals, assets=book.assets,
        timestamps=book.index, init_cash=CASH, costs=Costs(fee_bps=FEE * 1e4),
        sizing=NotionalSizing(notional),
        options=EngineOptions(fill_timing="close" if timing == "close" else "next_open"),
    )  # fmt: skip


def _compare(ours: PortfolioEngineResult, pf: Any) -> None:
    theirs = pf.trades.values
    assert ours.n_trades == len(theirs)
    mine = np.sort(ours.trades, order=["asset", "entry_bar"])
    theirs = theirs[np.lexsort((theirs["entry_idx"], theirs["col"]))]
    np.testing.assert_array_equal(mine["asset"], theirs["col"])
    np.testing.assert_array_equal(mine["entry_bar"], theirs["entry_idx"])
    still_open = mine["exit_reason"] == ExitReason.OPEN
    np.testing.assert_array_equal(still_open, theirs["status"] == 0)  # vectorbt: 0 = open
    np.testing.assert_array_equal(mine["exit_bar"][~still_open], theirs["exit_idx"][~still_open])
    # an open trade is reported at its asset's last bar, vectorbt's at the last bar of all
    last_bar = len(ours.equity) - 1 - ours.has_bar[::-1].argmax(axis=0)
    np.testing.assert_array_equal(mine["exit_bar"][still_open], last_bar[mine["asset"][still_open]])
    assert np.all(theirs["exit_idx"][still_open] == len(ours.equity) - 1)
    np.testing.assert_array_equal(mine["side"] < 0, theirs["direction"] == 1)  # 1 = short
    for name in ("size", "entry_price"):
        np.testing.assert_allclose(mine[name], theirs[name], rtol=REL)
    # vectorbt marks an open trade at the union's last close: NaN when its asset has no bar
    # there (we mark it at the asset's last close, as vectorbt's value() does)
    marked = ~still_open | np.isfinite(theirs["exit_price"])
    assert np.isfinite(mine["exit_price"]).all() and np.isfinite(mine["pnl"]).all()
    np.testing.assert_allclose(mine["exit_price"][marked], theirs["exit_price"][marked], rtol=REL)
    np.testing.assert_allclose(mine["pnl"][marked], theirs["pnl"][marked], rtol=REL,
                               atol=1e-9 * CASH)  # fmt: skip
    value = pf.value().to_numpy()
    assert np.max(np.abs(ours.equity / value - 1.0)) <= REL
    np.testing.assert_allclose(ours.cash, pf.cash().to_numpy(), rtol=REL, atol=1e-9 * CASH)
    assert ours.final_equity == pytest.approx(value[-1], rel=REL)


def _files(table: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(table.items())


@pytest.mark.parametrize(
    ("files", "notional", "timing"),
    [
        pytest.param(_files(CRYPTO_1H), 4_000.0, "next_open", id="crypto_1h-4000-next_open"),
        pytest.param(_files(CRYPTO_1H), 9_000.0, "next_open", id="crypto_1h-9000-next_open"),
        pytest.param(_files(CRYPTO_1H), 6_000.0, "close", id="crypto_1h-6000-close"),
        pytest.param(_files(MIXED_1D), 5_000.0, "next_open", id="btc_spy_qqq_1d-5000-next_open"),
        pytest.param(_files(MIXED_1D), 5_000.0, "close", id="btc_spy_qqq_1d-5000-close"),
    ],
)
def test_long_only_matches_vectorbt_cash_sharing(
    shared_data: Path, files: tuple[tuple[str, str], ...], notional: float, timing: str
) -> None:
    import vectorbt as vbt

    book = _book(str(shared_data), files)
    assert np.isnan(book.prices["close"]).any(), "the case must have missing bars"
    ours = _ours(book, notional, timing, long_entries=book.entries, long_exits=book.exits)
    # the cash binds: some entries are partial (less than the notional) or skipped
    partial = ours.trades["size"] * ours.trades["entry_price"] < notional * (1 - 1e-9)
    assert partial.any()
    if notional >= 5_000.0:
        assert ours.n_skipped.sum() > 0
    shifted = timing == "next_open"
    pf = vbt.Portfolio.from_signals(
        book.frame(book.prices["close"]),
        book.frame(book.next_entries if shifted else book.entries),
        book.frame(book.next_exits if shifted else book.exits),
        price=book.frame(book.prices["open" if shifted else "close"]),
        size=notional, size_type="value", fees=FEE, init_cash=CASH, direction="longonly",
        cash_sharing=True, group_by=True, call_seq="auto",
    )  # fmt: skip
    _compare(ours, pf)


@pytest.mark.parametrize("notional", [4_000.0, 7_000.0])
def test_long_and_short_share_the_free_cash_like_vectorbt(
    shared_data: Path, notional: float
) -> None:
    """BTC and SOL long-only, ETH short-only (short on the down cross, cover on the up cross):
    the short's proceeds and collateral are locked (``lock_cash=True``), with our order of the
    orders in a bar (``call_seq`` below)."""
    import vectorbt as vbt

    book = _book(str(shared_data), _files(CRYPTO_1H))
    long_entries, long_exits = book.entries.copy(), book.exits.copy()
    short_entries, short_exits = np.zeros_like(long_entries), np.zeros_like(long_exits)
    short_entries[:, 1], short_exits[:, 1] = book.exits[:, 1], book.entries[:, 1]
    long_entries[:, 1] = long_exits[:, 1] = False
    ours = _ours(book, notional, long_entries=long_entries, long_exits=long_exits,
                 short_entries=short_entries, short_exits=short_exits)  # fmt: skip
    assert (ours.trades["side"] < 0).sum() > 20
    # vectorbt: entries/exits per column in its direction (column 1 short-only)
    entries, exits = book.next_entries.copy(), book.next_exits.copy()
    entries[:, 1], exits[:, 1] = book.next_exits[:, 1], book.next_entries[:, 1]
    call_seq = np.array([np.r_[np.flatnonzero(row), np.flatnonzero(~row)] for row in exits])
    pf = vbt.Portfolio.from_signals(
        book.frame(book.prices["close"]), book.frame(entries), book.frame(exits),
        price=book.frame(book.prices["open"]), size=notional, size_type="value", fees=FEE,
        init_cash=CASH, direction=np.array([[0, 1, 0]]), lock_cash=True, cash_sharing=True,
        group_by=True, call_seq=call_seq,
    )  # fmt: skip
    _compare(ours, pf)
