"""The engine's portfolio mode: several assets, one shared cash balance.

* one asset: the portfolio is the single-asset engine exactly (every candle scenario of
  ``test_engine_scenarios`` and a hypothesis property over random bars, signals and settings);
* several assets whose cash never binds: each asset trades exactly as in its own single-asset
  run on its own bars (missing bars included), and the total equity is the sum of theirs;
* hand-built multi-asset scenarios where the shared cash matters: entries competing on one bar,
  exits (signals, gapped stops) freeing cash before entries, sizing on the total equity, short
  collateral, missing bars, end of data;
* properties: cash never negative, accounting identities, no look-ahead, fees;
* input validation (one line naming the asset and the bar) and the research API.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.lib.recfunctions import repack_fields

from morningstar.core.engine import (
    TRADE_DTYPE,
    Costs,
    EngineInputError,
    EngineOptions,
    EngineResult,
    ExitReason,
    FractionSizing,
    NotionalSizing,
    OrderLimits,
    PortfolioEngineResult,
    Stops,
    simulate,
    simulate_portfolio,
)
from morningstar.errors import StrategyError, UserInputError
from morningstar.research import backtest, backtest_portfolio
from morningstar.strategies import Bars, Signals, Strategy
from tests.unit.test_engine_properties import SETTINGS, Market, bar_rows, configs, markets
from tests.unit.test_engine_properties import run as run_single
from tests.unit.test_engine_scenarios import CASH, SCENARIOS, Scenario, _signals

PER_BAR = ("volatility", "stop_loss_dist", "take_profit_dist", "trailing_dist")


def _same_trades(single: np.ndarray, portfolio_trades: np.ndarray) -> None:
    """The portfolio's trade records (asset column dropped) equal the single-asset ones."""
    mine = np.asarray(portfolio_trades[list(TRADE_DTYPE.names or ())], dtype=TRADE_DTYPE)
    assert mine.tobytes() == single.tobytes(), (single, mine)


def _one_asset(single: EngineResult, folio: PortfolioEngineResult) -> None:
    """A one-asset portfolio is bit for bit the single-asset result."""
    np.testing.assert_array_equal(folio.equity, single.equity)
    np.testing.assert_array_equal(folio.position[:, 0], single.position)
    _same_trades(single.trades, folio.trades)
    assert int(folio.n_skipped[0]) == single.n_skipped


# ------------------------------------------------------------------ one asset = simulate
@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda sc: sc.id)
def test_one_asset_portfolio_is_the_single_asset_engine(sc: Scenario) -> None:
    bars = np.array(sc.bars, dtype=np.float64)
    signals = _signals(sc.signals, len(bars))
    single = simulate(
        bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 3], init_cash=CASH, **signals, **sc.kwargs
    )
    kwargs = {k: (np.asarray(v)[:, None] if k in PER_BAR else v) for k, v in sc.kwargs.items()}
    folio = simulate_portfolio(
        bars[:, :1], bars[:, 1:2], bars[:, 2:3], bars[:, 3:4], init_cash=CASH,
        **{k: v[:, None] for k, v in signals.items()}, **kwargs,
    )  # fmt: skip
    _one_asset(single, folio)
    np.testing.assert_array_equal(folio.cash + folio.value[:, 0], folio.equity)


@SETTINGS
@given(market=markets(), cfg=configs())
def test_one_asset_portfolio_matches_on_random_markets(market: Market, cfg: dict[str, Any]) -> None:
    single = run_single(market, cfg)
    kwargs: dict[str, Any] = {k: v for k, v in cfg.items() if k != "distances"}
    for column in cfg.get("distances", ()):
        kwargs[PER_BAR[column + 1]] = market.distances[:, column : column + 1]
    b = market.bars
    folio = simulate_portfolio(
        b[:, :1], b[:, 1:2], b[:, 2:3], b[:, 3:4], init_cash=10_000.0,
        volatility=market.volatility[:, None],
        **{k: v[:, None] for k, v in market.signals.items()}, **kwargs,
    )  # fmt: skip
    _one_asset(single, folio)


# ------------------------------------------- several assets, cash never binds = own runs
def _random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    return np.column_stack([open_, high, low, close])


