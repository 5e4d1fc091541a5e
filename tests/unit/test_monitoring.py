"""The monitoring read model against the hand-built run of ``tests/workflow_scenario.py``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from morningstar.core import metrics
from morningstar.monitoring import (
    MonitoringService,
    get_equity_curve,
    get_last_llm_analysis,
    get_last_model_predictions,
    get_latest_pnl,
    get_open_positions,
    get_performance_metrics,
    get_recent_trades,
    get_system_status,
    round_trips,
)
from morningstar.store import Database, open_database
from morningstar.store.workflow import StoredFill, WorkflowStore
from tests.workflow_scenario import (
    BTC,
    EQUITY,
    ETH,
    O1,
    O2,
    OLD_RUN,
    RUN,
    STRATEGY,
    T0,
    fill_store,
    t,
)

NOW = T0 + timedelta(days=30)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'm.sqlite'}", now=lambda: NOW)
    fill_store(WorkflowStore(database))
    yield database
    database.dispose()


@pytest.fixture
def service(db: Database) -> MonitoringService:
    return MonitoringService(db)


def test_pnl_total_per_pair_and_per_strategy(service: MonitoringService) -> None:
    pnl = service.get_latest_pnl()
    assert pnl["run_id"] == RUN and pnl["as_of"] == t(5)
    total = pnl["total"]
    assert total["realized_pnl"] == pytest.approx(9.575)  # the ledger's, fees included
    assert total["unrealized_pnl"] == pytest.approx(5.0)
    assert total["total_pnl"] == pytest.approx(14.575)
    assert total["fees"] == pytest.approx(0.425)
    assert total["equity"] == pytest.approx(10_014.575)
    btc, eth = pnl["by_pair"][BTC], pnl["by_pair"][ETH]
    assert (btc["realized_pnl"], btc["unrealized_pnl"], btc["fees"], btc["trades"]) == (
        pytest.approx(19.78), pytest.approx(5.0), pytest.approx(0.22), 1,
    )  # fmt: skip
    assert btc["total_pnl"] == pytest.approx(24.78)
    assert (eth["realized_pnl"], eth["unrealized_pnl"], eth["trades"]) == (
        pytest.approx(-10.095), 0.0, 1,
    )  # fmt: skip
    strat = pnl["by_strategy"][STRATEGY]
    assert strat["realized_pnl"] == pytest.approx(9.685)  # closed trades: 19.78 - 10.095
    assert strat["unrealized_pnl"] == pytest.approx(5.0) and strat["trades"] == 2
    assert get_latest_pnl(service, OLD_RUN)["total"] is None  # no equity snapshot stored
    assert get_latest_pnl(service, "f" * 32)["run_id"] is None


def test_equity_curve_is_the_account_at_the_end_of_each_bar(service: MonitoringService) -> None:
    curve = service.get_equity_curve()
    assert [p["ts"] for p in curve["points"]] == [t(i) for i in range(6)]
    assert [p["equity"] for p in curve["points"]] == pytest.approx(EQUITY)
    assert curve["points"][3]["drawdown"] == pytest.approx(1 - 10_009.685 / 10_019.73)
    tail = get_equity_curve(service, since=t(4))["points"]
    assert [p["equity"] for p in tail] == pytest.approx(EQUITY[4:])
    assert len(service.get_equity_curve(limit=2)["points"]) == 2


def test_open_positions(db: Database) -> None:
    out = get_open_positions(db)
    assert out["run_id"] == RUN
    assert [(p["pair"], p["side"], p["quantity"], p["entry_price"], p["mark_price"],
             p["unrealized_pnl"], p["stop_loss"], p["opened_at"]) for p in out["positions"]] == [
        (BTC, 1, 1.0, 110.0, 115.0, 5.0, 100.0, t(4))
    ]  # fmt: skip


def test_recent_trades_are_round_trips_with_verdict_and_exit_reason(
    service: MonitoringService,
) -> None:
    trades = get_recent_trades(service, 10)["trades"]
    assert [tr["pair"] for tr in trades] == [ETH, BTC]  # newest first
    eth, btc = trades
    assert (btc["side"], btc["quantity"], btc["entry_price"], btc["exit_price"]) == (
        1, 1.0, 100.0, 120.0,
    )  # fmt: skip
    assert btc["gross_pnl"] == pytest.approx(20.0) and btc["fees"] == pytest.approx(0.22)
    assert btc["pnl"] == pytest.approx(19.78) and btc["return_pct"] == pytest.approx(19.78)
    assert (btc["exit_reason"], btc["llm_verdict"], btc["strategy"]) == (
        "take_profit", "approve", STRATEGY,
    )  # fmt: skip
    assert (btc["entry_time"], btc["exit_time"], btc["entry_order_id"]) == (
        t(1), t(2), O1.client_order_id,
    )  # fmt: skip
    assert eth["pnl"] == pytest.approx(-10.095) and eth["return_pct"] == pytest.approx(-10.095)
    assert (eth["exit_reason"], eth["llm_verdict"], eth["entry_order_id"]) == (
        "stop_loss", "reduce", O2.client_order_id,
    )  # fmt: skip
    assert len(service.get_recent_trades(1)["trades"]) == 1
    with pytest.raises(ValueError):
        service.get_recent_trades(0)


def _fill(i: int, side: str, qty: float, price: float, fee: float, reason: str = "signal"
          ) -> StoredFill:  # fmt: skip
    return StoredFill(f"f{i}", f"o{i}", RUN, "c", BTC, side, qty, price, fee, t(i), reason)


def test_round_trips_scale_in_partial_exit_and_flip() -> None:
    fills = [
        _fill(0, "buy", 1.0, 100.0, 1.0),
        _fill(1, "buy", 1.0, 110.0, 1.0),  # scale in: entry 105
        _fill(2, "sell", 0.5, 120.0, 0.5),  # partial exit
        _fill(3, "sell", 2.5, 130.0, 2.5),  # closes 1.5, opens a 1.0 short
        _fill(4, "buy", 1.0, 125.0, 1.0, "stop_loss"),
    ]
    first, second = round_trips(fills)
    assert (first.side, first.quantity, first.entry_price) == (1, 2.0, 105.0)
    assert first.exit_price == pytest.approx((0.5 * 120 + 1.5 * 130) / 2.0)
    assert first.gross_pnl == pytest.approx(0.5 * 15 + 1.5 * 25)
    assert first.fees == pytest.approx(1 + 1 + 0.5 + 1.5)
    assert (second.side, second.quantity, second.entry_price, second.exit_price) == (
        -1, 1.0, 130.0, 125.0,
    )  # fmt: skip
    assert second.pnl == pytest.approx(5.0 - 1.0 - 1.0) and second.exit_reason == "stop_loss"
    assert round_trips(fills[:2]) == []  # still open


def test_last_predictions_and_llm_analysis(service: MonitoringService) -> None:
    preds = get_last_model_predictions(service)["predictions"]
    assert set(preds) == {BTC, ETH}
    assert preds[BTC]["bar_ts"] == t(5) and preds[BTC]["prediction"]["confidence"] == 0.55
    assert preds[ETH]["strategy"] == STRATEGY
    analysis = get_last_llm_analysis(service)["analysis"]
    assert (analysis["pair"], analysis["bar_ts"], analysis["verdict"]) == (BTC, t(3), "approve")
    assert analysis["supervision"]["coherence"] == 0.8
    assert analysis["final"]["action"] == "open"
    assert get_last_llm_analysis(service, OLD_RUN)["analysis"] is None


def test_system_status(db: Database) -> None:
    status = get_system_status(MonitoringService(db, now=lambda: NOW + timedelta(minutes=30)))
    assert status["running"] == 1 and [r["run_id"] for r in status["runs"]] == [RUN]
    run = status["runs"][0]
    assert run["last_cycle"][BTC]["bar_ts"] == t(5) and run["risk_state"] == "active"
    assert status["errors_last_hour"] == 1
    assert status["recent_errors"][0]["error_type"] == "LLMTimeoutError"
    assert set(status["process"]) == {"cpu_percent", "memory_percent", "process_rss_mb", "uptime"}
    later = MonitoringService(db, now=lambda: NOW + timedelta(hours=2)).get_system_status()
    assert later["errors_last_hour"] == 0


def _hand_sharpe(r: np.ndarray, ppy: float) -> float:
    return float(r.mean() / r.std(ddof=1) * math.sqrt(ppy))


def test_performance_metrics_since_inception_and_rolling(service: MonitoringService) -> None:
    perf = get_performance_metrics(service, window=3)
    assert perf["periods_per_year"] == 8760.0  # 1h bars, crypto calendar
    eq = np.asarray(EQUITY)
    r = eq[1:] / eq[:-1] - 1.0
    inc = perf["inception"]
    assert inc["bars"] == 6 and inc["trades"] == 2
    assert inc["total_return"] == pytest.approx(EQUITY[-1] / EQUITY[0] - 1.0)
    assert inc["sharpe"] == pytest.approx(_hand_sharpe(r, 8760.0))
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    assert inc["sortino"] == pytest.approx(r.mean() * 8760 / (downside * math.sqrt(8760)))
    assert inc["sortino"] == pytest.approx(metrics.sortino(r, 8760.0))
    assert inc["max_drawdown"] == pytest.approx(10_009.575 / 10_019.73 - 1.0)
    assert inc["win_rate"] == 0.5
    assert inc["profit_factor"] == pytest.approx(19.78 / 10.095)
    roll = perf["rolling"]
    r3 = eq[3:][1:] / eq[3:][:-1] - 1.0
    assert roll["bars"] == 3 and roll["sharpe"] == pytest.approx(_hand_sharpe(r3, 8760.0))
    assert (roll["trades"], roll["win_rate"], roll["profit_factor"]) == (1, 0.0, 0.0)
    old = service.get_performance_metrics(OLD_RUN)
    assert old["periods_per_year"] == 365.0 and old["inception"]["sharpe"] is None  # no bars


def test_runs_and_one_run(service: MonitoringService) -> None:
    assert [r["run_id"] for r in service.list_runs()] == [RUN, OLD_RUN]
    one = service.get_run(RUN)
    assert one is not None and one["cycles"] == 12
    assert one["account"]["equity"] == pytest.approx(EQUITY[-1])
    assert one["last_cycles"][ETH]["bar_ts"] == t(5)
    assert service.get_run("f" * 32) is None


def test_round_trips_keep_the_brokers_order_within_a_bar() -> None:
    """An entry filled at a bar's open and its stop filled inside the same bar share the time:
    the stop's id sorting first must not turn them into a short closed by the entry."""
    entry = StoredFill("ms-ffff-o-f", "ms-ffff-o", RUN, "c", BTC, "buy", 1.0, 100.0, 0.1, t(1),
                       "signal", position=0)  # fmt: skip
    stop = StoredFill("ms-0000-s-f", "ms-0000-s", RUN, "c", BTC, "sell", 1.0, 98.0, 0.1, t(1),
                      "stop_loss", position=1)  # fmt: skip
    assert stop.fill_id < entry.fill_id
    (trade,) = round_trips([stop, entry])
    assert (trade.side, trade.entry_price, trade.exit_price) == (1, 100.0, 98.0)
    assert trade.exit_reason == "stop_loss" and trade.entry_order_id == "ms-ffff-o"
