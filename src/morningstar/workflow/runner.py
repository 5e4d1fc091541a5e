"""The trading cycle, per pair and per closed bar, for every mode (architecture steps a–g).

:class:`TradingWorkflow` runs the same code in backtest and paper modes; only the parts it is
given differ (the feed, the broker, how predictions are obtained). The feed delivers one time
step at a time (the closed bars of every pair at one open time); its cycles run in two phases:
step a's fills and marks for every pair first, then b–f pair by pair, so each decision sees the
whole account at this bar's closes. Per closed bar of a pair:

a. **fetch**: the feed delivers the bar (historical replay, or ccxt polling of closed bars);
   the broker fills the pair's open orders against it (market orders at its open, protective
   stops and targets inside its range); the ledger books the fills and marks the close.
b/c. **features + predict**: the predictor's answer for the bar — a row of the predictions
   computed once for the whole series in a backtest (every row is point in time), the
   predictor run on the recent bars in paper mode.
d. **supervise**: when the rules propose a change (an entry, and a stop adjustment when
   configured), the LLM supervisor is asked through the gateway; a failure takes the abstain
   path, recorded with its reason.
e. **decide**: rules → supervision (can only reduce risk) → the risk engine (last word).
f. **execute**: orders with deterministic client ids go to the broker: an entry with its
   protective stop and target (a bracket: they guard the entry's own bar, as the backtest
   engine does), a close (its protections cancelled), a stop adjustment (cancel and replace).
g. **persist**: the cycle's record (prediction, supervision, decision, orders, fills, positions,
   equity, step timings, errors) with the resume state — one transaction per time step (the
   cycles of every pair) in paper mode, batches of cycles in a backtest (a rerun rebuilds a
   backtest; a paper run resumes from its last persisted time step). A backtest's *quiet*
   cycle — a flat pair whose batch row cannot open a trade, so no :class:`Prediction` is built
   and nothing is decided, ordered, filled or failed — is persisted as a lean row
   (:class:`~morningstar.store.workflow.QuietCycle`: the account after the bar; the newest one
   of each pair per batch keeps its prediction); consecutive ones of a pair with the same
   account share one row (a span), and while every pair is flat the quiet stretches are
   delivered in bulk (:meth:`TradingWorkflow._skip_quiet`).

Each step runs under its error policy (:mod:`morningstar.workflow.policy`); a failing pair never
stops the others; ``halt`` stops the run after persisting. :meth:`TradingWorkflow.request_stop`
(wired to SIGINT/SIGTERM by the command line) lets the current time step finish and persist.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from morningstar.core.cycle import CycleRecord, StepError, cycle_id
from morningstar.core.decision import (
    DecisionParams,
    OrderIntent,
    needs_supervision,
    propose,
    supervise,
)
from morningstar.core.orders import Fill, Order, OrderRole, OrderSide, client_order_id
from morningstar.core.risk import PortfolioView, PositionView, RiskEngine, RiskState
from morningstar.core.sizing import SizingParams
from morningstar.errors import DataValidationError, StorageError
from morningstar.workflow.policy import HaltRun, SkipCycle, StepRunner

if TYPE_CHECKING:
    import pandas as pd

    from morningstar.core.ledger import Ledger
    from morningstar.core.prediction import Prediction, PredictionBatch, Predictor
    from morningstar.core.types import Bar
    from morningstar.data.feeds import MarketFeed
    from morningstar.exchange.simulated import SimulatedBroker
    from morningstar.store.workflow import QuietCycle, WorkflowStore
    from morningstar.workflow.supervisor import LLMSupervisor

__all__ = ["RunSummary", "TradingWorkflow", "WorkflowParts"]

log = logging.getLogger(__name__)

_DAY_S = 86_400
#: Time steps a backtest delivers at most per quiet stretch (a stop request waits no longer).
_SKIP_MAX = 20_000
#: Protective orders of a quote-sized entry cover up to this multiple of its estimated quantity
#: (reduce-only: the broker clips them to the position actually filled).
_PROTECTION_MARGIN = 2.0


@dataclass
class WorkflowParts:
    """What one run is made of (built by :mod:`morningstar.workflow.build` per mode).

    Attributes:
        run_id: the run (32 hex characters; stable across restarts of a paper run).
        mode: ``backtest`` or ``paper``.
        pairs: the markets traded.
        timeframe: the bar length (``1h``).
        strategy: the predictor's name for the records (``strategy:ema_cross``).
        feed: the market feed (replay or ccxt polling).
        broker: the broker (simulated, or paper: the same fill model on live bars).
        ledger: the account.
        predictor: the predictor port (model or strategy).
        risk: the risk engine.
        decision: the rules' parameters.
        sizing: ``core.sizing`` parameters (``risk`` sizing), or None for ``fraction`` sizing.
        fraction: the share of equity of an entry under ``fraction`` sizing (sized at the fill
            price, as the backtest engine does).
        supervisor: the LLM supervisor, or None when it is off.
        abstain: ``keep`` or ``skip`` when the supervisor fails.
        steps: the error policies.
        store: where cycles are persisted (None: not persisted, e.g. an ablation twin).
        batches: per pair, the predictions of every bar computed at once (backtest), or None
            (paper: the predictor runs on the recent bars each cycle).
        history: bars handed to the predictor and the supervisor's snapshot (paper).
        persist_every: records per transaction (1 in paper mode; a span of quiet cycles is one).
        brackets: submit the intent's stop and target with each entry.
        flatten_on_halt: close every position when the risk engine halts.
        sleep: waits between polls in paper mode (returns early when a stop is requested).
        clock: the monotonic clock of the step timings.
    """

    run_id: str
    mode: Literal["backtest", "paper"]
    pairs: Sequence[str]
    timeframe: str
    strategy: str
    feed: MarketFeed
    broker: SimulatedBroker
    ledger: Ledger
    predictor: Predictor
    risk: RiskEngine
    decision: DecisionParams
    sizing: SizingParams | None
    fraction: float = 1.0
    supervisor: LLMSupervisor | None = None
    abstain: Literal["keep", "skip"] = "keep"
    steps: StepRunner = field(default_factory=lambda: StepRunner({}))
    store: WorkflowStore | None = None
    batches: Mapping[str, PredictionBatch] | None = None
    history: int = 500
    persist_every: int = 1
    brackets: bool = True
    flatten_on_halt: bool = False
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] = time.perf_counter


@dataclass
class RunSummary:
    """What a run did (the command line prints it; the report and the ablation use it)."""

    run_id: str
    mode: str
    bars: int = 0
    cycles_persisted: int = 0
    orders: int = 0
    fills: int = 0
    supervised: int = 0
    vetoed: int = 0
    reduced: int = 0
    abstained: int = 0
    risk_rejections: int = 0
    errors: int = 0
    halted: str | None = None
    stopped: bool = False
    initial_equity: float = 0.0
    final_equity: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bars_per_s(self) -> float:
        """Bars (pair-bars) processed per second of wall time."""
        return self.bars / self.seconds if self.seconds > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly mapping."""
        data = dict(self.__dict__)
        data["step_seconds"] = dict(self.step_seconds)
        data["bars_per_s"] = self.bars_per_s
        return data


