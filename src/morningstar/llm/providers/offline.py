"""The offline provider: a deterministic, rule-based analyst for runs without any LLM.

It is labelled as what it is (``model="rule-based"``, text answers start with
``[rule-based analyst]``) and answers from ``call.request.inputs`` — the numbers the prompt was
rendered from — never from the message text. It uses no tokens: ``Usage(0, 0)``.

The rules are documented, number by number, in ``docs/offline_analyst.md``; the constants below
are the single source of truth. In short, for a :class:`~morningstar.llm.schemas.MarketAssessment`:

1. ``signal == 0`` → veto, ``"no trade proposed"``.
2. The signal opposes a strong trend (``|trend| >= STRONG_TREND``) → veto.
3. RSI is extreme against the signal (long with RSI > 80, short with RSI < 20) → veto.
4. Otherwise the size multiplier is the product of the factors that apply (volatile regime
   ×0.5, model confidence < 0.5 ×0.5, weak counter-trend ×0.5, stretched RSI ×0.75, high
   volatility outside the volatile regime ×0.75): ``reduce`` when below 1, else ``approve``.
5. A proposed stop wider than 2×ATR is tightened to 2×ATR, a target beyond 4×ATR to 4×ATR
   (multipliers floored at 0.25).

Everything it returns satisfies the schema's bounds: it can only reduce risk.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from morningstar.errors import LLMProviderError
from morningstar.llm.schemas import MarketAssessment
from morningstar.llm.types import ProviderCall, ProviderReply, Usage

__all__ = [
    "ASSESSMENT_INPUTS",
    "MARKET_INPUTS",
    "OFFLINE_MODEL",
    "TEXT_PREFIX",
    "MarketInputs",
    "OfflineProvider",
    "assess",
    "describe_market",
]

log = logging.getLogger(__name__)

OFFLINE_MODEL = "rule-based"
TEXT_PREFIX = "[rule-based analyst] "

#: Inputs a market description needs (``inputs["market"]`` of a free-text request).
MARKET_INPUTS = (
    "pair",
    "timeframe",
    "as_of",
    "close",
    "trend",
    "volatility",
    "regime",
    "atr",
    "rsi",
)
#: Inputs a ``MarketAssessment`` request needs (``stop_distance``/``target_distance`` optional).
ASSESSMENT_INPUTS = (*MARKET_INPUTS, "signal", "confidence")
REGIMES = ("trending", "ranging", "volatile")

FLAT_TREND = 0.001  # |fast/slow EMA - 1| below this: no direction
STRONG_TREND = 0.01  # at or above this: a strong trend
RSI_OVERBOUGHT, RSI_EXTREME_HIGH = 70.0, 80.0
RSI_OVERSOLD, RSI_EXTREME_LOW = 30.0, 20.0
MIN_CONFIDENCE = 0.5  # model confidence below this: reduce
LOW_VOLATILITY, HIGH_VOLATILITY = 0.3, 0.8  # annualised, as fractions
STOP_ATR, TARGET_ATR = 2.0, 4.0  # widest stop / target distance, in ATRs
MIN_MULTIPLIER = 0.25  # the schema's floor for stop / take-profit multipliers
VOLATILE_FACTOR = LOW_CONFIDENCE_FACTOR = COUNTER_TREND_FACTOR = 0.5
STRETCHED_RSI_FACTOR = HIGH_VOLATILITY_FACTOR = 0.75
RULE_VETO_CONFIDENCE = 0.8

_WHERE = "offline rule-based analyst"
_HINT = "pass it in LLMRequest.inputs (see docs/offline_analyst.md)"


@dataclass(frozen=True)
class MarketInputs:
    """The numbers the analyst reads (see ``docs/offline_analyst.md`` for units)."""

    pair: str
    timeframe: str
    as_of: str
    close: float
    trend: float
    volatility: float
    regime: str
    atr: float
    rsi: float
    signal: int | None = None
    confidence: float | None = None
    stop_distance: float | None = None
    target_distance: float | None = None

    @classmethod
    def parse(cls, inputs: Mapping[str, Any], required: tuple[str, ...]) -> MarketInputs:
        """Read and check ``inputs``; a missing or invalid key is an ``LLMProviderError``."""
        for key in required:
            if inputs.get(key) is None:
                raise LLMProviderError(f"input '{key}' is missing", where=_WHERE, hint=_HINT)
        as_of = inputs["as_of"]
        if isinstance(as_of, datetime):
            as_of = as_of.isoformat()
        try:
            datetime.fromisoformat(str(as_of))
        except ValueError as exc:
            raise _bad("as_of", "an ISO 8601 time", as_of) from exc
        regime = str(inputs["regime"])
        if regime not in REGIMES:
            raise _bad("regime", " | ".join(REGIMES), regime)
        signal = inputs.get("signal")
        if signal is not None:
            value = _number(inputs, "signal")
            if value not in (-1.0, 0.0, 1.0):
                raise _bad("signal", "-1, 0 or +1", signal)
            signal = int(value)
        return cls(
            pair=str(inputs["pair"]),
            timeframe=str(inputs["timeframe"]),
            as_of=str(as_of),
            close=_number(inputs, "close", low=0.0, strict_low=True),
            trend=_number(inputs, "trend"),
            volatility=_number(inputs, "volatility", low=0.0),
            regime=regime,
            atr=_number(inputs, "atr", low=0.0),
            rsi=_number(inputs, "rsi", low=0.0, high=100.0),
            signal=signal,
            confidence=_optional(inputs, "confidence", low=0.0, high=1.0),
            stop_distance=_optional(inputs, "stop_distance", low=0.0),
            target_distance=_optional(inputs, "target_distance", low=0.0),
        )


def _bad(key: str, allowed: str, value: Any) -> LLMProviderError:
    return LLMProviderError(
        f"input '{key}' must be {allowed}, got {str(value)[:40]!r}", where=_WHERE, hint=_HINT
    )


def _number(
    inputs: Mapping[str, Any],
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    strict_low: bool = False,
) -> float:
    raw = inputs[key]
    allowed = "a finite number"
    if low is not None:
        allowed += f" {'>' if strict_low else '>='} {low:g}"
    if high is not None:
        allowed += f" and <= {high:g}"
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _bad(key, allowed, raw)
    value = float(raw)
    if (
        not math.isfinite(value)
        or (low is not None and (value < low or (strict_low and value == low)))
        or (high is not None and value > high)
    ):
        raise _bad(key, allowed, raw)
    return value


def _optional(inputs: Mapping[str, Any], key: str, **bounds: Any) -> float | None:
    return None if inputs.get(key) is None else _number(inputs, key, **bounds)


def _pct(x: float, signed: bool = False) -> str:
    return f"{x * 100:+.2f}%" if signed else f"{x * 100:.0f}%"


def _num(x: float) -> str:
    return f"{x:.8g}"


def _clip(reason: str) -> str:
    """A reason within the schema's 200 characters."""
    return reason if len(reason) <= 200 else reason[:199] + "…"


