"""The workflow's composition root: which adapters for which mode, from the typed settings.

* backtest: :class:`~morningstar.data.feeds.ReplayFeed` over stored (or given) bars, the
  predictor run once over every bar (:meth:`predict_batch`: each row is point in time),
  :class:`~morningstar.exchange.simulated.SimulatedBroker`, cycles persisted in batches;
* paper: :class:`~morningstar.data.feeds.CcxtPollingFeed` (closed bars from the exchange),
  :class:`~morningstar.exchange.paper.PaperBroker` (the same fill model), the predictor run on the
  recent bars each cycle, each cycle persisted in its own transaction with the resume state; a
  run started again with the same ``run_id`` resumes after its last persisted bar.

Everything else — rules, supervision, risk engine, ledger, policies, records — is the same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from morningstar.config import Settings, WorkflowSettings, settings_as_dict
from morningstar.core.decision import DecisionParams
from morningstar.core.engine import Costs
from morningstar.core.ledger import Ledger
from morningstar.core.risk import RiskEngine, RiskLimits
from morningstar.core.sizing import SizingParams
from morningstar.core.timeframe import parse_timeframe
from morningstar.errors import UserInputError
from morningstar.workflow.policy import StepRunner
from morningstar.workflow.runner import TradingWorkflow, WorkflowParts
from morningstar.workflow.supervisor import SNAPSHOT_BARS, LLMSupervisor

if TYPE_CHECKING:
    from morningstar.core.prediction import Predictor
    from morningstar.llm.gateway import Gateway
    from morningstar.store.db import Database

__all__ = [
    "BuiltRun",
    "build_backtest",
    "build_paper",
    "make_predictor",
    "new_run_id",
    "paper_history",
]

log = logging.getLogger(__name__)


def new_run_id(seed: Mapping[str, Any] | None = None) -> str:
    """A run id: 32 hex characters, random, or derived from ``seed`` (a replayable backtest:
    the same settings and data give the same id, so a rerun writes the same rows)."""
    if seed is None:
        import uuid

        return uuid.uuid4().hex
    text = json.dumps(seed, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_predictor(wf: WorkflowSettings) -> Predictor:
    """The predictor named by ``workflow.predictor``: ``strategy:<name>`` or ``model:<dir>``.

    Raises:
        StrategyError: unknown strategy or bad parameters.
        UserInputError: a missing or incompatible model artifact.
        ConfigError: PyTorch is not installed (``model:`` only).
    """
    kind, _, name = wf.predictor.partition(":")
    if kind == "strategy":
        from morningstar.model.predictors import StrategySignalPredictor

        return StrategySignalPredictor(name, dict(wf.predictor_params))
    from morningstar.model.predictors import ModelPredictor
    from morningstar.model.wrapper import MorningstarModel

    return ModelPredictor(MorningstarModel.load(Path(name).expanduser()))


def _decision(wf: WorkflowSettings) -> DecisionParams:
    return DecisionParams(**wf.decision.model_dump())


def _sizing(wf: WorkflowSettings) -> SizingParams | None:
    s = wf.sizing
    if s.mode == "fraction":
        return None
    return SizingParams(
        target_vol_pct=s.target_vol_pct, confidence_floor=s.confidence_floor,
        kelly_fraction=s.kelly_fraction, max_risk_pct=s.max_risk_pct,
        max_position_pct=s.max_position_pct,
    )  # fmt: skip


def _steps(wf: WorkflowSettings) -> StepRunner:
    e = wf.errors
    policies = {"fetch": e.fetch, "predict": e.predict,
                "decide": e.decide, "execute": e.execute, "persist": e.persist}  # fmt: skip
    return StepRunner(policies, retries=e.retries, backoff_s=e.backoff_s)


@dataclass
class BuiltRun:
    """A workflow ready to run, with what must be closed after it."""

    workflow: TradingWorkflow
    run_id: str
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close the gateway, broker and feed (idempotent)."""
        while self.closers:
            closer = self.closers.pop()
            try:
                closer()
            except Exception:  # closing must not hide the run's own outcome
                log.exception("closing a workflow part failed")


