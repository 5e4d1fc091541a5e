"""Step 3 of the decision: apply the LLM supervisor's assessment, in the risk-reducing direction only.

Architecture principle 3, as implemented by :func:`supervise` (import it from
:mod:`morningstar.core.decision`):

* ``none`` stays ``none``: the LLM never opens a trade the rules did not propose;
* ``close`` passes unchanged: an exit reduces risk, the LLM never blocks or delays it;
* ``open``: ``veto`` makes it ``none``; ``approve`` / ``reduce`` multiply the quantity by
  ``size_multiplier`` clamped to [0, 1], the stop distance by ``stop_multiplier`` clamped to
  [0.25, 1] (tighter only) and the target distance by ``take_profit_multiplier`` clamped to
  [0.25, 1]; the side never changes;
* ``adjust`` (a stop tightening): the stop and target multipliers apply (tighter only); a
  ``veto`` or a size multiplier is ignored, since undoing a tightening would add risk;
* no assessment (the LLM failed: timeout, invalid output, budget) or an invalid one (unknown
  verdict, a NaN or non-numeric multiplier) is the *abstain* path: ``"keep"`` the rules' intent,
  or ``"skip"`` a new entry (``close`` and ``adjust`` still go through), recorded with its
  reason.

Every value the assessment carries is re-checked: the object may come from anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Final, Literal, Protocol

from morningstar.core._intent import Action, OrderIntent

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "SIZE_RANGE",
    "STOP_RANGE",
    "TARGET_RANGE",
    "VERDICTS",
    "Abstain",
    "Assessment",
    "SupervisedIntent",
    "SupervisionRecord",
    "supervise",
]

Abstain = Literal["keep", "skip"]
#: The verdicts :func:`supervise` understands; any other makes the assessment invalid.
VERDICTS: Final = frozenset({"approve", "reduce", "veto"})
#: Clamps of the LLM's multipliers, whatever the object says.
SIZE_RANGE: Final = (0.0, 1.0)
STOP_RANGE: Final = (0.25, 1.0)
TARGET_RANGE: Final = (0.25, 1.0)
_MAX_REASON = 200


class Assessment(Protocol):
    """The LLM supervisor's answer as :func:`supervise` reads it.

    :class:`morningstar.llm.schemas.MarketAssessment` satisfies it structurally; nothing here
    trusts its ranges (every value is re-checked and clamped).
    """

    @property
    def verdict(self) -> str:
        """``approve``, ``reduce`` or ``veto``."""
        ...

    @property
    def size_multiplier(self) -> float:
        """Factor on the size, 0..1."""
        ...

    @property
    def stop_multiplier(self) -> float:
        """Factor on the stop distance, 0.25..1."""
        ...

    @property
    def take_profit_multiplier(self) -> float:
        """Factor on the target distance, 0.25..1."""
        ...

    @property
    def coherence(self) -> float:
        """Agreement of signal, trend and regime, 0..1."""
        ...

    @property
    def risk(self) -> str:
        """``low``, ``medium`` or ``high``."""
        ...

    @property
    def reasons(self) -> Sequence[str]:
        """Short reasons, most important first."""
        ...


@dataclass(frozen=True, slots=True)
class SupervisionRecord:
    """What the supervision step did, for persistence (one per supervised intent).

    Attributes:
        consulted: an assessment object was given.
        abstained: the abstain path was taken (no assessment, or an invalid one).
        verdict: the assessment's verdict (``None`` when abstained or not consulted).
        size_multiplier: factor applied to the quantity (after clamping; 1 = unchanged).
        stop_multiplier: factor applied to the stop distance (after clamping).
        take_profit_multiplier: factor applied to the target distance (after clamping).
        clamped: a multiplier was outside its range and was clamped.
        changed: the intent differs from the rules' proposal.
        reason: human-readable summary (the abstain reason on the abstain path).
        coherence: the assessment's coherence, if valid.
        risk: the assessment's risk label, if a string.
        llm_reasons: the assessment's reasons (at most 5, each at most 200 characters).
    """

    consulted: bool
    abstained: bool
    verdict: str | None
    size_multiplier: float
    stop_multiplier: float
    take_profit_multiplier: float
    clamped: bool
    changed: bool
    reason: str
    coherence: float | None = None
    risk: str | None = None
    llm_reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly fields, for persistence."""
        return {
            "consulted": self.consulted,
            "abstained": self.abstained,
            "verdict": self.verdict,
            "size_multiplier": self.size_multiplier,
            "stop_multiplier": self.stop_multiplier,
            "take_profit_multiplier": self.take_profit_multiplier,
            "clamped": self.clamped,
            "changed": self.changed,
            "reason": self.reason,
            "coherence": self.coherence,
            "risk": self.risk,
            "llm_reasons": list(self.llm_reasons),
        }


