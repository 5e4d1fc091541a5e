"""Application services of the trading workflow (``morningstar run``; the main job).

* :func:`run_backtest` — the workflow in backtest mode over stored bars, persisted, with its
  HTML report (trades annotated by decision and LLM verdict);
* :func:`run_ablation` — the same backtest with the supervisor on and off: trades vetoed or
  reduced, and the difference in P&L, drawdown and Sharpe;
* :func:`run_paper` — paper mode on live closed bars, until stopped; resumable by run id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import ValidationError

from morningstar.config import Settings
from morningstar.errors import MorningstarError, StorageError, UserInputError
from morningstar.services.data import pair_arg, timeframe_arg

if TYPE_CHECKING:
    from morningstar.data.parquet_store import OHLCVStore
    from morningstar.llm.gateway import Gateway
    from morningstar.store.db import Database
    from morningstar.workflow.build import BuiltRun
    from morningstar.workflow.runner import RunSummary

__all__ = [
    "AblationOutcome",
    "RunOutcome",
    "load_frames",
    "run_ablation",
    "run_backtest",
    "run_paper",
    "with_overrides",
]

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """A finished run: its summary, metrics, P&L and where its report is."""

    summary: RunSummary
    run_id: str
    metrics: dict[str, Any]
    pnl: dict[str, Any]
    trades: list[dict[str, Any]]
    report: Path | None = None
    equity: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))


@dataclass
class AblationOutcome:
    """The same backtest with the supervisor on and off."""

    on: RunOutcome
    off: RunOutcome
    comparison: dict[str, Any]
    report: Path | None = None


def with_overrides(
    settings: Settings,
    *,
    supervisor: bool | None = None,
    llm_cache: str | None = None,
    predictor: str | None = None,
    venue: str | None = None,
    pairs: Sequence[str] | None = None,
    timeframe: str | None = None,
    workflow: Mapping[str, Any] | None = None,
) -> Settings:
    """``settings`` with the command line's overrides (validated like the config file);
    ``workflow`` is merged into the ``workflow`` section (nested sections key by key)."""
    data = settings.model_dump()
    wf = data["workflow"]
    for key, value in (workflow or {}).items():
        if isinstance(value, Mapping):
            wf[key] = {**wf[key], **value}
        else:
            wf[key] = value
    if supervisor is not None:
        wf["supervisor"]["enabled"] = supervisor
    if predictor is not None:
        wf["predictor"] = predictor
    if venue is not None:
        wf["venue"] = venue
    if pairs:
        wf["pairs"] = list(pairs)
    if timeframe is not None:
        wf["timeframe"] = timeframe
    if llm_cache is not None:
        data["llm"]["cache_mode"] = llm_cache
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:  # an option of the command line
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        raise UserInputError(f"{message}", where=where,
                             hint="see `morningstar run --help`") from None  # fmt: skip


def load_frames(
    store: OHLCVStore, venue: str, pairs: Sequence[str], timeframe: str
) -> dict[str, pd.DataFrame]:
    """The stored bars of each pair (the whole history: earlier bars warm the predictor up).

    Raises:
        UserInputError: no pair given, a bad pair or timeframe.
        DataNotFoundError: a pair is not stored for that venue and timeframe.
    """
    if not pairs:
        raise UserInputError("no pair to run", where="workflow.pairs",
                             hint="pass --pair BTC/USDT (repeat it) or set workflow.pairs")  # fmt: skip
    tf = timeframe_arg(timeframe)
    return {str(pair_arg(p)): store.load(venue, pair_arg(p), tf) for p in pairs}


def _outcome(db: Database, built: BuiltRun, summary: RunSummary) -> RunOutcome:
    from morningstar.monitoring import MonitoringService

    service = MonitoringService(db)
    perf = service.get_performance_metrics(built.run_id)
    metrics = dict(perf.get("inception") or {})
    pnl = service.get_latest_pnl(built.run_id)
    trades = list(reversed(service.get_recent_trades(1_000_000, built.run_id)["trades"]))
    curve = service.store.equity(built.run_id)
    equity = _equity_series(curve)
    return RunOutcome(summary, built.run_id, metrics, pnl, trades, equity=equity)


def _equity_series(curve: Sequence[tuple[Any, ...]]) -> pd.Series:
    """The account's equity per bar time (:func:`bar_equity`: the last cycle of a bar time)."""
    from morningstar.monitoring.performance import bar_equity

    points = bar_equity(curve)
    if not points:
        return pd.Series(dtype=float)
    index = pd.DatetimeIndex([t for t, _ in points], name="ts")
    return pd.Series([e for _, e in points], index=index, name="equity", dtype=float)


