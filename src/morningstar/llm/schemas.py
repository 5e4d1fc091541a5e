"""Structured answers the LLMs give: pydantic models, strict (extra fields and out-of-range
values are errors, and no field has a default, so a caller never gets a schema default in place
of an answer).

Each schema is named by the prompt templates that ask for it (``docs/PROMPTS_GUIDE.md``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = ["SCHEMAS", "MarketAssessment", "StrictAnswer"]

Reason = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class StrictAnswer(BaseModel):
    """Base of every structured answer: frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketAssessment(StrictAnswer):
    """The supervisor's verdict on one trade the rules proposed (``market_assessment`` prompt).

    The LLM can only reduce risk (architecture principle 3): ``size_multiplier`` and
    ``stop_multiplier`` are at most 1 (smaller size, tighter stop), ``verdict`` cannot open a
    trade the rules did not propose.

    Fields:
        verdict: ``approve`` the trade, ``reduce`` its size, or ``veto`` it.
        confidence: how sure the assessor is of the verdict, 0..1.
        coherence: how well the model's signal, the trend and the regime agree, 0..1.
        risk: the assessor's view of the trade's risk.
        size_multiplier: factor on the proposed size: 0 with a veto, 1 with an approval,
            strictly between with a reduction (checked).
        stop_multiplier: factor on the proposed stop distance, 0.25..1 (1 = unchanged).
        take_profit_multiplier: factor on the proposed target distance, 0.25..1.
        reasons: one to five short reasons, most important first.
    """

    verdict: Literal["approve", "reduce", "veto"]
    confidence: float = Field(ge=0.0, le=1.0)
    coherence: float = Field(ge=0.0, le=1.0)
    risk: Literal["low", "medium", "high"]
    size_multiplier: float = Field(ge=0.0, le=1.0)
    stop_multiplier: float = Field(ge=0.25, le=1.0)
    take_profit_multiplier: float = Field(ge=0.25, le=1.0)
    reasons: list[Reason] = Field(min_length=1, max_length=5)

    @model_validator(mode="after")
    def _verdict_matches_size(self) -> MarketAssessment:
        """A verdict and its size agree: veto → 0, approve → 1, reduce → strictly between."""
        size = self.size_multiplier
        expected = {"veto": size == 0.0, "approve": size == 1.0, "reduce": 0.0 < size < 1.0}
        if not expected[self.verdict]:
            wanted = {"veto": "0", "approve": "1", "reduce": "between 0 and 1 (exclusive)"}
            raise ValueError(
                f"verdict {self.verdict!r} needs size_multiplier {wanted[self.verdict]}, "
                f"got {size:g}"
            )
        return self


#: Schema name → model, for templates that name their schema.
SCHEMAS: dict[str, type[StrictAnswer]] = {"MarketAssessment": MarketAssessment}