@dataclass
class _PairState:
    batch_ns: list[int] | None = None  # backtest: the open times (ns) of the batch's rows
    protective: list[str] = field(default_factory=list)  # open stop / target order ids
    bar_index: int = 0
    # backtest: per batch row, whether it holds a prediction, and whether it may open a trade
    # on a flat pair (see TradingWorkflow._openable)
    valid: list[bool] | None = None
    openable: list[bool] | None = None


@dataclass
class _Settled:
    """Phase 1 of a pair's cycle in a time step (see :meth:`TradingWorkflow._step`)."""

    pair: str
    bar: Bar
    where: str
    timings: dict[str, float]
    errors: list[StepError] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    skipped: bool = False  # the broker step failed: the cycle decides nothing
    halt: HaltRun | None = None


class _Span:
    """The open span of quiet cycles of a pair in the pending batch (see :class:`QuietCycle`):
    its row's index in the batch, the account its cycles left, its bars, its last bar."""

    __slots__ = ("account", "bars", "index", "last_close", "last_ts")

    def __init__(self, index: int, account: tuple[Any, ...], ts: datetime, close: datetime):
        self.index = index
        self.account = account
        self.bars = 1
        self.last_ts = ts
        self.last_close = close


class _Quiet:
    """The predict step's answer when a backtest cycle needs no :class:`Prediction`: the pair
    is flat and its batch row cannot open a trade (neutral signal, a short without
    ``allow_shorts``, a confidence below ``min_confidence``) — the rules would propose nothing."""

    __slots__ = ()


_QUIET: Final = _Quiet()