def run_backtest(
    settings: Settings,
    db: Database,
    frames: Mapping[str, pd.DataFrame],
    *,
    calendar: str = "crypto",
    start: str | None = None,
    end: str | None = None,
    out: Path | None = None,
    gateway: Gateway | None = None,
    on_built: Callable[[BuiltRun], None] | None = None,
) -> RunOutcome:
    """Run the workflow in backtest mode over ``frames`` and write its report into ``out``.

    Raises:
        UserInputError / DataNotFoundError: bad data or range.
        StrategyError / ConfigError: a bad predictor.

    A replay-cache miss of the supervisor halts the run (``summary.halted`` says why; the run
    is stored as failed).
    """
    from morningstar.workflow.build import build_backtest

    built = build_backtest(settings, frames, db=db, calendar=calendar, start=start, end=end,
                           gateway=gateway)  # fmt: skip
    outcome = _run_built(db, built, on_built)
    if out is not None:
        outcome.report = _write_report(out, settings, frames, outcome, start, end)
    return outcome


def _run_built(
    db: Database, built: BuiltRun, on_built: Callable[[BuiltRun], None] | None
) -> RunOutcome:
    """Run ``built`` to its end, close its parts, store how it ended, read back its outcome."""
    from morningstar.store.workflow import WorkflowStore

    store = WorkflowStore(db)
    if on_built is not None:
        on_built(built)
    try:
        summary = built.workflow.run()
    except BaseException as exc:  # the run is marked failed, with the reason, then re-raised
        reason = exc.one_line() if isinstance(exc, MorningstarError) else repr(exc)
        try:
            store.finish_run(built.run_id, "failed", reason[:1_000])
        except Exception:  # the store itself may be what failed
            log.exception("could not mark run %s as failed", built.run_id)
        raise
    finally:
        built.close()
    status = "failed" if summary.halted else ("stopped" if summary.stopped else "finished")
    try:
        store.finish_run(built.run_id, status, summary.halted)
    except StorageError as exc:
        log.error("could not store how run %s ended (%s): %s", built.run_id, status,
                  exc.one_line())  # fmt: skip
    return _outcome(db, built, summary)


def _replayed(frames: Mapping[str, pd.DataFrame], start: str | None, end: str | None
              ) -> dict[str, pd.DataFrame]:  # fmt: skip
    out = {}
    for pair, frame in frames.items():
        index = pd.DatetimeIndex(frame.index)
        keep = pd.Series(True, index=index)
        if start is not None:
            keep &= index >= pd.Timestamp(start, tz="UTC")
        if end is not None:
            keep &= index < pd.Timestamp(end, tz="UTC")
        out[pair] = frame[keep.to_numpy()]
    return out


def _write_report(
    out: Path, settings: Settings, frames: Mapping[str, pd.DataFrame], outcome: RunOutcome,
    start: str | None, end: str | None, ablation: Mapping[str, Any] | None = None,
    off: RunOutcome | None = None,
) -> Path:  # fmt: skip
    from morningstar.workflow.report import render_report

    out.mkdir(parents=True, exist_ok=True)
    wf = settings.workflow
    title = (f"Morningstar {outcome.summary.mode}: {wf.predictor} on {', '.join(frames)} "
             f"{wf.timeframe}, supervisor {'on' if wf.supervisor.enabled else 'off'}")  # fmt: skip
    page = render_report(
        title=title, frames=_replayed(frames, start, end), equity=outcome.equity,
        trades=outcome.trades, summary=outcome.summary.as_dict(), metrics=outcome.metrics,
        ablation=ablation, ablation_equity=None if off is None else off.equity,
    )  # fmt: skip
    path = out / f"report-{outcome.run_id[:12]}.html"
    path.write_text(page, encoding="utf-8")
    return path


