"""The monitoring read model: P&L, equity, positions, trades, predictions, LLM analyses, status.

:class:`MonitoringService` reads the workflow's tables through
:class:`~morningstar.store.workflow.WorkflowStore` only (it never writes). Every method taking a
``run_id`` reads the latest run (the most recently started one) when it is ``None``, and returns
plain JSON-friendly values (dicts, lists, floats, aware datetimes); a run that does not exist
reads as empty (``run_id`` ``None`` in the result). The module-level functions with the
mission's names (:func:`get_latest_pnl`, ...) take a service or a database.

Units: money in the account's quote currency; ``drawdown`` a fraction >= 0 as the workflow
reports it; ``max_drawdown`` a negative fraction (empyrical's sign); times aware UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from morningstar.llm.monitor.system import SystemProbe
from morningstar.monitoring.performance import annualisation, bar_equity, performance
from morningstar.monitoring.trades import RoundTrip, round_trips
from morningstar.store.db import Database
from morningstar.store.workflow import WorkflowRun, WorkflowStore

__all__ = [
    "DEFAULT_WINDOW",
    "MonitoringService",
    "get_equity_curve",
    "get_last_llm_analysis",
    "get_last_model_predictions",
    "get_latest_pnl",
    "get_open_positions",
    "get_performance_metrics",
    "get_recent_trades",
    "get_system_status",
]

logger = logging.getLogger(__name__)

#: Bars of the rolling block of :meth:`MonitoringService.get_performance_metrics` by default.
DEFAULT_WINDOW = 720
#: How far back :meth:`MonitoringService.get_system_status` counts errors.
ERROR_WINDOW = timedelta(hours=1)


def _run_dict(run: WorkflowRun) -> dict[str, Any]:
    """The run's fields without its config (which may be large), pairs as a list."""
    data = {f.name: getattr(run, f.name) for f in fields(run) if f.name != "config"}
    data["pairs"] = list(run.pairs)
    return data