class TradingWorkflow:
    """Runs the cycles of one run (see the module docstring)."""

    def __init__(self, parts: WorkflowParts) -> None:
        self.p = parts
        self._stop = threading.Event()
        self._pairs: dict[str, _PairState] = {pair: _PairState() for pair in parts.pairs}
        if parts.batches is not None:
            for pair, batch in parts.batches.items():
                ps = self._pairs[pair]
                ns = batch.index.asi8
                if batch.index.unit != "ns":  # the bars' times are compared in ns
                    ns = batch.index.as_unit("ns").asi8
                ps.batch_ns = ns.tolist()
                ps.valid = batch.valid.tolist()
                ps.openable = self._openable(batch).tolist()
        equity = parts.ledger.equity
        self._peak = equity
        self._day = -1
        self._day_start = equity
        self._pending: list[tuple[CycleRecord | QuietCycle, dict[str, Any] | None]] = []
        # per pair: (index in _pending, batch row) of its newest quiet cycle not yet flushed
        self._last_quiet: dict[str, tuple[int, int]] = {}
        # per pair: its open span of quiet cycles in _pending (the pair's newest record)
        self._spans: dict[str, _Span] = {}
        # backtest: the replay's time steps a quiet stretch must stop before (None: no skipping),
        # and per pair the rows (in its frame) replayed
        self._replayed: dict[str, tuple[int, int]] = {}
        self._breaks = self._quiet_breaks()
        # the run's starting equity (a resumed run's ledger holds its initial cash)
        self.summary = RunSummary(parts.run_id, parts.mode,
                                  initial_equity=parts.ledger.initial_cash)  # fmt: skip
        self._timing: dict[str, float] = {}
        # the inputs of the risk engine's last update (it is idempotent for the same inputs)
        self._risk_key: tuple[float, float, float, int] | None = None
        self._risk_state = parts.risk.state
        self._risk_state_name = str(parts.risk.state)
        self._persist_failed = False
        # entries decided and not filled yet, per pair: (side, quantity, price, cost)
        self._entries: dict[str, tuple[int, float, float, float]] = {}
        self._where_ts: Any = None
        self._where_iso = ""

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Finish the current cycle, persist, and return from :meth:`run` (thread-safe)."""
        self._stop.set()

    def resume_from(self, state: Mapping[str, Any]) -> None:
        """Restore the workflow's own counters from a persisted state (ledger, broker and risk
        engine are restored by whoever built them)."""
        wf = state.get("workflow", {})
        self._peak = float(wf.get("peak", self._peak))
        self._day = int(wf.get("day", self._day))
        self._day_start = float(wf.get("day_start", self._day_start))
        for pair, data in dict(wf.get("pairs", {})).items():
            if pair in self._pairs:
                self._pairs[pair].protective = list(data.get("protective", []))
                self._pairs[pair].bar_index = int(data.get("bar_index", 0))

    def state(self) -> dict[str, Any]:
        """Everything a restart needs (broker, ledger, risk engine, workflow counters)."""
        return {
            "broker": self.p.broker.state(),
            "ledger": self.p.ledger.to_state(),
            "risk": self.p.risk.to_state(),
            "workflow": {
                "peak": self._peak, "day": self._day, "day_start": self._day_start,
                "pairs": {pair: {"protective": list(s.protective), "bar_index": s.bar_index}
                          for pair, s in self._pairs.items()},
            },
        }  # fmt: skip

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunSummary:
        """Run until the feed is exhausted (backtest), a stop is requested, or a halt."""
        p = self.p
        started = p.clock()
        errors: list[StepError] = []
        try:
            while not self._stop.is_set():
                if self._breaks is not None and self._skip_quiet():
                    continue
                t0 = p.clock()
                errors.clear()
                try:
                    bars = p.steps.run("fetch", p.feed.next_bars, errors, where="feed")
                except SkipCycle:
                    self.summary.errors += 1
                    bars = []
                if not bars:
                    if p.mode == "backtest" and getattr(p.feed, "done", False):
                        break
                    self._wait()
                    continue
                self._step(bars, (p.clock() - t0) / len(bars))
                if len(self._pending) >= p.persist_every:
                    self._flush()
        except HaltRun as halt:
            self.summary.halted = halt.error.message
            log.error("run %s halted: %s", p.run_id, halt.error.message)
        finally:
            if self._pending and not self._persist_failed:
                try:
                    self._flush()
                except HaltRun as halt:
                    self.summary.halted = self.summary.halted or halt.error.message
                    log.error("run %s halted: %s", p.run_id, halt.error.message)
            self.summary.stopped = self._stop.is_set()
            self.summary.seconds = p.clock() - started
            self.summary.final_equity = p.ledger.equity
            self.summary.realized_pnl = p.ledger.realized_pnl
            self.summary.fees = p.ledger.fees
            self.summary.step_seconds = dict(self._timing)
        return self.summary

    def _wait(self) -> None:
        wait = getattr(self.p.feed, "seconds_until_next_poll", None)
        seconds = min(max(float(wait()) if wait is not None else 1.0, 0.05), 60.0)
        if self.p.sleep is not None:
            self.p.sleep(seconds)
        else:
            self._stop.wait(seconds)

    # ------------------------------------------------------------------ one time step
    def _step(self, bars: list[tuple[str, Bar]], fetch_s: float) -> None:
        """The cycles of one time step, in two phases: every pair's bar is settled first (the
        broker fills its orders, the ledger books them and marks the close), then each pair
        decides — so every decision values the whole account at this bar's closes.

        A halt (in either phase) stops the decisions still to come; every pair's cycle is
        recorded all the same (what was filled is never lost), then the halt goes on.

        Raises:
            HaltRun: a step failed under ``halt``.
        """
        settled = [self._settle(pair, bar, fetch_s) for pair, bar in bars]
        self._account_day(bars[-1][1])  # the pairs of a step share the bar's times
        halt = next((s.halt for s in settled if s.halt is not None), None)
        for s in settled:
            if halt is not None or s.skipped:  # nothing more to do for this pair at this bar
                self._record(s.pair, s.bar, None, None, None, [], s.fills, s.errors, s.timings)
                continue
            try:
                self._decide_cycle(s)
            except HaltRun as exc:
                halt = exc
        if halt is not None:
            raise halt

    def _where(self, pair: str, bar: Bar) -> str:
        if bar.ts is not self._where_ts:  # the pairs of one time step share the bar's time
            self._where_ts = bar.ts
            self._where_iso = bar.ts.isoformat()
        return f"{pair} {self._where_iso}"

    def _settle(self, pair: str, bar: Bar, fetch_s: float) -> _Settled:
        """Phase 1 of a cycle (step a's fills and marks): the broker fills the pair's orders
        against the bar, the ledger books the fills and marks the close."""
        p = self.p
        state = self._pairs[pair]
        out = _Settled(pair, bar, self._where(pair, bar), {"fetch": fetch_s})
        self.summary.bars += 1
        state.bar_index += 1  # counts every bar of the pair, also those whose cycle is skipped
        t = p.clock()
        try:
            out.fills = p.steps.run("execute", lambda: p.broker.process_bar(pair, bar),
                                    out.errors, where=out.where)  # fmt: skip
            self._entries.pop(pair, None)  # an entry decided earlier has filled or is gone
            if out.fills:
                self._book(pair, out.fills, state)
            p.ledger.mark(pair, bar.close)
        except SkipCycle:
            out.skipped = True  # recorded in errors; the next bar runs normally
        except HaltRun as halt:
            out.halt = halt
        out.timings["execute"] = p.clock() - t
        return out

    def _decide_cycle(self, s: _Settled) -> None:
        """Phase 2 of a cycle: predict, supervise, decide, execute; the cycle is recorded."""
        p = self.p
        clock = p.clock
        pair, bar, errors, timings, where = s.pair, s.bar, s.errors, s.timings, s.where
        state = self._pairs[pair]
        # what the execute step sent, also when it fails half-way (its record is never lost),
        # and the broker's refusals (id -> reason)
        sent: dict[str, Order] = {}
        refused: dict[str, str] = {}
        prediction: Prediction | _Quiet | None = None
        decision: dict[str, Any] | None = None
        supervision: dict[str, Any] | None = None
        try:
            t = clock()
            prediction = p.steps.run("predict", lambda: self._predict(pair, bar, state), errors,
                                     where=where)  # fmt: skip
            timings["predict"] = clock() - t
            t = clock()
            intent, decision, supervision = p.steps.run(
                "decide",
                lambda: self._decide(pair, bar, prediction, state, errors, timings),
                errors, where=where,
            )  # fmt: skip
            timings["decide"] = clock() - t - timings.get("supervise", 0.0)
            if intent is not None and intent.action != "none":
                t = clock()
                try:
                    p.steps.run("execute",
                                lambda: self._execute(pair, bar, intent, state, sent, refused),
                                errors, where=where)  # fmt: skip
                finally:  # also when the step failed after some orders went out
                    timings["execute"] += clock() - t
                    self.summary.orders += len(sent)
                    self._refusals(sent, refused, errors)
        except SkipCycle:
            pass  # recorded in errors; the next bar runs normally
        finally:
            self._record(pair, bar, prediction, supervision, decision, list(sent.values()),
                         s.fills, errors, timings, tuple(refused))  # fmt: skip

    def _refusals(
        self, sent: Mapping[str, Order], refused: Mapping[str, str], errors: list[StepError]
    ) -> None:
        """Record the orders the broker refused as errors of the execute step (outcome
        ``rejected``: not placed, the run goes on; ``halted`` under the ``halt`` policy).

        Raises:
            HaltRun: an order was refused and the execute policy is ``halt``.
        """
        if not refused:
            return
        halt = self.p.steps.policies.get("execute") == "halt"
        for cid, reason in refused.items():
            order = sent[cid]
            error = StepError(
                "execute", "OrderRejected",
                f"{order.pair} {order.role} order {cid} rejected by the broker: {reason}",
                "halted" if halt else "rejected",
            )  # fmt: skip
            errors.append(error)
            if halt:
                raise HaltRun(error)

    def _book(self, pair: str, fills: list[Fill], state: _PairState) -> None:
        """Book fills: protections follow the position; stops start the cooldown."""
        if not fills:
            return
        ledger = self.p.ledger
        for fill in fills:
            ledger.apply(fill)
            if fill.reason == "stop_loss":
                self.p.risk.record_stop(pair, state.bar_index)
        self.summary.fills += len(fills)
        if ledger.position(pair) is None:
            state.protective.clear()  # the broker cancels what is left (reduce-only, OCO)
        else:
            self._sync_protection(pair, state)

    def _sync_protection(self, pair: str, state: _PairState) -> None:
        """Tell the ledger the stop / target levels of the open protective orders."""
        sl = tp = None
        open_ids = {o.client_order_id: o for o in self.p.broker.open_orders(pair)}
        state.protective = [cid for cid in state.protective if cid in open_ids]
        for cid in state.protective:
            order = open_ids[cid]
            if order.role == "stop_loss":
                sl = order.stop_price
            elif order.role == "take_profit":
                tp = order.limit_price
        self.p.ledger.set_protection(pair, sl, tp)

    def _account_day(self, bar: Bar) -> None:
        equity = self.p.ledger.equity
        self._peak = max(self._peak, equity)
        day = int(bar.close_ts.timestamp()) // _DAY_S
        if day != self._day:
            self._day = day
            self._day_start = equity

    def _predict(self, pair: str, bar: Bar, state: _PairState) -> Prediction | _Quiet | None:
        """The prediction for ``bar``: the batch's row (backtest) or the predictor on the
        recent bars (paper); None where the predictor has none (warm-up, missing data).

        Backtest fast path: :data:`_QUIET` instead of a :class:`Prediction` when the pair is flat
        and its row cannot open a trade (the rules would propose nothing; see :func:`propose`).
        Only row ``row`` (this bar's) of the batch is read: point in time.
        """
        if state.batch_ns is not None:
            row = self._row(pair)
            if state.batch_ns[row] != _ns(bar):
                raise RuntimeError(f"prediction row {row} of {pair} is not the bar {bar.ts}")
            if not state.valid[row]:  # type: ignore[index]
                return None
            if self.p.ledger.signed_quantity(pair) == 0.0 and not self._can_open(state, row):
                return _QUIET
            return self.p.batches[pair].row(row)  # type: ignore[index]
        window = self.p.feed.warmup(pair, self.p.history)
        try:
            return self.p.predictor.predict(window)
        except DataValidationError as exc:  # no prediction at this bar (e.g. a NaN window)
            log.info("%s: no prediction at %s: %s", pair, bar.ts, exc.one_line())
            return None

    def _can_open(self, state: _PairState, row: int) -> bool:
        """Whether row ``row`` may open a trade on a flat pair (see :meth:`_openable`)."""
        return state.openable is not None and state.openable[row]

    def _openable(self, batch: PredictionBatch) -> np.ndarray:
        """Per row of ``batch``, whether it may open a trade on a flat pair: a valid row with a
        signal up (down with ``allow_shorts``) and ``confidence >= min_confidence`` — the
        first checks of :func:`propose` when flat, on the batch's columns. A flat pair's other
        rows are quiet (the rules would propose nothing)."""
        valid = np.asarray(batch.valid, dtype=bool)
        if batch.signal_value is None or batch.confidence is None:
            return np.zeros(len(valid), dtype=bool)  # no signal or no confidence: no entry
        signal = np.asarray(batch.signal_value)
        side_ok = (signal > 0) | ((signal < 0) & self.p.decision.allow_shorts)
        with np.errstate(invalid="ignore"):
            confident = np.asarray(batch.confidence, dtype=np.float64) >= (
                self.p.decision.min_confidence
            )
        return valid & side_ok & confident

    # ------------------------------------------------------------------ quiet stretches
    def _quiet_breaks(self) -> np.ndarray | None:
        """Backtest: the replay's time steps a quiet stretch must stop before, sorted (the last
        one is the replay's length); None where stretches are not skipped (paper mode, no
        batches, a feed that cannot skip, a batch not aligned with its bars).

        A step breaks a stretch when one of its bars may open a trade (:meth:`_openable`), is
        not contiguous with its pair's previous bar (a gap, or the pair's first bar), or closes
        on another day than the step before (the day's accounting and the risk engine's daily
        state are updated by that step's cycles).
        """
        p = self.p
        feed: Any = p.feed
        if p.mode != "backtest" or p.batches is None or not hasattr(feed, "advance"):
            return None
        times = np.asarray(feed.step_times, dtype=np.int64)
        n = len(times)
        tf_ns = int(feed.timeframe.seconds) * 1_000_000_000
        brk = np.zeros(n + 1, dtype=bool)
        brk[0] = brk[n] = True
        day = (times + tf_ns) // (_DAY_S * 1_000_000_000)
        brk[1:n] |= day[1:] != day[:-1]
        for pair in p.pairs:
            state = self._pairs[pair]
            frame_ns = feed.frames[pair].index.as_unit("ns").asi8
            if (
                state.batch_ns is None
                or len(state.batch_ns) != len(frame_ns)
                or not np.array_equal(np.asarray(state.batch_ns, dtype=np.int64), frame_ns)
            ):
                return None
            steps = feed.step_of_rows(pair)
            first = feed.first_replayed_row(pair)
            rows = slice(first, first + len(steps))
            self._replayed[pair] = (first, first + len(steps))
            gap = np.ones(len(steps), dtype=bool)
            gap[1:] = np.diff(frame_ns[rows]) != tf_ns
            brk[steps[gap | np.asarray(state.openable, dtype=bool)[rows]]] = True
        return np.flatnonzero(brk)

    def _skip_quiet(self) -> bool:
        """Backtest: deliver the coming quiet stretch at once; False when there is none.

        While every pair is flat, with no open order and no entry pending, and the time steps
        up to the next break (:meth:`_quiet_breaks`) can open nothing, each of their cycles
        would be quiet: the account stays as it is, nothing is decided, ordered or filled. They
        are delivered in bulk: each pair's bars count as cycles, its open span of quiet cycles
        (which every started pair must have, with the current account) grows by them, its
        mark moves to its last close — what the cycles one by one would have recorded.
        """
        p = self.p
        feed: Any = p.feed
        start = feed.step
        breaks = self._breaks
        assert breaks is not None
        end = int(breaks[int(np.searchsorted(breaks, start))])
        count = min(end - start, _SKIP_MAX)
        if count < 1 or self._entries or p.ledger.pairs or p.broker.open_orders():
            return False
        spans = self._spans
        if p.store is not None:
            account = self._account()
            for pair, (first, stop) in self._replayed.items():
                if first < feed.cursor(pair) < stop:  # started, bars left
                    span = spans.get(pair)
                    if span is None or span.account != account:
                        return False
        t = p.clock()
        skipped = feed.advance(count)
        for pair, bars in skipped.items():
            state = self._pairs[pair]
            state.bar_index += bars
            bar = feed.last_bar(pair)
            p.ledger.mark(pair, bar.close)
            self.summary.bars += bars
            span = spans.get(pair)
            if span is None:  # not persisted
                continue
            span.bars += bars
            span.last_ts = bar.ts
            span.last_close = bar.close_ts
            row = self._row(pair)
            if state.valid[row]:  # type: ignore[index]
                self._last_quiet[pair] = (span.index, row)
            else:
                self._last_quiet.pop(pair, None)
        self._timing["quiet"] = self._timing.get("quiet", 0.0) + (p.clock() - t)
        return True

    def _row(self, pair: str) -> int:
        """Row of the last delivered bar of ``pair`` in the replay's frames."""
        return int(self.p.feed.cursor(pair)) - 1  # type: ignore[attr-defined]

    def _decide(
        self,
        pair: str,
        bar: Bar,
        prediction: Prediction | _Quiet | None,
        state: _PairState,
        errors: list[StepError],
        timings: dict[str, float],
    ) -> tuple[OrderIntent | None, dict[str, Any] | None, dict[str, Any] | None]:
        p = self.p
        ledger = p.ledger
        if (prediction is None or prediction is _QUIET) and not (
            p.flatten_on_halt and ledger.signed_quantity(pair) != 0.0
        ):
            self._update_risk(state)
            return None, None, None
        self._risk_key = None
        view = ledger.portfolio_view(peak_equity=self._peak, day_start_equity=self._day_start,
                                     day=self._day, bar_index=state.bar_index)  # fmt: skip
        view = self._with_pending_entries(view, pair)
        risk_state = p.risk.update(view)
        position = ledger.rules_position(pair)
        if risk_state is RiskState.HALTED and p.flatten_on_halt and position is not None:
            flat = p.risk.flatten_intents(view)
            intent = next((i for i in flat if i.pair == pair), None)
            if intent is not None:
                return intent, {"proposal": intent.as_dict(), "final": intent.as_dict(),
                                "rejections": [], "risk_state": str(risk_state),
                                "flatten": True}, None  # fmt: skip
        if prediction is None or isinstance(prediction, _Quiet):
            return None, None, None
        sigma = prediction.volatility if prediction.volatility is not None else math.nan
        proposal = propose(prediction, position, bar.close, sigma, view.equity, p.decision,
                           p.sizing or _FRACTION_SIZING, pair=pair)  # fmt: skip
        if proposal.action == "none":
            return None, None, None
        if p.sizing is None and proposal.action == "open":
            proposal = _fraction_size(proposal, p.fraction, view.equity)
        supervision: dict[str, Any] | None = None
        intent = proposal
        if p.supervisor is not None and needs_supervision(proposal, p.decision):
            t = p.clock()
            window = self._window(pair)
            answer = p.supervisor.assess(pair, window, proposal, prediction)
            supervised = supervise(proposal, answer.assessment, abstain=p.abstain,
                                   abstain_reason=answer.reason)  # fmt: skip
            timings["supervise"] = p.clock() - t
            intent = supervised.intent
            supervision = {**supervised.record.as_dict(), **answer.as_dict()}
            self.summary.supervised += 1
            if supervised.record.abstained:
                self.summary.abstained += 1
                errors.append(StepError("supervise", answer.error_type or "Abstained",
                                        answer.reason or "abstained", "abstained"))  # fmt: skip
            elif supervised.record.verdict == "veto":
                self.summary.vetoed += 1
            elif supervised.record.changed:
                self.summary.reduced += 1
        risk = p.risk.check(intent, view)
        if risk.rejections:
            self.summary.risk_rejections += 1
        final = risk.intent
        decision: dict[str, Any] = {
            "proposal": proposal.as_dict(),
            "final": final.as_dict(),
            "rejections": [str(r) for r in risk.rejections],
            "risk_state": str(risk.state),
        }
        if supervision is not None:
            decision["llm_verdict"] = supervision.get("verdict")
        return final, decision, supervision

    def _update_risk(self, state: _PairState) -> None:
        """The risk engine's update of a cycle that decides nothing.

        :meth:`RiskEngine.update` reads the view's equity, peak equity, day and day-start
        equity only and is idempotent for the same inputs, so the view is built and the update
        made only when one of them changed since the last update (e.g. not while every pair is
        flat and the day is the same).
        """
        ledger = self.p.ledger
        equity = ledger.equity
        key = (equity, self._peak, self._day_start, self._day)
        if key == self._risk_key:
            return
        view = ledger.portfolio_view(peak_equity=self._peak, day_start_equity=self._day_start,
                                     day=self._day, bar_index=state.bar_index)  # fmt: skip
        self.p.risk.update(view)
        self._risk_key = key

    def _with_pending_entries(self, view: PortfolioView, pair: str) -> PortfolioView:
        """``view`` with the entries decided for other pairs and not filled yet counted as
        positions (at their reference price): the limits on positions and exposure apply to
        what is committed, not only to what has filled."""
        pending = {other: entry for other, entry in self._entries.items() if other != pair}
        if not pending:
            return view
        positions = dict(view.positions)
        for other, (side, quantity, price, _cost) in pending.items():
            if other not in positions:
                positions[other] = PositionView(side, quantity, price, price)
        return replace(view, positions=positions)

    def _committed_cash(self, pair: str) -> float:
        """Cash not yet committed to entries of other pairs decided and not filled."""
        reserved = sum(e[3] for other, e in self._entries.items() if other != pair)
        return self.p.ledger.cash - reserved

    def _window(self, pair: str) -> pd.DataFrame:
        """The recent bars up to the decision bar (the supervisor's snapshot)."""
        return self.p.feed.warmup(pair, self.p.history)

    # ------------------------------------------------------------------ execution
    def _execute(
        self, pair: str, bar: Bar, intent: OrderIntent, state: _PairState,
        sent: dict[str, Order], refused: dict[str, str],
    ) -> None:  # fmt: skip
        """Send the intent's orders; each one sent goes into ``sent`` (by id: a retried step
        sends the same ids again), each one refused into ``refused`` with the reason. An entry
        refused is not followed by its stop and target (nothing to protect)."""
        p = self.p
        run, ts, close_ts = p.run_id, bar.ts, bar.close_ts
        orders: list[Order] = []

        def protective(role: OrderRole, side: OrderSide, quantity: float, price: float) -> Order:
            """A reduce-only stop (``stop_loss``) or limit (``take_profit``) at ``price``."""
            stop = role == "stop_loss"
            return Order(
                client_order_id(run, pair, ts, role), run, pair, side, quantity,
                "stop" if stop else "limit", role, close_ts, ts, reduce_only=True,
                stop_price=price if stop else None, limit_price=None if stop else price,
                reference_price=bar.close,
            )  # fmt: skip

        if intent.action == "open":
            entry_side: OrderSide = "buy" if intent.side > 0 else "sell"
            exit_side: OrderSide = "sell" if intent.side > 0 else "buy"
            qty = intent.quantity
            # fraction sizing: the notional is spent at the fill price, within the cash (the
            # engine's sizing); the quantity is the estimate at the close
            cash = self._committed_cash(pair)
            quote = None if p.sizing is not None else (qty * bar.close, max(cash, 0.0))
            orders.append(Order(
                client_order_id(run, pair, ts, "open"), run, pair, entry_side, qty, "market",
                "open", close_ts, ts, reference_price=bar.close,
                quote_quantity=None if quote is None else quote[0],
                max_cost=None if quote is None else quote[1],
            ))  # fmt: skip
            cover = qty * _PROTECTION_MARGIN if quote is not None else qty
            if p.brackets and intent.stop_loss is not None:
                orders.append(protective("stop_loss", exit_side, cover, intent.stop_loss))
            if p.brackets and intent.take_profit is not None:
                orders.append(protective("take_profit", exit_side, cover, intent.take_profit))
        elif intent.action == "close":  # its protections are cancelled once it is accepted
            side: OrderSide = "sell" if intent.side > 0 else "buy"
            orders.append(Order(
                client_order_id(run, pair, ts, "close"), run, pair, side, intent.quantity,
                "market", "close", close_ts, ts, reduce_only=True, reference_price=bar.close,
            ))  # fmt: skip
        elif intent.action == "adjust":
            position = p.ledger.position(pair)
            if position is None:
                return
            old = [o for o in p.broker.open_orders(pair)
                   if o.client_order_id in state.protective]  # fmt: skip
            exit_: OrderSide = "sell" if position.side > 0 else "buy"
            if intent.stop_loss is not None:  # the old stop is cancelled once this is accepted
                orders.append(protective("stop_loss", exit_, position.quantity, intent.stop_loss))
        accepted: set[str] = set()
        try:
            for order in orders:
                ack = p.broker.submit(order)
                sent[order.client_order_id] = order
                if ack.status == "rejected":
                    log.warning("%s: order %s rejected: %s", pair, order.client_order_id,
                                ack.reason)  # fmt: skip
                    refused[order.client_order_id] = ack.reason or "no reason given"
                    if order.role == "open":
                        break
                    continue
                accepted.add(order.client_order_id)
                if order.role == "open":
                    cost = (order.quote_quantity if order.quote_quantity is not None
                            else order.quantity * bar.close)  # fmt: skip
                    self._entries[pair] = (intent.side, order.quantity, bar.close, cost)
                elif order.role in ("stop_loss", "take_profit") and (
                    order.client_order_id not in state.protective  # a retried execute step
                ):
                    state.protective.append(order.client_order_id)
            # replace, then cancel: a position is never left without the protection it had
            if intent.action == "close" and accepted:
                self._cancel_protection(state)
            elif intent.action == "adjust" and accepted:
                for cid in [c for c in state.protective if c not in accepted]:
                    if any(o.client_order_id == cid and o.role == "stop_loss"
                           for o in old):  # fmt: skip
                        p.broker.cancel(cid)
                        state.protective.remove(cid)
        finally:
            if intent.action == "adjust":
                self._sync_protection(pair, state)

    def _cancel_protection(self, state: _PairState) -> None:
        for cid in state.protective:
            self.p.broker.cancel(cid)
        state.protective.clear()

    # ------------------------------------------------------------------ persistence
    def _record(
        self,
        pair: str,
        bar: Bar,
        prediction: Prediction | _Quiet | None,
        supervision: dict[str, Any] | None,
        decision: dict[str, Any] | None,
        orders: list[Order],
        fills: list[Fill],
        errors: list[StepError],
        timings: dict[str, float],
        rejected: tuple[str, ...] = (),
    ) -> None:
        p = self.p
        timing = self._timing
        for step, seconds in timings.items():
            timing[step] = timing.get(step, 0.0) + seconds
        if errors:
            self.summary.errors += sum(1 for e in errors if e.outcome != "abstained")
        if p.store is None:
            return
        ledger = p.ledger
        state = self._pairs[pair]
        if (state.batch_ns is not None and (prediction is None or prediction is _QUIET)
                and decision is None and supervision is None and not orders and not fills
                and not errors):  # fmt: skip
            self._record_quiet(pair, bar, prediction is _QUIET)
            return
        record = CycleRecord(
            cycle_id=cycle_id(p.run_id, pair, bar.ts),
            run_id=p.run_id,
            pair=pair,
            bar_ts=bar.ts,
            strategy=p.strategy,
            prediction=None if prediction is None else self._document(pair, prediction),
            supervision=supervision,
            decision=decision,
            orders=tuple(orders),
            fills=tuple(fills),
            positions=ledger.positions(first=pair) if (orders or fills or ledger.pairs) else (),
            equity=ledger.snapshot(str(p.risk.state), self._peak),
            timings=timings,
            errors=tuple(errors),
            rejected=rejected,
        )  # fmt: skip
        self._last_quiet.pop(pair, None)
        self._close_span(pair)
        self._pending.append((record, self.state() if p.mode == "paper" else None))

    def _document(self, pair: str, prediction: Prediction | _Quiet) -> dict[str, Any]:
        """The prediction's record; for :data:`_QUIET` (an eventful cycle, e.g. a stop filled
        at this bar, whose rules had nothing to propose) the batch row of this bar."""
        if isinstance(prediction, _Quiet):
            return self.p.batches[pair].row(self._row(pair)).as_dict()  # type: ignore[index]
        return prediction.as_dict()

    def _record_quiet(self, pair: str, bar: Bar, evaluated: bool) -> None:
        """A backtest cycle that evaluated no prediction and decided, ordered, filled and failed
        nothing: a lean row (the account after the bar; no documents, no step timings)."""
        from morningstar.store.workflow import QuietCycle

        p = self.p
        account = self._account()
        span = self._spans.get(pair)
        if span is not None and span.account == account and span.last_close == bar.ts:
            span.bars += 1  # the same account on the pair's next bar: the span grows
            span.last_ts = bar.ts
            span.last_close = bar.close_ts
            index = span.index
        else:
            self._close_span(pair)
            index = len(self._pending)
            quiet = QuietCycle(cycle_id(p.run_id, pair, bar.ts), p.run_id, pair, bar.ts,
                               p.strategy, *account)  # fmt: skip
            self._pending.append((quiet, None))
            self._spans[pair] = _Span(index, account, bar.ts, bar.close_ts)
        if evaluated:  # the batch row is known: the newest cycle of a pair will carry it
            self._last_quiet[pair] = (index, self._row(pair))
        else:
            self._last_quiet.pop(pair, None)

    def _close_span(self, pair: str) -> None:
        """Write the open span of quiet cycles of ``pair`` into its pending row and forget it."""
        span = self._spans.pop(pair, None)
        if span is not None and span.bars > 1:
            quiet, state = self._pending[span.index]
            self._pending[span.index] = (
                quiet._replace(bars=span.bars, last_bar_ts=span.last_ts),  # type: ignore[union-attr]
                state,
            )

    def _account(self) -> tuple[float, float, float, float, float, float, str]:
        """The account a quiet cycle records: equity, cash, realised and unrealised P&L, fees,
        drawdown, risk state."""
        p = self.p
        ledger = p.ledger
        equity = ledger.equity
        peak = self._peak
        drawdown = max(0.0, 1.0 - equity / peak) if peak > 0.0 else 0.0
        unrealized = ledger.unrealized_pnl
        if not math.isfinite(equity + unrealized + drawdown):
            ledger.snapshot(str(p.risk.state), peak)  # raises, naming the value
        risk = p.risk.state
        if risk is not self._risk_state:
            self._risk_state = risk
            self._risk_state_name = str(risk)
        return (equity, ledger.cash, ledger.realized_pnl, unrealized, ledger.fees, drawdown,
                self._risk_state_name)  # fmt: skip

    def _flush(self) -> None:
        """Persist the pending cycles (step g), retried like the ``persist`` policy says.

        A cycle is never dropped: when the store still fails after the retries (temporary
        errors and storage errors alike: a locked or unreachable database), the run halts with
        the cycles not persisted; a paper run restarted later resumes from the last persisted
        cycle (its broker, ledger and risk state), so nothing is decided on lost state.

        Raises:
            HaltRun: the store failed for good.
        """
        attempts = 0
        while True:
            try:
                self._flush_once()
                return
            except StorageError as exc:
                attempts += 1
                policy = self.p.steps.policies.get("persist", "retry")
                if policy != "retry" or attempts > self.p.steps.retry.max_attempts - 1:
                    self._persist_failed = True
                    error = StepError("persist", type(exc).__name__, exc.one_line(), "halted",
                                      attempts)  # fmt: skip
                    raise HaltRun(error) from exc
                wait = self.p.steps.retry.delay(attempts - 1)
                log.warning("persisting %d cycle(s) failed (%s); retry %d in %.2fs",
                            len(self._pending), exc.one_line(), attempts, wait)  # fmt: skip
                self.p.steps.retry.sleep(wait)

    def _flush_once(self) -> None:
        p = self.p
        if not self._pending or p.store is None:
            self._pending.clear()
            self._last_quiet.clear()
            self._spans.clear()
            return
        batch = self._pending  # stays pending until written (a failure keeps it for a retry)
        store = p.store
        if p.mode == "backtest":  # the run's last state is enough to inspect a backtest
            for pair in list(self._spans):  # the open spans of quiet cycles, as they stand
                self._close_span(pair)
            records: list[CycleRecord | QuietCycle] = [r for r, _ in batch]
            # the newest quiet cycle of each pair in the batch keeps its (evaluated) prediction,
            # so the newest stored cycle of a pair shows the model's latest answer
            for pair, (i, row) in self._last_quiet.items():
                quiet = records[i]
                prediction = p.batches[pair].row(row).as_dict()  # type: ignore[index]
                records[i] = quiet._replace(prediction=prediction)  # type: ignore[union-attr]
            last = records[-1]
            if not isinstance(last, CycleRecord) and p.ledger.pairs:
                # the positions table holds the batch's last cycle's positions
                records[-1] = last._replace(positions=p.ledger.positions(first=last.pair))
            states: list[dict[str, Any] | None] = [None] * len(batch)
            states[-1] = self.state()
            t = p.clock()
            written = store.persist_many(records, states)
        else:  # paper: the cycles of one time step, in one transaction (see _step)
            t = p.clock()
            written = store.persist_many([r for r, _ in batch], [s for _, s in batch])
        self._pending = []
        self._last_quiet.clear()
        self._spans.clear()
        self._timing["persist"] = self._timing.get("persist", 0.0) + (p.clock() - t)
        self.summary.cycles_persisted += written


_FRACTION_SIZING = SizingParams(max_position_pct=100.0, max_risk_pct=100.0)


def _fraction_size(intent: OrderIntent, fraction: float, equity: float) -> OrderIntent:
    """An entry sized as the backtest engine sizes: ``fraction`` of equity (spent at the fill
    price; the quantity here is the estimate at the decision's close)."""
    return replace(
        intent,
        quantity=fraction * equity / intent.price,
        reasons=(*intent.reasons, f"fraction sizing: {fraction:g} of equity at the fill price"),
    )


def _ns(bar: Bar) -> int:
    """The bar's open time in epoch nanoseconds (bars are stamped to the microsecond)."""
    return round(bar.ts.timestamp() * 1e6) * 1000