def _supervisor(
    settings: Settings, wf: WorkflowSettings, db: Database | None, gateway: Gateway | None,
    calendar: str, closers: list[Callable[[], None]],
) -> LLMSupervisor | None:  # fmt: skip
    if not wf.supervisor.enabled:
        return None
    if gateway is None:
        from morningstar.llm.gateway import Gateway

        gateway = Gateway.from_settings(settings, db=db)
        closers.append(gateway.close)
    return LLMSupervisor(
        gateway, timeframe=wf.timeframe, calendar=calendar,
        latency_budget_s=wf.supervisor.latency_budget_s, template=wf.supervisor.template,
    )  # fmt: skip


def build_backtest(
    settings: Settings,
    frames: Mapping[str, pd.DataFrame],
    *,
    db: Database | None,
    calendar: str = "crypto",
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    run_id: str | None = None,
    gateway: Gateway | None = None,
    persist_every: int = 5_000,
) -> BuiltRun:
    """A backtest over ``frames`` (OHLCV frames by pair) with ``settings.workflow``.

    Args:
        settings: the settings (``workflow``, ``risk``, ``llm`` sections).
        frames: bars per pair, the full history (bars before ``start`` warm the predictor up).
        db: where the run is persisted (None: not persisted).
        calendar: the market calendar (annualisation of the supervisor's volatility).
        start, end: the replayed range (``end`` exclusive).
        run_id: the run's id; default: derived from the settings and the data (a rerun of the
            same backtest writes the same rows).
        gateway: an LLM gateway to use (tests); default: built from ``settings.llm``.
        persist_every: records per transaction (a span of quiet cycles is one).

    Raises:
        UserInputError: no bars, or too few to warm up.
    """
    from morningstar.data.feeds import ReplayFeed
    from morningstar.exchange.simulated import SimulatedBroker

    wf = settings.workflow
    if not frames:
        raise UserInputError("no bars to backtest", where="workflow.pairs")
    predictor = make_predictor(wf)
    feed = ReplayFeed(frames, wf.timeframe, start=start, end=end)
    if feed.done:
        stored = [f.index for f in frames.values() if len(f)]
        raise UserInputError(
            f"no bar to replay between {start or 'the start'} and {end or 'the end'}",
            where="--start/--end",
            hint=(f"the stored bars run from {min(i[0] for i in stored)} to "
                  f"{max(i[-1] for i in stored)}") if stored else "import data first",
        )  # fmt: skip
    batches = {pair: predictor.predict_batch(frame) for pair, frame in feed.frames.items()}
    if run_id is None:
        run_id = new_run_id({
            "settings": settings_as_dict(settings)["workflow"], "risk": settings.risk.model_dump(),
            "data": {p: [len(f), str(f.index[0]), str(f.index[-1]), float(f["close"].sum())]
                     for p, f in frames.items()},
            "start": str(start), "end": str(end),
            "llm": settings_as_dict(settings)["llm"], "model": _model_fingerprint(wf.predictor),
        })  # fmt: skip
    closers: list[Callable[[], None]] = [feed.close]
    broker = SimulatedBroker(
        Costs(fee_bps=wf.fee_bps, slippage_bps=wf.slippage_bps), intrabar=wf.intrabar
    )
    store = _store(db, run_id, "backtest", settings, list(frames), calendar)
    parts = WorkflowParts(
        run_id=run_id, mode="backtest", pairs=list(frames), timeframe=wf.timeframe,
        strategy=wf.predictor.split(":", 1)[0] + ":" + _short(wf.predictor), feed=feed,
        broker=broker, ledger=Ledger(wf.initial_cash),
        predictor=predictor, risk=RiskEngine(RiskLimits.from_settings(settings.risk)),
        decision=_decision(wf), sizing=_sizing(wf), fraction=wf.sizing.fraction,
        supervisor=_supervisor(settings, wf, db, gateway, calendar, closers),
        abstain=wf.supervisor.abstain, steps=_steps(wf), store=store, batches=batches,
        history=max(SNAPSHOT_BARS, wf.warmup_bars or 0), persist_every=persist_every,
        brackets=wf.bracket_orders,
        flatten_on_halt=settings.risk.flatten_on_halt,
    )  # fmt: skip
    return BuiltRun(TradingWorkflow(parts), run_id, closers)