@dataclass(frozen=True, slots=True)
class SupervisedIntent:
    """The rules' proposal, the intent after supervision, and the record of what changed."""

    proposal: OrderIntent
    intent: OrderIntent
    record: SupervisionRecord


_NOT_CONSULTED: Final = SupervisionRecord(
    False, False, None, 1.0, 1.0, 1.0, False, False, "no change proposed: LLM not consulted"
)
_EXIT: Final = SupervisionRecord(
    False, False, None, 1.0, 1.0, 1.0, False, False, "exit: never blocked by the LLM"
)
_EXIT_CONSULTED: Final = SupervisionRecord(
    True, False, None, 1.0, 1.0, 1.0, False, False, "exit: never blocked by the LLM"
)


def _number(value: object) -> float | None:
    """``value`` as a float when it is a real, non-NaN number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float | Real):
        return None
    x = float(value)
    return None if math.isnan(x) else x


def _clamp(x: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return low if x < low else high if x > high else x


def _tighten_stop(level: float | None, price: float, side: int, m: float) -> float | None:
    """The stop moved toward ``price`` to ``m`` times its distance; never farther than before."""
    if level is None or m >= 1.0:
        return level
    d = side * (price - level)
    if not 0.0 < d < math.inf:
        return level
    new = price - side * d * m
    return max(new, level) if side > 0 else min(new, level)


def _tighten_target(level: float | None, price: float, side: int, m: float) -> float | None:
    """The target moved toward ``price`` to ``m`` times its distance; never farther."""
    if level is None or m >= 1.0:
        return level
    d = side * (level - price)
    if not 0.0 < d < math.inf:
        return level
    new = price + side * d * m
    return min(new, level) if side > 0 else max(new, level)


def _llm_details(assessment: object) -> tuple[float | None, str | None, tuple[str, ...]]:
    """The assessment's coherence, risk and reasons for the record, defensively."""
    coherence = _number(getattr(assessment, "coherence", None))
    risk = getattr(assessment, "risk", None)
    raw = getattr(assessment, "reasons", None)
    reasons: tuple[str, ...] = ()
    if isinstance(raw, list | tuple):
        reasons = tuple(r[:_MAX_REASON] for r in raw[:5] if isinstance(r, str))
    return coherence, risk if isinstance(risk, str) else None, reasons


def _with(intent: OrderIntent, action: Action, quantity: float, sl: float | None,
          tp: float | None, reason: str) -> OrderIntent:  # fmt: skip
    return OrderIntent(
        intent.pair,
        action,
        intent.side,
        quantity,
        intent.price,
        sl,
        tp,
        (*intent.reasons, reason),
    )


def _abstain(intent: OrderIntent, mode: Abstain, reason: str, consulted: bool) -> SupervisedIntent:
    skip = mode == "skip" and intent.action == "open"
    new = _with(intent, "none", 0.0, intent.stop_loss, intent.take_profit,
                f"LLM abstained ({reason}): entry skipped") if skip else intent  # fmt: skip
    verb = "skip the entry" if skip else "keep the rules' intent"
    record = SupervisionRecord(
        consulted, True, None, 1.0, 1.0, 1.0, False, skip, f"abstain ({reason}): {verb}"
    )
    return SupervisedIntent(intent, new, record)