def _ema_cross(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = pd.Series(close)
    fast, slow = s.ewm(span=10, adjust=False).mean(), s.ewm(span=40, adjust=False).mean()
    up = (fast > slow) & (fast.shift() <= slow.shift())
    down = (fast < slow) & (fast.shift() >= slow.shift())
    return up.to_numpy(), down.to_numpy()


@dataclass
class Universe:
    """Assets on a union of bars: ``rows[j]`` are asset j's bars among the union's."""

    bars: list[np.ndarray]  # each asset's own (open, high, low, close) rows
    rows: list[np.ndarray]
    n: int
    signals: list[dict[str, np.ndarray]] = field(default_factory=list)

    def matrix(self, column: int) -> np.ndarray:
        out = np.full((self.n, len(self.bars)), np.nan)
        for j, (bars, rows) in enumerate(zip(self.bars, self.rows, strict=True)):
            out[rows, j] = bars[:, column]
        return out

    def signal_matrix(self, name: str) -> np.ndarray:
        out = np.zeros((self.n, len(self.bars)), dtype=bool)
        for j, rows in enumerate(self.rows):
            out[rows, j] = self.signals[j][name]
        return out


def _universe(shorts: bool) -> Universe:
    """Four assets on 3,000 bars: one trades every bar, one skips two bars in seven (weekends),
    one starts late, one ends early."""
    n = 3000
    every = np.arange(n)
    masks = [every, every[every % 7 < 5], every[400:], every[: n - 350]]
    bars = [_random_walk(len(rows), seed) for seed, rows in enumerate(masks, start=11)]
    signals = []
    for own in bars:
        up, down = _ema_cross(own[:, 3])
        empty = np.zeros_like(up)
        signals.append({
            "long_entries": up, "long_exits": down,
            "short_entries": down if shorts else empty, "short_exits": up if shorts else empty,
        })  # fmt: skip
    return Universe(bars, masks, n, signals)


CASH_NEVER_BINDS = [
    pytest.param({}, False, id="next_open-long"),
    pytest.param({"options": EngineOptions(fill_timing="close")}, False, id="close-long"),
    pytest.param({}, True, id="next_open-long_short_reversals"),
    pytest.param(
        {"stops": Stops(stop_loss=0.02, take_profit=0.05, trailing_stop=0.03)}, True, id="stops"
    ),
    pytest.param(
        {"options": EngineOptions(fill_timing="close", close_at_end=True),
         "stops": Stops(stop_loss=0.03, intrabar="target_first", take_profit=0.02),
         "costs": Costs(fee_bps=10, slippage_bps=5)},
        True, id="close-stops-costs-close_at_end",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "shorts"), CASH_NEVER_BINDS)
def test_assets_trade_as_alone_when_cash_never_binds(
    settings: dict[str, Any], shorts: bool
) -> None:
    uni = _universe(shorts)
    notional, cash = 1_000.0, 10_000.0
    folio = simulate_portfolio(
        uni.matrix(0), uni.matrix(1), uni.matrix(2), uni.matrix(3),
        long_entries=uni.signal_matrix("long_entries"), long_exits=uni.signal_matrix("long_exits"),
        short_entries=uni.signal_matrix("short_entries"),
        short_exits=uni.signal_matrix("short_exits"),
        init_cash=cash, sizing=NotionalSizing(notional), **settings,
    )  # fmt: skip
    assert folio.n_trades > 100
    assert folio.n_skipped.sum() == 0
    # no entry was capped by the cash: every notional is the wanted one
    np.testing.assert_allclose(folio.trades["size"] * folio.trades["entry_price"], notional)
    expected_equity = np.full(uni.n, cash)
    for j, (bars, rows) in enumerate(zip(uni.bars, uni.rows, strict=True)):
        alone = simulate(
            bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 3], **uni.signals[j], init_cash=cash,
            sizing=NotionalSizing(notional), **settings,
        )  # fmt: skip
        mine = folio.asset_trades(j)
        # the same trades, with the asset's own bar numbers mapped onto the union's
        own = alone.trades.copy()
        own["entry_bar"] = rows[own["entry_bar"]]
        own["exit_bar"] = rows[own["exit_bar"]]
        own["entry_time"] = own["entry_bar"]
        own["exit_time"] = own["exit_bar"]
        _same_trades(own, mine)
        # its position and value, held through its missing bars, and its P&L in the total
        position = np.zeros(uni.n)
        position[rows] = alone.position
        held = pd.Series(np.where(np.isin(np.arange(uni.n), rows), position, np.nan)).ffill()
        np.testing.assert_array_equal(folio.position[:, j], held.fillna(0.0).to_numpy())
        pnl = pd.Series(np.nan, index=range(uni.n))
        pnl[rows] = alone.equity - cash
        expected_equity += pnl.ffill().fillna(0.0).to_numpy()
    np.testing.assert_allclose(folio.equity, expected_equity, rtol=1e-12)


# ------------------------------------------------------- hand-built shared-cash scenarios
FLAT = (100.0, 101.0, 99.0, 100.0)
Bar = tuple[float, float, float, float] | None


@dataclass(frozen=True)
class PTrade:
    asset: str
    side: str
    entry_bar: int
    entry_price: float
    exit_bar: int
    exit_price: float
    reason: str
    size: float | None = None


@dataclass(frozen=True)
class PScenario:
    """Assets (name → (bars, signal tokens)), in fill order; ``None`` marks a missing bar."""

    id: str
    assets: dict[str, tuple[list[Bar], str]]
    trades: list[PTrade]
    kwargs: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    final_equity: float | None = None
    equity: list[float] | None = None


def L(asset: str, eb: int, ep: float, xb: int, xp: float, reason: str,
      size: float | None = None) -> PTrade:  # fmt: skip
    return PTrade(asset, "long", eb, ep, xb, xp, reason, size)


def S(asset: str, eb: int, ep: float, xb: int, xp: float, reason: str,
      size: float | None = None) -> PTrade:  # fmt: skip
    return PTrade(asset, "short", eb, ep, xb, xp, reason, size)


AT_110 = (110.0, 111.0, 109.0, 110.0)
RISE_TO_110: list[Bar] = [FLAT, FLAT, (100.0, 111.0, 99.0, 110.0), AT_110, AT_110]
ALL_IN = {"sizing": FractionSizing(1.0)}

