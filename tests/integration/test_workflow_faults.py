"""Faults the trading workflow meets, each with its recorded outcome (issue 6, "Errors").

Next to ``test_workflow_backtest.py`` (a predictor failing on some bars, a broker failing
transiently, an LLM timing out, a store failing, a decide step crashing): the broker refusing
orders (under the ``skip`` and ``halt`` execute policies), the LLM answering garbage, and a gap in
the bars. Real parts: the simulated broker's fill model, the gateway with a scripted provider,
SQLite.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from morningstar.core.engine import Costs
from morningstar.core.orders import Order
from morningstar.exchange.broker import OrderAck
from morningstar.store import open_database
from morningstar.store.workflow import WorkflowStore
from morningstar.workflow.build import build_backtest
from tests.fakes.fake_broker import FakeBroker
from tests.fakes.scripted_llm import ScriptedLLM, reply
from tests.integration.test_workflow_backtest import PAIR, WARM, _bars, gateway, settings

pytestmark = pytest.mark.shared_data


class _RefusingBroker(FakeBroker):
    """Refuses every other entry (as an exchange refuses an order it cannot fund)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entries = 0

    def submit(self, order: Order) -> OrderAck:
        if order.role == "open":
            self.entries += 1
            if self.entries % 2:
                self.submitted.append(order)
                return OrderAck(order.client_order_id, "rejected", reason="insufficient balance")
        return super().submit(order)


@pytest.mark.parametrize("policy", ["skip", "halt"])
def test_refused_orders_are_stored_rejected_with_their_reason(
    shared_data: Path, tmp_path: Path, policy: str
) -> None:
    df = _bars(str(shared_data), 3_000)
    db = open_database(f"sqlite:///{tmp_path / 'refused.sqlite'}")
    cfg = settings(bracket_orders=True, errors={"execute": policy})
    run = build_backtest(cfg, {PAIR: df}, db=db)
    broker = _RefusingBroker(Costs(fee_bps=10, slippage_bps=5))
    run.workflow.p.broker = broker
    summary = run.workflow.run()
    run.close()
    store = WorkflowStore(db)
    orders = store.orders(run.run_id, limit=100_000)
    errors = store.errors(run.run_id)
    db.dispose()

    refused = [o for o in orders if o.status == "rejected"]
    assert refused and all(o.role == "open" for o in refused)
    assert len(refused) == (broker.entries + 1) // 2 == len(errors)
    for order, error in zip(refused, sorted(errors, key=lambda e: e.bar_ts), strict=True):
        assert error.step == "execute" and error.error_type == "OrderRejected"
        assert order.client_order_id in error.message and "insufficient balance" in error.message
    # a refused entry is not followed by its stop and target: nothing was left to protect
    refused_bars = {o.bar_ts for o in refused}
    assert not [o for o in orders if o.bar_ts in refused_bars and o.role != "open"]
    assert summary.orders == len(orders) == len(broker.submitted)
    if policy == "skip":  # refused, recorded, and the run goes on: the other entries trade
        assert {e.outcome for e in errors} == {"rejected"} and summary.halted is None
        roles = Counter((o.role, o.status) for o in orders)
        assert roles[("open", "filled")] == broker.entries // 2 > 5
    else:  # the first refusal halts the run, after persisting its cycle
        assert len(errors) == 1 and errors[0].outcome == "halted"
        assert summary.halted is not None and "insufficient balance" in summary.halted


def test_an_llm_answering_garbage_takes_the_abstain_path(shared_data: Path, tmp_path: Path) -> None:
    df = _bars(str(shared_data), 4_000)
    db = open_database(f"sqlite:///{tmp_path / 'garbage.sqlite'}")
    garbage = ScriptedLLM(default=reply('{"verdict": "approve", "confidence": "very'))  # cut off
    cfg = settings(supervisor={"enabled": True, "abstain": "skip"})
    run = build_backtest(cfg, {PAIR: df}, db=db, gateway=gateway(garbage), start=df.index[WARM])
    summary = run.workflow.run()
    run.close()
    store = WorkflowStore(db)
    errors = store.errors(run.run_id)
    cycle = store.last_supervised_cycle(run.run_id)
    entries = [f for f in store.fills(run.run_id, limit=100_000) if f.reason == "signal"]
    db.dispose()

    assert summary.supervised == summary.abstained > 0 and garbage.calls
    assert len(errors) == summary.abstained and {e.outcome for e in errors} == {"abstained"}
    assert all(e.step == "supervise" for e in errors)
    assert cycle is not None and cycle.llm_verdict == "abstain"
    assert cycle.supervision is not None and cycle.supervision.get("abstained")
    # abstain "skip": no new entry without a valid assessment (exits still happen)
    assert not [f for f in entries if f.side == "buy"]


def test_a_gap_in_the_bars_invents_no_cycle(shared_data: Path, tmp_path: Path) -> None:
    df = _bars(str(shared_data), 3_000)
    gapped = df.drop(df.index[1_200:1_260])  # five hours of bars missing
    db = open_database(f"sqlite:///{tmp_path / 'gap.sqlite'}")
    run = build_backtest(settings(), {PAIR: gapped}, db=db)
    summary = run.workflow.run()
    run.close()
    store = WorkflowStore(db)
    cycles = store.cycles(run.run_id)
    db.dispose()

    bars = [bar.bar_ts for row in cycles for bar in row.per_bar()]
    assert sorted(bars) == list(gapped.index) and summary.bars == len(gapped)
    assert summary.errors == 0 and summary.orders > 10
    # no span of quiet cycles runs across the gap
    first_after = gapped.index[1_200]
    assert any(row.bar_ts == first_after for row in cycles)
