"""Ledger: position netting, cash, fees, realised / unrealised P&L, views and state."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core.ledger import Ledger
from morningstar.core.orders import Fill

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CASH = 10_000.0


def fill(side: str, qty: float, price: float, fee: float, *, pair: str = "BTC/USDT",
         i: int = 0) -> Fill:  # fmt: skip
    return Fill(f"f{i}", f"o{i}", pair, side, qty, price, fee, T0 + timedelta(minutes=5 * i),  # type: ignore[arg-type]
                "signal")  # fmt: skip


@dataclass(frozen=True)
class Case:
    fills: tuple[tuple[str, float, float, float], ...]  # side, qty, price, fee
    mark: float
    qty: float  # signed, 0 = flat
    entry: float | None
    cash: float
    realized: float
    unrealized: float


CASES = {
    "open_long": Case((("buy", 2, 100, 0.2),), 110, 2, 100, 9799.8, -0.2, 20),
    "add_long": Case((("buy", 2, 100, 0.2), ("buy", 2, 110, 0.22)), 120, 4, 105, 9579.58, -0.42, 60),
    "reduce_long": Case((("buy", 4, 100, 0.4), ("sell", 1, 120, 0.12)), 120, 3, 100, 9719.48,
                        19.48, 60),
    "close_long": Case((("buy", 2, 100, 0.2), ("sell", 2, 90, 0.18)), 80, 0, None, 9979.62,
                       -20.38, 0),
    "flip_long_to_short": Case((("buy", 2, 100, 0.2), ("sell", 5, 110, 0.55)), 100, -3, 110,
                               10349.25, 19.25, 30),
    "open_short": Case((("sell", 2, 100, 0.2),), 90, -2, 100, 10199.8, -0.2, 20),
    "add_short": Case((("sell", 1, 100, 0.1), ("sell", 3, 120, 0.36)), 110, -4, 115, 10459.54,
                      -0.46, 20),
    "reduce_short": Case((("sell", 4, 100, 0.4), ("buy", 1, 80, 0.08)), 90, -3, 100, 10319.52,
                         19.52, 30),
    "close_short": Case((("sell", 2, 100, 0.2), ("buy", 2, 105, 0.21)), 50, 0, None, 9989.59,
                        -10.41, 0),
    "flip_short_to_long": Case((("sell", 2, 100, 0.2), ("buy", 3, 90, 0.27)), 95, 1, 90,
                               9929.53, 19.53, 5),
    "no_fee_round_trip": Case((("buy", 1.5, 200, 0), ("sell", 1.5, 200, 0)), 1, 0, None, CASH, 0,
                              0),
    "dust_closes": Case((("buy", 0.3, 100, 0), ("sell", 0.1, 100, 0), ("sell", 0.2, 100, 0)), 100,
                        0, None, CASH, 0, 0),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_netting_scenarios(name: str) -> None:
    case = CASES[name]
    ledger = Ledger(CASH)
    deltas = [ledger.apply(fill(*f, i=i)) for i, f in enumerate(case.fills)]  # type: ignore[arg-type]
    ledger.mark("BTC/USDT", case.mark)
    assert ledger.signed_quantity("BTC/USDT") == pytest.approx(case.qty)
    pos = ledger.position("BTC/USDT")
    if case.entry is None:
        assert pos is None
    else:
        assert pos is not None
        assert pos.side == (1 if case.qty > 0 else -1)
        assert pos.quantity == pytest.approx(abs(case.qty))
        assert pos.entry_price == pytest.approx(case.entry)
        assert pos.mark_price == case.mark
        assert pos.unrealized_pnl == pytest.approx(case.unrealized)
    assert ledger.cash == pytest.approx(case.cash, abs=1e-9)
    assert ledger.realized_pnl == pytest.approx(case.realized, abs=1e-9)
    assert sum(deltas) == pytest.approx(case.realized, abs=1e-9)
    assert ledger.realized_by_pair == {"BTC/USDT": pytest.approx(case.realized, abs=1e-9)}
    assert ledger.unrealized_pnl == pytest.approx(case.unrealized, abs=1e-9)
    assert ledger.fees == pytest.approx(sum(f[3] for f in case.fills))
    equity = case.cash + case.qty * case.mark
    assert ledger.equity == pytest.approx(equity, abs=1e-9)
    assert ledger.equity == pytest.approx(CASH + ledger.realized_pnl + ledger.unrealized_pnl)


def test_flip_restarts_the_position_and_forgets_protection() -> None:
    ledger = Ledger(CASH)
    assert ledger.set_protection("BTC/USDT", 90.0, 120.0) is False  # flat: nothing recorded
    ledger.apply(fill("buy", 2, 100, 0, i=0))
    assert ledger.set_protection("BTC/USDT", 90.0, 120.0)
    pos = ledger.position("BTC/USDT")
    assert pos is not None and (pos.stop_loss, pos.take_profit) == (90.0, 120.0)
    assert pos.opened_at == T0
    ledger.apply(fill("sell", 3, 110, 0, i=1))
    pos = ledger.position("BTC/USDT")
    assert pos is not None and pos.side == -1 and pos.opened_at == T0 + timedelta(minutes=5)
    assert (pos.stop_loss, pos.take_profit) == (None, None)
    ledger.set_protection("BTC/USDT", 115.0, None)
    ledger.apply(fill("buy", 1, 100, 0, i=2))
    assert ledger.position("BTC/USDT") is None
    ledger.apply(fill("buy", 1, 100, 0, i=3))
    pos = ledger.position("BTC/USDT")
    assert pos is not None and pos.stop_loss is None  # a new position starts unprotected


def test_views_snapshot_and_two_pairs() -> None:
    ledger = Ledger(CASH)
    ledger.apply(fill("buy", 1, 100, 0.1, i=0))
    ledger.apply(fill("sell", 10, 20, 0.2, pair="ETH/USDT", i=1))
    ledger.mark("BTC/USDT", 110)
    ledger.mark("ETH/USDT", 19)
    ledger.mark("SOL/USDT", 5)  # flat pair: ignored
    ledger.set_protection("ETH/USDT", 21.0, 15.0)
    assert ledger.pairs == ("BTC/USDT", "ETH/USDT")
    assert ledger.equity == pytest.approx(CASH - 100.1 + 199.8 + 110 - 190)
    assert [p.pair for p in ledger.positions(first="ETH/USDT")] == ["ETH/USDT", "BTC/USDT"]
    snap = ledger.snapshot("active", peak=11_000.0)
    assert snap.equity == ledger.equity and snap.cash == ledger.cash
    assert snap.fees == pytest.approx(0.3) and snap.realized_pnl == pytest.approx(-0.3)
    assert snap.unrealized_pnl == pytest.approx(20.0)
    assert snap.drawdown == pytest.approx(1 - ledger.equity / 11_000.0)
    assert ledger.snapshot("halted", peak=1.0).drawdown == 0.0
    view = ledger.portfolio_view(peak_equity=11_000.0, day_start_equity=10_000.0, day=19723,
                                 bar_index=7)  # fmt: skip
    assert view.equity == ledger.equity and view.bar_index == 7 and view.day == 19723
    eth = view.positions["ETH/USDT"]
    assert (eth.side, eth.quantity, eth.entry_price, eth.mark_price, eth.stop_loss) == (
        -1, 10, 20, 19, 21.0)  # fmt: skip
    rules = ledger.rules_position("ETH/USDT")
    assert rules is not None and (rules.side, rules.quantity, rules.entry, rules.sl, rules.tp) == (
        -1, 10, 20, 21.0, 15.0)  # fmt: skip
    assert ledger.rules_position("SOL/USDT") is None


def test_state_round_trip_is_exact_and_json() -> None:
    ledger = Ledger(CASH)
    ledger.apply(fill("buy", 0.123456789, 42_283.58, 5.2208, i=0))
    ledger.apply(fill("sell", 3, 2_301.1, 0.69, pair="ETH/USDT", i=1))
    ledger.apply(fill("sell", 0.05, 42_300.0, 2.115, i=2))
    ledger.mark("BTC/USDT", 42_290.01)
    ledger.set_protection("BTC/USDT", 41_000.0, None)
    state = json.loads(json.dumps(ledger.to_state()))
    again = Ledger.from_state(state)
    assert again.to_state() == ledger.to_state()
    assert again.equity == ledger.equity and again.position("BTC/USDT") == ledger.position(
        "BTC/USDT")  # fmt: skip
    again.apply(fill("buy", 3, 2_300.0, 0.69, pair="ETH/USDT", i=3))
    assert again.position("ETH/USDT") is None
    with pytest.raises(ValueError, match="invalid ledger state"):
        Ledger.from_state({"cash": 1.0})


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_initial_cash_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="initial_cash"):
        Ledger(bad)


FILLS = st.lists(
    st.tuples(
        st.sampled_from(["BTC/USDT", "ETH/USDT"]),
        st.sampled_from(["buy", "sell"]),
        st.floats(0.001, 50.0),
        st.floats(1.0, 1000.0),
        st.floats(0.0, 0.01),  # fee rate
        st.floats(1.0, 1000.0),  # mark after the fill
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(FILLS)
def test_equity_is_cash_plus_marked_positions(steps: list[tuple[str, str, float, float, float,
                                                                   float]]) -> None:  # fmt: skip
    ledger = Ledger(CASH)
    marks: dict[str, float] = {}
    fees = 0.0
    for i, (pair, side, qty, price, rate, mark) in enumerate(steps):
        fee = qty * price * rate
        fees += fee
        ledger.apply(fill(side, qty, price, fee, pair=pair, i=i))
        ledger.mark(pair, mark)
        marks[pair] = mark
        value = sum(ledger.signed_quantity(p) * m for p, m in marks.items())
        assert ledger.equity == pytest.approx(ledger.cash + value, rel=1e-12, abs=1e-9)
        scale = CASH + sum(abs(ledger.signed_quantity(p)) * m for p, m in marks.items())
        assert ledger.equity == pytest.approx(
            CASH + ledger.realized_pnl + ledger.unrealized_pnl, abs=1e-9 * scale + 1e-9
        )
        assert ledger.fees == pytest.approx(fees)
        assert sum(ledger.realized_by_pair.values()) == pytest.approx(ledger.realized_pnl,
                                                                       abs=1e-9 * scale)  # fmt: skip
    assert Ledger.from_state(json.loads(json.dumps(ledger.to_state()))).to_state() == (
        ledger.to_state())  # fmt: skip