class MonitoringService:
    """Read-only views of the workflow's runs for the API, the dashboard and the alerts.

    Args:
        db: the database the workflow writes to.
        now: clock of the "last hour" of :meth:`get_system_status` (default: ``db.now``).
        probe: the process probe (CPU, memory, uptime); one is built when ``None``.
    """

    def __init__(
        self,
        db: Database,
        *,
        now: Callable[[], datetime] | None = None,
        probe: SystemProbe | None = None,
    ) -> None:
        self.store = WorkflowStore(db)
        self._now = now if now is not None else db.now
        self._probe = probe

    # -- runs -----------------------------------------------------------------------------

    def _resolve(self, run_id: str | None) -> WorkflowRun | None:
        if run_id is None:
            return self.store.latest_run()
        return self.store.get_run(run_id)

    def list_runs(
        self, *, status: str | None = None, mode: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Runs, newest first (see :meth:`WorkflowStore.runs`)."""
        return [_run_dict(r) for r in self.store.runs(status=status, mode=mode, limit=limit)]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its latest account and the last cycle per pair, or ``None``."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        out = _run_dict(run)
        last = self.store.last_cycles(run_id)
        out["last_cycles"] = {
            pair: {"cycle_id": c.cycle_id, "bar_ts": c.bar_ts, "persisted_at": c.persisted_at,
                   "action": c.action, "llm_verdict": c.llm_verdict, "risk_state": c.risk_state}
            for pair, c in last.items()
        }  # fmt: skip
        out["account"] = self._account(run_id)
        return out

    def _account(self, run_id: str) -> dict[str, Any] | None:
        return self.store.last_account(run_id)

    # -- P&L and equity -------------------------------------------------------------------

    def _trades(self, run_id: str) -> list[RoundTrip]:
        return round_trips(self.store.fills(run_id), self.store.order_origins(run_id))

    def get_latest_pnl(self, run_id: str | None = None) -> dict[str, Any]:
        """Realised and unrealised P&L of a run: total, per pair and per strategy.

        ``total`` comes from the run's latest equity snapshot (``realized_pnl`` fees included,
        as the ledger reports it); per pair and per strategy, ``realized_pnl`` is the sum of
        the closed round trips' net P&L (fees included), ``unrealized_pnl`` the open
        positions' (fees excluded), ``fees`` the closed trades' fees, ``trades`` their count.
        """
        run = self._resolve(run_id)
        if run is None:
            return {"run_id": None, "as_of": None, "total": None, "by_pair": {},
                    "by_strategy": {}}  # fmt: skip
        trades = self._trades(run.run_id)
        positions = self.store.positions(run.run_id)
        account = self._account(run.run_id)
        by_pair: dict[str, dict[str, Any]] = {p: _zero() for p in run.pairs}
        by_strategy: dict[str, dict[str, Any]] = {}
        for t in trades:
            for bucket in (
                by_pair.setdefault(t.pair, _zero()),
                by_strategy.setdefault(t.strategy or run.strategy, _zero()),
            ):
                bucket["realized_pnl"] += t.pnl
                bucket["fees"] += t.fees
                bucket["trades"] += 1  # fmt: skip
        for p in positions:
            for bucket in (
                by_pair.setdefault(p.pair, _zero()),
                by_strategy.setdefault(run.strategy, _zero()),
            ):
                bucket["unrealized_pnl"] += p.unrealized_pnl  # fmt: skip
        for bucket in (*by_pair.values(), *by_strategy.values()):
            bucket["total_pnl"] = bucket["realized_pnl"] + bucket["unrealized_pnl"]
        total = None
        if account is not None:
            total = {
                "realized_pnl": account["realized_pnl"],
                "unrealized_pnl": account["unrealized_pnl"],
                "total_pnl": account["realized_pnl"] + account["unrealized_pnl"],
                "fees": account["fees"],
                "equity": account["equity"], "cash": account["cash"],
                "drawdown": account["drawdown"],
            }  # fmt: skip
        return {
            "run_id": run.run_id, "as_of": None if account is None else account["bar_ts"],
            "total": total, "by_pair": by_pair, "by_strategy": by_strategy,
        }  # fmt: skip

    def get_equity_curve(
        self, run_id: str | None = None, *, since: datetime | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """The account at the end of each bar (the last cycle persisted for the bar).

        Args:
            run_id: the run (``None``: the latest).
            since: only bars opened at or after this time.
            limit: only the last ``limit`` points.

        Returns:
            ``{"run_id", "points": [{"ts", "equity", "cash", "realized_pnl",
            "unrealized_pnl", "drawdown", "risk_state"}, ...]}`` oldest first.
        """
        run = self._resolve(run_id)
        if run is None:
            return {"run_id": None, "points": []}
        last: dict[datetime, dict[str, Any]] = {}
        for ts, _seq, equity, cash, realized, unrealized, drawdown, risk in self.store.equity(
            run.run_id
        ):
            if since is not None and ts < since:
                continue
            last[ts] = {"ts": ts, "equity": equity, "cash": cash, "realized_pnl": realized,
                        "unrealized_pnl": unrealized, "drawdown": drawdown,
                        "risk_state": risk}  # fmt: skip
        points = [last[ts] for ts in sorted(last)]
        if limit is not None:
            points = points[-limit:] if limit > 0 else []
        return {"run_id": run.run_id, "points": points}

    def get_open_positions(self, run_id: str | None = None) -> dict[str, Any]:
        """The open positions of a run as of its latest marked cycle."""
        run = self._resolve(run_id)
        if run is None:
            return {"run_id": None, "positions": []}
        items = [
            {"pair": p.pair, "side": p.side, "quantity": p.quantity,
             "entry_price": p.entry_price, "mark_price": p.mark_price, "stop_loss": p.stop_loss,
             "take_profit": p.take_profit, "unrealized_pnl": p.unrealized_pnl,
             "opened_at": p.opened_at, "as_of": p.bar_ts, "strategy": run.strategy}
            for p in self.store.positions(run.run_id)
        ]  # fmt: skip
        return {"run_id": run.run_id, "positions": items}

    def get_recent_trades(self, limit: int = 50, run_id: str | None = None) -> dict[str, Any]:
        """The last ``limit`` round trips of a run, newest first (see :mod:`.trades`)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1; got {limit}")
        run = self._resolve(run_id)
        if run is None:
            return {"run_id": None, "trades": []}
        trades = self._trades(run.run_id)[-limit:]
        return {"run_id": run.run_id, "trades": [t.as_dict() for t in reversed(trades)]}

    # -- model and LLM --------------------------------------------------------------------

    def get_last_model_predictions(self, run_id: str | None = None) -> dict[str, Any]:
        """The last prediction per pair (with its cycle's bar time, strategy and action)."""
        run = self._resolve(run_id)
        if run is None:
            return {"run_id": None, "predictions": {}}
        out = {}
        for pair, c in self.store.last_cycles(run.run_id).items():
            out[pair] = {"cycle_id": c.cycle_id, "bar_ts": c.bar_ts, "strategy": c.strategy,
                         "prediction": c.prediction, "action": c.action}  # fmt: skip
        return {"run_id": run.run_id, "predictions": out}

    def get_last_llm_analysis(self, run_id: str | None = None) -> dict[str, Any]:
        """The latest cycle where the LLM supervisor was consulted (or abstained).

        Returns:
            ``{"run_id", "analysis": {"cycle_id", "pair", "bar_ts", "verdict", "supervision",
            "proposal", "final", "rejections"} | None}``.
        """
        run = self._resolve(run_id)
        if run is None:
            return {"run_id": None, "analysis": None}
        cycle = self.store.last_supervised_cycle(run.run_id)
        if cycle is None:
            return {"run_id": run.run_id, "analysis": None}
        decision = cycle.decision or {}
        return {
            "run_id": run.run_id,
            "analysis": {
                "cycle_id": cycle.cycle_id, "pair": cycle.pair, "bar_ts": cycle.bar_ts,
                "strategy": cycle.strategy, "verdict": cycle.llm_verdict,
                "supervision": cycle.supervision, "proposal": decision.get("proposal"),
                "final": decision.get("final"), "rejections": decision.get("rejections"),
            },
        }  # fmt: skip

    # -- status and metrics ---------------------------------------------------------------

    def get_system_status(self) -> dict[str, Any]:
        """Running runs (last cycle per pair, risk state), errors of the last hour, process.

        Returns:
            ``{"runs": [...], "running": n, "errors_last_hour": n, "recent_errors": [...],
            "process": {cpu_percent, memory_percent, process_rss_mb, uptime}, "as_of"}``.
        """
        now = self._now()
        since = now - ERROR_WINDOW
        runs = []
        for run in self.store.runs(status="running", limit=100):
            item = _run_dict(run)
            last = self.store.last_cycles(run.run_id)
            item["last_cycle"] = {
                pair: {"bar_ts": c.bar_ts, "persisted_at": c.persisted_at} for pair, c in
                last.items()
            }  # fmt: skip
            newest = max(last.values(), key=lambda c: c.seq, default=None)
            item["risk_state"] = None if newest is None else newest.risk_state
            runs.append(item)
        errors = self.store.errors(since=since, limit=10)
        if self._probe is None:
            self._probe = SystemProbe()
        return {
            "as_of": now,
            "running": len(runs),
            "runs": runs,
            "errors_last_hour": self.store.count_errors(since=since),
            "recent_errors": [
                {
                    "run_id": e.run_id,
                    "cycle_id": e.cycle_id,
                    "pair": e.pair,
                    "step": e.step,
                    "error_type": e.error_type,
                    "message": e.message,
                    "outcome": e.outcome,
                    "attempts": e.attempts,
                    "at": e.created_at,
                }
                for e in errors
            ],
            "process": self._probe.read(),
        }

    def get_performance_metrics(
        self, run_id: str | None = None, *, window: int | None = DEFAULT_WINDOW
    ) -> dict[str, Any]:
        """Sharpe, Sortino, max drawdown, win rate, profit factor since inception and over the
        last ``window`` bars (see :mod:`.performance`); annualised from the run's timeframe."""
        run = self._resolve(run_id)
        if run is None:
            return {"run_id": None, "timeframe": None, "periods_per_year": None,
                    "window": window, "inception": None, "rolling": None}  # fmt: skip
        curve = bar_equity(self.store.equity(run.run_id))
        out = performance(
            curve, self._trades(run.run_id), annualisation(run.timeframe, run.calendar), window
        )
        return {"run_id": run.run_id, "timeframe": run.timeframe, **out}


