"""Error policies of the workflow's steps: retry with backoff, skip the cycle, or halt the run.

Each step of a cycle runs through :meth:`StepRunner.run` with the policy the config gives it
(``workflow.errors``):

* ``retry``: temporary errors (:class:`~morningstar.errors.TemporaryError`: timeouts, rate limits,
  5xx, broken connections) are retried with the project's backoff
  (:mod:`morningstar.retry`); when the retries are spent, or for any other error, the cycle is
  skipped;
* ``skip``: the rest of this pair's cycle is skipped (the next bar runs normally);
* ``halt``: the run stops after persisting what it has (a clear, logged outcome).

Every error is recorded as a :class:`~morningstar.core.cycle.StepError` with what the policy did,
persisted with its cycle, and logged once. A failing pair never stops the other pairs (only
``halt`` stops the run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TypeVar

from morningstar.core.cycle import StepError
from morningstar.errors import MorningstarError, TemporaryError
from morningstar.retry import RetryPolicy, retry_call

__all__ = ["HaltRun", "SkipCycle", "StepPolicy", "StepRunner"]

T = TypeVar("T")
StepPolicy = Literal["retry", "skip", "halt"]
log = logging.getLogger(__name__)


class SkipCycle(Exception):
    """The rest of this cycle is skipped (the error is recorded)."""

    def __init__(self, error: StepError) -> None:
        super().__init__(error.message)
        self.error = error


class HaltRun(Exception):
    """The run stops (the error is recorded)."""

    def __init__(self, error: StepError) -> None:
        super().__init__(error.message)
        self.error = error


def _message(exc: BaseException) -> str:
    if isinstance(exc, MorningstarError):
        return exc.one_line()
    line = next((ln for ln in str(exc).splitlines() if ln.strip()), "")  # one line
    text = " ".join(line.split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StepRunner:
    """Runs steps under their policies (see the module docstring).

    Args:
        policies: step name → ``retry`` / ``skip`` / ``halt`` (steps not named: ``skip``).
        retries: retries after the first attempt, for ``retry``.
        backoff_s: the first backoff (doubling, full jitter, capped at 30 s).
        sleep: the sleep function (tests pass one that does not wait).
    """

    def __init__(
        self,
        policies: dict[str, StepPolicy],
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.policies = dict(policies)
        base = max(backoff_s, 1e-6)
        self.retry = (
            RetryPolicy(max_attempts=retries + 1, base_delay_s=base, max_delay_s=30.0)
            if sleep is None
            else RetryPolicy(
                max_attempts=retries + 1, base_delay_s=base, max_delay_s=30.0, sleep=sleep
            )
        )

    def run(self, step: str, fn: Callable[[], T], errors: list[StepError], *, where: str) -> T:
        """``fn()`` under the policy of ``step``; errors are appended to ``errors``.

        Raises:
            SkipCycle: the step failed and the cycle is skipped.
            HaltRun: the step failed under ``halt``.
        """
        policy = self.policies.get(step, "skip")
        attempts = 1

        def on_retry(attempt: int, exc: Exception, wait_s: float) -> None:
            nonlocal attempts
            attempts = attempt + 1
            log.info("%s %s: retry %d in %.2fs after %s", where, step, attempt, wait_s, exc)

        try:
            if policy == "retry":
                return retry_call(fn, self.retry, what=f"{where} {step}", on_retry=on_retry)
            return fn()
        except HaltRun as halt:  # raised inside the step (e.g. a replay-cache miss): recorded
            if halt.error not in errors:
                errors.append(halt.error)
            raise
        except SkipCycle:
            raise
        except Exception as exc:
            outcome: Literal["skipped", "halted"] = "halted" if policy == "halt" else "skipped"
            if policy == "retry" and not isinstance(exc, TemporaryError):
                attempts = 1
            error = StepError(step, type(exc).__name__, _message(exc), outcome, attempts)
            errors.append(error)
            log.error("%s %s failed (%s after %d attempt(s)): %s", where, step, outcome,
                      attempts, error.message)  # fmt: skip
            if outcome == "halted":
                raise HaltRun(error) from exc
            raise SkipCycle(error) from exc