def _sharpe(outcome: RunOutcome) -> float:
    value = outcome.metrics.get("sharpe")
    return float(value) if value is not None else math.nan


def run_ablation(
    settings: Settings,
    db: Database,
    frames: Mapping[str, pd.DataFrame],
    *,
    calendar: str = "crypto",
    start: str | None = None,
    end: str | None = None,
    out: Path | None = None,
    gateway: Gateway | None = None,
) -> AblationOutcome:
    """The same backtest with the supervisor on, then off; what the supervisor changed.

    ``comparison``: entries the supervisor vetoed / reduced / abstained on, the trades of each
    run, and the difference (on − off) in total P&L, max drawdown and Sharpe.
    """
    on = run_backtest(with_overrides(settings, supervisor=True), db, frames, calendar=calendar,
                      start=start, end=end, gateway=gateway)  # fmt: skip
    off = run_backtest(with_overrides(settings, supervisor=False), db, frames,
                       calendar=calendar, start=start, end=end)  # fmt: skip

    def total(o: RunOutcome) -> float:
        return float(o.pnl.get("total", {}).get("total_pnl", math.nan))

    def maxdd(o: RunOutcome) -> float:
        return float(o.metrics.get("max_drawdown", math.nan))

    comparison = {
        "entries proposed (supervisor on)": on.summary.supervised,
        "vetoed": on.summary.vetoed,
        "reduced": on.summary.reduced,
        "abstained": on.summary.abstained,
        "trades (on / off)": f"{len(on.trades)} / {len(off.trades)}",
        "total P&L on": total(on),
        "total P&L off": total(off),
        "P&L difference (on - off)": total(on) - total(off),
        "max drawdown on": maxdd(on),
        "max drawdown off": maxdd(off),
        "drawdown difference (on - off)": maxdd(on) - maxdd(off),
        "Sharpe on": _sharpe(on),
        "Sharpe off": _sharpe(off),
        "Sharpe difference (on - off)": _sharpe(on) - _sharpe(off),
        "run ids (on / off)": f"{on.run_id} / {off.run_id}",
    }
    outcome = AblationOutcome(on, off, comparison)
    if out is not None:
        on_settings = with_overrides(settings, supervisor=True)
        outcome.report = _write_report(out, on_settings, frames, on, start, end,
                                       ablation=comparison, off=off)  # fmt: skip
    return outcome


def run_paper(
    settings: Settings,
    db: Database,
    *,
    run_id: str | None = None,
    calendar: str = "crypto",
    exchange: Any | None = None,
    on_built: Callable[[BuiltRun], None] | None = None,
) -> RunOutcome:
    """Paper mode until stopped (``on_built`` gets the run, e.g. to wire signal handlers to
    ``workflow.request_stop``); started again with the same ``run_id`` it resumes.

    Raises:
        UserInputError: no pairs, or an unknown venue.
    """
    from morningstar.workflow.build import build_paper, new_run_id

    wf = settings.workflow
    if exchange is None:
        from morningstar.exchange import make_exchange

        conf = settings.exchanges.get(wf.venue)
        exchange = make_exchange(
            wf.venue,
            api_base_url=None if conf is None else conf.api_base_url,
            timeout_ms=10_000 if conf is None else conf.timeout_ms,
        )  # fmt: skip
    built = build_paper(settings, db=db, run_id=run_id or new_run_id(), exchange=exchange,
                        calendar=calendar)  # fmt: skip
    return _run_built(db, built, on_built)