PSCENARIOS = [
    PScenario("same_bar_entries_the_first_asset_takes_all_the_cash",
              {"A": ([FLAT] * 5, "LE . . . ."), "B": ([FLAT] * 5, "LE . . . .")},
              [L("A", 1, 100, 4, 100, "open", size=10)], ALL_IN, {"B": 1}, final_equity=1000),
    PScenario("asset_order_decides_who_is_funded",
              {"B": ([FLAT] * 5, "LE . . . ."), "A": ([FLAT] * 5, "LE . . . .")},
              [L("B", 1, 100, 4, 100, "open", size=10)], ALL_IN, {"A": 1}),
    PScenario("the_second_entry_gets_what_is_left",
              {"A": ([FLAT] * 5, "LE . . . ."), "B": ([FLAT] * 5, "LE . . . .")},
              [L("A", 1, 100, 4, 100, "open", size=6), L("B", 1, 100, 4, 100, "open", size=4)],
              {"sizing": NotionalSizing(600)}),
    PScenario("what_is_left_below_min_notional_is_skipped",
              {"A": ([FLAT] * 5, "LE . . . ."), "B": ([FLAT] * 5, "LE . . . .")},
              [L("A", 1, 100, 4, 100, "open", size=6)],
              {"sizing": NotionalSizing(600), "limits": OrderLimits(min_notional=500)}, {"B": 1}),
    PScenario("an_exit_frees_its_cash_for_an_entry_at_the_same_open",
              {"A": (RISE_TO_110, "LE . LX . ."), "B": ([FLAT] * 5, ". . LE . .")},
              [L("A", 1, 100, 3, 110, "signal", size=10), L("B", 3, 100, 4, 100, "open", size=11)],
              ALL_IN, final_equity=1100),
    PScenario("a_reversal_and_another_entry_on_one_bar",
              {"A": ([FLAT] * 5, "LE . SE . ."), "B": ([FLAT] * 5, ". . LE . .")},
              [L("A", 1, 100, 3, 100, "signal", size=5), S("A", 3, 100, 4, 100, "open", size=5),
               L("B", 3, 100, 4, 100, "open", size=5)],
              {"sizing": NotionalSizing(500)}, final_equity=1000),
    PScenario("fraction_of_the_total_equity_marked_at_the_open",
              # A is worth 4 x 125 at bar 3's open (its previous close was 120): equity 1100
              {"A": ([FLAT, FLAT, (100.0, 121.0, 99.0, 120.0), (125.0, 126.0, 124.0, 125.0),
                      (125.0, 126.0, 124.0, 125.0)], "LE . . . ."),
               "B": ([FLAT] * 5, ". . LE . .")},
              [L("A", 1, 100, 4, 125, "open", size=4), L("B", 3, 100, 4, 100, "open", size=4.4)],
              {"sizing": FractionSizing(0.4)}),
    PScenario("a_stop_the_open_gaps_through_frees_cash_for_entries",
              {"A": ([FLAT, FLAT, FLAT, (90.0, 91.0, 89.0, 90.0), (90.0, 91.0, 89.0, 90.0)],
                     "LE . . . ."),
               "B": ([FLAT] * 5, ". . LE . .")},
              [L("A", 1, 100, 3, 90, "stop_loss", size=10), L("B", 3, 100, 4, 100, "open", size=9)],
              {**ALL_IN, "stops": Stops(stop_loss=0.05)}, final_equity=900),
    PScenario("a_stop_inside_the_bar_does_not_fund_an_entry_at_its_open",
              {"A": ([FLAT, FLAT, FLAT, (100.0, 101.0, 94.0, 96.0), (96.0, 97.0, 95.0, 96.0)],
                     "LE . . . ."),
               "B": ([FLAT] * 5, ". . LE . .")},
              [L("A", 1, 100, 3, 95, "stop_loss", size=10)],
              {**ALL_IN, "stops": Stops(stop_loss=0.05)}, {"B": 1}, final_equity=950),
    PScenario("a_short_locks_its_proceeds_and_as_much_collateral",
              # cash 1000 + 400 proceeds, free 1400 - 2 x 400 = 600: B gets 400, C the last 200
              {"A": ([FLAT] * 5, "SE . . . ."), "B": ([FLAT] * 5, "LE . . . ."),
               "C": ([FLAT] * 5, "LE . . . .")},
              [S("A", 1, 100, 4, 100, "open", size=4), L("B", 1, 100, 4, 100, "open", size=4),
               L("C", 1, 100, 4, 100, "open", size=2)],
              {"sizing": NotionalSizing(400)}, final_equity=1000),
    PScenario("close_timing_exit_and_entry_at_the_same_close",
              {"A": (RISE_TO_110, "LE . LX . ."), "B": ([FLAT] * 5, ". . LE . .")},
              [L("A", 0, 100, 2, 110, "signal", size=10), L("B", 2, 100, 4, 100, "open", size=11)],
              {**ALL_IN, "options": EngineOptions(fill_timing="close")}, final_equity=1100),
    PScenario("a_missing_bar_gets_no_fill_and_is_marked_at_the_last_close",
              # B's exit signal of bar 1 waits for B's next bar (3); bar 2 marks B at 102
              {"A": ([FLAT] * 5, ". . . . ."),
               "B": ([FLAT, (100.0, 103.0, 99.0, 102.0), None, (104.0, 105.0, 103.0, 104.0),
                      (104.0, 105.0, 103.0, 104.0)], "LE LX . . .")},
              [L("B", 1, 100, 3, 104, "signal", size=5)], {"sizing": NotionalSizing(500)},
              equity=[1000, 1010, 1010, 1020, 1020]),
    PScenario("no_stop_check_on_a_missing_bar_then_the_gap_fills_at_the_open",
              {"A": ([FLAT] * 5, ". . . . ."),
               "B": ([FLAT, FLAT, None, (90.0, 91.0, 89.0, 90.0), (90.0, 91.0, 89.0, 90.0)],
                     "LE . . . .")},
              [L("B", 1, 100, 3, 90, "stop_loss", size=10)],
              {**ALL_IN, "stops": Stops(stop_loss=0.05)}, final_equity=900),
    PScenario("an_asset_starting_later_enters_on_its_own_next_bar",
              {"A": ([FLAT] * 5, ". . . . ."),
               "B": ([None, None, FLAT, FLAT, FLAT], ". . LE . .")},
              [L("B", 3, 100, 4, 100, "open", size=10)], ALL_IN),
    PScenario("close_at_end_closes_each_asset_at_its_own_last_close",
              {"A": ([FLAT] * 5, "LE . . . ."),
               "B": ([FLAT, FLAT, FLAT, (100.0, 101.0, 99.0, 101.0), None], "LE . . . .")},
              [L("A", 1, 100, 4, 100, "end_of_data", size=4),
               L("B", 1, 100, 3, 101, "end_of_data", size=4)],
              {"sizing": NotionalSizing(400), "options": EngineOptions(close_at_end=True)},
              final_equity=1004),
    PScenario("an_open_trade_is_marked_at_its_assets_last_close",
              {"A": ([FLAT] * 5, ". . . . ."),
               "B": ([FLAT, FLAT, FLAT, (100.0, 101.0, 99.0, 101.0), None], "LE . . . .")},
              [L("B", 1, 100, 3, 101, "open", size=4)], {"sizing": NotionalSizing(400)},
              equity=[1000, 1000, 1000, 1004, 1004]),
    PScenario("a_signal_on_an_assets_last_bar_never_fills",
              {"A": ([FLAT] * 5, ". . . . ."), "B": ([FLAT, FLAT, FLAT, FLAT, None], ". . . LE .")},
              [], ALL_IN, final_equity=1000),
]  # fmt: skip


