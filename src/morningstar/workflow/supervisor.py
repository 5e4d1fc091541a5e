"""Step d: the LLM supervisor, through the LLM gateway (traced, cached, budgeted).

When the rules propose a change (an entry, and a stop adjustment when asked),
the workflow asks the supervisor for a :class:`~morningstar.llm.schemas.MarketAssessment` of that
one proposal. The prompt is the versioned ``market_assessment`` template filled with numbers
known at the bar's close only (point in time): the model's prediction and the market snapshot
of the bars up to that bar (trend, volatility, regime, ATR, RSI), the proposed stop and target.

Any failure — a timeout past the latency budget, a rate limit after the retries, an answer that
is not valid JSON of the schema, a spent budget, too few bars for the snapshot — returns no
assessment and a one-line reason: the decision then takes the explicit abstain path
(``workflow.supervisor.abstain``), logged and persisted with the cycle (architecture principle
3: never silent defaults). A replay-cache miss is different: in ``replay`` mode (CI, published
backtests) a question that was never recorded means the run cannot reproduce the recorded one,
so it halts the run (:class:`~morningstar.workflow.policy.HaltRun`) instead of abstaining.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from morningstar.core.cycle import StepError
from morningstar.errors import LLMCacheMiss, LLMError, UserInputError
from morningstar.llm.prompts import load_template
from morningstar.llm.schemas import MarketAssessment
from morningstar.services.llm import SNAPSHOT_BARS, market_snapshot
from morningstar.workflow.policy import HaltRun

if TYPE_CHECKING:
    import pandas as pd

    from morningstar.core.decision import OrderIntent
    from morningstar.core.prediction import Prediction
    from morningstar.llm.gateway import Gateway

__all__ = ["SNAPSHOT_BARS", "LLMSupervisor", "SupervisorAnswer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisorAnswer:
    """What one consultation gave.

    Attributes:
        assessment: the validated assessment, or None (abstain).
        reason: why there is none (one line), else None.
        call_id: the LLM monitor's id of the call (None when no call was made).
        latency_s: seconds the consultation took (snapshot and call).
        error_type: the error's class name when it failed.
        cache_hit: the answer came from the replay cache.
        rule_based: the offline rule-based analyst answered (not an LLM).
    """

    assessment: MarketAssessment | None
    reason: str | None
    call_id: str | None
    latency_s: float
    error_type: str | None = None
    cache_hit: bool = False
    rule_based: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The consultation's facts for the cycle record (the assessment itself is in the
        supervision record)."""
        return {"llm_call_id": self.call_id, "latency_s": self.latency_s,
                "error_type": self.error_type, "cache_hit": self.cache_hit,
                "rule_based": self.rule_based, "abstain_reason": self.reason}  # fmt: skip


class LLMSupervisor:
    """Asks the LLM gateway about one proposed intent (see the module docstring).

    Args:
        gateway: the LLM gateway (its provider may be the offline rule-based analyst).
        timeframe: the bars' timeframe (``1h``), for the snapshot and the prompt.
        calendar: the market calendar (annualisation of the volatility).
        latency_budget_s: the call's timeout, in seconds.
        template: the prompt template id (latest version).
        caller: the monitor's and budgets' caller name.
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        timeframe: str,
        calendar: str,
        latency_budget_s: float = 10.0,
        template: str = "market_assessment",
        caller: str = "supervisor",
    ) -> None:
        self.gateway = gateway
        self.timeframe = timeframe
        self.calendar = calendar
        self.latency_budget_s = latency_budget_s
        self.template = load_template(template)
        self.caller = caller

    def inputs(
        self, pair: str, bars: pd.DataFrame, intent: OrderIntent, prediction: Prediction | None
    ) -> dict[str, Any]:
        """The template's inputs for ``intent`` from ``bars`` (those up to the decision bar)."""
        snap = market_snapshot(
            bars.iloc[-SNAPSHOT_BARS:], pair=pair, timeframe=self.timeframe, calendar=self.calendar
        )
        confidence = None if prediction is None else prediction.confidence
        inputs: dict[str, Any] = {
            "pair": pair,
            "timeframe": self.timeframe,
            "as_of": snap["as_of"],
            "close": snap["close"],
            "signal": intent.side,  # entries and adjustments only: exits are never asked about
            "confidence": 1.0 if confidence is None else min(max(float(confidence), 0.0), 1.0),
            "trend": snap["trend"],
            "volatility": snap["volatility"],
            "regime": snap["regime"],
            "atr": snap["atr"],
            "rsi": snap["rsi"],
        }
        stop = intent.stop_distance()
        if stop is not None and stop > 0:
            inputs["stop_distance"] = stop
        if intent.take_profit is not None:
            target = intent.side * (intent.take_profit - intent.price)
            if target > 0:
                inputs["target_distance"] = target
        return inputs

    def assess(
        self, pair: str, bars: pd.DataFrame, intent: OrderIntent, prediction: Prediction | None
    ) -> SupervisorAnswer:
        """One consultation; an LLM or snapshot failure gives no assessment (abstain).

        Raises:
            HaltRun: a replay-cache miss (see the module docstring).
        """
        t0 = time.perf_counter()
        try:
            request = self.template.render(
                self.inputs(pair, bars, intent, prediction),
                caller=self.caller,
                timeout_s=self.latency_budget_s,
            )
            result = self.gateway.call(request)
        except LLMCacheMiss as exc:  # replay mode: the recorded run cannot be reproduced
            error = StepError("supervise", "LLMCacheMiss", f"LLMCacheMiss: {exc.one_line()}",
                              "halted")  # fmt: skip
            raise HaltRun(error) from exc
        except (LLMError, UserInputError) as exc:
            reason = f"{type(exc).__name__}: {exc.one_line()}"
            log.warning("supervisor abstains on %s: %s", pair, reason)
            return SupervisorAnswer(None, reason, getattr(exc, "call_id", None),
                                    time.perf_counter() - t0, type(exc).__name__)  # fmt: skip
        value = result.value
        if not isinstance(value, MarketAssessment):  # the template names this schema
            reason = f"the answer is a {type(value).__name__}, not a MarketAssessment"
            return SupervisorAnswer(None, reason, result.call_id, time.perf_counter() - t0,
                                    "LLMInvalidOutput")  # fmt: skip
        return SupervisorAnswer(
            value, None, result.call_id, time.perf_counter() - t0,
            cache_hit=result.cache_hit, rule_based=result.rule_based,
        )  # fmt: skip
