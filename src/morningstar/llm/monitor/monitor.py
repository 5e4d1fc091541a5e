"""The LLM monitor: every call the gateway makes is traced here.

The gateway calls :meth:`LLMMonitor.start` before a call, :meth:`~LLMMonitor.first_token` when a
stream yields its first token, and :meth:`~LLMMonitor.finish` once, whatever the outcome. The
monitor keeps the calls in flight (this process only), running aggregates per model and caller,
a ring of recent records, Prometheus metrics, stall alerts; it queues each record for the
``llm_calls`` table (shared by every process using the database) and optionally exports it as an
OpenTelemetry span. Thread-safe; :meth:`~LLMMonitor.finish` never raises and never blocks on I/O.

With a database, :meth:`~LLMMonitor.status` and :meth:`~LLMMonitor.aggregates` show the calls of
every process (the ``llm_calls`` table, read in the background and cached: see
:class:`~morningstar.llm.monitor.recorder.CachedRead`); without one, this process's calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from morningstar.llm.monitor.aggregates import DB_WINDOW, Aggregates, TableTotals, window_stats
from morningstar.llm.monitor.capture import CaptureMode
from morningstar.llm.monitor.metrics import MonitorMetrics
from morningstar.llm.monitor.otel import OtlpSpanExporter
from morningstar.llm.monitor.recorder import (
    CachedRead,
    CallRecorder,
    query_history,
    query_recent,
    query_totals,
)
from morningstar.llm.monitor.records import ActiveCall, CallRecord, CallTrace, StallAlert
from morningstar.llm.monitor.system import SystemProbe
from morningstar.llm.monitor.tracer import build_record, fallback_record, new_trace, snapshot
from morningstar.llm.types import Usage
from morningstar.store.models import LLM_CALL_STATUSES

if TYPE_CHECKING:
    from morningstar.config import Settings
    from morningstar.store.db import Database

__all__ = [
    "AGGREGATES_CACHE_S",
    "DB_FIRST_WAIT_S",
    "MIN_STALL_CALLS",
    "MIN_STALL_S",
    "STALL_CHECK_EVERY_S",
    "STATUS_CACHE_S",
    "LLMMonitor",
]

logger = logging.getLogger(__name__)

#: Completed calls a model needs before its calls can be flagged as stalled.
MIN_STALL_CALLS = 20
#: A call is never flagged as stalled before it has run this many seconds.
MIN_STALL_S = 1.0
#: Period of the background stall check, in seconds.
STALL_CHECK_EVERY_S = 1.0
#: Seconds the database totals of :meth:`LLMMonitor.status` are kept before a new read.
STATUS_CACHE_S = 1.0
#: Seconds the database aggregates of :meth:`LLMMonitor.aggregates` are kept before a new read.
AGGREGATES_CACHE_S = 2.0
#: Longest wait of the first status / aggregates for the first database read, in seconds.
DB_FIRST_WAIT_S = 2.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LLMMonitor:
    """Trace LLM calls: in flight, history, aggregates, metrics, stalls, database, OTLP.

    Args:
        db: where records are written (``llm_calls``); None keeps them in memory only.
        session_id: stored with each record (e.g. the orchestration session); never a label.
        capture: ``off`` (no prompt/response kept), ``truncated`` (first 2,000 characters) or
            ``full``; always redacted.
        stall_factor: a call is stalled past ``stall_factor`` × its model's p95 latency.
        queue_size: records waiting for the database at most; more are dropped and counted.
        history_size: records kept in memory (the history when there is no database).
        registry: the Prometheus registry; None = a new private one (see :attr:`registry`).
        otlp_endpoint: OTLP/HTTP collector URL; None = no span export.
        clock: monotonic clock in seconds (latency, elapsed, uptime).
        wall: wall clock returning aware UTC datetimes (``started_at``).
        on_alert: called with each :class:`StallAlert` (from the stall timer's thread).
        stall_check_every_s: period of the background stall check, started by the first
            :meth:`start`; None = no timer (call :meth:`check_stalls` yourself).
        db_wait_s: longest wait of the first :meth:`status` / :meth:`aggregates` for their
            first database read (later ones never wait: see :meth:`status`).

    Raises:
        ConfigError: ``otlp_endpoint`` is invalid or the OpenTelemetry sdk is not installed.
    """

    def __init__(
        self,
        *,
        db: Database | None = None,
        session_id: str | None = None,
        capture: CaptureMode = "truncated",
        stall_factor: float = 3.0,
        queue_size: int = 10_000,
        history_size: int = 1_000,
        registry: CollectorRegistry | None = None,
        otlp_endpoint: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
        on_alert: Callable[[StallAlert], None] | None = None,
        stall_check_every_s: float | None = STALL_CHECK_EVERY_S,
        db_wait_s: float = DB_FIRST_WAIT_S,
    ) -> None:
        if capture not in ("off", "truncated", "full"):
            raise ValueError(f"capture must be off, truncated or full, got {capture!r}")
        if stall_factor <= 0:
            raise ValueError(f"stall_factor must be > 0, got {stall_factor}")
        self.db = db
        self.session_id = session_id
        self.capture: CaptureMode = capture
        self.stall_factor = stall_factor
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._wall = wall
        self._on_alert = on_alert
        self._lock = threading.Lock()
        self._active: dict[str, CallTrace] = {}
        self._history: deque[CallRecord] = deque(maxlen=history_size)
        self._aggregates = Aggregates()
        self._metrics = MonitorMetrics(self.registry)
        self._system = SystemProbe(clock)
        self._t_start = clock()
        self._started_at = wall()
        self._stalls = 0
        self._closed = False
        self._stall_every = stall_check_every_s
        self._stall_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._exporter = OtlpSpanExporter(otlp_endpoint) if otlp_endpoint else None
        self._recorder = (
            CallRecorder(db, queue_size=queue_size, on_drop=self._metrics.dropped, clock=clock)
            if db is not None
            else None
        )
        self._db_totals: CachedRead[TableTotals] | None = None
        self._db_window: CachedRead[dict[str, Any]] | None = None
        if db is not None:
            self._db_totals = CachedRead(
                lambda: TableTotals.from_rows(query_totals(db)),
                ttl_s=STATUS_CACHE_S,
                clock=clock,
                what="call totals",
                first_wait_s=db_wait_s,
            )
            self._db_window = CachedRead(
                lambda: window_stats(query_recent(db, DB_WINDOW)),
                ttl_s=AGGREGATES_CACHE_S,
                clock=clock,
                what="call aggregates",
                first_wait_s=db_wait_s,
            )

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database | None, *, session_id: str | None = None
    ) -> LLMMonitor:
        """Build the monitor from ``settings.llm`` (capture, stall_factor, queue_size, OTLP).

        Also registers every secret of ``settings`` with the redaction filter.
        """
        from morningstar.config import iter_secrets
        from morningstar.logs import register_secrets

        register_secrets(iter_secrets(settings))
        llm = settings.llm
        return cls(
            db=db,
            session_id=session_id,
            capture=llm.capture,
            stall_factor=llm.stall_factor,
            queue_size=llm.queue_size,
            otlp_endpoint=llm.otlp_endpoint,
        )

    # -- tracing ----------------------------------------------------------------------------

    def start(
        self,
        *,
        provider: str,
        model: str,
        caller: str,
        prompt: str,
        template_id: str | None = None,
        template_version: int | None = None,
        streamed: bool = False,
        operation: str = "chat",
    ) -> CallTrace:
        """Register a call in flight and return its trace (hand it to :meth:`finish`)."""
        trace = new_trace(
            provider=provider,
            model=model,
            caller=caller,
            prompt=prompt,
            template_id=template_id,
            template_version=template_version,
            streamed=streamed,
            operation=operation,
            started_at=self._wall(),
            t0=self._clock(),
        )
        with self._lock:
            self._active[trace.id] = trace
        try:
            self._metrics.started(provider, model)
        except Exception:  # pragma: no cover - prometheus_client does not fail here
            logger.debug("active gauge not updated", exc_info=True)
        self._ensure_stall_timer()
        return trace

    def first_token(self, trace: CallTrace) -> None:
        """Record the time to first token of ``trace`` (only the first call counts)."""
        now = self._clock()
        with self._lock:
            if trace.ttft_s is None:
                trace.ttft_s = max(0.0, now - trace.t0)

    def finish(
        self,
        trace: CallTrace,
        *,
        status: str,
        usage: Usage,
        cost_usd: float | None,
        price_status: str,
        cache_hit: bool = False,
        response: str | None = None,
        error: BaseException | None = None,
        cache_key: str | None = None,
    ) -> CallRecord:
        """Close ``trace``: aggregates, Prometheus, history, database queue, OTLP span.

        Never raises and never blocks: a failure of any of these is logged and the others still
        happen; a full database queue drops the record (counted in :attr:`dropped`).

        Args:
            trace: what :meth:`start` returned.
            status: one of ``LLM_CALL_STATUSES`` (an unknown status is recorded as the error's
                ``status``, or ``provider_error``, with a warning).
            usage: tokens as reported (absent counts stay None).
            cost_usd: the call's cost; None = price unknown.
            price_status: ``priced``, ``free`` or ``unknown``.
            cache_hit: answered from the replay cache.
            response: the answer text (captured per ``capture``, redacted).
            error: the exception of a failed call (its class name is ``error_type``).
            cache_key: the replay-cache key of the request.

        Returns:
            The call's record. Finishing a trace twice returns a record but counts it once.
        """
        now = self._clock()
        try:
            record = build_record(
                trace,
                now=now,
                session_id=self.session_id,
                capture=self.capture,
                status=status,
                usage=usage,
                cost_usd=cost_usd,
                price_status=price_status,
                cache_hit=cache_hit,
                response=response,
                error=error,
                cache_key=cache_key,
            )
        except Exception:
            logger.exception("LLM monitor: bad arguments to finish() for call %s", trace.id)
            record = fallback_record(trace, now=now, session_id=self.session_id)
        with self._lock:
            repeated = trace._finished
            trace._finished = True
            self._active.pop(trace.id, None)
            if not repeated:
                self._safely(self._aggregates.add, record)
                self._history.append(record)
        if repeated:
            logger.warning("LLM call %s finished twice; counted once", trace.id)
            return record
        self._safely(self._metrics.finished, record)
        if self._recorder is not None:
            self._safely(self._recorder.submit, record)
        if self._exporter is not None:
            self._safely(self._exporter.export, record)
        return record

    @staticmethod
    def _safely(step: Callable[[CallRecord], object], record: CallRecord) -> None:
        try:
            step(record)
        except Exception:
            logger.exception("LLM monitor: recording call %s failed in %r", record.id, step)

    # -- reading ----------------------------------------------------------------------------

    def active(self) -> list[ActiveCall]:
        """The calls in flight in this process, oldest first (elapsed on the monotonic clock)."""
        now = self._clock()
        with self._lock:
            return [snapshot(t, now) for t in self._active.values()]

    def history(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        model: str | None = None,
        caller: str | None = None,
        status: str | None = None,
        call_id: str | None = None,
        include_text: bool = True,
    ) -> list[CallRecord]:
        """Finished calls, newest first (by ``started_at``, then id).

        From the database when there is one (calls of every process; records still queued are
        not there yet, see :meth:`flush`), else from the in-memory ring of ``history_size``.
        ``call_id`` picks one call; ``include_text=False`` leaves the captured prompt and
        response out (None).

        Raises:
            ValueError: ``limit`` < 1 or ``offset`` < 0.
            StorageError: the database cannot be read.
        """
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be >= 1 and offset >= 0, got {limit} and {offset}")
        if self.db is not None:
            return query_history(
                self.db, limit=limit, offset=offset, model=model, caller=caller, status=status,
                call_id=call_id, include_text=include_text,
            )  # fmt: skip
        with self._lock:
            records = list(self._history)
        kept = [
            r
            for r in records
            if (model is None or r.model == model)
            and (caller is None or r.caller == caller)
            and (status is None or r.status == status)
            and (call_id is None or r.id == call_id)
        ]
        kept.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        page = kept[offset : offset + limit]
        if include_text:
            return page
        return [r.without_text() for r in page]

    def aggregates(self) -> dict[str, Any]:
        """Per-model and per-caller stats of the finished calls.

        With a database: over the :data:`~morningstar.llm.monitor.aggregates.DB_WINDOW`
        (10,000) newest calls of ``llm_calls`` (by ``started_at``), every process's, read in the
        background and kept :data:`AGGREGATES_CACHE_S` seconds (records still queued in a
        process are not in the table yet); on a database error, this process's figures.
        Without one: every call this process finished (percentiles over the last 10,000 of each
        key).

        Returns:
            ``{"by_model": {model: stats}, "by_caller": {caller: stats}, "source", "window"}``;
            stats: ``count``, ``ok``, ``failed``, ``success_rate``, ``avg_latency_s``,
            ``p50_latency_s``, ``p95_latency_s``, ``input_tokens``, ``output_tokens``,
            ``calls_usage_absent``, ``cost_usd`` (known prices only), ``calls_price_unknown``,
            ``cache_hits``; ``source`` is ``database`` or ``process``; ``window`` the most
            recent calls the stats cover (``DB_WINDOW``), None for ``process`` (all of them).
        """
        window = self._db_window.get() if self._db_window is not None else None
        if window is not None:
            return {**window, "source": "database", "window": DB_WINDOW}
        with self._lock:
            stats = self._aggregates.to_dict()
        return {**stats, "source": "process", "window": None}

    def status(self) -> dict[str, Any]:
        """The monitor's status (``get_monitor_status()``).

        The call counts (``total_requests``, ``successful_requests``, ``failed_requests``,
        ``avg_response_time``, ``cost_usd``, ``by_status``) are, with a database, those of the
        whole ``llm_calls`` table (every process: CLI, workers, agents), from one aggregate
        query run in the background and kept :data:`STATUS_CACHE_S` seconds, so this call
        never waits for the database (but the first, at most ``db_wait_s``); records still
        queued in a process (``queue_depth`` here) are not in the table yet. On a database
        error, or without a database, they are this process's (``source`` says which). The
        rest is always this process's, from memory.

        Returns:
            ``uptime`` (seconds since the monitor started), ``started_at``, ``total_requests``,
            ``successful_requests``, ``failed_requests``, ``avg_response_time`` (mean latency
            of finished calls in seconds, 0.0 before the first), ``active_requests``,
            ``stalled_requests`` (in flight and stalled), ``stalls_total``,
            ``dropped_records``, ``queue_depth``, ``cost_usd``, ``by_status`` (count per
            status), ``source`` (``database`` or ``process``: where the call counts come
            from), ``session_id`` and ``system`` (``cpu_percent``, ``memory_percent``,
            ``process_rss_mb``, ``uptime`` of the process).
        """
        table = self._db_totals.get() if self._db_totals is not None else None
        with self._lock:
            if table is None:
                total = self._aggregates.total
                counts = self._aggregates.by_status
                count, ok, latency_sum, cost = (
                    total.count, total.ok, total.latency_sum, total.cost_usd
                )  # fmt: skip
            else:
                counts = table.by_status
                count, ok, latency_sum, cost = (
                    table.count, table.ok, table.latency_sum, table.cost_usd
                )  # fmt: skip
            by_status = {s: counts.get(s, 0) for s in LLM_CALL_STATUSES}
            active = len(self._active)
            stalled = sum(1 for t in self._active.values() if t._stalled)
            stalls = self._stalls
        return {
            "uptime": max(0.0, self._clock() - self._t_start),
            "started_at": self._started_at.isoformat(),
            "total_requests": count,
            "successful_requests": ok,
            "failed_requests": count - ok,
            "avg_response_time": latency_sum / count if count else 0.0,
            "active_requests": active,
            "stalled_requests": stalled,
            "stalls_total": stalls,
            "dropped_records": self.dropped,
            "queue_depth": self._recorder.depth if self._recorder is not None else 0,
            "cost_usd": cost,
            "by_status": by_status,
            "source": "process" if table is None else "database",
            "session_id": self.session_id,
            "system": self._system.read(),
        }

    def wait_db_reads(self, timeout_s: float = 5.0) -> bool:
        """Wait for the background database reads of status / aggregates in progress.

        Returns:
            True when none is left running (always True without a database).
        """
        done = True
        for cached in (self._db_totals, self._db_window):
            if cached is not None:
                done = cached.wait(timeout_s) and done
        return done

    @property
    def dropped(self) -> int:
        """Records not written to the database (queue full or database error)."""
        return self._recorder.dropped if self._recorder is not None else 0

    # -- stalls -----------------------------------------------------------------------------

    def check_stalls(self) -> list[StallAlert]:
        """Flag the calls in flight past ``stall_factor`` × their model's p95 latency.

        A model's calls are checked once it has 20 completed calls that reached the provider;
        the threshold is never below 1 s. Each call alerts once: a WARNING log, the
        ``on_alert`` callback, ``morningstar_llm_stalls_total``; :meth:`active` and
        :meth:`status` show it.

        Returns:
            The new alerts.
        """
        now = self._clock()
        alerts: list[StallAlert] = []
        with self._lock:
            for trace in self._active.values():
                if trace._stalled:
                    continue
                p95 = self._aggregates.stall_baseline(trace.model, MIN_STALL_CALLS)
                if p95 is None:
                    continue
                threshold = max(self.stall_factor * p95, MIN_STALL_S)
                elapsed = now - trace.t0
                if elapsed > threshold:
                    trace._stalled = True
                    self._stalls += 1
                    alerts.append(
                        StallAlert(
                            call_id=trace.id,
                            provider=trace.provider,
                            model=trace.model,
                            caller=trace.caller,
                            started_at=trace.started_at,
                            elapsed_s=elapsed,
                            p95_s=p95,
                            threshold_s=threshold,
                        )
                    )
        for alert in alerts:
            logger.warning(
                "LLM call %s to %s/%s for %s stalled: running %.1f s, over %.1f s "
                "(%.1f x p95 %.2f s)",
                alert.call_id,
                alert.provider,
                alert.model,
                alert.caller,
                alert.elapsed_s,
                alert.threshold_s,
                self.stall_factor,
                alert.p95_s,
            )
            self._metrics.stalled()
            if self._on_alert is not None:
                try:
                    self._on_alert(alert)
                except Exception:
                    logger.exception("stall alert callback failed for call %s", alert.call_id)
        return alerts

    def _ensure_stall_timer(self) -> None:
        if self._stall_every is None or self._stall_thread is not None:
            return
        with self._lock:
            if self._stall_thread is not None or self._closed:
                return
            self._stall_thread = threading.Thread(
                target=self._stall_loop, name="morningstar-llm-stalls", daemon=True
            )
        self._stall_thread.start()

    def _stall_loop(self) -> None:
        every = self._stall_every or STALL_CHECK_EVERY_S
        while not self._stop.wait(every):
            try:
                self.check_stalls()
            except Exception:  # pragma: no cover - check_stalls guards its callbacks
                logger.exception("stall check failed")

    # -- lifecycle --------------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until queued records are written and spans exported; True if done in time."""
        done = True
        if self._recorder is not None:
            done = self._recorder.flush(timeout_s)
        if self._exporter is not None:
            done = self._exporter.force_flush(timeout_s) and done
        return done

    def close(self) -> None:
        """Stop the stall timer, write the queued records, flush and stop the span export."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._stall_thread
        self._stop.set()
        if thread is not None:
            thread.join(5.0)
        self.wait_db_reads(5.0)
        if self._recorder is not None:
            self._recorder.close()
        if self._exporter is not None:
            self._exporter.shutdown()

    def __enter__(self) -> LLMMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