def _run_scenario(sc: PScenario) -> PortfolioEngineResult:
    n = len(next(iter(sc.assets.values()))[0])
    prices = np.full((4, n, len(sc.assets)), np.nan)
    signals = {name: np.zeros((n, len(sc.assets)), dtype=bool) for name in
               ("long_entries", "long_exits", "short_entries", "short_exits")}  # fmt: skip
    for j, (bars, tokens) in enumerate(sc.assets.values()):
        for t, bar in enumerate(bars):
            if bar is not None:
                prices[:, t, j] = bar
        for name, values in _signals(tokens, n).items():
            signals[name][:, j] = values
    return simulate_portfolio(
        *prices, **signals, assets=list(sc.assets), init_cash=CASH, **sc.kwargs
    )


def test_there_are_enough_portfolio_scenarios() -> None:
    assert len(PSCENARIOS) >= 15
    assert len({sc.id for sc in PSCENARIOS}) == len(PSCENARIOS)


@pytest.mark.parametrize("sc", PSCENARIOS, ids=lambda sc: sc.id)
def test_portfolio_scenario(sc: PScenario) -> None:
    result = _run_scenario(sc)
    got = result.to_pandas().trades
    assert len(got) == len(sc.trades), got[["asset", "side", "entry_bar", "exit_bar", "size"]]
    for row, want in zip(got.itertuples(), sc.trades, strict=True):
        assert (row.asset, row.side) == (want.asset, want.side)
        assert (row.entry_bar, row.exit_bar) == (want.entry_bar, want.exit_bar)
        assert row.exit_reason == want.reason
        assert row.entry_price == pytest.approx(want.entry_price, rel=1e-12)
        assert row.exit_price == pytest.approx(want.exit_price, rel=1e-12)
        if want.size is not None:
            assert row.size == pytest.approx(want.size, rel=1e-12)
    skipped = dict(zip(result.assets, result.n_skipped.tolist(), strict=True))
    assert skipped == {asset: sc.skipped.get(asset, 0) for asset in result.assets}
    if sc.final_equity is not None:
        assert result.final_equity == pytest.approx(sc.final_equity, rel=1e-12)
    if sc.equity is not None:
        np.testing.assert_allclose(result.equity, sc.equity, rtol=1e-12)
    _check_accounting(result, np.array([[bar[3] if bar else np.nan for bar in bars]
                                         for bars, _ in sc.assets.values()]).T)  # fmt: skip


def _check_accounting(result: PortfolioEngineResult, close: np.ndarray) -> None:
    """Identities every portfolio run keeps."""
    # equity = cash + the positions at their last close
    last_close = pd.DataFrame(close).ffill().to_numpy()
    held = np.where(result.position != 0.0, result.position * last_close, 0.0)
    np.testing.assert_allclose(result.value, held, rtol=1e-12)
    np.testing.assert_allclose(result.equity, result.cash + result.value.sum(axis=1), rtol=1e-12,
                               atol=1e-9)  # fmt: skip
    # the final equity is the initial cash plus every trade's P&L (open ones marked)
    total = result.init_cash + float(result.trades["pnl"].sum())
    assert result.final_equity == pytest.approx(total, rel=1e-9, abs=1e-9)
    # the per-asset P&L adds up to it
    breakdown = result.breakdown()
    assert breakdown["pnl"].sum() == pytest.approx(total - result.init_cash, rel=1e-9, abs=1e-9)
    # no position where the asset has no bar yet
    before_first = np.cumsum(result.has_bar, axis=0) == 0
    assert not np.any(result.position[before_first])