def _zero() -> dict[str, Any]:
    return {"realized_pnl": 0.0, "unrealized_pnl": 0.0, "total_pnl": 0.0, "fees": 0.0,
            "trades": 0}  # fmt: skip


def _service(source: MonitoringService | Database) -> MonitoringService:
    return source if isinstance(source, MonitoringService) else MonitoringService(source)


def get_latest_pnl(
    source: MonitoringService | Database, run_id: str | None = None
) -> dict[str, Any]:
    """:meth:`MonitoringService.get_latest_pnl` of a service or a database."""
    return _service(source).get_latest_pnl(run_id)


def get_equity_curve(
    source: MonitoringService | Database,
    run_id: str | None = None,
    *,
    since: datetime | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """:meth:`MonitoringService.get_equity_curve` of a service or a database."""
    return _service(source).get_equity_curve(run_id, since=since, limit=limit)


def get_open_positions(
    source: MonitoringService | Database, run_id: str | None = None
) -> dict[str, Any]:
    """:meth:`MonitoringService.get_open_positions` of a service or a database."""
    return _service(source).get_open_positions(run_id)


def get_recent_trades(
    source: MonitoringService | Database, limit: int = 50, run_id: str | None = None
) -> dict[str, Any]:
    """:meth:`MonitoringService.get_recent_trades` of a service or a database."""
    return _service(source).get_recent_trades(limit, run_id)


def get_last_model_predictions(
    source: MonitoringService | Database, run_id: str | None = None
) -> dict[str, Any]:
    """:meth:`MonitoringService.get_last_model_predictions` of a service or a database."""
    return _service(source).get_last_model_predictions(run_id)


def get_last_llm_analysis(
    source: MonitoringService | Database, run_id: str | None = None
) -> dict[str, Any]:
    """:meth:`MonitoringService.get_last_llm_analysis` of a service or a database."""
    return _service(source).get_last_llm_analysis(run_id)


def get_system_status(source: MonitoringService | Database) -> dict[str, Any]:
    """:meth:`MonitoringService.get_system_status` of a service or a database."""
    return _service(source).get_system_status()


def get_performance_metrics(
    source: MonitoringService | Database,
    run_id: str | None = None,
    *,
    window: int | None = DEFAULT_WINDOW,
) -> dict[str, Any]:
    """:meth:`MonitoringService.get_performance_metrics` of a service or a database."""
    return _service(source).get_performance_metrics(run_id, window=window)