def supervise(
    intent: OrderIntent,
    assessment: Assessment | None,
    *,
    abstain: Abstain,
    abstain_reason: str | None = None,
) -> SupervisedIntent:
    """Apply ``assessment`` to the rules' ``intent`` in the risk-reducing direction only.

    Args:
        intent: the rules' proposal (:func:`~morningstar.core.decision.propose`).
        assessment: the LLM's answer, ``None`` when it failed (the abstain path).
        abstain: on the abstain path, ``"keep"`` the rules' intent or ``"skip"`` an entry.
        abstain_reason: why there is no assessment (timeout, invalid JSON, budget, ...).

    Returns:
        The final intent (never larger, never riskier, same side; ``none`` when the proposal
        is ``none``; exits unchanged) with the record of what the LLM changed.

    Raises:
        ValueError: ``abstain`` is neither ``"keep"`` nor ``"skip"`` (a programming error).
    """
    if abstain not in {"keep", "skip"}:
        raise ValueError(f"abstain must be 'keep' or 'skip', got {abstain!r}")
    action = intent.action
    if action == "none":
        return SupervisedIntent(intent, intent, _NOT_CONSULTED)
    if action == "close":
        return SupervisedIntent(intent, intent, _EXIT if assessment is None else _EXIT_CONSULTED)
    if assessment is None:
        return _abstain(intent, abstain, abstain_reason or "no assessment", False)

    try:
        verdict: object = assessment.verdict
        raw = (assessment.size_multiplier, assessment.stop_multiplier,
               assessment.take_profit_multiplier)  # fmt: skip
    except Exception as exc:  # an arbitrary object: any failure is an invalid answer
        return _abstain(intent, abstain, f"invalid assessment: {type(exc).__name__}", True)
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        return _abstain(intent, abstain, f"invalid assessment: verdict {verdict!r}", True)
    size, stop, target = _number(raw[0]), _number(raw[1]), _number(raw[2])
    if size is None or stop is None or target is None:
        return _abstain(intent, abstain, f"invalid assessment: multipliers {raw!r}", True)

    coherence, risk, llm_reasons = _llm_details(assessment)
    first = f": {llm_reasons[0]}" if llm_reasons else ""
    s_m, st_m, t_m = (
        _clamp(size, SIZE_RANGE),
        _clamp(stop, STOP_RANGE),
        _clamp(target, TARGET_RANGE),
    )
    clamped = (s_m, st_m, t_m) != (size, stop, target)

    if action == "open" and verdict == "veto":
        new = _with(intent, "none", 0.0, intent.stop_loss, intent.take_profit,
                    f"LLM veto{first}")  # fmt: skip
        record = SupervisionRecord(True, False, verdict, 0.0, 1.0, 1.0, clamped, True,
                                   "veto: entry refused", coherence, risk, llm_reasons)  # fmt: skip
        return SupervisedIntent(intent, new, record)

    side, price = intent.side, intent.price
    sl = _tighten_stop(intent.stop_loss, price, side, st_m)
    tp = _tighten_target(intent.take_profit, price, side, t_m)
    if action == "adjust":
        s_m = 1.0  # an adjust does not trade; a veto cannot undo a tightening
        quantity = intent.quantity
        new_action: Action = "adjust"
        summary = f"{verdict}{' ignored for a stop tightening' if verdict == 'veto' else ''}"
    else:
        quantity = intent.quantity * s_m
        new_action = "open" if quantity > 0.0 else "none"
        summary = verdict if quantity > 0.0 else f"{verdict}: size multiplier 0"
    text = f"LLM {summary}: size x{s_m:.4g}, stop x{st_m:.4g}, target x{t_m:.4g}"
    changed = (new_action, quantity, sl, tp) != (action, intent.quantity, intent.stop_loss,
                                                  intent.take_profit)  # fmt: skip
    new = _with(intent, new_action, quantity, sl, tp, text + first) if changed else intent
    record = SupervisionRecord(True, False, verdict, s_m, st_m, t_m, clamped, changed, text,
                               coherence, risk, llm_reasons)  # fmt: skip
    return SupervisedIntent(intent, new, record)