def test_a_higher_fee_can_raise_equity_when_cash_binds() -> None:
    """Why "higher fees never raise equity" only holds while the cash does not bind: the fee
    leaves B too little cash for its minimum notional, and B's entry, a loser, is skipped."""
    b_falls = [FLAT, FLAT, FLAT, (50.0, 51.0, 49.0, 50.0), (50.0, 51.0, 49.0, 50.0)]
    sc = PScenario("fees", {"A": ([FLAT] * 5, "LE . . . ."), "B": (b_falls, "LE . . . .")}, [],
                   {"sizing": NotionalSizing(500), "limits": OrderLimits(min_notional=500)})  # fmt: skip
    cheap = _run_scenario(sc)
    dear = _run_scenario(replace(sc, kwargs={**sc.kwargs, "costs": Costs(fee_bps=10)}))
    assert cheap.n_skipped.tolist() == [0, 0] and dear.n_skipped.tolist() == [0, 1]
    assert dear.final_equity > cheap.final_equity


# ------------------------------------------------------------------- properties
@dataclass(frozen=True)
class Book:
    """Several assets' bars on a union of times (NaN: no bar), with signals and per-bar inputs."""

    prices: np.ndarray  # (4, n, m)
    signals: dict[str, np.ndarray]
    volatility: np.ndarray
    distances: np.ndarray  # (3, n, m)

    @property
    def n(self) -> int:
        return int(self.prices.shape[1])


@st.composite
def books(draw: st.DrawFn, min_bars: int = 2, max_bars: int = 25, max_assets: int = 4,
          mask: np.ndarray | None = None) -> Book:  # fmt: skip
    """Random books; an asset has each bar with probability 3/4 (at least one bar each)."""
    if mask is None:
        n = draw(st.integers(min_bars, max_bars))
        m = draw(st.integers(1, max_assets))
        cells = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=n * m,
                              max_size=n * m))  # fmt: skip
        mask = np.array(cells).reshape(n, m)
        mask[draw(st.integers(0, n - 1)), :] = True
    n, m = mask.shape
    prices = np.stack([draw(bar_rows(n)) for _ in range(m)], axis=2).transpose(1, 0, 2)
    prices[:, ~mask] = np.nan
    bools = st.lists(st.sampled_from([False, False, False, True]), min_size=n * m, max_size=n * m)
    signals = {name: np.array(draw(bools)).reshape(n, m) & mask for name in
               ("long_entries", "long_exits", "short_entries", "short_exits")}  # fmt: skip
    vol = np.array(draw(st.lists(st.floats(0.001, 0.05), min_size=n * m, max_size=n * m)))
    dist = np.array(draw(st.lists(st.floats(0.5, 15.0), min_size=3 * n * m,
                                  max_size=3 * n * m)))  # fmt: skip
    return Book(prices, signals, vol.reshape(n, m), dist.reshape(3, n, m))


def run_book(book: Book, cfg: dict[str, Any], **override: Any) -> PortfolioEngineResult:
    kwargs: dict[str, Any] = {"volatility": book.volatility, **book.signals}
    kwargs.update((k, v) for k, v in cfg.items() if k != "distances")
    for column in cfg.get("distances", ()):
        kwargs[PER_BAR[column + 1]] = book.distances[column]
    kwargs.update(override)
    kwargs.setdefault("init_cash", 10_000.0)
    return simulate_portfolio(*book.prices, **kwargs)


@SETTINGS
@given(book=books(), cfg=configs())
def test_cash_never_goes_negative_and_the_books_balance(book: Book, cfg: dict[str, Any]) -> None:
    """Prices stay in [60, 110], so no short can lose more than its collateral."""
    result = run_book(book, cfg)
    assert result.cash.min() >= -1e-9
    _check_accounting(result, book.prices[3])
    # positions follow the trades, held through missing bars
    expected = np.zeros(result.position.shape)
    for tr in result.trades:
        end = tr["exit_bar"] + 1 if tr["exit_reason"] == ExitReason.OPEN else tr["exit_bar"]
        expected[tr["entry_bar"] : end, tr["asset"]] = tr["side"] * tr["size"]
    if result.n_trades:
        last_bar = result.has_bar[::-1].argmax(axis=0)
        for j in range(len(result.assets)):
            last = book.n - 1 - last_bar[j]
            still_open = result.trades[(result.trades["asset"] == j)
                                       & (result.trades["exit_reason"] == ExitReason.OPEN)]  # fmt: skip
            if len(still_open):  # an open trade is held after its asset's last bar too
                expected[last:, j] = still_open["side"][0] * still_open["size"][0]
    np.testing.assert_array_equal(result.position, expected)


