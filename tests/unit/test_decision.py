"""The decision step: the rules (propose), the LLM's risk-reducing supervision, decide().

The central test is architecture principle 3 as a property: whatever the assessment object says
(out-of-range or NaN multipliers, verdicts the schema would refuse, broken objects), the
supervised intent is never larger, never riskier, never on another side, never an entry the
rules did not propose, and an exit always goes through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morningstar.core.decision import (
    DecisionParams,
    OrderIntent,
    Position,
    decide,
    needs_supervision,
    propose,
    supervise,
)
from morningstar.core.prediction import Prediction
from morningstar.core.risk import PortfolioView, RiskEngine, RiskLimits
from morningstar.core.sizing import SizingParams
from morningstar.llm.schemas import MarketAssessment

PAIR = "BTC/USDT"
SIZING = SizingParams(max_position_pct=100.0)
RULES = DecisionParams()
SHORTS = DecisionParams(allow_shorts=True)


@dataclass(frozen=True)
class AnyAssessment:
    """A plain object implementing the Assessment protocol with ANY values (never validated)."""

    verdict: Any = "approve"
    size_multiplier: Any = 1.0
    stop_multiplier: Any = 1.0
    take_profit_multiplier: Any = 1.0
    coherence: Any = 0.5
    risk: Any = "low"
    reasons: Any = ("ok",)


class Exploding:
    """An assessment whose attributes raise."""

    @property
    def verdict(self) -> str:
        raise RuntimeError("boom")


def pred(signal: str | None = "up", confidence: float | None = 0.8, **kw: Any) -> Prediction:
    return Prediction(signal=signal, confidence=confidence, **kw)


def market(verdict: str, size: float, stop: float = 1.0, tp: float = 1.0) -> MarketAssessment:
    return MarketAssessment(
        verdict=verdict, confidence=0.8, coherence=0.6, risk="medium", size_multiplier=size,
        stop_multiplier=stop, take_profit_multiplier=tp, reasons=["trend agrees"],
    )  # fmt: skip


# ---------------------------------------------------------------------------------- the rules
# price 100, sigma 0.002 -> 2 sigma = 0.4 and 3 sigma = 0.6 in price (the default multiples)
LONG = Position(1, 3.0, 99.0, sl=99.0, tp=101.0)
SHORT = Position(-1, 3.0, 101.0, sl=101.0, tp=99.0)


@pytest.mark.parametrize(
    ("label", "prediction", "position", "params", "action", "side", "sl", "tp"),
    [
        ("flat, up: open long, default multiples", pred(), None, RULES, "open", 1, 99.6, 100.6),
        ("flat, down, no shorts", pred("down"), None, RULES, "none", -1, None, None),
        ("flat, down: open short", pred("down"), None, SHORTS, "open", -1, 100.4, 99.4),
        ("flat, low confidence", pred(confidence=0.5), None, RULES, "none", 1, None, None),
        ("flat, neutral", pred("neutral"), None, RULES, "none", 0, None, None),
        ("flat, no signal head", pred(None, None), None, RULES, "none", 0, None, None),
        ("flat, no confidence", pred(confidence=None), None, RULES, "none", 1, None, None),
        ("model levels", pred(sl=98.0, tp=104.0), None, RULES, "open", 1, 98.0, 104.0),
        # short on a down signal: the model's levels are for the short already
        ("model levels short", pred("down", sl=101.0, tp=97.0), None, SHORTS, "open", -1,
         101.0, 97.0),
        # levels on the wrong side fall back to the multiples
        ("bad levels", pred(sl=100.5, tp=99.0), None, RULES, "open", 1, 99.6, 100.6),
        ("model multiples", pred(sl_mult=1.0, tp_mult=5.0), None, RULES, "open", 1, 99.8, 101.0),
        # the prediction's volatility replaces the caller's sigma: 2 * 0.005 * 100 = 1
        ("predicted volatility", pred(volatility=0.005), None, RULES, "open", 1, 99.0, 101.5),
        ("long, down signal: close", pred("down", 0.4), LONG, RULES, "close", 1, 99.0, 101.0),
        ("short, up signal: close", pred("up"), SHORT, SHORTS, "close", -1, 101.0, 99.0),
        ("long, neutral, exit_on_neutral", pred("neutral"), LONG,
         DecisionParams(exit_on_neutral=True), "close", 1, 99.0, 101.0),
        ("exit needs confidence", pred("down", 0.4), Position(1, 3.0, 99.0, sl=99.7),
         DecisionParams(exit_min_confidence=0.5), "none", 1, None, None),
        # 99.6 tightens 99.0 by 0.6 >= step 0.1
        ("long, tighten stop", pred(), LONG, RULES, "adjust", 1, 99.6, 101.0),
        ("short, tighten stop", pred("down"), SHORT, SHORTS, "adjust", -1, 100.4, 99.0),
        ("no stop yet: any stop", pred(), Position(1, 3.0, 99.0), RULES, "adjust", 1, 99.6, None),
        # 99.6 vs 99.55: 0.05 < step 0.1
        ("step too small", pred(), Position(1, 3.0, 99.0, sl=99.55), RULES, "none", 1, None, None),
        # the model's 99.6 would LOOSEN 99.8: never
        ("never loosen", pred(), Position(1, 3.0, 99.0, sl=99.8), RULES, "none", 1, None, None),
        ("adjust off", pred(), LONG, DecisionParams(adjust_stops=False), "none", 1, None, None),
        # against the position, but exits off: the stop is still tightened (distance 0.4)
        ("no exit, adjust", pred("down"), LONG, DecisionParams(exit_on_opposite=False),
         "adjust", 1, 99.6, 101.0),
    ],
)  # fmt: skip
def test_propose_rules(
    label: str, prediction: Prediction, position: Position | None, params: DecisionParams,
    action: str, side: int, sl: float | None, tp: float | None,
) -> None:  # fmt: skip
    intent = propose(prediction, position, 100.0, 0.002, 10_000.0, params, SIZING, pair=PAIR)
    assert intent.action == action, (label, intent.reasons)
    assert intent.side == side
    assert intent.pair == PAIR
    assert intent.price == 100.0
    assert intent.reasons  # always says why
    if action == "none":
        assert intent.quantity == 0.0
        return
    assert intent.stop_loss == (None if sl is None else pytest.approx(sl))
    assert intent.take_profit == (None if tp is None else pytest.approx(tp))
    if action == "open":
        assert intent.quantity > 0.0
    else:  # close / adjust: the position's size
        assert position is not None
        assert intent.quantity == position.quantity


def test_propose_open_size_comes_from_sizing() -> None:
    intent = propose(pred(confidence=1.0), None, 100.0, 0.002, 10_000.0, RULES, SizingParams(),
                     pair=PAIR)  # fmt: skip
    assert intent.quantity == pytest.approx(10.0)  # max_position_pct 10 % of 10,000 at 100
    assert any("max_position" in r for r in intent.reasons)


@pytest.mark.parametrize(
    ("price", "sigma", "equity", "word"),
    [
        (math.nan, 0.002, 10_000.0, "invalid price"),
        (0.0, 0.002, 10_000.0, "invalid price"),
        (100.0, math.nan, 10_000.0, "no stop"),
        (100.0, 0.002, math.nan, "size 0"),
        (100.0, 0.002, 0.0, "size 0"),
    ],
)
def test_propose_bad_data_is_none_with_reason(
    price: float, sigma: float, equity: float, word: str
) -> None:
    intent = propose(pred(), None, price, sigma, equity, RULES, SIZING, pair=PAIR)
    assert intent.action == "none"
    assert word in intent.reasons[0]


def test_value_types_validate() -> None:
    with pytest.raises(ValueError, match="action"):
        OrderIntent(PAIR, "buy", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side"):
        OrderIntent(PAIR, "open", 0, 1.0)
    with pytest.raises(ValueError, match="quantity"):
        OrderIntent(PAIR, "open", 1, math.nan)
    with pytest.raises(ValueError, match="side"):
        Position(2, 1.0, 100.0)
    with pytest.raises(ValueError, match=r"DecisionParams\.min_confidence"):
        DecisionParams(min_confidence=1.5)
    with pytest.raises(ValueError, match=r"DecisionParams\.sl_sigma_mult"):
        DecisionParams(sl_sigma_mult=0.0)
    assert OrderIntent(PAIR, "none", 0).as_dict()["action"] == "none"


# ---------------------------------------------------------------------------- the supervision
OPEN = OrderIntent(PAIR, "open", 1, 10.0, 100.0, 99.0, 102.0, ("rules",))
OPEN_SHORT = OrderIntent(PAIR, "open", -1, 10.0, 100.0, 101.0, 98.0, ("rules",))
CLOSE = OrderIntent(PAIR, "close", 1, 3.0, 100.0, 99.0, 102.0, ("rules",))
ADJUST = OrderIntent(PAIR, "adjust", 1, 3.0, 100.0, 99.0, 102.0, ("rules",))
NONE = OrderIntent(PAIR, "none", 1, 0.0, 100.0, None, None, ("hold",))


@pytest.mark.parametrize(
    ("label", "intent", "assessment", "abstain", "action", "quantity", "sl", "tp", "abstained"),
    [
        ("approve keeps", OPEN, market("approve", 1.0), "keep", "open", 10.0, 99.0, 102.0,
         False),
        ("reduce halves", OPEN, market("reduce", 0.5), "keep", "open", 5.0, 99.0, 102.0, False),
        ("veto refuses", OPEN, market("veto", 0.0), "keep", "none", 0.0, 99.0, 102.0, False),
        ("tighter stop and target", OPEN, market("approve", 1.0, 0.5, 0.25), "keep", "open",
         10.0, 99.5, 100.5, False),
        ("short: tighter stop", OPEN_SHORT, market("reduce", 0.2, 0.5, 0.5), "keep", "open",
         2.0, 100.5, 99.0, False),
        ("close ignores veto", CLOSE, market("veto", 0.0), "skip", "close", 3.0, 99.0, 102.0,
         False),
        ("none stays none", NONE, market("approve", 1.0), "keep", "none", 0.0, None, None,
         False),
        ("adjust: veto ignored", ADJUST, market("veto", 0.0), "keep", "adjust", 3.0, 99.0,
         102.0, False),
        ("adjust: tighter", ADJUST, market("approve", 1.0, 0.5), "keep", "adjust", 3.0, 99.5,
         102.0, False),
        ("abstain keep", OPEN, None, "keep", "open", 10.0, 99.0, 102.0, True),
        ("abstain skip", OPEN, None, "skip", "none", 0.0, 99.0, 102.0, True),
        ("abstain skip: exit goes", CLOSE, None, "skip", "close", 3.0, 99.0, 102.0, False),
        ("abstain skip: adjust goes", ADJUST, None, "skip", "adjust", 3.0, 99.0, 102.0, True),
        # never trust the object: out-of-range values are clamped
        ("size 5 clamped to 1", OPEN, AnyAssessment("approve", 5.0, 3.0, 9.0), "keep", "open",
         10.0, 99.0, 102.0, False),
        ("size -1 clamped to 0", OPEN, AnyAssessment("reduce", -1.0), "keep", "none", 0.0,
         99.0, 102.0, False),
        ("stop 0 clamped to 0.25", OPEN, AnyAssessment("approve", 1.0, 0.0), "keep", "open",
         10.0, 99.75, 102.0, False),
        # an invalid answer is the abstain path
        ("unknown verdict", OPEN, AnyAssessment("buy_more", 2.0), "skip", "none", 0.0, 99.0,
         102.0, True),
        ("NaN multiplier", OPEN, AnyAssessment("approve", math.nan), "keep", "open", 10.0, 99.0,
         102.0, True),
        ("string multiplier", OPEN, AnyAssessment("approve", "0.5"), "skip", "none", 0.0, 99.0,
         102.0, True),
        ("exploding object", OPEN, Exploding(), "skip", "none", 0.0, 99.0, 102.0, True),
    ],
)  # fmt: skip
def test_supervise_table(
    label: str, intent: OrderIntent, assessment: Any, abstain: Any, action: str,
    quantity: float, sl: float | None, tp: float | None, abstained: bool,
) -> None:  # fmt: skip
    out = supervise(intent, assessment, abstain=abstain, abstain_reason="timeout")
    final, record = out.intent, out.record
    assert out.proposal is intent
    assert final.action == action, (label, final.reasons, record)
    assert final.quantity == pytest.approx(quantity)
    assert final.stop_loss == (None if sl is None else pytest.approx(sl))
    assert final.take_profit == (None if tp is None else pytest.approx(tp))
    assert final.side == intent.side
    assert record.abstained is abstained
    assert record.changed == (final != intent)
    if abstained:
        assert record.verdict is None
        assert ("timeout" in record.reason) if assessment is None else ("invalid" in record.reason)


def test_supervision_record_for_persistence() -> None:
    out = supervise(OPEN, AnyAssessment("reduce", 7.0, 0.1, 2.0, reasons=["x" * 500]),
                    abstain="keep")  # fmt: skip
    rec = out.record
    assert (rec.verdict, rec.size_multiplier, rec.stop_multiplier) == ("reduce", 1.0, 0.25)
    assert rec.take_profit_multiplier == 1.0
    assert rec.clamped and rec.changed and rec.consulted and not rec.abstained
    assert rec.llm_reasons == ("x" * 200,)
    data = rec.as_dict()
    assert data["verdict"] == "reduce"
    assert data["clamped"] is True
    assert out.intent.reasons[0] == "rules"
    assert "LLM reduce" in out.intent.reasons[-1]
    with pytest.raises(ValueError, match="abstain"):
        supervise(OPEN, None, abstain="maybe")  # type: ignore[arg-type]


def test_llm_consulted_only_on_entries() -> None:
    assert needs_supervision(OPEN, RULES)
    assert not needs_supervision(CLOSE, RULES)
    assert not needs_supervision(NONE, RULES)
    assert not needs_supervision(ADJUST, RULES)
    assert needs_supervision(ADJUST, DecisionParams(supervise_adjusts=True))


# ----------------------------------------------------------------------- principle 3, property
finite_or_odd = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5.0, -1.0, 0.0, 1.0, 0.25, 2, -3, True]),
    st.none(),
    st.text(max_size=3),
)
assessments = st.one_of(
    st.none(),
    st.builds(
        AnyAssessment,
        verdict=st.one_of(
            st.sampled_from(["approve", "reduce", "veto", "open", "APPROVE", ""]),
            st.text(max_size=8),
            st.integers(),
            st.none(),
        ),
        size_multiplier=finite_or_odd,
        stop_multiplier=finite_or_odd,
        take_profit_multiplier=finite_or_odd,
        coherence=finite_or_odd,
        risk=st.one_of(st.text(max_size=5), st.integers()),
        reasons=st.one_of(st.lists(st.text(max_size=5), max_size=7), st.none(), st.integers()),
    ),
    st.just(Exploding()),
)
maybe_level = st.one_of(st.none(), st.floats(50.0, 150.0), st.just(math.nan))
maybe_mult = st.one_of(st.none(), st.floats(0.0, 10.0), st.just(math.nan))
predictions = st.builds(
    Prediction,
    signal=st.sampled_from(["up", "down", "neutral", None]),
    confidence=st.one_of(st.none(), st.floats(0.0, 1.0)),
    volatility=st.one_of(st.none(), st.floats(0.0, 0.1), st.just(math.nan)),
    sl_mult=maybe_mult,
    tp_mult=maybe_mult,
    sl=maybe_level,
    tp=maybe_level,
)
positions = st.one_of(
    st.none(),
    st.builds(
        Position,
        side=st.sampled_from([1, -1]),
        quantity=st.floats(0.0, 100.0),
        entry=st.floats(50.0, 150.0),
        sl=maybe_level,
        tp=maybe_level,
    ),
)
params_st = st.builds(
    DecisionParams,
    min_confidence=st.floats(0.0, 1.0),
    allow_shorts=st.booleans(),
    exit_on_opposite=st.booleans(),
    exit_on_neutral=st.booleans(),
    adjust_min_step_pct=st.floats(0.0, 1.0),
)


def assert_never_riskier(proposal: OrderIntent, final: OrderIntent) -> None:
    """Principle 3 on one (proposal, supervised) pair."""
    assert final.side == proposal.side
    assert final.pair == proposal.pair
    assert final.price == proposal.price or math.isnan(proposal.price)
    assert final.quantity <= proposal.quantity
    if proposal.action == "none":
        assert final is proposal  # the LLM never opens a trade the rules did not propose
    if proposal.action == "close":
        assert final == proposal  # exits are never blocked, delayed or resized
    if final.action == "open":
        assert proposal.action == "open"
        assert final.quantity > 0.0 or final is proposal
    if proposal.action == "adjust":
        assert final.action == "adjust"  # a tightening is never undone
        assert final.quantity == proposal.quantity
    assert final.action in (proposal.action, "none")
    for before, after in ((proposal.stop_loss, final.stop_loss),
                          (proposal.take_profit, final.take_profit)):  # fmt: skip
        if before is None or math.isnan(before) or math.isnan(proposal.price):
            assert after is before  # nothing to measure: left exactly as proposed
        else:  # never farther from the reference price
            assert after is not None
            assert abs(proposal.price - after) <= abs(proposal.price - before)


@settings(max_examples=400, deadline=None)
@given(predictions, positions, st.floats(1.0, 1000.0), st.one_of(st.floats(0.0, 0.1),
       st.just(math.nan)), st.floats(0.0, 1e6), params_st, assessments,
       st.sampled_from(["keep", "skip"]))  # fmt: skip
def test_llm_can_only_reduce_risk(
    prediction: Prediction, position: Position | None, price: float, sigma: float,
    equity: float, params: DecisionParams, assessment: Any, abstain: Any,
) -> None:  # fmt: skip
    proposal = propose(prediction, position, price, sigma, equity, params, SIZING, pair=PAIR)
    out = supervise(proposal, assessment, abstain=abstain, abstain_reason="test")
    assert_never_riskier(proposal, out.intent)
    if proposal.action == "close":
        assert not out.record.changed


intents = st.builds(
    OrderIntent,
    pair=st.just(PAIR),
    action=st.sampled_from(["open", "close", "adjust", "none"]),
    side=st.sampled_from([1, -1]),
    quantity=st.floats(0.0, 1e9),
    price=st.one_of(st.floats(1e-6, 1e6), st.just(math.nan)),
    stop_loss=st.one_of(st.none(), st.floats(-1e6, 2e6), st.just(math.nan)),
    take_profit=st.one_of(st.none(), st.floats(-1e6, 2e6), st.just(math.nan)),
)


@settings(max_examples=400, deadline=None)
@given(intents, assessments, st.sampled_from(["keep", "skip"]))
def test_llm_can_only_reduce_risk_on_any_intent(
    intent: OrderIntent, assessment: Any, abstain: Any
) -> None:
    """The same on arbitrary intents (stops on the wrong side, NaN prices, huge sizes)."""
    out = supervise(intent, assessment, abstain=abstain)
    assert_never_riskier(intent, out.intent)


# --------------------------------------------------------------------------------- decide()
def test_decide_runs_supervision_then_the_risk_engine() -> None:
    engine = RiskEngine(RiskLimits())
    view = PortfolioView(10_000.0, 10_000.0, 10_000.0, day=0, bar_index=0)
    proposal = OrderIntent(PAIR, "open", 1, 30.0, 100.0, 99.0, 102.0, ("rules",))
    decision = decide(proposal, market("reduce", 0.5), engine=engine, view=view, abstain="skip")
    assert decision.proposal is proposal
    assert decision.supervised.intent.quantity == 15.0  # the LLM halves 30
    assert decision.final.quantity == pytest.approx(10.0)  # the risk cap: 10 % of 10,000
    assert [r.rule for r in decision.risk.rejections] == ["max_position_pct"]
    # the LLM abstains with "skip": no entry, whatever the risk engine would allow
    skipped = decide(proposal, None, engine=engine, view=view, abstain="skip",
                     abstain_reason="timeout")  # fmt: skip
    assert skipped.final.action == "none"
    assert skipped.supervised.record.abstained