def _model_fingerprint(predictor: str) -> str | None:
    """SHA-256 of a model predictor's manifest (a retrained model is another backtest)."""
    kind, _, name = predictor.partition(":")
    if kind != "model":
        return None
    manifest = Path(name).expanduser() / "model.json"
    try:
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    except OSError:
        return None  # make_predictor has already said what is wrong


def _short(predictor: str) -> str:
    kind, _, name = predictor.partition(":")
    return Path(name).name if kind == "model" else name


def _store(
    db: Database | None, run_id: str, mode: str, settings: Settings, pairs: list[str],
    calendar: str, extra: Mapping[str, Any] | None = None,
) -> Any:  # fmt: skip
    if db is None:
        return None
    from morningstar.store.workflow import WorkflowStore

    store = WorkflowStore(db)
    wf = settings.workflow
    store.start_run(
        run_id, mode=mode, strategy=wf.predictor, pairs=pairs, timeframe=wf.timeframe,
        config={"workflow": settings_as_dict(settings)["workflow"],
                "risk": settings.risk.model_dump(), **(extra or {})},
        calendar=calendar,
    )  # fmt: skip
    return store


def build_paper(
    settings: Settings,
    *,
    db: Database,
    run_id: str,
    exchange: Any,
    calendar: str = "crypto",
    clock: Callable[[], datetime] | None = None,
    gateway: Gateway | None = None,
    sleep: Callable[[float], None] | None = None,
) -> BuiltRun:
    """A paper run on live bars from ``exchange`` (a ccxt exchange; see
    :func:`morningstar.exchange.make_exchange`), resumed when ``run_id`` was persisted before.

    Start: a new run's first decision bar is the first bar to close after it starts (the last
    bar closed at the start is history); that starting point is stored with the run
    (``config["paper"]["start"]``, the open time of the last history bar per pair), so a run
    that stops before its first cycle was persisted starts again from the same bar.

    Resume: the broker, the ledger and the risk engine are restored from the last persisted
    cycle; the feed resumes after the last persisted bar of each pair (after the starting point
    for a pair without a persisted cycle), so no bar is decided twice and none is skipped.

    The predictor sees the last :func:`paper_history` bars of each decision: enough for its
    indicators to equal the backtest's, which sees every bar (recursive averages converge).
    The feed delivers one time step at a time: the bars a late poll catches up (after an
    outage, a restart) are decided one after the other, each from the bars up to it only, and
    a stop takes effect after the current time step.
    """
    from morningstar.data.feeds import CcxtPollingFeed
    from morningstar.exchange.paper import PaperBroker
    from morningstar.store.workflow import WorkflowStore

    wf = settings.workflow
    pairs = list(wf.pairs)
    if not pairs:
        raise UserInputError("a paper run needs pairs", where="workflow.pairs",
                             hint="set workflow.pairs or pass --pair")  # fmt: skip
    now = clock or (lambda: datetime.now(UTC))
    stored = WorkflowStore(db).get_run(run_id)
    resume = WorkflowStore(db).last_state(run_id) if stored is not None else None
    start = _paper_start(stored.config if stored is not None else None, pairs, wf.timeframe, now)
    store = _store(db, run_id, "paper", settings, pairs, calendar,
                   extra={"paper": {"start": {p: t.isoformat() for p, t in start.items()}}})  # fmt: skip
    predictor = make_predictor(wf)
    state = resume.latest() if resume is not None else None
    history = paper_history(wf, predictor)
    last_bars = dict(start)
    if resume is not None:
        last_bars.update(resume.last_bar)
    feed = CcxtPollingFeed(
        exchange, pairs, wf.timeframe, clock=now, poll_every_s=wf.poll_every_s,
        history=history, last_bars=last_bars, step_by_step=True,
    )  # fmt: skip
    costs = Costs(fee_bps=wf.fee_bps, slippage_bps=wf.slippage_bps)
    if state is not None:
        broker = PaperBroker.from_state(state["broker"], costs, intrabar=wf.intrabar)
        ledger = Ledger.from_state(state["ledger"])
        limits = RiskLimits.from_settings(settings.risk)
        risk = RiskEngine.from_state(limits, state["risk"])
    else:
        broker = PaperBroker(costs, intrabar=wf.intrabar)
        ledger = Ledger(wf.initial_cash)
        risk = RiskEngine(RiskLimits.from_settings(settings.risk))
    closers: list[Callable[[], None]] = [feed.close, broker.close]
    parts = WorkflowParts(
        run_id=run_id, mode="paper", pairs=pairs, timeframe=wf.timeframe,
        strategy=wf.predictor.split(":", 1)[0] + ":" + _short(wf.predictor), feed=feed,
        broker=broker, ledger=ledger, predictor=predictor, risk=risk, decision=_decision(wf),
        sizing=_sizing(wf), fraction=wf.sizing.fraction,
        supervisor=_supervisor(settings, wf, db, gateway, calendar, closers),
        abstain=wf.supervisor.abstain, steps=_steps(wf), store=store, batches=None,
        history=history, persist_every=1, brackets=wf.bracket_orders,
        flatten_on_halt=settings.risk.flatten_on_halt,
        sleep=sleep,
    )  # fmt: skip
    workflow = TradingWorkflow(parts)
    if state is not None:
        workflow.resume_from(state)
    return BuiltRun(workflow, run_id, closers)