@SETTINGS
@given(book=books(min_bars=3), cfg=configs(), data=st.data())
def test_changing_bars_after_t_changes_nothing_up_to_t(
    book: Book, cfg: dict[str, Any], data: st.DataObject
) -> None:
    """Prices, signals and per-bar inputs after t change; each asset keeps its bars (its last
    bar, the end of its data, is known, as the last bar is in the single-asset engine)."""
    n = book.n
    t = data.draw(st.integers(0, n - 2), label="t")
    other = data.draw(books(mask=~np.isnan(book.prices[3])), label="future")
    future = slice(t + 1, n)
    prices = book.prices.copy()
    prices[:, future] = other.prices[:, future]
    signals = {k: v.copy() for k, v in book.signals.items()}
    for k, values in signals.items():
        values[future] = other.signals[k][future]
    vol = book.volatility.copy()
    vol[future] = other.volatility[future]
    dist = book.distances.copy()
    dist[:, future] = other.distances[:, future]
    a = run_book(book, cfg)
    b = run_book(Book(prices, signals, vol, dist), cfg)
    for name in ("equity", "cash", "position", "value"):
        np.testing.assert_array_equal(getattr(a, name)[: t + 1], getattr(b, name)[: t + 1])
    entry = ["asset", "entry_bar", "side", "size", "entry_price", "entry_fee"]
    exit_ = ["exit_bar", "exit_price", "exit_fee", "pnl", "return", "exit_reason"]

    def closed_by_t(r: PortfolioEngineResult) -> np.ndarray:
        rec = r.trades
        return repack_fields(
            rec[(rec["exit_reason"] != ExitReason.OPEN) & (rec["exit_bar"] <= t)][entry + exit_]
        )

    assert closed_by_t(a).tobytes() == closed_by_t(b).tobytes()
    entered_a = repack_fields(a.trades[a.trades["entry_bar"] <= t][entry])
    entered_b = repack_fields(b.trades[b.trades["entry_bar"] <= t][entry])
    assert entered_a.tobytes() == entered_b.tobytes()


@SETTINGS
@given(
    book=books(), cfg=configs(continuous=True), fees=st.tuples(st.floats(0, 100), st.floats(0, 100))
)
def test_higher_fees_never_give_higher_equity_while_cash_does_not_bind(
    book: Book, cfg: dict[str, Any], fees: tuple[float, float]
) -> None:
    """Fixed notional, cash far above what the assets can use: the same trades happen, each
    worth less with the higher fee, bar by bar (see the binding counterexample above)."""
    low, high = sorted(fees)
    base = cfg["costs"]
    sizing = NotionalSizing(1_000.0)
    cheap = run_book(book, cfg, sizing=sizing, init_cash=1e7,
                     costs=Costs(low, 0.0, base.slippage_bps, base.vol_slippage_k))  # fmt: skip
    dear = run_book(book, cfg, sizing=sizing, init_cash=1e7,
                    costs=Costs(high, 0.0, base.slippage_bps, base.vol_slippage_k))  # fmt: skip
    for name in ("asset", "entry_bar", "exit_bar", "side"):
        np.testing.assert_array_equal(cheap.trades[name], dear.trades[name])
    assert np.all(dear.equity <= cheap.equity * (1 + 1e-12) + 1e-6)
    assert dear.final_equity <= cheap.final_equity * (1 + 1e-12) + 1e-6


@SETTINGS
@given(book=books(max_assets=3), cfg=configs(continuous=True))
def test_each_asset_trades_as_alone_while_cash_does_not_bind(
    book: Book, cfg: dict[str, Any]
) -> None:
    """With a fixed notional far below the cash, asset j's trades are those of ``simulate`` on
    its own bars, whatever its missing bars, stops, timing and costs (three assets of 100 each,
    no more than 25 trades each, can never use up 10,000)."""
    result = run_book(book, cfg, sizing=NotionalSizing(100.0))
    for j in range(book.prices.shape[2]):
        rows = np.flatnonzero(~np.isnan(book.prices[3, :, j]))
        own = Market(
            book.prices[:, rows, j].T.copy(),
            {k: v[rows, j] for k, v in book.signals.items()},
            book.volatility[rows, j],
            book.distances[:, rows, j].T.copy(),
        )
        alone = run_single(own, cfg, sizing=NotionalSizing(100.0))
        expected = alone.trades.copy()
        for name in ("entry_bar", "exit_bar", "entry_time", "exit_time"):
            expected[name] = rows[expected[name]]
        _same_trades(expected, result.asset_trades(j))
        assert int(result.n_skipped[j]) == alone.n_skipped


# ------------------------------------------------------------------- validation
def _valid() -> dict[str, Any]:
    bars = np.array([FLAT] * 4)
    two = np.repeat(bars[:, :, None], 2, axis=2)
    return {"open_": two[:, 0], "high": two[:, 1], "low": two[:, 2], "close": two[:, 3],
            "assets": ["BTC", "ETH"], "timestamps": pd.date_range("2024-01-01", periods=4,
                                                                  freq="h", tz="UTC")}  # fmt: skip


def _with(name: str, row: int, col: int, value: float) -> np.ndarray:
    arr = _valid()[name].copy()
    arr[row, col] = value
    return arr


def _cells(row: int, col: int, shape: tuple[int, int] = (4, 2)) -> np.ndarray:
    arr = np.zeros(shape, dtype=bool)
    arr[row, col] = True
    return arr


