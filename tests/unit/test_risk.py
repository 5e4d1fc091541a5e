"""The risk engine: table-driven scenarios (one row = limits, view, intent -> expected result),
the state machine over sequences of views, cooldowns, flattening, persistence, and the property
that it never enlarges an intent nor lets one past the caps."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.config import RiskSettings
from morningstar.core.decision import OrderIntent
from morningstar.core.risk import (
    PortfolioView,
    PositionView,
    Rejection,
    RiskEngine,
    RiskLimits,
    RiskState,
)

PAIR = "BTC/USDT"
DEFAULT = RiskLimits()  # 10 % a position, 5 open, 100 % gross, 25 % an asset, 5 % a day,
# 20 % drawdown halts, REDUCING from 10 %, size x0.5 while reducing


def view(
    equity: float = 10_000.0,
    peak: float | None = None,
    day_start: float | None = None,
    day: int = 0,
    bar: int = 0,
    positions: Mapping[str, PositionView] | None = None,
) -> PortfolioView:
    return PortfolioView(
        equity, equity if peak is None else peak, equity if day_start is None else day_start,
        day, bar, dict(positions or {}),
    )  # fmt: skip


def pos(notional: float, side: int = 1, stop: float | None = None) -> PositionView:
    """A position marked at 100 with the given notional."""
    return PositionView(side, notional / 100.0, 100.0, 100.0, stop)


def open_(quantity: float, pair: str = PAIR, side: int = 1, price: float = 100.0) -> OrderIntent:
    return OrderIntent(pair, "open", side, quantity, price, price - side, price + 2 * side)


def close(quantity: float, side: int = 1) -> OrderIntent:
    return OrderIntent(PAIR, "close", side, quantity, 100.0, 99.0, 102.0)


def adjust(stop: float, side: int = 1) -> OrderIntent:
    return OrderIntent(PAIR, "adjust", side, 3.0, 100.0, stop, 102.0)


SMALL = {f"A{i}/USDT": pos(100.0) for i in range(5)}  # five small positions on other assets


@dataclass
class Row:
    label: str
    view: PortfolioView
    intent: OrderIntent
    action: str
    quantity: float
    rules: list[str]
    state: RiskState = RiskState.ACTIVE
    limits: RiskLimits = DEFAULT
    message: str = ""  # expected in the last rejection's text
    extra: dict[str, float] = field(default_factory=dict)


ROWS = [
    Row("within limits", view(), open_(5.0), "open", 5.0, []),
    Row("none passes", view(), OrderIntent(PAIR, "none", 1), "none", 0.0, []),
    Row("max position shrinks", view(), open_(20.0), "open", 10.0, ["max_position_pct"],
        message="shrunk to 10"),
    Row("adding counts the position", view(positions={PAIR: pos(600.0)}), open_(5.0), "open",
        4.0, ["max_position_pct"]),
    Row("max open positions", view(positions=SMALL), open_(1.0), "none", 0.0,
        ["max_open_positions"], message="5 open, limit 5"),
    Row("adding is not a new position", view(positions={**dict(list(SMALL.items())[:4]),
        PAIR: pos(100.0)}), open_(1.0), "open", 1.0, []),
    Row("per asset cap (base currency)", view(positions={"BTC/EUR": pos(2_000.0)}),
        open_(10.0), "open", 5.0, ["per_asset_cap_pct"], limits=RiskLimits(max_position_pct=50),
        message="BTC exposure"),
    Row("per pair override", view(positions={"BTC/EUR": pos(2_000.0)}), open_(10.0), "open",
        10.0, [], limits=RiskLimits(max_position_pct=50, per_pair_cap_pct={PAIR: 40})),
    Row("gross exposure shrinks", view(positions={f"A{i}/USDT": pos(2_400.0) for i in range(4)}),
        open_(10.0), "open", 4.0, ["max_gross_exposure_pct"]),
    Row("no room refuses", view(positions={f"A{i}/USDT": pos(2_000.0) for i in range(5)}),
        open_(1.0), "none", 0.0, ["max_gross_exposure_pct"],
        limits=RiskLimits(max_open_positions=10), message="no room left"),
    Row("opposite position", view(positions={PAIR: pos(100.0, side=-1)}), open_(1.0), "none",
        0.0, ["position_conflict"]),
    Row("min notional", view(), open_(5.0), "none", 0.0, ["min_notional"],
        limits=RiskLimits(min_notional=600.0)),
    Row("invalid price", view(), open_(5.0, price=math.nan), "none", 0.0, ["invalid_intent"]),
    Row("invalid view", view(equity=math.nan, peak=10_000.0, day_start=10_000.0), open_(5.0),
        "none", 0.0, ["invalid_view"]),
    # drawdown 12 % >= 10 %: REDUCING, size x0.5
    Row("reducing halves", view(8_800.0, peak=10_000.0, day_start=8_800.0), open_(5.0), "open",
        2.5, ["reducing"], RiskState.REDUCING, message="drawdown 12.00%"),
    Row("reducing, then the cap", view(8_800.0, peak=10_000.0, day_start=8_800.0),
        open_(20.0), "open", 8.8, ["reducing", "max_position_pct"], RiskState.REDUCING),
    Row("custom reduce threshold", view(9_400.0, peak=10_000.0, day_start=9_400.0), open_(5.0),
        "open", 1.0, ["reducing"], RiskState.REDUCING,
        limits=RiskLimits(reduce_at_drawdown_pct=5.0, reducing_size_factor=0.2)),
    # drawdown 21 % >= 20 %: HALTED
    Row("halted refuses entries", view(7_900.0, peak=10_000.0, day_start=7_900.0), open_(1.0),
        "none", 0.0, ["halted"], RiskState.HALTED, message="drawdown 21.00%"),
    Row("halted allows exits", view(7_900.0, peak=10_000.0, day_start=7_900.0,
        positions={PAIR: pos(300.0)}), close(3.0), "close", 3.0, [], RiskState.HALTED),
    Row("halted allows tightening", view(7_900.0, peak=10_000.0, day_start=7_900.0,
        positions={PAIR: pos(300.0, stop=99.0)}), adjust(99.5), "adjust", 3.0, [],
        RiskState.HALTED),
    Row("zero equity halts", view(0.0, peak=10_000.0, day_start=10.0), open_(1.0), "none", 0.0,
        ["invalid_view"], RiskState.HALTED),
    Row("adjust never loosens", view(positions={PAIR: pos(300.0, stop=99.0)}), adjust(98.0),
        "none", 0.0, ["adjust_loosens"]),
    Row("adjust short tighter", view(positions={PAIR: pos(300.0, -1, stop=101.0)}),
        adjust(100.5, side=-1), "adjust", 3.0, []),
    Row("close clamped to the position", view(positions={PAIR: pos(300.0)}), close(5.0),
        "close", 3.0, ["close_quantity"]),
    Row("close with nothing open", view(), close(1.0), "none", 0.0, ["no_position"]),
    Row("close on the wrong side", view(positions={PAIR: pos(300.0)}), close(3.0, side=-1),
        "none", 0.0, ["position_conflict"]),
    # lost 6 % today (drawdown 6 % < 10 %): no entry for the rest of the day
    Row("daily loss blocks entries", view(9_400.0, peak=10_000.0, day_start=10_000.0),
        open_(1.0), "none", 0.0, ["daily_loss_limit_pct"], message="day loss 6.00%"),
    Row("daily loss allows exits", view(9_400.0, peak=10_000.0, day_start=10_000.0,
        positions={PAIR: pos(300.0)}), close(3.0), "close", 3.0, []),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.label)
def test_scenarios(row: Row) -> None:
    engine = RiskEngine(row.limits)
    decision = engine.check(row.intent, row.view)
    assert decision.intent.action == row.action, decision.rejections
    assert decision.intent.quantity == pytest.approx(row.quantity, rel=1e-12)
    assert [r.rule for r in decision.rejections] == row.rules
    assert decision.state is row.state
    assert decision.intent.side == row.intent.side
    assert decision.intent.pair == row.intent.pair
    assert decision.refused == (row.action == "none" and row.intent.action != "none")
    if row.rules:
        assert row.message in str(decision.rejections[-1])
        assert str(decision.rejections[-1]).startswith(row.rules[-1] + ": ")
        assert f"risk: {decision.rejections[-1]}" in decision.intent.reasons
    else:
        assert decision.intent is row.intent  # accepted untouched


def test_state_machine_transitions() -> None:
    engine = RiskEngine(DEFAULT)
    assert engine.update(view(10_000.0)) is RiskState.ACTIVE
    assert engine.update(view(9_100.0, peak=10_000.0)) is RiskState.ACTIVE  # 9 %
    assert engine.update(view(8_900.0, peak=10_000.0)) is RiskState.REDUCING  # 11 %
    assert engine.update(view(9_500.0, peak=10_000.0)) is RiskState.ACTIVE  # recovered: 5 %
    assert engine.update(view(8_500.0, peak=10_000.0)) is RiskState.REDUCING
    assert engine.update(view(8_000.0, peak=10_000.0)) is RiskState.HALTED  # 20 %: kill switch
    # halted stays halted, even back at the peak
    assert engine.update(view(10_000.0, peak=10_000.0)) is RiskState.HALTED
    assert engine.check(open_(1.0), view(10_000.0)).intent.action == "none"
    engine.reset()
    # after a reset the drawdown counts from the equity at the next view, not the old peak
    assert engine.update(view(8_000.0, peak=10_000.0)) is RiskState.ACTIVE
    assert engine.check(open_(1.0), view(8_000.0, peak=10_000.0)).intent.action == "open"
    assert engine.update(view(7_100.0, peak=10_000.0)) is RiskState.REDUCING  # 11.25 % from 8,000
    assert engine.update(view(6_300.0, peak=10_000.0)) is RiskState.HALTED  # 21.25 %
    engine.reset(equity=9_000.0)
    assert engine.update(view(8_000.0, peak=10_000.0)) is RiskState.REDUCING  # 11.1 % from 9,000


def test_invalid_equity_changes_no_state() -> None:
    engine = RiskEngine(DEFAULT)
    engine.update(view(8_900.0, peak=10_000.0))
    assert engine.update(view(math.nan, peak=10_000.0, day_start=10_000.0)) is RiskState.REDUCING


def test_daily_loss_lasts_the_day_and_resets_on_a_new_day() -> None:
    engine = RiskEngine(DEFAULT)
    assert engine.check(open_(1.0), view(9_400.0, peak=10_000.0, day_start=10_000.0, day=3)
                        ).intent.action == "none"  # fmt: skip
    assert engine.entries_blocked(3)
    # recovered within the same day: still blocked for the rest of it
    recovered = view(9_900.0, peak=10_000.0, day_start=10_000.0, day=3)
    assert [r.rule for r in engine.check(open_(1.0), recovered).rejections] == [
        "daily_loss_limit_pct"
    ]
    # a new UTC day (its own start equity): entries again
    next_day = view(9_900.0, peak=10_000.0, day_start=9_900.0, day=4)
    assert engine.check(open_(1.0), next_day).intent.action == "open"
    assert not engine.entries_blocked(4)


def test_cooldown_after_a_stop() -> None:
    engine = RiskEngine(RiskLimits(cooldown_bars_after_stop=3))
    engine.record_stop(PAIR, 10)
    for bar in (10, 11, 12, 13):
        decision = engine.check(open_(1.0), view(bar=bar))
        assert decision.intent.action == "none", bar
        assert decision.rejections[0].rule == "cooldown_bars_after_stop"
        assert "until bar 14" in decision.rejections[0].message
    assert engine.check(open_(1.0, pair="ETH/USDT"), view(bar=11)).intent.action == "open"
    assert engine.check(open_(1.0), view(bar=14)).intent.action == "open"
    assert engine.to_state()["stops"] == {}  # expired entries are dropped
    off = RiskEngine(DEFAULT)  # cooldown 0: a stop changes nothing
    off.record_stop(PAIR, 10)
    assert off.check(open_(1.0), view(bar=10)).intent.action == "open"


def test_flatten_intents() -> None:
    positions = {"ETH/USDT": pos(500.0, -1, stop=101.0), PAIR: pos(300.0), "X/USDT": pos(0.0)}
    halted_view = view(7_000.0, peak=10_000.0, positions=positions)
    keep = RiskEngine(DEFAULT)
    keep.update(halted_view)
    assert keep.state is RiskState.HALTED
    assert keep.flatten_intents(halted_view) == ()  # flatten_on_halt off
    flat = RiskEngine(RiskLimits(flatten_on_halt=True))
    assert flat.flatten_intents(view(positions=positions)) == ()  # not halted
    flat.update(halted_view)
    intents = flat.flatten_intents(halted_view)
    assert [(i.pair, i.action, i.side, i.quantity) for i in intents] == [
        (PAIR, "close", 1, 3.0),
        ("ETH/USDT", "close", -1, 5.0),
    ]  # sorted by pair, the empty position skipped
    assert all("flatten: drawdown" in i.reasons[0] for i in intents)
    # the risk engine lets its own flatten intents through
    assert all(flat.check(i, halted_view).intent == i for i in intents)
    assert len(RiskEngine(DEFAULT).flatten_intents(view(positions=positions), force=True)) == 2


def test_state_round_trip_resumes_exactly() -> None:
    limits = RiskLimits(cooldown_bars_after_stop=5)
    engine = RiskEngine(limits)
    engine.update(view(7_000.0, peak=10_000.0, day_start=10_000.0, day=2))  # halted + blocked
    engine.record_stop(PAIR, 40)
    engine.reset(equity=7_000.0)
    engine.update(view(6_200.0, peak=10_000.0, day_start=10_000.0, day=2, bar=41))  # 11.4 %
    data = json.loads(json.dumps(engine.to_state()))  # plain JSON types only
    twin = RiskEngine.from_state(limits, data)
    assert twin.to_state() == engine.to_state()
    assert twin.state is engine.state is RiskState.REDUCING
    probes = [
        (open_(1.0), view(6_200.0, peak=10_000.0, day_start=10_000.0, day=2, bar=42)),
        (
            open_(1.0, pair="ETH/USDT"),
            view(6_200.0, peak=10_000.0, day_start=6_500.0, day=3, bar=43),
        ),
        (open_(1.0), view(6_200.0, peak=10_000.0, day_start=6_500.0, day=3, bar=44)),
        (open_(1.0), view(5_000.0, peak=10_000.0, day_start=6_500.0, day=3, bar=47)),
    ]
    rules = []
    for intent, v in probes:
        decision = engine.check(intent, v)
        assert twin.check(intent, v) == decision  # the restored engine decides alike
        rules.append([r.rule for r in decision.rejections])
    assert rules == [["daily_loss_limit_pct"], ["reducing"], ["cooldown_bars_after_stop"],
                     ["halted"]]  # fmt: skip
    assert twin.to_state() == engine.to_state()
    with pytest.raises(ValueError, match="version"):
        RiskEngine.from_state(limits, {**data, "version": 99})
    with pytest.raises(ValueError, match="malformed"):
        RiskEngine.from_state(limits, {**data, "state": "panicking"})


def test_limits_from_settings_and_validation() -> None:
    limits = RiskLimits.from_settings(RiskSettings())
    assert (limits.max_position_pct, limits.max_open_positions) == (10.0, 5)
    assert limits.reduce_at_drawdown_pct == pytest.approx(limits.max_drawdown_pct / 2)
    settings = RiskSettings(
        reducing_size_factor=0.25, flatten_on_halt=True, per_pair_cap_pct={PAIR: 40.0}
    )
    duck = SimpleNamespace(**settings.model_dump())  # any object with those attributes
    limits = RiskLimits.from_settings(duck, max_drawdown_pct=30.0)
    assert (limits.reducing_size_factor, limits.flatten_on_halt) == (0.25, True)
    assert (limits.max_drawdown_pct, limits.reduce_at) == (30.0, 15.0)
    assert limits.per_pair_cap_pct == {PAIR: 40.0}
    with pytest.raises(AttributeError):
        RiskLimits.from_settings(SimpleNamespace(max_position_pct=10.0))
    for name, value in [("max_position_pct", 0.0), ("max_open_positions", 0),
                        ("max_drawdown_pct", math.nan), ("reducing_size_factor", 1.5),
                        ("cooldown_bars_after_stop", -1), ("min_notional", -1.0)]:  # fmt: skip
        with pytest.raises(ValueError, match=rf"RiskLimits\.{name}"):
            RiskLimits(**{name: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduce_at_drawdown_pct"):
        RiskLimits(max_drawdown_pct=10.0, reduce_at_drawdown_pct=15.0)
    with pytest.raises(ValueError, match="per_pair_cap_pct"):
        RiskLimits(per_pair_cap_pct={PAIR: 200.0})
    assert str(Rejection("max_open_positions", "5 open, limit 5")) == (
        "max_open_positions: 5 open, limit 5"
    )


# --------------------------------------------------------------------------------- property
pairs = st.sampled_from(["BTC/USDT", "BTC/EUR", "ETH/USDT", "SOL/USDT", "XRP/USDT", "EURUSD"])
position_views = st.builds(
    PositionView,
    side=st.sampled_from([1, -1]),
    quantity=st.floats(0.0, 50.0),
    entry_price=st.just(100.0),
    mark_price=st.floats(1.0, 500.0),
)
limits_st = st.builds(
    RiskLimits,
    max_position_pct=st.floats(0.5, 100.0),
    max_open_positions=st.integers(1, 6),
    max_gross_exposure_pct=st.floats(1.0, 300.0),
    per_asset_cap_pct=st.floats(0.5, 100.0),
    per_pair_cap_pct=st.dictionaries(pairs, st.floats(0.5, 100.0), max_size=2),
    reducing_size_factor=st.floats(0.0, 1.0),
    min_notional=st.floats(0.0, 100.0),
)


@settings(max_examples=400, deadline=None)
@given(
    limits_st,
    st.floats(1.0, 1e6),
    st.floats(0.0, 0.5),
    st.dictionaries(pairs, position_views, max_size=6),
    pairs,
    st.sampled_from(["open", "close", "adjust", "none"]),
    st.sampled_from([1, -1]),
    st.floats(0.0, 1e6),
    st.floats(0.01, 1e4),
)
def test_never_larger_never_past_the_caps(
    limits: RiskLimits, equity: float, drawdown: float, positions: dict[str, PositionView],
    pair: str, action: str, side: int, quantity: float, price: float,
) -> None:  # fmt: skip
    peak = equity / (1.0 - drawdown)
    v = PortfolioView(equity, peak, equity, 0, 0, positions)
    intent = OrderIntent(pair, action, side, quantity, price, None, None)  # type: ignore[arg-type]
    decision = RiskEngine(limits).check(intent, v)
    out = decision.intent
    assert out.quantity <= intent.quantity
    assert out.side == intent.side and out.pair == pair
    assert out.action in (action, "none")
    if action == "none":
        assert out is intent
    if out.action == "close":
        assert out.quantity <= positions[pair].quantity
    if out.action == "open":
        assert decision.state is not RiskState.HALTED
        tol = 1.0 + 1e-9
        added = out.quantity * price
        mine = positions.get(pair)
        own = mine.notional if mine is not None and mine.quantity > 0 else 0.0
        live = {p: x for p, x in positions.items() if x.quantity > 0}
        gross = sum(x.notional for x in live.values())
        asset = pair.partition("/")[0] if "/" in pair else pair
        same = sum(x.notional for p, x in live.items() if (p.partition("/")[0] if "/" in p
                                                          else p) == asset)  # fmt: skip
        cap = limits.per_pair_cap_pct.get(pair, limits.per_asset_cap_pct)
        assert own + added <= limits.max_position_pct / 100 * equity * tol
        assert same + added <= cap / 100 * equity * tol
        assert gross + added <= limits.max_gross_exposure_pct / 100 * equity * tol
        assert added >= limits.min_notional
        assert pair in live or len(live) < limits.max_open_positions
        if decision.state is RiskState.REDUCING:
            assert out.quantity <= intent.quantity * limits.reducing_size_factor
