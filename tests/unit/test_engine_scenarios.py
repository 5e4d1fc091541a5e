"""Hand-built candle scenarios for the backtest engine (freqtrade ``test_backtest_detail`` style).

Each scenario is a few bars ``(open, high, low, close)``, one signal token per bar (``.`` none,
``LE``/``LX``/``SE``/``SX`` long/short entry/exit, ``+`` to combine) and the trades expected:
side, entry bar and price, exit bar and price, exit reason and, where meaningful, P&L. Unless a
scenario says otherwise: 1000 of cash, all-in sizing, no costs, ``next_open`` fills.

Every scenario also checks two invariants: the final equity is the initial cash plus the sum of
the trades' P&L (open trades are marked at the last close), and equity = cash + position × close
bar by bar, with the cash rebuilt from the trade records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from morningstar.core.engine import (
    Costs,
    EngineOptions,
    ExitReason,
    FractionSizing,
    NotionalSizing,
    OrderLimits,
    Stops,
    VolTargetSizing,
    simulate,
)

CASH = 1000.0
NAN = float("nan")

Bar = tuple[float, float, float, float]
FLAT: Bar = (100, 101, 99, 100)
#: a gently rising market used by the signal scenarios: opens 100, 100, 101, 102, 103
RISING: list[Bar] = [
    FLAT, (100, 102, 99, 101), (101, 103, 100, 102), (102, 104, 101, 103), (103, 104, 102, 103)
]  # fmt: skip


@dataclass(frozen=True)
class Trade:
    side: str  # "long" / "short"
    entry_bar: int
    entry_price: float
    exit_bar: int
    exit_price: float
    reason: str
    pnl: float | None = None
    size: float | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    bars: list[Bar]
    signals: str
    trades: list[Trade]
    kwargs: dict[str, Any] = field(default_factory=dict)
    n_skipped: int = 0
    final_equity: float | None = None


def L(eb: int, ep: float, xb: int, xp: float, reason: str, pnl: float | None = None,
      size: float | None = None) -> Trade:  # fmt: skip
    """A long trade: entry bar and price, exit bar and price, exit reason, P&L, size."""
    return Trade("long", eb, ep, xb, xp, reason, pnl, size)


def S(eb: int, ep: float, xb: int, xp: float, reason: str, pnl: float | None = None,
      size: float | None = None) -> Trade:  # fmt: skip
    """A short trade, same fields as :func:`L`."""
    return Trade("short", eb, ep, xb, xp, reason, pnl, size)


def bars_at(price: float, n: int) -> list[Bar]:
    return [(price, price + 1, price - 1, price)] * n


# numbers used by the cost and sizing scenarios
FEE = 0.001
Q_FEE = CASH / (100 * (1 + FEE))  # all-in quantity at 100 with a 10 bps fee
Q_SLIP = CASH / 100.5  # all-in quantity at 100 with 50 bps slippage
Q_VOL = CASH / 102.0  # entry at 100 with 2 % vol slippage
VT_FRACTION = 0.2 / math.sqrt(252) / 0.025  # vol target 20 %/yr, 2.5 % per bar

SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------------ signals
    Scenario("long_entry_exit_on_signals", RISING, "LE . LX . .",
             [L(1, 100, 3, 102, "signal", pnl=20, size=10)], final_equity=1020),
    Scenario("short_entry_exit_on_signals", RISING, "SE . SX . .",
             [S(1, 100, 3, 102, "signal", pnl=-20, size=10)], final_equity=980),
    Scenario("long_reverses_to_short_at_same_open", RISING, "LE . SE . .",
             [L(1, 100, 3, 102, "signal", pnl=20), S(3, 102, 4, 103, "open", pnl=-10, size=10)],
             final_equity=1010),
    Scenario("short_reverses_to_long_at_same_open", RISING, "SE . LE . .",
             [S(1, 100, 3, 102, "signal", pnl=-20),
              L(3, 102, 4, 103, "open", pnl=980 / 102, size=980 / 102)],
             final_equity=980 * 103 / 102),
    Scenario("entry_while_in_position_is_ignored", RISING, "LE LE . . .",
             [L(1, 100, 4, 103, "open", pnl=30)]),
    Scenario("exit_without_position_is_ignored", RISING, "LX . SX . .", [], final_equity=CASH),
    Scenario("entry_and_exit_same_side_same_bar_cancel", RISING, "LE+LX . . . .", []),
    Scenario("long_and_short_entry_same_bar_cancel", RISING, "LE+SE . . . .", []),
    Scenario("conflict_while_long_keeps_the_position", RISING, "LE . LE+LX . .",
             [L(1, 100, 4, 103, "open", pnl=30)]),
    Scenario("signal_on_last_bar_never_fills", RISING, ". . . . LE", []),
    # ------------------------------------------------------------ end of data
    Scenario("open_position_marked_to_market_and_reported_open", RISING, "LE . . . .",
             [L(1, 100, 4, 103, "open", pnl=30, size=10)], final_equity=1030),
    Scenario("open_position_closed_at_last_close_when_asked", RISING, "LE . . . .",
             [L(1, 100, 4, 103, "end_of_data",
                pnl=Q_FEE * 3 - Q_FEE * 100 * FEE - Q_FEE * 103 * FEE, size=Q_FEE)],
             kwargs={"options": EngineOptions(close_at_end=True), "costs": Costs(fee_bps=10)},
             final_equity=Q_FEE * 103 * (1 - FEE)),
    # ------------------------------------------------------ stop-loss / target
    Scenario("stop_loss_inside_a_later_bar",
             [FLAT, (100, 102, 99, 101), (101, 101.5, 94, 96), (96, 97, 95, 96)], "LE . . .",
             [L(1, 100, 2, 95, "stop_loss", pnl=-50)], kwargs={"stops": Stops(stop_loss=0.05)}),
    Scenario("stop_loss_on_the_entry_bar",
             [FLAT, (100, 101, 94, 96), (96, 97, 95, 96)], "LE . .",
             [L(1, 100, 1, 95, "stop_loss", pnl=-50)], kwargs={"stops": Stops(stop_loss=0.05)}),
    Scenario("gap_through_stop_fills_at_the_open",
             [FLAT, (100, 102, 99, 101), (90, 92, 88, 91), (91, 92, 90, 91)], "LE . . .",
             [L(1, 100, 2, 90, "stop_loss", pnl=-100)], kwargs={"stops": Stops(stop_loss=0.05)}),
    Scenario("take_profit_inside_a_bar",
             [FLAT, (100, 102, 99, 101), (101, 111, 100, 108), (108, 109, 107, 108)], "LE . . .",
             [L(1, 100, 2, 110, "take_profit", pnl=100)],
             kwargs={"stops": Stops(take_profit=0.10)}),
    Scenario("gap_through_target_fills_at_the_open",
             [FLAT, (100, 102, 99, 101), (115, 116, 113, 114), (114, 115, 113, 114)], "LE . . .",
             [L(1, 100, 2, 115, "take_profit", pnl=150)],
             kwargs={"stops": Stops(take_profit=0.10)}),
    Scenario("stop_and_target_in_one_bar_stop_first_by_default",
             [FLAT, (100, 102, 99, 101), (100, 106, 94, 100), (100, 101, 99, 100)], "LE . . .",
             [L(1, 100, 2, 95, "stop_loss", pnl=-50)],
             kwargs={"stops": Stops(stop_loss=0.05, take_profit=0.05)}),
    Scenario("stop_and_target_in_one_bar_target_first_when_chosen",
             [FLAT, (100, 102, 99, 101), (100, 106, 94, 100), (100, 101, 99, 100)], "LE . . .",
             [L(1, 100, 2, 105, "take_profit", pnl=50)],
             kwargs={"stops": Stops(stop_loss=0.05, take_profit=0.05, intrabar="target_first")}),
    Scenario("short_stop_loss_inside_a_bar",
             [FLAT, (100, 101, 99, 100), (101, 106, 100, 104), (104, 105, 103, 104)], "SE . . .",
             [S(1, 100, 2, 105, "stop_loss", pnl=-50)], kwargs={"stops": Stops(stop_loss=0.05)}),
    Scenario("short_take_profit_inside_a_bar",
             [FLAT, (100, 101, 99, 100), (99, 100, 89, 92), (92, 93, 91, 92)], "SE . . .",
             [S(1, 100, 2, 90, "take_profit", pnl=100)],
             kwargs={"stops": Stops(take_profit=0.10)}),
    Scenario("short_gap_through_stop_fills_at_the_open",
             [FLAT, (100, 101, 99, 100), (108, 109, 107, 108), (108, 109, 107, 108)], "SE . . .",
             [S(1, 100, 2, 108, "stop_loss", pnl=-80)], kwargs={"stops": Stops(stop_loss=0.05)}),
    # -------------------------------------------------------------- trailing
    Scenario("trailing_stop_long_after_a_rally",
             [FLAT, (100, 101, 99, 100), (101, 120, 100, 118), (118, 119, 107, 108), FLAT],
             "LE . . . .", [L(1, 100, 3, 108, "trailing_stop", pnl=80)],
             kwargs={"stops": Stops(trailing_stop=0.10)}),
    Scenario("trailing_level_uses_previous_bars_only",
             # bar 2 reaches 120 and dips to 107 < 120 * 0.9: no exit in bar 2, exit in bar 3
             [FLAT, (100, 101, 99, 100), (108, 120, 107, 110), (110, 111, 107.5, 109), FLAT],
             "LE . . . .", [L(1, 100, 3, 108, "trailing_stop", pnl=80)],
             kwargs={"stops": Stops(trailing_stop=0.10)}),
    Scenario("gap_through_trailing_stop_fills_at_the_open",
             [FLAT, (100, 101, 99, 100), (101, 120, 100, 118), (100, 101, 99, 100), FLAT],
             "LE . . . .", [L(1, 100, 3, 100, "trailing_stop", pnl=0)],
             kwargs={"stops": Stops(trailing_stop=0.10)}),
    Scenario("trailing_stop_short_after_a_drop",
             [FLAT, (100, 101, 99, 100), (99, 100, 80, 82), (82, 89, 81, 88), FLAT],
             "SE . . . .", [S(1, 100, 3, 88, "trailing_stop", pnl=120)],
             kwargs={"stops": Stops(trailing_stop=0.10)}),
    Scenario("tighter_trailing_level_beats_stop_loss",
             [FLAT, (100, 110, 99, 109), (109, 109.5, 106, 107), FLAT], "LE . . .",
             [L(1, 100, 2, 106.7, "trailing_stop", pnl=67)],
             kwargs={"stops": Stops(stop_loss=0.05, trailing_stop=0.03)}),
    Scenario("tighter_stop_loss_beats_trailing_level",
             [FLAT, (100, 101, 99, 100), (101, 101.5, 97, 98), FLAT], "LE . . .",
             [L(1, 100, 2, 98, "stop_loss", pnl=-20)],
             kwargs={"stops": Stops(stop_loss=0.02, trailing_stop=0.10)}),
    # ------------------------------------------------- per-bar distances (ATR)
    Scenario("stop_distance_read_at_the_signal_bar",
             [FLAT, (100, 102, 99, 101), (101, 102, 96, 97), FLAT], "LE . . .",
             [L(1, 100, 2, 97, "stop_loss", pnl=-30)],
             kwargs={"stop_loss_dist": np.array([3.0, 0.5, 0.5, 0.5])}),
    Scenario("target_distance_read_at_the_signal_bar",
             # a distance of 1 at bar 1 would have hit at 101 in bar 1: it is not used
             [FLAT, (100, 102, 99, 101), (101, 104.5, 100, 104), FLAT], "LE . . .",
             [L(1, 100, 2, 104, "take_profit", pnl=40)],
             kwargs={"take_profit_dist": np.array([4.0, 1.0, 1.0, 1.0])}),
    Scenario("nan_distance_means_no_stop",
             [FLAT, (100, 102, 99, 101), (95, 96, 90, 91), (91, 92, 90, 91)], "LE . . .",
             [L(1, 100, 3, 91, "open", pnl=-90)],
             kwargs={"stop_loss_dist": np.array([NAN, 3.0, 3.0, 3.0])}),
    Scenario("trailing_distance_in_price",
             [FLAT, (100, 110, 99, 109), (109, 109, 104, 105), FLAT], "LE . . .",
             [L(1, 100, 2, 105, "trailing_stop", pnl=50)],
             kwargs={"trailing_dist": np.array([5.0, 50.0, 50.0, 50.0])}),
    # ----------------------------------------------------------- costs
    Scenario("taker_fee_on_entry_and_exit", RISING, "LE . LX . .",
             [L(1, 100, 3, 102, "signal", pnl=Q_FEE * 2 - Q_FEE * 100 * FEE - Q_FEE * 102 * FEE,
                size=Q_FEE)],
             kwargs={"costs": Costs(fee_bps=10)}),
    Scenario("fixed_slippage_against_the_long", RISING, "LE . LX . .",
             [L(1, 100.5, 3, 102 * 0.995, "signal", pnl=Q_SLIP * (102 * 0.995 - 100.5),
                size=Q_SLIP)],
             kwargs={"costs": Costs(slippage_bps=50)}),
    Scenario("fixed_slippage_against_the_short", RISING, "SE . SX . .",
             [S(1, 99, 3, 103.02, "signal", pnl=CASH / 99 * (99 - 103.02), size=CASH / 99)],
             kwargs={"costs": Costs(slippage_bps=100)}),
    Scenario("vol_slippage_uses_the_signal_bar_estimate", RISING, "LE . LX . .",
             [L(1, 102, 3, 102 * 0.96, "signal", pnl=Q_VOL * (102 * 0.96 - 102), size=Q_VOL)],
             kwargs={"costs": Costs(vol_slippage_k=2.0),
                     "volatility": np.array([0.01, 0.5, 0.02, 0.5, 0.5])}),
    Scenario("vol_slippage_on_a_stop_uses_the_previous_bar_estimate",
             [FLAT, (100, 101, 99, 100), (100, 101, 94, 95), FLAT], "LE . . .",
             [L(1, 101, 2, 101 * 0.95 * 0.98, "stop_loss")],
             kwargs={"costs": Costs(vol_slippage_k=1.0), "stops": Stops(stop_loss=0.05),
                     "volatility": np.array([0.01, 0.02, 0.5, 0.5])}),
    # ----------------------------------------------------- order limits
    Scenario("quantity_rounded_down_to_the_step", bars_at(30, 4), "LE . LX .",
             [L(1, 30, 3, 30, "signal", pnl=0, size=33)],
             kwargs={"limits": OrderLimits(qty_step=1.0)}),
    Scenario("exact_multiple_of_a_decimal_step_is_kept", bars_at(125, 4), "LE . LX .",
             [L(1, 125, 3, 125, "signal", pnl=0, size=8.0)],
             kwargs={"limits": OrderLimits(qty_step=0.1)}),
    Scenario("rounded_down_quantity_still_pays_the_fee", bars_at(100, 4), "LE . LX .",
             [L(1, 100, 3, 100, "signal", size=9.9)],
             kwargs={"limits": OrderLimits(qty_step=0.1), "costs": Costs(fee_bps=10)}),
    Scenario("below_min_size_is_skipped_and_counted", RISING, "LE . LX LE .", [],
             kwargs={"limits": OrderLimits(min_size=20)}, n_skipped=2, final_equity=CASH),
    Scenario("below_min_notional_is_skipped", RISING, "LE . . . .", [],
             kwargs={"sizing": NotionalSizing(50), "limits": OrderLimits(min_notional=100)},
             n_skipped=1),
    # ------------------------------------------------------------ sizing
    Scenario("fraction_of_equity", RISING, "LE . LX . .",
             [L(1, 100, 3, 102, "signal", pnl=10, size=5)],
             kwargs={"sizing": FractionSizing(0.5)}),
    Scenario("fixed_notional", RISING, "LE . LX . .",
             [L(1, 100, 3, 102, "signal", pnl=6, size=3)],
             kwargs={"sizing": NotionalSizing(300)}),
    Scenario("notional_capped_by_cash_including_fee", RISING, "LE . LX . .",
             [L(1, 100, 3, 102, "signal", size=Q_FEE)],
             kwargs={"sizing": NotionalSizing(5000), "costs": Costs(fee_bps=10)}),
    Scenario("vol_target_sizing_from_the_signal_bar", RISING, "LE . LX . .",
             [L(1, 100, 3, 102, "signal", size=VT_FRACTION * 10)],
             kwargs={"sizing": VolTargetSizing(target_vol=0.2, periods_per_year=252),
                     "volatility": np.array([0.025, 0.001, 0.001, 0.001, 0.001])}),
    Scenario("vol_target_capped_at_max_fraction", RISING, "LE . LX . .",
             [L(1, 100, 3, 102, "signal", size=5)],
             kwargs={"sizing": VolTargetSizing(0.2, 252, max_fraction=0.5),
                     "volatility": np.full(5, 0.0001)}),
    Scenario("vol_target_without_estimate_is_skipped", RISING, "LE . . . .", [],
             kwargs={"sizing": VolTargetSizing(0.2, 252), "volatility": np.full(5, NAN)},
             n_skipped=1),
    # ------------------------------------------------------ close timing
    Scenario("close_timing_fills_at_the_signal_close", RISING, "LE . LX . .",
             [L(0, 100, 2, 102, "signal", pnl=20)],
             kwargs={"options": EngineOptions(fill_timing="close")}),
    Scenario("close_timing_stops_start_on_the_next_bar",
             [(100, 101, 94, 100), (100, 101, 94.5, 95), FLAT], "LE . .",
             [L(0, 100, 1, 95, "stop_loss", pnl=-50)],
             kwargs={"options": EngineOptions(fill_timing="close"), "stops": Stops(stop_loss=0.05)}),
    Scenario("close_timing_reversal", RISING, "SE . LE . .",
             [S(0, 100, 2, 102, "signal", pnl=-20), L(2, 102, 4, 103, "open", size=980 / 102)],
             kwargs={"options": EngineOptions(fill_timing="close")}),
    Scenario("close_timing_no_entry_on_last_close_with_close_at_end", RISING, ". . . . LE", [],
             kwargs={"options": EngineOptions(fill_timing="close", close_at_end=True)}),
    # ------------------------------------------------ order within a bar
    Scenario("reentry_on_the_open_after_a_stop",
             [FLAT, (100, 101, 99, 100), (100, 101, 94, 96), (97, 98, 96, 97), (97, 98, 96, 97)],
             "LE . LE . .",
             [L(1, 100, 2, 95, "stop_loss", pnl=-50), L(3, 97, 4, 97, "open", size=950 / 97)],
             kwargs={"stops": Stops(stop_loss=0.05)}),
    Scenario("pending_exit_signal_fills_before_a_gapped_stop",
             [FLAT, (100, 101, 99, 100), (90, 92, 88, 91), FLAT], "LE LX . .",
             [L(1, 100, 2, 90, "signal", pnl=-100)], kwargs={"stops": Stops(stop_loss=0.05)}),
    Scenario("reversal_entry_gets_fresh_stops",
             [FLAT, (100, 101, 99, 100), (100, 106, 99, 105), (105, 112, 104, 110)], "LE SE . .",
             [L(1, 100, 2, 100, "signal", pnl=0), S(2, 100, 2, 105, "stop_loss", pnl=-50)],
             kwargs={"stops": Stops(stop_loss=0.05)}),
]  # fmt: skip


def _signals(spec: str, n: int) -> dict[str, np.ndarray]:
    tokens = spec.split()
    assert len(tokens) == n, f"{len(tokens)} signal tokens for {n} bars"
    out = {}
    for key, name in (("LE", "long_entries"), ("LX", "long_exits"), ("SE", "short_entries"),
                      ("SX", "short_exits")):  # fmt: skip
        out[name] = np.array([key in token.split("+") for token in tokens], dtype=bool)
    return out


def _run(sc: Scenario) -> Any:
    bars = np.array(sc.bars, dtype=np.float64)
    return simulate(
        bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 3], init_cash=CASH,
        **_signals(sc.signals, len(sc.bars)), **sc.kwargs,
    )  # fmt: skip


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 30
    assert len({sc.id for sc in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda sc: sc.id)
def test_scenario(sc: Scenario) -> None:
    result = _run(sc)
    frames = result.to_pandas()
    got = frames.trades
    assert len(got) == len(sc.trades), got[["side", "entry_bar", "exit_bar", "exit_reason"]]
    for row, want in zip(got.itertuples(), sc.trades, strict=True):
        assert row.side == want.side
        assert (row.entry_bar, row.exit_bar) == (want.entry_bar, want.exit_bar)
        assert row.exit_reason == want.reason
        assert row.entry_price == pytest.approx(want.entry_price, rel=1e-12)
        assert row.exit_price == pytest.approx(want.exit_price, rel=1e-12)
        if want.pnl is not None:
            assert row.pnl == pytest.approx(want.pnl, rel=1e-9, abs=1e-9)
        if want.size is not None:
            assert row.size == pytest.approx(want.size, rel=1e-12)
        assert row.is_open == (want.reason == "open")
    assert result.n_skipped == sc.n_skipped

    # invariant 1: equity at the end = cash + sum of P&L (open trades marked at the last close)
    final = CASH + float(got["pnl"].sum()) if len(got) else CASH
    assert result.final_equity == pytest.approx(final, rel=1e-12)
    if sc.final_equity is not None:
        assert result.final_equity == pytest.approx(sc.final_equity, rel=1e-12)

    # invariant 2: equity = cash + position x close each bar, cash rebuilt from the trades
    bars = np.array(sc.bars, dtype=np.float64)
    cash = np.full(len(bars), CASH)
    for tr in result.trades:
        sign = float(tr["side"])
        cash[tr["entry_bar"] :] -= sign * tr["size"] * tr["entry_price"] + tr["entry_fee"]
        if tr["exit_reason"] != ExitReason.OPEN:
            cash[tr["exit_bar"] :] += sign * tr["size"] * tr["exit_price"] - tr["exit_fee"]
    np.testing.assert_allclose(result.equity, cash + result.position * bars[:, 3], rtol=1e-12)
    assert frames.equity.iloc[-1] == result.final_equity


def test_position_series_follows_the_trades() -> None:
    sc = next(s for s in SCENARIOS if s.id == "long_reverses_to_short_at_same_open")
    result = _run(sc)
    np.testing.assert_allclose(result.position, [0, 10, 10, -10, -10])
    np.testing.assert_allclose(result.equity, [1000, 1010, 1020, 1010, 1010])


def test_timestamps_become_trade_times_and_the_index() -> None:
    bars = np.array(RISING)
    ts = np.array(["2024-01-01T00", "2024-01-01T01", "2024-01-01T02", "2024-01-01T03",
                   "2024-01-01T04"], dtype="datetime64[ns]")  # fmt: skip
    sig = _signals("LE . LX . .", 5)
    result = simulate(bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 3], timestamps=ts, **sig)
    frames = result.to_pandas()
    assert str(frames.equity.index.tz) == "UTC"
    assert frames.equity.index.name == "timestamp"
    trade = frames.trades.iloc[0]
    assert trade["entry_time"].isoformat() == "2024-01-01T01:00:00+00:00"
    assert trade["exit_time"].isoformat() == "2024-01-01T03:00:00+00:00"
    assert result.trades["entry_time"][0] == ts[1].astype(np.int64)


# ------------------------------------------------------------------ invalid input
@pytest.mark.parametrize(
    ("make", "where"),
    [
        (lambda: Costs(fee_bps=-1), "Costs.fee_bps"),
        (lambda: Costs(slippage_bps=float("nan")), "Costs.slippage_bps"),
        (lambda: FractionSizing(0.0), "FractionSizing.fraction"),
        (lambda: FractionSizing(1.5), "FractionSizing.fraction"),
        (lambda: NotionalSizing(-5), "NotionalSizing.notional"),
        (lambda: VolTargetSizing(0.2, 0), "VolTargetSizing.periods_per_year"),
        (lambda: VolTargetSizing(0.2, 252, max_fraction=2.0), "VolTargetSizing.max_fraction"),
        (lambda: Stops(stop_loss=1.0), "Stops.stop_loss"),
        (lambda: Stops(take_profit=0), "Stops.take_profit"),
        (lambda: Stops(intrabar="random"), "Stops.intrabar"),  # type: ignore[arg-type]
        (lambda: OrderLimits(qty_step=-0.1), "OrderLimits.qty_step"),
        (lambda: EngineOptions(fill_timing="next_close"), "EngineOptions.fill_timing"),  # type: ignore[arg-type]
        (lambda: Costs(fee_bps=True), "Costs.fee_bps"),
    ],
)
def test_invalid_settings_name_the_field(make: Any, where: str) -> None:
    from morningstar.core.engine import EngineInputError
    from morningstar.errors import UserInputError

    with pytest.raises(EngineInputError) as info:
        make()
    assert info.value.where == where
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, UserInputError)
    assert "allowed" in str(info.value)


def _valid() -> dict[str, Any]:
    bars = np.array(RISING)
    return {"open_": bars[:, 0], "high": bars[:, 1], "low": bars[:, 2], "close": bars[:, 3]}


@pytest.mark.parametrize(
    ("change", "where", "text"),
    [
        ({"high": np.array([101, 102, 103, 104, 102.5])}, "bar 4", "inconsistent"),
        ({"close": np.array([100, 101, np.nan, 103, 103])}, "bar 2", "NaN"),
        ({"low": np.array([99, 99, 0, 101, 102])}, "bar 2", "zero or negative"),
        ({"close": np.array([100.0, 101.0])}, "open", "has 5 values for 2 bars"),
        ({"long_entries": np.array([1, 0, 0, 0, 0])}, "long_entries", "boolean"),
        ({"short_exits": np.zeros(4, dtype=bool)}, "short_exits", "shape"),
        ({"init_cash": 0.0}, "simulate.init_cash", "invalid"),
        ({"costs": Costs(vol_slippage_k=1.0)}, "volatility", "required"),
        ({"sizing": VolTargetSizing(0.2, 252)}, "volatility", "required"),
        ({"volatility": np.array([0.1, -0.1, 0.1, 0.1, 0.1])}, "volatility", "negative"),
        ({"stop_loss_dist": np.array([1.0, 0.0, 1.0, 1.0, 1.0])}, "stop_loss_dist", "zero"),
        ({"stop_loss_dist": np.ones(5), "stops": Stops(stop_loss=0.1)}, "stop_loss_dist", "both"),
        ({"timestamps": np.array([1.0, 2, 3, 4, 5])}, "timestamps", "int64"),
        ({"close": np.array([])}, "close", "no bars"),
    ],
)
def test_invalid_inputs_are_rejected_clearly(change: dict[str, Any], where: str, text: str) -> None:
    from morningstar.core.engine import EngineInputError

    kwargs = {**_valid(), **change}
    with pytest.raises(EngineInputError) as info:
        simulate(**kwargs)
    assert info.value.where is not None and info.value.where.startswith(where)
    assert text in str(info.value)