@pytest.mark.parametrize(
    ("change", "where", "text"),
    [
        ({"close": _with("close", 2, 1, np.nan)}, "asset 'ETH', bar 2 (2024-01-01T02:00:00+00:00)",
         "NaN or infinite (a missing bar has all four prices NaN"),
        ({"low": _with("low", 3, 0, 0.0)}, "asset 'BTC', bar 3", "zero or negative"),
        ({"high": _with("high", 1, 1, 99.5)}, "asset 'ETH', bar 1", "inconsistent"),
        ({"open_": np.full((4, 2), np.nan), "high": np.full((4, 2), np.nan),
          "low": np.full((4, 2), np.nan), "close": np.full((4, 2), np.nan)},
         "asset 'BTC'", "no bar"),
        ({"close": np.ones(4)}, "close", "two-dimensional"),
        ({"open_": np.ones((4, 3))}, "open", "shape (4, 3) for 4 bars x 2 assets"),
        ({"assets": ["BTC", "BTC"]}, "assets", "given twice"),
        ({"assets": ["BTC"]}, "assets", "1 asset names for 2 price columns"),
        ({"long_entries": np.zeros((4, 3), dtype=bool)}, "long_entries", "4 bars x 2 assets"),
        ({"short_exits": np.zeros((4, 2))}, "short_exits", "boolean"),
        ({"costs": Costs(vol_slippage_k=1.0)}, "volatility", "required"),
        ({"volatility": np.where(_cells(2, 1), -0.1, 0.01)}, "volatility at asset 'ETH', bar 2",
         "negative"),
        ({"stop_loss_dist": np.where(_cells(0, 0), 0.0, 1.0)}, "stop_loss_dist at asset 'BTC'",
         "zero"),
        ({"stop_loss_dist": np.ones((4, 2)), "stops": Stops(stop_loss=0.1)}, "stop_loss_dist",
         "both"),
        ({"init_cash": -5.0}, "simulate_portfolio.init_cash", "invalid"),
        ({"close": np.empty((0, 2))}, "close", "no bars or no assets"),
    ],
)  # fmt: skip
def test_invalid_inputs_are_one_line_naming_asset_and_bar(
    change: dict[str, Any], where: str, text: str
) -> None:
    with pytest.raises(EngineInputError) as info:
        simulate_portfolio(**{**_valid(), **change})
    assert info.value.where is not None and info.value.where.startswith(where), info.value.where
    assert text in str(info.value)
    assert "\n" not in str(info.value)


def test_a_signal_on_a_missing_bar_is_refused() -> None:
    kwargs = _valid()
    for name in ("open_", "high", "low", "close"):
        kwargs[name] = _with(name, 2, 1, np.nan)
    simulate_portfolio(**kwargs)  # a missing bar is fine
    with pytest.raises(EngineInputError) as info:
        simulate_portfolio(**kwargs, long_exits=_cells(2, 1))
    assert info.value.where == "asset 'ETH', bar 2 (2024-01-01T02:00:00+00:00)"
    assert "long_exits is set where the asset has no bar" in str(info.value)


# ------------------------------------------------------------------- outputs
def test_frames_breakdown_and_names() -> None:
    sc = next(s for s in PSCENARIOS if s.id == "a_short_locks_its_proceeds_and_as_much_collateral")
    result = _run_scenario(sc)
    frames = result.to_pandas()
    single_columns = list(simulate(np.ones(2), np.ones(2), np.ones(2), np.ones(2)).to_pandas()
                          .trades.columns)  # fmt: skip
    assert list(frames.trades.columns) == ["asset", *single_columns]
    assert list(frames.trades["asset"]) == ["A", "B", "C"]
    assert list(frames.position.columns) == ["A", "B", "C"]
    np.testing.assert_array_equal(frames.position.iloc[-1], [-4, 4, 2])
    np.testing.assert_array_equal(frames.cash, [1000, 800, 800, 800, 800])  # +400 -400 -200
    np.testing.assert_array_equal(frames.equity, [1000] * 5)
    table = result.breakdown()
    assert list(table.index) == ["A", "B", "C"]
    assert table.loc["C", "open_trades"] == 1 and table.loc["C", "exposure"] == pytest.approx(0.8)
    assert table.loc["A", "final_value"] == -400.0
    assert math.isnan(table.loc["A", "win_rate"])  # no closed trade
    assert result.asset_trades("B")["size"].tolist() == [4.0]
    with pytest.raises(KeyError, match="no asset 'D'"):
        result.asset_trades("D")
    # a column number as numpy gives it (e.g. from the trades' asset field) works like an int
    for number in (1, np.int64(1), np.intp(1)):
        assert result.asset_trades(number)["size"].tolist() == [4.0]
    with pytest.raises(KeyError, match="no asset number 3 in a portfolio of 3"):
        result.asset_trades(np.int32(3))


# ------------------------------------------------------------------- research API
def _frame(bars: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"open": bars[:, 0], "high": bars[:, 1], "low": bars[:, 2],
                         "close": bars[:, 3], "volume": 1.0}, index=index)  # fmt: skip


def _data() -> dict[str, pd.DataFrame]:
    days = pd.date_range("2023-01-02", periods=600, freq="D", tz="UTC")
    weekdays = days[days.day_of_week < 5]
    return {
        "BTC/USD": _frame(_random_walk(len(days), 1), days),
        "SPY": _frame(_random_walk(len(weekdays), 2), weekdays),
        "QQQ": _frame(_random_walk(len(weekdays) - 50, 3), weekdays[50:]),
    }


