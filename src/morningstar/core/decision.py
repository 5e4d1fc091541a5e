"""Step e of the trading cycle: the rules propose, the LLM may only reduce, the risk engine decides.

The order, for one pair at the close of one bar (the workflow calls each step in turn):

1. :func:`propose` — the rules alone turn the predictor's :class:`Prediction`, the open
   :class:`Position` (if any) and the portfolio's equity into an :class:`OrderIntent`: ``open``,
   ``close``, ``adjust`` (tighten the stop) or ``none``.
2. the LLM supervisor is consulted only when :func:`needs_supervision` says so (an ``open``,
   and an ``adjust`` when :attr:`DecisionParams.supervise_adjusts`); it answers with an
   :class:`Assessment` or fails (the *abstain* path).
3. :func:`supervise` applies the assessment ONLY in the risk-reducing direction (architecture
   principle 3): it never opens, enlarges, flips or loosens anything, and never blocks an exit.
4. :meth:`~morningstar.core.risk.RiskEngine.check` — the hard limits have the last word.

:func:`decide` runs steps 3 and 4 together. Conventions: prices are in the quote currency,
quantities in base units (>= 0), ``side`` is +1 (long) / -1 (short), ``sigma`` is the volatility
of one bar's return (a fraction, e.g. ``0.002``).

Decision rules (:func:`propose`):

* **flat** — open when the signal is ``up`` (or ``down`` with :attr:`DecisionParams.allow_shorts`)
  with ``confidence >= min_confidence``; the stop and the target come from the prediction's
  ``sl`` / ``tp`` price levels when present (and on the right side of the price), else from
  its ``sl_mult`` / ``tp_mult`` heads times ``sigma * price``, else from the default multiples
  ``sl_sigma_mult`` / ``tp_sigma_mult``; the size from :func:`~morningstar.core.sizing.
  position_size`. A size of 0 is ``none``.
* **in a position** — close when the signal turns against it (``exit_on_opposite``, with at
  least ``exit_min_confidence``) or turns neutral (``exit_on_neutral``). Else, with
  ``adjust_stops``, ``adjust`` when the model's stop for the position's side (same source chain
  as for an entry: with no SL head this is a volatility trailing stop) is TIGHTER than the
  current stop by at least ``adjust_min_step_pct`` % of the price; a stop is never loosened.
  A reversal takes two bars: close now, open at a later bar. Stop-loss and take-profit hits are
  the broker's (resting orders), not the rules'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from morningstar.core._checks import check_range
from morningstar.core._intent import ACTIONS, Action, OrderIntent, Position
from morningstar.core._supervision import (
    VERDICTS,
    Abstain,
    Assessment,
    SupervisedIntent,
    SupervisionRecord,
    supervise,
)
from morningstar.core.sizing import SizingParams, position_size

if TYPE_CHECKING:
    from morningstar.core.prediction import Prediction
    from morningstar.core.risk import PortfolioView, RiskDecision, RiskEngine

__all__ = [
    "ACTIONS",
    "VERDICTS",
    "Abstain",
    "Action",
    "Assessment",
    "Decision",
    "DecisionParams",
    "OrderIntent",
    "Position",
    "SupervisedIntent",
    "SupervisionRecord",
    "decide",
    "needs_supervision",
    "propose",
    "supervise",
]


def _check(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    check_range("DecisionParams", name, value, low, high, low_open=low_open)


@dataclass(frozen=True, slots=True)
class DecisionParams:
    """Parameters of the rules (:func:`propose`) and of the supervision step.

    Attributes:
        min_confidence: confidence needed to open, [0, 1]. Default 0.55.
        allow_shorts: open shorts on ``down`` signals. Default False (spot markets).
        exit_on_opposite: close when the signal turns against the position. Default True.
        exit_min_confidence: confidence the opposite signal needs to close, [0, 1]. Default 0.
        exit_on_neutral: close when the signal turns neutral. Default False.
        sl_sigma_mult: default stop distance in ``sigma * price`` when the model gives none,
            (0, 100]. Default 2.
        tp_sigma_mult: default target distance in ``sigma * price``, (0, 100]. Default 3.
        adjust_stops: issue ``adjust`` intents that tighten the stop. Default True.
        adjust_min_step_pct: smallest tightening worth an ``adjust``, % of the price,
            [0, 100]. Default 0.1.
        supervise_adjusts: consult the LLM on ``adjust`` intents too. Default False.
    """

    min_confidence: float = 0.55
    allow_shorts: bool = False
    exit_on_opposite: bool = True
    exit_min_confidence: float = 0.0
    exit_on_neutral: bool = False
    sl_sigma_mult: float = 2.0
    tp_sigma_mult: float = 3.0
    adjust_stops: bool = True
    adjust_min_step_pct: float = 0.1
    supervise_adjusts: bool = False

    def __post_init__(self) -> None:
        _check("min_confidence", self.min_confidence, 0.0, 1.0)
        _check("exit_min_confidence", self.exit_min_confidence, 0.0, 1.0)
        _check("sl_sigma_mult", self.sl_sigma_mult, 0.0, 100.0, low_open=True)
        _check("tp_sigma_mult", self.tp_sigma_mult, 0.0, 100.0, low_open=True)
        _check("adjust_min_step_pct", self.adjust_min_step_pct, 0.0, 100.0)


def _distance(level: float | None, mult: float | None, default_mult: float, unit: float,
              price: float) -> tuple[float, str]:  # fmt: skip
    """Distance from ``price`` of a stop/target: the level, else ``mult * unit``, else default.

    ``unit`` is ``sigma * price``; a NaN or non-positive candidate falls through to the next.
    """
    if level is not None:
        d = abs(price - level)
        if 0.0 < d < math.inf:
            return d, "model level"
    if mult is not None:
        d = mult * unit
        if 0.0 < d < math.inf:
            return d, "model multiple"
    d = default_mult * unit
    if 0.0 < d < math.inf:
        return d, "default multiple"
    return math.nan, "volatility unknown"


def _none(pair: str, side: int, price: float, reason: str) -> OrderIntent:
    return OrderIntent(pair, "none", side, 0.0, price, None, None, (reason,))


def propose(
    prediction: Prediction,
    position: Position | None,
    price: float,
    sigma: float,
    equity: float,
    params: DecisionParams,
    sizing: SizingParams,
    *,
    pair: str,
) -> OrderIntent:
    """The rules alone (module docstring): one intent for ``pair`` at this bar's close.

    Args:
        prediction: the predictor's answer for the bar.
        position: the open position on ``pair``, ``None`` (or quantity 0) when flat.
        price: the reference price (the bar's close), quote currency.
        sigma: the caller's per-bar volatility estimate known at the bar; the prediction's
            ``volatility`` is used instead when present, finite and > 0.
        equity: the account's equity (for sizing), quote currency.
        params: the rules' parameters.
        sizing: the sizing parameters.
        pair: the market.

    Returns:
        An :class:`OrderIntent`; ``none`` (with its reason) on any missing or invalid input
        (no entry without a confidence; an exit does not need one).
    """
    signal = prediction.signal_value
    confidence = prediction.confidence
    vol = prediction.volatility
    if vol is not None and 0.0 < vol < math.inf:
        sigma = vol
    if position is None or position.quantity <= 0.0:
        if signal is None:
            return _none(pair, 0, price, "flat: no signal head")
        if signal == 0:
            return _none(pair, 0, price, "flat: signal neutral")
        if signal < 0 and not params.allow_shorts:
            return _none(pair, -1, price, "flat: down signal, shorts not allowed")
        side = 1 if signal > 0 else -1
        if confidence is None or not confidence >= params.min_confidence:
            return _none(pair, side, price, "flat: confidence below min_confidence")
        if not 0.0 < price < math.inf:
            return _none(pair, side, price, "flat: invalid price")
        unit = sigma * price
        d_sl, src = _distance(prediction.sl, prediction.sl_mult, params.sl_sigma_mult, unit, price)
        if prediction.sl is not None and side * (price - prediction.sl) <= 0.0:
            d_sl, src = _distance(None, prediction.sl_mult, params.sl_sigma_mult, unit, price)
        d_tp, _ = _distance(prediction.tp, prediction.tp_mult, params.tp_sigma_mult, unit, price)
        if prediction.tp is not None and side * (prediction.tp - price) <= 0.0:
            d_tp, _ = _distance(None, prediction.tp_mult, params.tp_sigma_mult, unit, price)
        if not d_sl > 0.0:
            return _none(pair, side, price, f"flat: no stop ({src})")
        size = position_size(equity, price, sigma, confidence, d_sl, d_tp, sizing)
        if size.quantity <= 0.0:
            return _none(pair, side, price, f"flat: size 0 ({size.reason})")
        tp = price + side * d_tp if d_tp > 0.0 else None
        return OrderIntent(
            pair, "open", side, size.quantity, price, price - side * d_sl, tp,
            (f"open {'long' if side > 0 else 'short'}: signal {prediction.signal} confidence "
             f"{confidence:.3f} >= {params.min_confidence:.3f}", f"stop from {src}",
             f"size {size.reason}"),
        )  # fmt: skip

    side = position.side
    if signal is not None:
        exit_confidence = 1.0 if confidence is None else confidence  # exits: lenient
        if (
            params.exit_on_opposite
            and signal == -side
            and exit_confidence >= params.exit_min_confidence
        ):
            return OrderIntent(
                pair, "close", side, position.quantity, price, position.sl, position.tp,
                (f"close: signal {prediction.signal} against the position",),
            )  # fmt: skip
        if params.exit_on_neutral and signal == 0:
            return OrderIntent(
                pair, "close", side, position.quantity, price, position.sl, position.tp,
                ("close: signal neutral",),
            )  # fmt: skip
    if params.adjust_stops and 0.0 < price < math.inf:
        d, src = _distance(prediction.sl, prediction.sl_mult, params.sl_sigma_mult,
                           sigma * price, price)  # fmt: skip
        if d > 0.0:
            candidate = price - side * d
            current = position.sl
            step = params.adjust_min_step_pct / 100.0 * price
            gain = math.inf if current is None else side * (candidate - current)
            if gain > 0.0 and gain >= step:
                return OrderIntent(
                    pair, "adjust", side, position.quantity, price, candidate, position.tp,
                    (f"adjust: tighten stop to {candidate:.6g} (from {current}, {src})",),
                )  # fmt: skip
    return _none(pair, side, price, "hold")


@dataclass(frozen=True, slots=True)
class Decision:
    """The three stages of one decision, for persistence: ``risk.intent`` is the final intent."""

    proposal: OrderIntent
    supervised: SupervisedIntent
    risk: RiskDecision

    @property
    def final(self) -> OrderIntent:
        """The intent to execute (the risk engine's)."""
        return self.risk.intent


def needs_supervision(intent: OrderIntent, params: DecisionParams) -> bool:
    """Whether to consult the LLM on ``intent``: an ``open``, or an ``adjust`` when
    ``params.supervise_adjusts``. ``close`` and ``none`` never (the LLM cannot change them)."""
    action = intent.action
    return action == "open" or (action == "adjust" and params.supervise_adjusts)


def decide(
    proposal: OrderIntent,
    assessment: Assessment | None,
    *,
    engine: RiskEngine,
    view: PortfolioView,
    abstain: Abstain,
    abstain_reason: str | None = None,
) -> Decision:
    """Steps 3 and 4: :func:`supervise` the proposal, then let the risk engine decide.

    Returns:
        The proposal, the supervised intent with its record, and the risk decision, whose
        ``intent`` is the final one.
    """
    supervised = supervise(proposal, assessment, abstain=abstain, abstain_reason=abstain_reason)
    risk: RiskDecision = engine.check(supervised.intent, view)
    return Decision(proposal, supervised, risk)
