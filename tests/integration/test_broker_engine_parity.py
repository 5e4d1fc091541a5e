"""SimulatedBroker + Ledger driven bar by bar reproduce the backtest engine on real data.

The engine (``morningstar.research.backtest``) runs an EMA-cross strategy on the first 20,000
5-minute bars of BTC/USDT with 10 bps fees, 5 bps slippage, a stop-loss and a take-profit. A
simple loop then replays the same bars through :class:`SimulatedBroker` and :class:`Ledger`,
acting on the same signals the way a workflow does: per bar, ``process_bar`` → ``ledger.apply``
→ ``ledger.mark(close)`` → decide on the bar's signals → submit orders that fill on the next bar.

The engine sizes an entry and places its stops from the entry's FILL price (the next open with
slippage), which a live workflow cannot know when it submits after the close. To replicate the
engine exactly, the test driver (and only it) reads the next bar's open for the quantity and
the stop / target levels; the broker itself never looks ahead (it fills from the bar it is
given). Everything else is the broker's and the ledger's own arithmetic: fill prices, fees,
stops inside the bar, gaps, OCO, cash and equity.

Asserted: the same trades (entry / exit times, prices, quantities, fees, exit reasons) and the
same equity on every bar, to 1e-9 (observed: bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from morningstar.core.engine import Costs, ExitReason, FractionSizing, Stops
from morningstar.core.ledger import Ledger
from morningstar.core.orders import Fill, Order, OrderKind, OrderRole, OrderSide, client_order_id
from morningstar.core.types import Bar
from morningstar.exchange.simulated import SimulatedBroker
from morningstar.research import backtest

pytestmark = pytest.mark.shared_data

FILE = "genetrader/BINANCE_BTC_USDT-5m.csv"
N_BARS = 20_000
PAIR = "BTC/USDT"
RUN = "0" * 32
CASH = 10_000.0
TOL = 1e-9
REASONS = {"signal": ExitReason.SIGNAL, "stop_loss": ExitReason.STOP_LOSS,
           "take_profit": ExitReason.TAKE_PROFIT}  # fmt: skip


@dataclass(frozen=True)
class Case:
    fraction: float
    allow_short: bool
    intrabar: str
    stop_loss: float
    take_profit: float
    vol_k: float = 0.0
    cancel_on_exit: bool = True  # False: rely on the broker's reduce-only auto-cancel


CASES = {
    "long_short_f0.8_stop_first": Case(0.8, True, "stop_first", 0.01, 0.02),
    "long_f1.0_target_first": Case(1.0, False, "target_first", 0.004, 0.006, cancel_on_exit=False),
    "long_short_vol_slippage": Case(0.5, True, "stop_first", 0.003, 0.005, vol_k=0.5),
}


@cache
def _bars(root: str) -> pd.DataFrame:
    df = pd.read_csv(Path(root) / FILE, index_col="timestamp", nrows=N_BARS)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True), name="timestamp")
    return df.astype("float64")


def _volatility(df: pd.DataFrame) -> np.ndarray:
    return df["close"].pct_change().rolling(50).std().to_numpy()


def _clean(le: bool, lx: bool, se: bool, sx: bool) -> tuple[bool, bool, bool, bool]:
    """The engine's conflict rules (``kernel._clean_signals``)."""
    if le and lx:
        le = lx = False
    if se and sx:
        se = sx = False
    if le and se:
        le = se = False
    return le, lx, se, sx