def _side(signal: int) -> str:
    return "long" if signal > 0 else "short"


def _trend_dir(trend: float) -> int:
    return 0 if abs(trend) < FLAT_TREND else (1 if trend > 0 else -1)


Risk = Literal["low", "medium", "high"]


def _risk(m: MarketInputs) -> Risk:
    if m.regime == "volatile" or m.volatility >= HIGH_VOLATILITY:
        return "high"
    return "medium" if m.volatility >= LOW_VOLATILITY else "low"


def _coherence(m: MarketInputs, side: int) -> float:
    """0.5 × trend agreement + 0.25 × regime fit + 0.25 × RSI room (each 0..1)."""
    direction = _trend_dir(m.trend)
    trend_part = 0.5 if direction == 0 else (1.0 if direction == side else 0.0)
    regime_part = {"trending": trend_part, "ranging": 0.5, "volatile": 0.25}[m.regime]
    rsi = m.rsi if side > 0 else 100.0 - m.rsi  # mirror for shorts
    rsi_part = 1.0 if rsi <= RSI_OVERBOUGHT else (0.5 if rsi <= RSI_EXTREME_HIGH else 0.0)
    return round(0.5 * trend_part + 0.25 * regime_part + 0.25 * rsi_part, 4)


def _tighten(distance: float | None, atr: float, atrs: float) -> float:
    if distance is None or distance <= 0 or atr <= 0 or distance <= atrs * atr:
        return 1.0
    return max(MIN_MULTIPLIER, round(atrs * atr / distance, 4))


