"""The LLM gateway: the one path every LLM call in Morningstar takes.

One :meth:`Gateway.call` does, in order:

1. resolve the model and pick the strongest structured-output mode it supports
   (:mod:`morningstar.llm.capabilities`); for modes without schema-constrained decoding the
   schema is described in the system message;
2. compute the replay-cache key (template id and version, provider, model, messages, schema,
   temperature, seed) and answer from the cache when it holds the request (``record`` and
   ``replay`` modes); in ``replay`` mode a miss is an :class:`~morningstar.errors.LLMCacheMiss`;
3. check the session and caller budgets (:class:`~morningstar.errors.LLMBudgetExceeded`: nothing
   is spent);
4. wait for a concurrency slot, then call the provider, retrying only temporary errors
   (timeouts, 429, 5xx, broken connections) with exponential backoff and full jitter;
5. validate a structured answer against its pydantic schema
   (:class:`~morningstar.errors.LLMInvalidOutput` carries the raw text);
6. price the call (unknown prices stay unknown, never 0), charge the budgets, record the answer
   in the cache, and finish the monitor's trace.

Every call, whatever its outcome, is traced by :class:`~morningstar.llm.monitor.LLMMonitor`:
visible among the active requests while it runs, then in the history with its status. The
gateway returns an :class:`~morningstar.llm.types.LLMResult` or raises one of the ``LLM*`` errors
of :mod:`morningstar.errors`; it never returns schema defaults in place of an answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from morningstar.config import Settings
from morningstar.errors import LLMError, LLMInvalidOutput, LLMProviderError
from morningstar.llm.budget import BudgetBook
from morningstar.llm.cache import CachedAnswer, ReplayCache, cache_key
from morningstar.llm.capabilities import capabilities_for, pick_mode
from morningstar.llm.monitor import CallTrace, LLMMonitor, redact_text
from morningstar.llm.pricing import PriceTable
from morningstar.llm.providers import make_provider
from morningstar.llm.structured import json_schema_for, parse_answer, schema_instructions
from morningstar.llm.types import (
    LLMProvider,
    LLMRequest,
    LLMResult,
    Message,
    OutputMode,
    ProviderCall,
    ProviderReply,
    Usage,
)
from morningstar.retry import RetryPolicy, retry_call
from morningstar.store.db import Database

__all__ = ["Gateway"]

log = logging.getLogger(__name__)

#: Modes where the provider does not constrain decoding to the schema: describe it in the prompt.
_DESCRIBED_MODES = (OutputMode.JSON_OBJECT, OutputMode.PROMPT)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Gateway:
    """Budgeted, cached, retried and traced LLM calls through one provider.

    Args:
        provider: the provider port (OpenAI-compatible, Ollama or the offline analyst).
        model: the default model (a request may name another).
        monitor: traces every call.
        cache: the replay cache (its mode: record, replay or off).
        budgets: session and per-caller budgets.
        prices: the price table.
        retry: the retry policy for temporary errors.
        timeout_s: the default timeout of one attempt, in seconds.
        max_concurrency: calls in flight at once; more wait for a slot.
        seed: the sampling seed used when a request gives none.
        output_mode: force this mode for structured requests (None: the model's capabilities
            decide; ``llm.output_mode`` for a server the capability table does not know).
        wall: the wall clock (aware UTC), for prices in force at call time.
    """

    def __init__(
        self,
        provider: LLMProvider,
        *,
        model: str,
        monitor: LLMMonitor,
        cache: ReplayCache,
        budgets: BudgetBook,
        prices: PriceTable,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        max_concurrency: int = 4,
        seed: int | None = 0,
        output_mode: OutputMode | None = None,
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.provider = provider
        self.model = model
        self.monitor = monitor
        self.cache = cache
        self.budgets = budgets
        self.prices = prices
        self.retry = retry or RetryPolicy(max_attempts=4, base_delay_s=0.5, max_delay_s=20.0)
        self.timeout_s = timeout_s
        self.seed = seed
        self.output_mode = output_mode
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}
        self._modes: dict[tuple[str, bool], OutputMode] = {}
        self._wall = wall

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        db: Database | None = None,
        monitor: LLMMonitor | None = None,
        provider: LLMProvider | None = None,
    ) -> Gateway:
        """A gateway wired from ``settings.llm`` (provider, limits, cache, budgets, tracing).

        Args:
            settings: the loaded settings.
            db: the database for the replay cache and the call history (None: in memory).
            monitor: an existing monitor to share (the API server's); None builds one.
            provider: a provider to use instead of the configured one (tests, embedding).
        """
        llm = settings.llm
        return cls(
            provider or make_provider(llm),
            model=llm.model,
            monitor=monitor or LLMMonitor.from_settings(settings, db),
            cache=ReplayCache(db, llm.cache_mode),
            budgets=BudgetBook(llm.budget, llm.agent_budgets),
            prices=PriceTable.load(),
            retry=RetryPolicy(max_attempts=llm.max_retries + 1, base_delay_s=0.5, max_delay_s=20.0),
            timeout_s=llm.timeout_s,
            max_concurrency=llm.max_concurrency,
            seed=llm.seed,
            output_mode=None if llm.output_mode == "auto" else OutputMode(llm.output_mode),
        )

    # ------------------------------------------------------------------ the call
    def call(self, request: LLMRequest) -> LLMResult:
        """Make one LLM call (see the module docstring for the steps).

        Returns:
            The validated answer (``value`` for schema requests), with usage and cost.

        Raises:
            LLMCacheMiss: replay mode and the request was never recorded.
            LLMBudgetExceeded: a budget is spent (no call made).
            LLMTimeoutError, LLMRateLimitedError, LLMTransportError: after the retries.
            LLMProviderError: the provider refused the request.
            LLMInvalidOutput: the answer does not validate, or was truncated.
        """
        model = request.model or self.model
        provider = self.provider.name
        if request.schema is not None and self.output_mode is not None:
            mode = self.output_mode
        else:
            mode = self._mode(model, request.schema is not None)
        json_schema = self._json_schema(request.schema)
        messages = self._messages(request, mode)
        seed = request.seed if request.seed is not None else self.seed
        key = (
            None  # no cache: no key to compute
            if self.cache.mode == "off"
            else cache_key(
                template_id=request.template_id,
                template_version=request.template_version,
                provider=provider,
                model=model,
                messages=messages,
                json_schema=json_schema,
                temperature=request.temperature,
                seed=seed,
            )
        )
        sent = request.resolved(messages, model, seed)
        where = f"{provider} {model} ({request.caller}, {request.template_id})"
        trace = self.monitor.start(
            provider=provider,
            model=model,
            caller=request.caller,
            prompt=sent.prompt_text(),
            template_id=request.template_id,
            template_version=request.template_version,
            streamed=request.stream,
        )
        try:
            return self._traced(trace, sent, mode, json_schema, key, where)
        except BaseException as exc:  # every outcome finishes the trace exactly once
            if not trace.finished:
                status = "cancelled" if not isinstance(exc, Exception) else None
                self._fail(trace, exc, Usage(), status=status)
            raise

    def _traced(
        self,
        trace: CallTrace,
        request: LLMRequest,
        mode: OutputMode,
        json_schema: dict[str, Any] | None,
        key: str | None,
        where: str,
    ) -> LLMResult:
        """The call once traced: cache, budget, then the provider (``key``: None = no cache)."""
        if key is not None:
            cached = self.cache.lookup(key)
            if cached is not None:
                return self._from_cache(trace, request, cached, where)
            if self.cache.mode == "replay":
                raise self.cache.miss(key, where)
        model = request.model or self.model
        price = self.prices.price(self.provider.name, model, self._wall())
        price_known = self.provider.local or price is not None
        self.budgets.check(request.caller, price_known=price_known, model=model)
        return self._live(trace, request, mode, json_schema, key, where)

    def _mode(self, model: str, structured: bool) -> OutputMode:
        """The output mode the capability table picks for ``model`` (looked up once)."""
        known = self._modes.get((model, structured))
        if known is None:
            caps = capabilities_for(self.provider.name, model)
            known = self._modes[(model, structured)] = pick_mode(caps, structured)
        return known

    def _json_schema(self, schema: type[BaseModel] | None) -> dict[str, Any] | None:
        """The strict JSON schema of ``schema``, built once per class (never mutated after)."""
        if schema is None:
            return None
        known = self._schemas.get(schema)
        if known is None:
            known = self._schemas[schema] = json_schema_for(schema)
        return known

    def _messages(self, request: LLMRequest, mode: OutputMode) -> tuple[Message, ...]:
        """The request's messages, with the schema described when the mode needs it."""
        if request.schema is None or mode not in _DESCRIBED_MODES:
            return request.messages
        text = schema_instructions(request.schema)
        first = request.messages[0] if request.messages else None
        if first is not None and first.role == "system":
            joined = Message("system", f"{first.content}\n\n{text}")
            return (joined, *request.messages[1:])
        return (Message("system", text), *request.messages)

    def _from_cache(
        self, trace: CallTrace, request: LLMRequest, cached: CachedAnswer, where: str
    ) -> LLMResult:
        """The recorded answer, as the recorded call returned it (a hit costs nothing)."""
        finish = cached.request.get("finish_reason", "stop")
        value = (
            parse_answer(cached.raw_text, request.schema, finish_reason=finish, where=where)
            if request.schema is not None
            else None
        )
        record = self.monitor.finish(
            trace,
            status="ok",
            usage=cached.usage,
            cost_usd=0.0,
            price_status="cached",
            cache_hit=True,
            response=cached.raw_text,
            cache_key=cached.key,
        )
        return LLMResult(
            value=value,
            text=cached.raw_text,
            usage=cached.usage,
            cost_usd=0.0,
            provider=cached.provider,
            model=str(cached.request.get("reply_model") or cached.model),
            call_id=trace.id,
            cache_hit=True,
            retries=0,
            latency_s=record.latency_s,
            rule_based=cached.provider == "offline",
            finish_reason=finish,
        )

    def _live(
        self,
        trace: CallTrace,
        request: LLMRequest,
        mode: OutputMode,
        json_schema: dict[str, Any] | None,
        key: str | None,
        where: str,
    ) -> LLMResult:
        """Call the provider (retried), validate, price, charge, record and finish the trace."""
        partial: list[Usage] = []

        def first_token() -> None:
            self.monitor.first_token(trace)

        def attempt() -> ProviderReply:
            call = ProviderCall(
                request=request,
                model=request.model or self.model,
                mode=mode,
                json_schema=json_schema,
                timeout_s=request.timeout_s or self.timeout_s,
                on_first_token=first_token if request.stream else None,
                on_partial_usage=partial.append,
            )
            with self._slots:  # held per attempt: a backoff sleep frees the slot
                return self.provider.complete(call)

        def on_retry(attempt_no: int, exc: Exception, wait_s: float) -> None:
            trace.retries = attempt_no
            log.info("LLM %s: retry %d in %.2fs after %s", where, attempt_no, wait_s, exc)

        started = time.monotonic()
        try:
            reply = retry_call(attempt, self.retry, what=f"LLM {where}", on_retry=on_retry)
        except LLMError as exc:
            self._fail(trace, exc, _sum_usage(partial), request)
            raise
        except Exception as exc:  # a provider bug: traced, then raised as the typed error
            error = LLMProviderError(
                f"the provider failed unexpectedly: {type(exc).__name__}: {exc}", where=where
            )
            self._fail(trace, error, _sum_usage(partial), request)
            raise error from exc
        except BaseException as exc:  # cancelled (Ctrl-C, a worker shutting down): traced
            self._fail(trace, exc, _sum_usage(partial), request, status="cancelled")
            raise
        # attempts cut short before the one that answered were billed too
        spent = _sum_usage([*partial, reply.usage]) if partial else reply.usage
        value: BaseModel | None = None
        try:
            if request.schema is not None:
                value = parse_answer(
                    reply.text, request.schema, finish_reason=reply.finish_reason, where=where
                )
        except LLMInvalidOutput as exc:
            self._fail(trace, exc, spent, request, response=reply.text)
            raise
        cost, price_status = self._charge(request, spent, reply.text)
        if key is not None and self.cache.mode == "record":
            self._record(request, json_schema, key, reply, value, time.monotonic() - started)
        record = self.monitor.finish(
            trace,
            status="ok",
            usage=spent,
            cost_usd=cost,
            price_status=price_status,
            response=reply.text,
            cache_key=key,
        )
        return LLMResult(
            value=value,
            text=reply.text,
            usage=spent,
            cost_usd=cost,
            provider=self.provider.name,
            model=reply.model or (request.model or self.model),
            call_id=trace.id,
            cache_hit=False,
            retries=trace.retries,
            latency_s=record.latency_s,
            rule_based=self.provider.name == "offline",
            finish_reason=reply.finish_reason,
        )

    def _record(
        self,
        request: LLMRequest,
        json_schema: dict[str, Any] | None,
        key: str,
        reply: ProviderReply,
        value: BaseModel | None,
        latency_s: float,
    ) -> None:
        """Store the answer in the replay cache, unless it carries a secret-looking value.

        The cache keeps the prompt and the answer verbatim (a replay must be byte-identical),
        so a request or answer holding a key, token or account number is not recorded: it
        would put the secret in the database. A storage failure is logged; the answer the
        caller paid for is still returned.
        """
        prompt = request.prompt_text()
        if redact_text(prompt) != prompt or redact_text(reply.text) != reply.text:
            log.warning(
                "LLM call %s not recorded in the replay cache: its prompt or answer holds a "
                "secret-looking value (key, token or account number)",
                key[:12],
            )
            return
        answer = CachedAnswer(
            key=key,
            template_id=request.template_id,
            template_version=request.template_version,
            provider=self.provider.name,
            model=request.model or self.model,  # the model of the key
            request={
                "messages": [m.to_dict() for m in request.messages],
                "schema": json_schema,
                "temperature": request.temperature,
                "seed": request.seed,
                "reply_model": reply.model,  # the name the provider reported
                "finish_reason": reply.finish_reason,
            },
            raw_text=reply.text,
            parsed=value.model_dump(mode="json") if value is not None else None,
            usage=reply.usage,
            latency_s=latency_s,
            created_at=self._wall(),
        )
        try:
            self.cache.store(answer)
        except Exception as exc:  # the call succeeded: never lose its answer to the cache
            log.error("LLM call %s: recording it in the replay cache failed: %s", key[:12], exc)

    def _charge(self, request: LLMRequest, usage: Usage, answer: str) -> tuple[float | None, str]:
        """Price the call and charge the budgets; returns (cost_usd, price_status).

        Without reported usage the cost stays unknown (None) in the record, but the budgets
        are charged an estimate (4 characters a token, at the model's price), so a USD budget
        still stops a provider that never reports usage.
        """
        model = request.model or self.model
        now = self._wall()
        cost, price_status = self.prices.cost(
            self.provider.name, model, usage, now, local=self.provider.local
        )
        if usage.reported:
            self.budgets.charge(request.caller, usage, cost)
            return cost, price_status
        guess = Usage(len(request.prompt_text()) // 4, len(answer) // 4)
        estimated, _status = self.prices.cost(
            self.provider.name, model, guess, now, local=self.provider.local
        )
        self.budgets.charge(request.caller, usage, estimated, estimated_tokens=guess.total_tokens)
        return cost, price_status

    def _fail(
        self,
        trace: CallTrace,
        exc: BaseException,
        usage: Usage,
        request: LLMRequest | None = None,
        *,
        response: str | None = None,
        status: str | None = None,
    ) -> None:
        """Finish the trace of a failed (or cancelled) call; tokens spent are still charged."""
        cost: float | None = None
        price_status = "unknown"
        if request is not None and (usage.reported or response is not None):
            cost, price_status = self._charge(request, usage, response or "")
        self.monitor.finish(
            trace,
            status=status or (exc.status if isinstance(exc, LLMError) else "provider_error"),
            usage=usage,
            cost_usd=cost,
            price_status=price_status,
            response=response,
            error=exc,
        )

    def close(self) -> None:
        """Close the provider and flush the monitor."""
        self.provider.close()
        self.monitor.close()


def _sum_usage(parts: list[Usage]) -> Usage:
    """The usage of the attempts cut short (absent when none reported any)."""
    if not parts:
        return Usage()
    out_tokens = [u.output_tokens for u in parts if u.output_tokens is not None]
    in_tokens = [u.input_tokens for u in parts if u.input_tokens is not None]
    return Usage(
        input_tokens=sum(in_tokens) if in_tokens else None,
        output_tokens=sum(out_tokens) if out_tokens else None,
    )
