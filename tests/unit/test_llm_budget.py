"""Budgets: session and agent limits on tokens and dollars, unknown prices, thread safety."""

from __future__ import annotations

import threading

import pytest

from morningstar.config import LLMBudget
from morningstar.errors import LLMBudgetExceeded
from morningstar.llm.budget import BudgetBook
from morningstar.llm.types import Usage


def _usage(tokens: int) -> Usage:
    return Usage(input_tokens=tokens - tokens // 2, output_tokens=tokens // 2)


def test_no_limits_never_refuse() -> None:
    book = BudgetBook(LLMBudget(), {})
    for _ in range(3):
        book.check("supervisor", price_known=False)
        book.charge("supervisor", _usage(1_000_000), None)
    snap = book.snapshot()
    assert snap["session"]["tokens"] == 3_000_000
    assert snap["session"]["remaining_tokens"] is None
    assert snap["session"]["unpriced_calls"] == 3


@pytest.mark.parametrize(
    ("session", "agents", "caller", "charges", "message", "hint"),
    [
        (
            LLMBudget(tokens=1000),
            {},
            "supervisor",
            [(600, 0.0), (400, 0.0)],
            "the session LLM budget is spent: 1,000 of 1,000 tokens (caller supervisor)",
            "raise llm.budget.tokens",
        ),
        (
            LLMBudget(usd=0.01),
            {},
            "manual",
            [(10, 0.004), (10, 0.007)],
            "the session LLM budget is spent: $0.0110 of $0.0100 (caller manual)",
            "raise llm.budget.usd",
        ),
        (
            LLMBudget(),
            {"strategist": LLMBudget(tokens=50)},
            "strategist.critic",
            [(60, 0.0)],
            "the agent strategist LLM budget is spent: 60 of 50 tokens (caller strategist.critic)",
            "raise llm.agent_budgets.strategist.tokens",
        ),
        (
            LLMBudget(usd=100),
            {"strategist": LLMBudget(usd=0.5)},
            "strategist",
            [(10, 0.25), (10, 0.25)],
            "the agent strategist LLM budget is spent: $0.5000 of $0.5000 (caller strategist)",
            "raise llm.agent_budgets.strategist.usd",
        ),
    ],
    ids=["session tokens", "session usd", "agent tokens (sub-caller)", "agent usd"],
)
def test_spent_budget_refuses(
    session: LLMBudget,
    agents: dict[str, LLMBudget],
    caller: str,
    charges: list[tuple[int, float]],
    message: str,
    hint: str,
) -> None:
    book = BudgetBook(session, agents)
    for tokens, usd in charges:
        book.check(caller, price_known=True)
        book.charge(caller, _usage(tokens), usd)
    with pytest.raises(LLMBudgetExceeded) as info:
        book.check(caller, price_known=True)
    text = str(info.value)
    assert message in text
    assert hint in text
    assert "\n" not in text
    assert info.value.status == "budget"


def test_zero_limit_refuses_the_first_call() -> None:
    with pytest.raises(LLMBudgetExceeded, match="0 of 0 tokens"):
        BudgetBook(LLMBudget(tokens=0), {}).check("manual", price_known=True)


@pytest.mark.parametrize(
    ("caller", "covered"),
    [
        ("strategist", True),
        ("strategist.critic", True),
        ("strategist2", False),
        ("supervisor", False),
    ],
)
def test_agent_budget_covers_its_sub_callers(caller: str, covered: bool) -> None:
    book = BudgetBook(LLMBudget(), {"strategist": LLMBudget(tokens=10)})
    book.charge(caller, _usage(10), 0.0)
    assert (book.snapshot()["agents"]["strategist"]["tokens"] == 10) is covered
    if covered:
        with pytest.raises(LLMBudgetExceeded):
            book.check(caller, price_known=True)
    book.check("other", price_known=True)  # other callers are not stopped by the agent budget


def test_unknown_price_refused_only_under_a_usd_budget() -> None:
    BudgetBook(LLMBudget(tokens=100), {}).check("manual", price_known=False)
    BudgetBook(LLMBudget(), {"strategist": LLMBudget(usd=1)}).check("supervisor", price_known=False)
    with pytest.raises(LLMBudgetExceeded) as info:
        BudgetBook(LLMBudget(usd=1), {}).check("manual", price_known=False, model="gpt-9")
    assert (
        "model 'gpt-9' has no price in the price table, so the session USD budget cannot be enforced"
        in str(info.value)
    )
    assert "remove llm.budget.usd" in str(info.value)
    with pytest.raises(
        LLMBudgetExceeded, match="the agent strategist USD budget cannot be enforced"
    ):
        BudgetBook(LLMBudget(), {"strategist": LLMBudget(usd=1)}).check(
            "strategist.a", price_known=False
        )


def test_absent_usage_charges_the_estimate() -> None:
    book = BudgetBook(LLMBudget(tokens=1000), {"supervisor": LLMBudget()})
    book.charge("supervisor", Usage(), None, estimated_tokens=120)
    book.charge("supervisor", _usage(30), 0.001, estimated_tokens=999)  # reported: no estimate
    book.charge("supervisor", Usage(), 0.0)  # no usage, no estimate: counted, 0 tokens
    snap = book.snapshot()
    session = snap["session"]
    assert (session["tokens"], session["estimated_tokens"], session["calls"]) == (150, 120, 3)
    assert session["unpriced_calls"] == 1
    assert session["usd"] == pytest.approx(0.001)
    assert session["remaining_tokens"] == 850
    assert snap["agents"]["supervisor"]["limit_tokens"] is None
    assert snap["callers"]["supervisor"]["tokens"] == 150


def test_snapshot_remaining_never_negative() -> None:
    book = BudgetBook(LLMBudget(tokens=10, usd=0.1), {})
    book.charge("manual", _usage(50), 0.5)
    session = book.snapshot()["session"]
    assert (session["remaining_tokens"], session["remaining_usd"]) == (0, 0.0)
    assert (session["limit_tokens"], session["limit_usd"]) == (10, 0.1)


def test_negative_charges_are_refused() -> None:
    book = BudgetBook(LLMBudget(), {})
    with pytest.raises(ValueError, match=">= 0"):
        book.charge("manual", _usage(10), -0.1)
    with pytest.raises(ValueError, match=">= 0"):
        book.charge("manual", Usage(), None, estimated_tokens=-5)


def test_many_threads_charging() -> None:
    book = BudgetBook(LLMBudget(tokens=10**12), {"agent": LLMBudget(usd=10**6)})
    threads_n, calls = 16, 500
    start = threading.Barrier(threads_n)

    def work(i: int) -> None:
        caller = "agent.a" if i % 2 else "agent.b"
        start.wait()
        for _ in range(calls):
            book.check(caller, price_known=True)
            book.charge(caller, Usage(input_tokens=3, output_tokens=4), 0.25)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = book.snapshot()
    total = threads_n * calls
    assert snap["session"]["calls"] == total
    assert snap["session"]["tokens"] == 7 * total
    assert snap["agents"]["agent"]["usd"] == 0.25 * total  # exact: quarters add exactly
    assert snap["callers"]["agent.a"]["calls"] + snap["callers"]["agent.b"]["calls"] == total