def _veto(confidence: float, coherence: float, risk: Risk, reasons: list[str]) -> MarketAssessment:
    return MarketAssessment.model_validate(
        {
            "verdict": "veto",
            "confidence": confidence,
            "coherence": coherence,
            "risk": risk,
            "size_multiplier": 0.0,
            "stop_multiplier": 1.0,
            "take_profit_multiplier": 1.0,
            "reasons": [_clip(r) for r in reasons],
        }
    )


def assess(m: MarketInputs) -> MarketAssessment:
    """The rule-based verdict on the trade ``m.signal`` proposes (rules: module docstring).

    Args:
        m: inputs with ``signal`` and ``confidence`` set.

    Returns:
        A valid :class:`MarketAssessment`; reasons quote the numbers, most important first.
    """
    risk = _risk(m)
    risk_reason = f"risk {risk}: regime {m.regime}, annualised volatility {_pct(m.volatility)}"
    side = m.signal or 0
    if side == 0:
        return _veto(1.0, 0.0, risk, ["no trade proposed", risk_reason])
    name = _side(side)
    direction = _trend_dir(m.trend)
    coherence = _coherence(m, side)
    with_trend = {0: "with a flat trend", side: "with the trend"}.get(
        direction, "against the trend"
    )
    summary = (
        f"{m.pair} {m.timeframe} {name} {with_trend} ({_pct(m.trend, True)}) in a {m.regime}"
        f" regime, RSI {m.rsi:.1f}, coherence {coherence:.2f}"
    )
    rsi_against = m.rsi if side > 0 else 100.0 - m.rsi
    veto: str | None = None
    if direction == -side and abs(m.trend) >= STRONG_TREND:
        trend_name = "downtrend" if side > 0 else "uptrend"
        veto = (
            f"{name} against a strong {trend_name}: trend {_pct(m.trend, True)}"
            f" beyond ±{_pct(STRONG_TREND, True)[1:]}"
        )
    elif rsi_against > RSI_EXTREME_HIGH:
        if side > 0:
            state = f"> {RSI_EXTREME_HIGH:.0f} (overbought)"
        else:
            state = f"< {RSI_EXTREME_LOW:.0f} (oversold)"
        veto = f"{name} with RSI {m.rsi:.1f} {state}"
    if veto is not None:
        return _veto(RULE_VETO_CONFIDENCE, coherence, risk, [veto, summary, risk_reason])

    factors: list[tuple[float, str]] = []
    if m.regime == "volatile":
        factors.append((VOLATILE_FACTOR, "volatile regime"))
    elif m.volatility >= HIGH_VOLATILITY:
        text = f"annualised volatility {_pct(m.volatility)} >= {_pct(HIGH_VOLATILITY)}"
        factors.append((HIGH_VOLATILITY_FACTOR, text))
    confidence = m.confidence if m.confidence is not None else 0.0
    if confidence < MIN_CONFIDENCE:
        text = f"model confidence {confidence:.2f} < {MIN_CONFIDENCE:.2f}"
        factors.append((LOW_CONFIDENCE_FACTOR, text))
    if direction == -side:
        factors.append(
            (COUNTER_TREND_FACTOR, f"{name} against a weak trend ({_pct(m.trend, True)})")
        )
    if rsi_against > RSI_OVERBOUGHT:
        level = f"> {RSI_OVERBOUGHT:.0f}" if side > 0 else f"< {RSI_OVERSOLD:.0f}"
        factors.append((STRETCHED_RSI_FACTOR, f"RSI {m.rsi:.1f} {level} is stretched for a {name}"))
    size = 1.0
    for factor, _ in factors:
        size *= factor
    size = round(size, 4)

    reasons = [f"{text}: size ×{factor:g}" for factor, text in factors] + [summary]
    stop = _tighten(m.stop_distance, m.atr, STOP_ATR)
    if stop < 1.0:
        reasons.append(
            f"stop {_num(m.stop_distance or 0.0)} wider than {STOP_ATR:g}×ATR"
            f" ({_num(STOP_ATR * m.atr)}): stop ×{stop:g}"
        )
    target = _tighten(m.target_distance, m.atr, TARGET_ATR)
    if target < 1.0:
        reasons.append(
            f"target {_num(m.target_distance or 0.0)} beyond {TARGET_ATR:g}×ATR"
            f" ({_num(TARGET_ATR * m.atr)}): take-profit ×{target:g}"
        )
    reasons.append(risk_reason)
    return MarketAssessment(
        verdict="reduce" if size < 1.0 else "approve",
        confidence=round(0.5 + 0.5 * coherence, 4),
        coherence=coherence,
        risk=risk,
        size_multiplier=size,
        stop_multiplier=stop,
        take_profit_multiplier=target,
        reasons=[_clip(r) for r in reasons[:5]],
    )