def _paper_start(
    config: Mapping[str, Any] | None, pairs: list[str], timeframe: str,
    clock: Callable[[], datetime],
) -> dict[str, datetime]:  # fmt: skip
    """Per pair, the open time of the last history bar of a paper run: stored with the run, or
    the last bar closed now (a new run, or a pair added to the run)."""
    stored = dict((config or {}).get("paper", {}).get("start", {}))
    tf_ms = parse_timeframe(timeframe).ms
    now = clock()
    if now.tzinfo is None:
        raise UserInputError("the paper run's clock must return aware (UTC) times", where="clock")
    last_closed = (round(now.timestamp() * 1000) // tf_ms - 1) * tf_ms
    out: dict[str, datetime] = {}
    for pair in pairs:
        text = stored.get(pair)
        ts = datetime.fromisoformat(str(text)) if text else None
        if ts is None or ts.tzinfo is None:
            ts = datetime.fromtimestamp(last_closed / 1000, tz=UTC)
        out[pair] = ts
    return out


#: A recursive indicator (an EMA, Wilder's smoothing) remembers every bar since its seed; after
#: this many times its period the seed weighs less than ``(1 - 1/n)^(30 n) < e^-30`` (1e-13).
_CONVERGENCE_PERIODS = 30
#: Bars of history derived from a strategy's periods are capped here (set ``warmup_bars``).
_MAX_DERIVED_HISTORY = 50_000


def paper_history(wf: WorkflowSettings, predictor: Predictor) -> int:
    """Bars the paper predictor sees per decision (``history`` of the feed and the workflow).

    A backtest predicts every bar from ALL the bars before it; paper mode from the last
    ``history`` bars. They agree when the window is long enough for the predictor's indicators
    to forget where it starts: ``workflow.warmup_bars`` when set; else, for a strategy,
    :data:`_CONVERGENCE_PERIODS` times its longest period plus its volatility window; never
    fewer than a model's ``min_history`` nor the supervisor's snapshot.
    """
    model = _min_history(predictor)
    if wf.warmup_bars is not None:
        return max(SNAPSHOT_BARS, wf.warmup_bars, model)
    return max(SNAPSHOT_BARS, model, _strategy_history(predictor))


def _min_history(predictor: Predictor) -> int:
    model = getattr(predictor, "model", None)
    return int(getattr(model, "min_history", 0) or 0)


def _strategy_history(predictor: Predictor) -> int:
    """:data:`_CONVERGENCE_PERIODS` times the longest period of a strategy predictor (its
    integer parameters) plus its volatility window; 0 for another predictor."""
    params = getattr(predictor, "params", None)
    if getattr(predictor, "strategy", None) is None or not isinstance(params, Mapping):
        return 0
    periods = [int(v) for v in params.values() if isinstance(v, int) and not isinstance(v, bool)]
    vol_window = int(getattr(predictor, "vol_window", 0) or 0)
    longest = max(periods, default=0)
    return min(_CONVERGENCE_PERIODS * longest + vol_window + 1, _MAX_DERIVED_HISTORY)
