"""Building traces, snapshots and records (pure functions over the monitor's clocks).

The monitor keeps the state and the locks; these functions turn a call's inputs into a
:class:`~morningstar.llm.monitor.records.CallTrace` at start, an
:class:`~morningstar.llm.monitor.records.ActiveCall` snapshot while it runs, and a
:class:`~morningstar.llm.monitor.records.CallRecord` when it ends, redacting every text on the
way (see :mod:`morningstar.llm.monitor.capture`): the prompt excerpt and the captured texts
are redacted on first read (:class:`~morningstar.llm.monitor.records.RecordTexts`), the error
message at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import uuid
from datetime import datetime, timedelta

from morningstar.errors import LLMError
from morningstar.llm.monitor.capture import CaptureMode, error_message
from morningstar.llm.monitor.records import ActiveCall, CallRecord, CallTrace, RecordTexts
from morningstar.llm.types import Usage
from morningstar.store.models import LLM_CALL_STATUSES

__all__ = ["build_record", "fallback_record", "new_trace", "snapshot"]

logger = logging.getLogger(__name__)


_ids = itertools.count()
_id_lock = threading.Lock()
_prefix: tuple[int, str] = (-1, "")


def new_call_id() -> str:
    """A 32-hex-character call id: a random 80-bit prefix per process, then a counter.

    Unique across processes like a uuid4 (the prefix is drawn again after a fork), without a
    system call per call (``os.urandom`` releases the GIL, which costs the caller a wait
    behind any busy thread).
    """
    global _prefix
    pid = os.getpid()
    if _prefix[0] != pid:
        with _id_lock:
            if _prefix[0] != pid:
                _prefix = (pid, uuid.uuid4().hex[:20])
    return f"{_prefix[1]}{next(_ids) & 0xFFFFFFFFFFFF:012x}"


def new_trace(
    *,
    provider: str,
    model: str,
    caller: str,
    prompt: str,
    template_id: str | None,
    template_version: int | None,
    streamed: bool,
    operation: str,
    started_at: datetime,
    t0: float,
) -> CallTrace:
    """A new trace with a fresh id, holding the prompt (redacted when shown or recorded)."""
    return CallTrace(
        id=new_call_id(),
        provider=provider,
        model=model,
        caller=caller,
        operation=operation,
        template_id=template_id,
        template_version=template_version,
        streamed=streamed,
        started_at=started_at,
        t0=t0,
        _prompt=prompt,
    )


def snapshot(trace: CallTrace, now: float) -> ActiveCall:
    """The public view of a call in flight at monotonic time ``now``."""
    return ActiveCall(
        id=trace.id,
        provider=trace.provider,
        model=trace.model,
        caller=trace.caller,
        operation=trace.operation,
        template_id=trace.template_id,
        prompt_excerpt=trace.prompt_excerpt,
        started_at=trace.started_at,
        elapsed_s=max(0.0, now - trace.t0),
        streamed=trace.streamed,
        retries=trace.retries,
        ttft_s=trace.ttft_s,
        stalled=trace.stalled,
    )


def _status(trace: CallTrace, status: str, error: BaseException | None) -> str:
    if status in LLM_CALL_STATUSES:
        return status
    fixed = error.status if isinstance(error, LLMError) else "provider_error"
    logger.warning("LLM call %s: unknown status %r recorded as %s", trace.id, status, fixed)
    return fixed


def _error_message(error: BaseException) -> str:
    try:
        return error_message(error)
    except Exception:  # a broken __str__
        return type(error).__name__


def build_record(
    trace: CallTrace,
    *,
    now: float,
    session_id: str | None,
    capture: CaptureMode,
    status: str,
    usage: Usage,
    cost_usd: float | None,
    price_status: str,
    cache_hit: bool,
    response: str | None,
    error: BaseException | None,
    cache_key: str | None,
) -> CallRecord:
    """The record of ``trace`` finishing at monotonic time ``now``.

    ``latency_s`` is ``now - trace.t0``; ``finished_at`` is ``started_at + latency_s`` (so both
    times come from one clock reading). An unknown ``status`` becomes the error's ``status`` (or
    ``provider_error``), with a warning.
    """
    latency = max(0.0, now - trace.t0)
    return CallRecord(
        id=trace.id,
        session_id=session_id,
        provider=trace.provider,
        model=trace.model,
        caller=trace.caller,
        operation=trace.operation,
        template_id=trace.template_id,
        template_version=trace.template_version,
        status=_status(trace, status, error),
        error_type=type(error).__name__ if error is not None else None,
        error_message=_error_message(error) if error is not None else None,
        started_at=trace.started_at,
        finished_at=trace.started_at + timedelta(seconds=latency),
        latency_s=latency,
        ttft_s=trace.ttft_s,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cost_usd=cost_usd,
        price_status=price_status,
        cache_hit=bool(cache_hit),
        retries=trace.retries,
        streamed=trace.streamed,
        cache_key=cache_key,
        texts=RecordTexts(trace._prompt, response, capture),
    )


def fallback_record(trace: CallTrace, *, now: float, session_id: str | None) -> CallRecord:
    """A minimal record when :func:`build_record` failed on bad arguments (usage absent, price
    unknown, status ``provider_error``): the call is still counted and freed."""
    return build_record(
        trace,
        now=now,
        session_id=session_id,
        capture="off",
        status="provider_error",
        usage=Usage(),
        cost_usd=None,
        price_status="unknown",
        cache_hit=False,
        response=None,
        error=None,
        cache_key=None,
    )