def describe_market(m: MarketInputs) -> str:
    """A short deterministic narrative of the numbers (starts with :data:`TEXT_PREFIX`)."""
    direction = _trend_dir(m.trend)
    strength = "strong " if abs(m.trend) >= STRONG_TREND else ""
    trend = "flat" if direction == 0 else f"{strength}{'up' if direction > 0 else 'down'}"
    vol = (
        "high"
        if m.volatility >= HIGH_VOLATILITY
        else ("medium" if m.volatility >= LOW_VOLATILITY else "low")
    )
    if m.rsi > RSI_EXTREME_HIGH:
        rsi = "extremely overbought"
    elif m.rsi > RSI_OVERBOUGHT:
        rsi = "overbought"
    elif m.rsi < RSI_EXTREME_LOW:
        rsi = "extremely oversold"
    elif m.rsi < RSI_OVERSOLD:
        rsi = "oversold"
    else:
        rsi = "neutral"
    parts = [
        f"{m.pair} {m.timeframe} at {m.as_of}, close {_num(m.close)}.",
        f"Trend {trend}: fast EMA {_pct(m.trend, True)} against the slow EMA.",
        f"Volatility {_pct(m.volatility)} annualised ({vol}), regime {m.regime}.",
        f"RSI {m.rsi:.1f} ({rsi}).",
    ]
    if m.atr > 0:
        parts.append(
            f"ATR {_num(m.atr)}: a {STOP_ATR:g}×ATR stop sits at {_num(m.close - STOP_ATR * m.atr)}"
            f" for a long, {_num(m.close + STOP_ATR * m.atr)} for a short."
        )
    if m.signal is not None:
        proposal = "no trade" if m.signal == 0 else f"a {_side(m.signal)}"
        conf = f" (model confidence {m.confidence:.2f})" if m.confidence is not None else ""
        parts.append(f"The rules propose {proposal}{conf}.")
    parts.append("This reading applies fixed rules to the numbers; it is not a language model.")
    return TEXT_PREFIX + " ".join(parts)


_INTRODUCTION = TEXT_PREFIX + (
    "I am Morningstar's rule-based analyst, not a language model: no LLM is configured"
    " (llm.provider is offline), so I answer only from market numbers, by the fixed rules of"
    " docs/offline_analyst.md, and not from the text of a question. Give me numbers by naming a"
    ' market, e.g. `morningstar llm ask "..." --pair EUR/USD` (a stored pair).'
    " For a language model, set"
    " llm.provider to openai (with llm.api_key, or llm.base_url for an OpenAI-compatible"
    " server) or to ollama (with llm.model a pulled model)."
)


class OfflineProvider:
    """The rule-based analyst behind the :class:`~morningstar.llm.types.LLMProvider` port."""

    name: str = "offline"
    local: bool = True

    def complete(self, call: ProviderCall) -> ProviderReply:
        """Answer from ``call.request.inputs`` by the documented rules.

        Raises:
            LLMProviderError: an input is missing or invalid, or the schema is not one the
                rule-based analyst answers.
        """
        req = call.request
        title = (call.json_schema or {}).get("title")
        if req.schema is MarketAssessment or title == "MarketAssessment":
            verdict = assess(MarketInputs.parse(req.inputs, ASSESSMENT_INPUTS))
            text = json.dumps(verdict.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        elif req.schema is None and call.json_schema is None:
            market = req.inputs.get("market")
            if isinstance(market, Mapping):
                text = describe_market(MarketInputs.parse(market, MARKET_INPUTS))
            else:
                text = _INTRODUCTION
        else:
            schema = req.schema.__name__ if req.schema is not None else str(title or "a schema")
            raise LLMProviderError(
                f"the rule-based analyst cannot answer {schema}",
                where=_WHERE,
                hint="configure an LLM provider (llm.provider openai or ollama)",
            )
        log.debug("offline answer for %s (%d chars)", req.caller, len(text))
        return ProviderReply(
            text=text,
            usage=Usage(input_tokens=0, output_tokens=0),
            finish_reason="stop",
            model=OFFLINE_MODEL,
        )

    def close(self) -> None:
        """Nothing to release."""
