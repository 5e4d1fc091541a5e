"""Properties of the backtest engine over random bars, signals and settings (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from morningstar.core.engine import (
    Costs,
    EngineOptions,
    EngineResult,
    ExitReason,
    FractionSizing,
    NotionalSizing,
    OrderLimits,
    Stops,
    VolTargetSizing,
    simulate,
)

CASH = 10_000.0
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@dataclass(frozen=True)
class Market:
    """Bars (rows of open, high, low, close) and the per-bar inputs that go with them."""

    bars: np.ndarray
    signals: dict[str, np.ndarray]
    volatility: np.ndarray
    distances: np.ndarray  # (n, 3): stop-loss, take-profit, trailing distances

    @property
    def n(self) -> int:
        return int(self.bars.shape[0])


@st.composite
def bar_rows(draw: st.DrawFn, n: int) -> np.ndarray:
    """``n`` valid bars whose prices stay in [60, 110]: a short can never lose all its equity."""
    rows = []
    for _ in range(n):
        o = draw(st.floats(62, 108))
        c = draw(st.floats(62, 108))
        h = max(o, c) + draw(st.floats(0, 2))
        lo = min(o, c) - draw(st.floats(0, 2))
        rows.append((o, h, lo, c))
    return np.array(rows, dtype=np.float64)


@st.composite
def markets(draw: st.DrawFn, min_bars: int = 2, max_bars: int = 30) -> Market:
    n = draw(st.integers(min_bars, max_bars))
    bars = draw(bar_rows(n))
    bools = st.lists(st.sampled_from([False, False, False, True]), min_size=n, max_size=n)
    signals = {
        name: np.array(draw(bools), dtype=bool)
        for name in ("long_entries", "long_exits", "short_entries", "short_exits")
    }
    vol = np.array(draw(st.lists(st.floats(0.001, 0.05), min_size=n, max_size=n)))
    dist = np.array(draw(st.lists(st.floats(0.5, 15.0), min_size=3 * n, max_size=3 * n)))
    return Market(bars, signals, vol, dist.reshape(n, 3))


@st.composite
def configs(draw: st.DrawFn, continuous: bool = False) -> dict[str, Any]:
    """Random engine settings; ``continuous`` leaves out quantity steps and minimums."""
    cfg: dict[str, Any] = {
        "costs": Costs(
            fee_bps=draw(st.floats(0, 50)),
            slippage_bps=draw(st.floats(0, 20)),
            vol_slippage_k=draw(st.sampled_from([0.0, 0.5])),
        ),
        "options": EngineOptions(
            fill_timing=draw(st.sampled_from(["next_open", "close"])),
            close_at_end=draw(st.booleans()),
        ),
        "sizing": draw(
            st.sampled_from(
                [
                    FractionSizing(),
                    FractionSizing(0.5),
                    NotionalSizing(3000.0),
                    VolTargetSizing(0.3, 252.0),
                ]
            )
        ),
    }
    stop_form = draw(st.sampled_from(["none", "fraction", "distance"]))
    if stop_form == "fraction":
        cfg["stops"] = Stops(
            stop_loss=draw(st.none() | st.floats(0.005, 0.2)),
            take_profit=draw(st.none() | st.floats(0.005, 0.3)),
            trailing_stop=draw(st.none() | st.floats(0.005, 0.2)),
            intrabar=draw(st.sampled_from(["stop_first", "target_first"])),
        )
    elif stop_form == "distance":
        cfg["distances"] = draw(st.sets(st.sampled_from([0, 1, 2]), min_size=1))
    if not continuous and draw(st.booleans()):
        cfg["limits"] = OrderLimits(qty_step=0.5, min_size=1.0, min_notional=100.0)
    return cfg


def run(market: Market, cfg: dict[str, Any], **override: Any) -> EngineResult:
    kwargs: dict[str, Any] = {"volatility": market.volatility, **market.signals}
    kwargs.update((k, v) for k, v in cfg.items() if k != "distances")
    for column in cfg.get("distances", ()):
        name = ("stop_loss_dist", "take_profit_dist", "trailing_dist")[column]
        kwargs[name] = market.distances[:, column]
    kwargs.update(override)
    b = market.bars
    return simulate(b[:, 0], b[:, 1], b[:, 2], b[:, 3], init_cash=CASH, **kwargs)


@SETTINGS
@given(market=markets(), cfg=configs())
def test_no_signals_means_flat_equity(market: Market, cfg: dict[str, Any]) -> None:
    none = {name: np.zeros(market.n, dtype=bool) for name in market.signals}
    result = run(market, cfg, **none)
    assert result.n_trades == 0
    assert np.all(result.equity == CASH)
    assert np.all(result.position == 0.0)


@SETTINGS
@given(
    market=markets(),
    cfg=configs(continuous=True),
    fees=st.tuples(st.floats(0, 100), st.floats(0, 100)),
)
def test_higher_fees_never_give_higher_equity(
    market: Market, cfg: dict[str, Any], fees: tuple[float, float]
) -> None:
    low, high = sorted(fees)
    base = cfg["costs"]
    cheap = run(market, cfg, costs=Costs(low, 0.0, base.slippage_bps, base.vol_slippage_k))
    dear = run(market, cfg, costs=Costs(high, 0.0, base.slippage_bps, base.vol_slippage_k))
    # the same trades happen (fees move no price level), each one worth less with higher fees
    np.testing.assert_array_equal(cheap.trades["entry_bar"], dear.trades["entry_bar"])
    np.testing.assert_array_equal(cheap.trades["exit_bar"], dear.trades["exit_bar"])
    assert np.all(dear.equity <= cheap.equity * (1 + 1e-12) + 1e-9)
    assert dear.final_equity <= cheap.final_equity * (1 + 1e-12) + 1e-9


def _assert_same_trade(a: np.void, b: np.void, fields: tuple[str, ...]) -> None:
    for name in fields:
        assert a[name] == b[name], (name, a, b)


@SETTINGS
@given(
    market=markets(min_bars=3),
    cfg=configs(),
    data=st.data(),
)
def test_changing_bars_after_t_changes_nothing_up_to_t(
    market: Market, cfg: dict[str, Any], data: st.DataObject
) -> None:
    n = market.n
    t = data.draw(st.integers(0, n - 2), label="t")
    other = data.draw(markets(min_bars=n, max_bars=n), label="future")
    future = slice(t + 1, n)
    bars = market.bars.copy()
    bars[future] = other.bars[future]
    signals = {k: v.copy() for k, v in market.signals.items()}
    for k, values in signals.items():
        values[future] = other.signals[k][future]
    vol = market.volatility.copy()
    vol[future] = other.volatility[future]
    dist = market.distances.copy()
    dist[future] = other.distances[future]
    changed = Market(bars, signals, vol, dist)

    a = run(market, cfg)
    b = run(changed, cfg)
    # equity and position at or before t (equity at t is marked at the close of t)
    np.testing.assert_array_equal(a.equity[: t + 1], b.equity[: t + 1])
    np.testing.assert_array_equal(a.position[: t + 1], b.position[: t + 1])
    # every trade closed at or before t is unchanged; every trade entered by t has its entry
    entry_fields = ("entry_bar", "side", "size", "entry_price", "entry_fee")
    exit_fields = ("exit_bar", "exit_price", "exit_fee", "pnl", "return", "exit_reason")

    def closed_by_t(r: EngineResult) -> np.ndarray:
        return r.trades[(r.trades["exit_reason"] != ExitReason.OPEN) & (r.trades["exit_bar"] <= t)]

    closed_a, closed_b = closed_by_t(a), closed_by_t(b)
    assert len(closed_a) == len(closed_b)
    for x, y in zip(closed_a, closed_b, strict=True):
        _assert_same_trade(x, y, entry_fields + exit_fields)
    entered_a = a.trades[a.trades["entry_bar"] <= t]
    entered_b = b.trades[b.trades["entry_bar"] <= t]
    assert len(entered_a) == len(entered_b)
    for x, y in zip(entered_a, entered_b, strict=True):
        _assert_same_trade(x, y, entry_fields)


@SETTINGS
@given(market=markets(), cfg=configs())
def test_accounting_identities(market: Market, cfg: dict[str, Any]) -> None:
    result = run(market, cfg)
    trades = result.trades
    # final equity = initial cash + sum of P&L (open trades marked at the last close)
    assert result.final_equity == pytest.approx(CASH + float(trades["pnl"].sum()), rel=1e-9)
    # entries never use more than the cash available, fees included (no leverage)
    cash = CASH
    for tr in trades:
        notional = tr["size"] * tr["entry_price"]
        assert notional + tr["entry_fee"] <= cash * (1 + 1e-12)
        cash += tr["pnl"]
    # position series: signed size between entry and exit
    expected = np.zeros(market.n)
    for tr in trades:
        end = tr["exit_bar"] + 1 if tr["exit_reason"] == ExitReason.OPEN else tr["exit_bar"]
        expected[tr["entry_bar"] : end] = tr["side"] * tr["size"]
    np.testing.assert_array_equal(result.position, expected)
    # stops never fill outside the bar; signal fills at the open (next_open) or close
    bars = market.bars
    for tr in trades:
        _, h, lo, _ = bars[tr["exit_bar"]]
        if tr["exit_reason"] in (
            ExitReason.STOP_LOSS,
            ExitReason.TAKE_PROFIT,
            ExitReason.TRAILING_STOP,
        ):
            slip = 0.1  # generous: fixed + vol slippage stay far below 10 %
            assert lo * (1 - slip) <= tr["exit_price"] <= h * (1 + slip)