def _drive(
    df: pd.DataFrame, sig: object, case: Case, costs: Costs
) -> tuple[list[Fill], np.ndarray, Ledger]:
    """The workflow-like loop: broker + ledger, bar by bar, on the engine's signals."""
    n = len(df)
    o, h, lo, c, v = (df[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    opens = df.index.to_pydatetime()
    closes = (df.index + pd.Timedelta(minutes=5)).to_pydatetime()
    le_a = sig.long_entries  # type: ignore[attr-defined]
    lx_a = sig.long_exits  # type: ignore[attr-defined]
    se_a = sig.short_entries if sig.short_entries is not None else np.zeros(n, bool)  # type: ignore[attr-defined]
    sx_a = sig.short_exits if sig.short_exits is not None else np.zeros(n, bool)  # type: ignore[attr-defined]
    vol = _volatility(df)
    fee_rate = costs.fee_bps / 1e4
    slip_fixed = costs.slippage_bps / 1e4

    broker = SimulatedBroker(costs, intrabar=case.intrabar)  # type: ignore[arg-type]
    ledger = Ledger(CASH)
    fills: list[Fill] = []
    equity = np.empty(n)

    def order(t: int, side: OrderSide, qty: float, kind: OrderKind, role: OrderRole,
              price: float | None = None) -> None:  # fmt: skip
        ack = broker.submit(
            Order(
                client_order_id=client_order_id(RUN, PAIR, opens[t], role),
                run_id=RUN,
                pair=PAIR,
                side=side,
                quantity=qty,
                kind=kind,
                role=role,
                created_at=closes[t],
                bar_ts=opens[t],
                reduce_only=role != "open",
                stop_price=price if kind == "stop" else None,
                limit_price=price if kind == "limit" else None,
                reference_price=float(c[t]),
            )
        )
        assert ack.status == "open", ack

    for t in range(n):
        bar = Bar(opens[t], float(o[t]), float(h[t]), float(lo[t]), float(c[t]), float(v[t]),
                  closes[t])  # fmt: skip
        got = broker.process_bar(PAIR, bar)
        for fill in got:
            ledger.apply(fill)
        fills.extend(got)
        ledger.mark(PAIR, bar.close)
        equity[t] = ledger.equity
        if case.vol_k:
            broker.set_volatility(PAIR, float(vol[t]))
        if t == n - 1:
            break
        # decide at the close of t; the orders fill at the open of t+1
        le, lx, se, sx = _clean(bool(le_a[t]), bool(lx_a[t]), bool(se_a[t]), bool(sx_a[t]))
        held = ledger.signed_quantity(PAIR)
        assert held == broker.net_position(PAIR)
        side = 0.0 if held == 0.0 else (1.0 if held > 0.0 else -1.0)
        slip = slip_fixed
        if case.vol_k and not np.isnan(vol[t]):
            slip += case.vol_k * vol[t]
        cash = ledger.cash
        nxt = float(o[t + 1])  # the driver's look-ahead (see the module docstring)
        if (side > 0 and (lx or se)) or (side < 0 and (sx or le)):
            if case.cancel_on_exit:
                for pending in broker.open_orders(PAIR):
                    assert broker.cancel(pending.client_order_id)
            order(t, "sell" if side > 0 else "buy", abs(held), "market", "close")
            notional = abs(held) * (nxt * (1.0 - side * slip))
            fee = notional * fee_rate
            cash = cash + (notional - fee) if side > 0 else cash - (notional + fee)
            side = 0.0
        if side == 0.0 and (le or se):
            sign = 1.0 if le else -1.0
            fill_price = nxt * (1.0 + sign * slip)
            qty = min(case.fraction * cash / fill_price, cash / (fill_price * (1.0 + fee_rate)))
            if cash > 0.0 and qty > 0.0:
                entry, exit_ = ("buy", "sell") if sign > 0 else ("sell", "buy")
                order(t, entry, qty, "market", "open")  # type: ignore[arg-type]
                order(t, exit_, qty, "stop", "stop_loss",  # type: ignore[arg-type]
                      fill_price * (1.0 - sign * case.stop_loss))  # fmt: skip
                order(t, exit_, qty, "limit", "take_profit",  # type: ignore[arg-type]
                      fill_price * (1.0 + sign * case.take_profit))  # fmt: skip
    return fills, equity, ledger


def _trades(fills: list[Fill]) -> list[tuple[Fill, Fill | None]]:
    """(entry fill, exit fill or None while open): positions are one at a time here."""
    out: list[tuple[Fill, Fill | None]] = []
    entry: Fill | None = None
    for fill in fills:
        if entry is None:
            assert fill.reason == "signal"
            entry = fill
        else:
            assert fill.side != entry.side and fill.quantity == entry.quantity
            out.append((entry, fill))
            entry = None
    if entry is not None:
        out.append((entry, None))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_broker_and_ledger_reproduce_the_engine(shared_data: Path, name: str) -> None:
    case = CASES[name]
    df = _bars(str(shared_data))
    costs = Costs(fee_bps=10, slippage_bps=5, vol_slippage_k=case.vol_k)
    res = backtest(
        df, "ema_cross", {"fast": 10, "slow": 50, "allow_short": case.allow_short},
        costs=costs, sizing=FractionSizing(case.fraction),
        stops=Stops(stop_loss=case.stop_loss, take_profit=case.take_profit,
                    intrabar=case.intrabar),  # type: ignore[arg-type]
        init_cash=CASH, volatility=_volatility(df) if case.vol_k else None,
    )  # fmt: skip
    engine = res.engine
    fills, equity, ledger = _drive(df, res.signals, case, costs)
    trades = _trades(fills)

    reasons = {int(r) for r in engine.trades["exit_reason"]}
    assert {
        int(ExitReason.SIGNAL),
        int(ExitReason.STOP_LOSS),
        int(ExitReason.TAKE_PROFIT),
    } <= reasons
    assert len(trades) == engine.n_trades > 100
    ns = np.array([f.ts.timestamp() for f in fills])  # sanity: fills in time order
    assert np.all(np.diff(ns) >= 0)
    worst = worst_pnl = 0.0  # fill fields; P&L recomputed from the fills
    for (entry, exit_), row in zip(trades, engine.trades, strict=True):
        assert pd.Timestamp(entry.ts).value == row["entry_time"]
        assert (1 if entry.side == "buy" else -1) == row["side"]
        for got, want in ((entry.quantity, row["size"]), (entry.price, row["entry_price"]),
                          (entry.fee, row["entry_fee"])):  # fmt: skip
            worst = max(worst, abs(got - want))
        if exit_ is None:
            assert row["exit_reason"] == ExitReason.OPEN
            continue
        assert pd.Timestamp(exit_.ts).value == row["exit_time"]
        assert REASONS[exit_.reason] == row["exit_reason"]
        worst = max(worst, abs(exit_.price - row["exit_price"]), abs(exit_.fee - row["exit_fee"]))
        gross = (exit_.price - entry.price) * entry.quantity * (1 if entry.side == "buy" else -1)
        worst_pnl = max(worst_pnl, abs(gross - entry.fee - exit_.fee - row["pnl"]))
    assert worst <= TOL
    assert worst_pnl <= TOL
    curve_diff = float(np.max(np.abs(equity - engine.equity)))
    assert curve_diff <= TOL
    assert abs(ledger.equity - engine.final_equity) <= TOL
    closed = engine.closed_trades
    assert abs(ledger.equity - (CASH + ledger.realized_pnl + ledger.unrealized_pnl)) <= 1e-6
    if len(closed) == len(trades):  # no open trade: realised P&L is the engine's sum of P&L
        assert abs(ledger.realized_pnl - float(closed["pnl"].sum())) <= 1e-6
    print(f"{name}: {len(trades)} trades; max |diff|: fills {worst:.3g}, P&L {worst_pnl:.3g}, "
          f"equity curve {curve_diff:.3g}")  # fmt: skip
