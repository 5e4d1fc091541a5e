"""Token and money budgets of the LLM gateway: one for the session, one per agent.

The session budget (``llm.budget``) covers every call of the process; an agent budget
(``llm.agent_budgets.<name>``) covers the callers named ``<name>`` and ``<name>.<anything>``
(``strategist`` covers ``strategist.critic``). Each budget may limit tokens (input + output),
US dollars, or both; an empty budget limits nothing.

The gateway calls :meth:`BudgetBook.check` before each call and :meth:`BudgetBook.charge`
after it. ``check`` refuses (:class:`~morningstar.errors.LLMBudgetExceeded`, no call made)
when a budget that applies is already spent (spent >= limit), and when a USD budget applies but
the model's price is unknown: an unpriced call cannot be counted against money, so it is refused
rather than made blindly.

Calls in flight: the check happens before each call and the charge after it, without a
reservation (the cost of a call is not known in advance). Concurrent calls can therefore
overshoot a budget by at most the cost of the calls already in flight when it ran out, which the
gateway's concurrency limit (``llm.max_concurrency``) bounds.

Calls whose usage the provider did not report are charged ``estimated_tokens`` (computed by the
caller, e.g. characters / 4 of prompt and answer) and counted as estimated; their USD cost, when
the caller cannot price them, is counted in ``unpriced_calls`` and adds nothing to ``usd``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from morningstar.config import LLMBudget
from morningstar.errors import LLMBudgetExceeded
from morningstar.llm.types import Usage

__all__ = ["BudgetBook", "Spend"]

_SESSION = "session"
#: Callers whose covering budgets are memoised (callers are a bounded set of names).
_MAX_CALLERS_MEMO = 1_024


@dataclass
class Spend:
    """What one budget or caller has spent so far (mutable; guarded by the book's lock)."""

    tokens: int = 0
    estimated_tokens: int = 0
    usd: float = 0.0
    calls: int = 0
    unpriced_calls: int = 0

    def add(self, tokens: int, estimated: int, usd: float | None) -> None:
        """Add one call."""
        self.tokens += tokens
        self.estimated_tokens += estimated
        self.calls += 1
        if usd is None:
            self.unpriced_calls += 1
        else:
            self.usd += usd

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return {
            "tokens": self.tokens,
            "estimated_tokens": self.estimated_tokens,
            "usd": self.usd,
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
        }


def _covers(key: str, caller: str) -> bool:
    return caller == key or caller.startswith(key + ".")


class BudgetBook:
    """Thread-safe accounts of the session and agent budgets.

    Args:
        session: the session budget (``llm.budget``).
        agents: agent budgets by name (``llm.agent_budgets``); see the module docstring for the
            callers each covers.
    """

    def __init__(self, session: LLMBudget, agents: Mapping[str, LLMBudget]) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, LLMBudget] = {_SESSION: session}
        self._agent_keys = sorted(agents)
        self._limits.update({f"agent:{k}": v for k, v in agents.items()})
        self._spent: dict[str, Spend] = {name: Spend() for name in self._limits}
        self._callers: dict[str, Spend] = {}
        self._covering: dict[str, tuple[str, ...]] = {}  # caller -> the budgets covering it

    def _budgets_for(self, caller: str) -> tuple[str, ...]:
        known = self._covering.get(caller)
        if known is None:
            known = (_SESSION, *(f"agent:{k}" for k in self._agent_keys if _covers(k, caller)))
            if len(self._covering) < _MAX_CALLERS_MEMO:  # callers are a bounded set of names
                self._covering[caller] = known
        return known

    @staticmethod
    def _label(budget: str) -> tuple[str, str]:
        """(``session`` / ``agent <name>``, config key path)."""
        if budget == _SESSION:
            return "session", "llm.budget"
        name = budget.removeprefix("agent:")
        return f"agent {name}", f"llm.agent_budgets.{name}"

    def check(self, caller: str, *, price_known: bool, model: str | None = None) -> None:
        """Refuse a call whose budgets are spent, before it is made.

        Args:
            caller: the request's caller.
            price_known: whether the call's cost can be computed (a priced or local model).
            model: the model, named in the message when its price is unknown.

        Raises:
            LLMBudgetExceeded: one line naming the budget (session or agent), spent vs limit and
                the config key to raise.
        """
        with self._lock:
            for budget in self._budgets_for(caller):
                limits = self._limits[budget]
                spent = self._spent[budget]
                label, key = self._label(budget)
                if limits.tokens is not None and spent.tokens >= limits.tokens:
                    raise LLMBudgetExceeded(
                        f"the {label} LLM budget is spent: {spent.tokens:,} of {limits.tokens:,} "
                        f"tokens (caller {caller})",
                        where=key,
                        hint=f"raise {key}.tokens in the config, or start a new session",
                    )
                if limits.usd is not None and spent.usd >= limits.usd:
                    raise LLMBudgetExceeded(
                        f"the {label} LLM budget is spent: ${spent.usd:.4f} of ${limits.usd:.4f} "
                        f"(caller {caller})",
                        where=key,
                        hint=f"raise {key}.usd in the config, or start a new session",
                    )
                if limits.usd is not None and not price_known:
                    named = f"model {model!r}" if model else "the model"
                    raise LLMBudgetExceeded(
                        f"{named} has no price in the price table, so the {label} USD budget "
                        f"cannot be enforced (caller {caller})",
                        where=key,
                        hint=f"add the model to llm/prices.yaml, or remove {key}.usd",
                    )

    def charge(
        self,
        caller: str,
        usage: Usage,
        cost_usd: float | None,
        *,
        estimated_tokens: int | None = None,
    ) -> None:
        """Count one finished call (or its partial usage) against every budget that covers it.

        Args:
            caller: the request's caller.
            usage: the reported tokens; when none were reported, ``estimated_tokens`` is charged
                and counted as estimated.
            cost_usd: the call's cost; None = unknown (counted in ``unpriced_calls``).
            estimated_tokens: the caller's estimate, used only when ``usage`` is absent.

        Raises:
            ValueError: a negative token count or cost.
        """
        if usage.reported:
            tokens, estimated = usage.total_tokens or 0, 0
        else:
            tokens = estimated = estimated_tokens or 0
        if tokens < 0 or (cost_usd is not None and cost_usd < 0):
            raise ValueError("token counts and costs must be >= 0")
        with self._lock:
            for budget in self._budgets_for(caller):
                self._spent[budget].add(tokens, estimated, cost_usd)
            self._callers.setdefault(caller, Spend()).add(tokens, estimated, cost_usd)

    def snapshot(self) -> dict[str, Any]:
        """Spend, limits and remaining amounts, as plain data.

        Returns:
            ``{"session": {...}, "agents": {name: {...}}, "callers": {caller: {...}}}``; a budget
            entry holds ``tokens``, ``estimated_tokens``, ``usd``, ``calls``,
            ``unpriced_calls``, ``limit_tokens``, ``limit_usd``, ``remaining_tokens`` and
            ``remaining_usd`` (None where there is no limit; never below 0); a caller entry
            holds the spend only.
        """
        with self._lock:
            budgets = {name: self._budget_view(name) for name in self._limits}
            callers = {name: spend.as_dict() for name, spend in sorted(self._callers.items())}
        return {
            "session": budgets[_SESSION],
            "agents": {k: budgets[f"agent:{k}"] for k in self._agent_keys},
            "callers": callers,
        }

    def _budget_view(self, name: str) -> dict[str, Any]:
        limits = self._limits[name]
        spent = self._spent[name]
        view = spent.as_dict()
        view["limit_tokens"] = limits.tokens
        view["limit_usd"] = limits.usd
        view["remaining_tokens"] = (
            None if limits.tokens is None else max(limits.tokens - spent.tokens, 0)
        )
        view["remaining_usd"] = None if limits.usd is None else max(limits.usd - spent.usd, 0.0)
        return view