def test_backtest_portfolio_end_to_end() -> None:
    data = _data()
    params = {"fast": 5, "slow": 20}
    result = backtest_portfolio(data, "ema_cross", params, costs=Costs(fee_bps=10),
                                sizing=NotionalSizing(1_000), calendar="crypto")  # fmt: skip
    assert result.assets == ("BTC/USD", "SPY", "QQQ")
    assert len(result.equity) == 600 and str(result.equity.index.tz) == "UTC"
    assert list(result.positions.columns) == list(result.assets)
    # each asset alone, with the single-asset API: the same trades (cash never binds here)
    for asset, frame in data.items():
        alone = backtest(frame, "ema_cross", params, costs=Costs(fee_bps=10),
                         sizing=NotionalSizing(1_000))  # fmt: skip
        mine = result.trades[result.trades["asset"] == asset]
        assert len(mine) == len(alone.trades) > 5
        np.testing.assert_array_equal(mine["entry_time"], alone.trades["entry_time"])
        np.testing.assert_array_equal(mine["exit_time"], alone.trades["exit_time"])
        np.testing.assert_allclose(mine["pnl"], alone.trades["pnl"], rtol=1e-12)
        assert result.per_asset.loc[asset, "pnl"] == pytest.approx(alone.trades["pnl"].sum())
    assert result.metrics["final_equity"] == pytest.approx(
        10_000 + result.per_asset["pnl"].sum(), rel=1e-12
    )
    assert result.metrics["trade_count"] == result.per_asset["trade_count"].sum()
    assert result.per_asset["contribution"].sum() == pytest.approx(
        result.metrics["total_return"], rel=1e-9
    )
    saved = json.loads(result.to_json())
    assert saved["assets"] == ["BTC/USD", "SPY", "QQQ"]
    assert saved["params"]["SPY"]["fast"] == 5
    assert saved["settings"]["sizing"] == {"type": "NotionalSizing", "notional": 1000}
    assert set(saved["per_asset"]["QQQ"]) >= {"pnl", "trade_count", "exposure"}


def test_backtest_portfolio_params_per_asset() -> None:
    data = _data()
    per_asset = {"SPY": {"fast": 8, "slow": 30}}
    result = backtest_portfolio(data, "ema_cross", per_asset, sizing=NotionalSizing(500))
    assert result.params["SPY"]["fast"] == 8
    assert result.params["BTC/USD"] == result.params["QQQ"]  # defaults
    alone = backtest(data["SPY"], "ema_cross", per_asset["SPY"], sizing=NotionalSizing(500))
    assert (result.trades["asset"] == "SPY").sum() == len(alone.trades)


@pytest.mark.parametrize(
    ("data", "params", "error", "text"),
    [
        ({}, None, UserInputError, "no assets to backtest"),
        ("bars", None, UserInputError, "no assets to backtest"),
        ("one_bar", None, UserInputError, "portfolio data['SPY']: need at least 2 bars"),
        ("ok", {"SYP": {"fast": 5}}, UserInputError, "unknown asset 'SYP' — did you mean 'SPY'?"),
        ("ok", {"SPY": {"fast": 5}, "slow": 20}, UserInputError, "mixes per-asset mappings"),
        ("ok", {"SPY": {"fsat": 5}}, StrategyError, "ema_cross for SPY: unknown parameter 'fsat'"),
        ("ok", {"fast": 60, "slow": 20}, StrategyError, "ema_cross"),
    ],
)
def test_backtest_portfolio_bad_input_is_one_line(
    data: Any, params: Any, error: type[Exception], text: str
) -> None:
    frames = _data()
    if data == "one_bar":
        data = {**frames, "SPY": frames["SPY"].iloc[:1]}
    elif data == "ok":
        data = frames
    with pytest.raises(error) as info:
        backtest_portfolio(data, "ema_cross", params)
    assert text in str(info.value) and "\n" not in str(info.value)


class _Faulty(Strategy):
    """Signals of the kind a user strategy can get wrong: float with NaN, or the wrong length."""

    name = "faulty"

    def __init__(self, fault: str) -> None:
        self.fault = fault

    def signals(self, bars: Bars, params: Mapping[str, object]) -> Signals:
        n = len(bars.close)
        entries = np.zeros(n, dtype=np.bool_)
        exits = np.zeros(n, dtype=np.bool_)
        if self.fault == "nan":  # a float series with NaN warm-up: NaN cast to bool is True
            return Signals(np.full(n, np.nan), exits)
        if self.fault == "short":
            return Signals(entries[:-1], exits)
        return Signals(entries, exits, stop_distance=np.full(n + 1, 1.0))


@pytest.mark.parametrize(
    ("fault", "text"),
    [
        ("nan", "long_entries of BTC/USD must be a boolean array, got dtype float64"),
        ("short", "long_entries of BTC/USD has shape (599,) for 600 bars"),
        ("stop", "stop_loss_dist of BTC/USD has 601 values for 600 bars"),
    ],
)
def test_backtest_portfolio_checks_strategy_signals(fault: str, text: str) -> None:
    with pytest.raises(UserInputError) as info:
        backtest_portfolio(_data(), _Faulty(fault))
    assert text in str(info.value) and "\n" not in str(info.value)


def test_backtest_portfolio_checks_volatility() -> None:
    data = _data()
    vol = {asset: np.full(len(frame), 0.01) for asset, frame in data.items()}
    costs = Costs(vol_slippage_k=1.0)
    ok = backtest_portfolio(data, "ema_cross", {"fast": 5, "slow": 20}, costs=costs,
                            volatility=vol)  # fmt: skip
    assert ok.metrics["trade_count"] > 0
    bad = [
        ({**vol, "SPY": vol["SPY"][:-3]}, "volatility of SPY has"),
        ({k: v for k, v in vol.items() if k != "QQQ"}, "no volatility for asset 'QQQ'"),
        ({**vol, "ETH": vol["SPY"]}, "volatility for unknown asset 'ETH'"),
        ({**vol, "SPY": np.array(["x"] * len(vol["SPY"]))}, "volatility of SPY is not numeric"),
    ]
    for wrong, text in bad:
        with pytest.raises(UserInputError) as info:
            backtest_portfolio(data, "ema_cross", costs=costs, volatility=wrong)
        assert text in str(info.value) and "\n" not in str(info.value), str(info.value)
