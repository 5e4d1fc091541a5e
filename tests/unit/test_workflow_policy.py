"""Step error policies of the workflow: retry temporary errors, skip the cycle, halt the run."""

from __future__ import annotations

import pytest

from morningstar.core.cycle import StepError
from morningstar.errors import DataValidationError, NetworkError
from morningstar.workflow.policy import HaltRun, SkipCycle, StepRunner


def flaky(failures: list[Exception], value: str = "ok"):  # type: ignore[no-untyped-def]
    calls = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return value

    return fn, calls


def test_retry_recovers_from_temporary_errors_without_recording_them() -> None:
    waits: list[float] = []
    runner = StepRunner({"fetch": "retry"}, retries=3, backoff_s=0.1, sleep=waits.append)
    fn, calls = flaky([NetworkError("reset"), NetworkError("reset")])
    errors: list[StepError] = []
    assert runner.run("fetch", fn, errors, where="feed") == "ok"
    assert len(calls) == 3 and len(waits) == 2 and errors == []


def test_retry_gives_up_then_skips_and_records_the_attempts() -> None:
    runner = StepRunner({"execute": "retry"}, retries=2, backoff_s=0.0, sleep=lambda _s: None)
    fn, calls = flaky([NetworkError("down")] * 5)
    errors: list[StepError] = []
    with pytest.raises(SkipCycle) as info:
        runner.run("execute", fn, errors, where="BTC/USDT")
    assert len(calls) == 3
    (error,) = errors
    assert info.value.error is error
    assert (error.step, error.outcome, error.attempts, error.error_type) == (
        "execute", "skipped", 3, "NetworkError")  # fmt: skip


def test_retry_does_not_retry_a_permanent_error() -> None:
    runner = StepRunner({"predict": "retry"}, retries=5, sleep=lambda _s: None)
    fn, calls = flaky([DataValidationError("NaN in the window", where="features")])
    errors: list[StepError] = []
    with pytest.raises(SkipCycle):
        runner.run("predict", fn, errors, where="BTC/USDT")
    assert len(calls) == 1 and errors[0].attempts == 1
    assert errors[0].message == "features: NaN in the window"


def test_skip_and_halt_and_the_default() -> None:
    errors: list[StepError] = []
    runner = StepRunner({"decide": "halt", "predict": "skip"})
    with pytest.raises(HaltRun) as info:
        runner.run("decide", flaky([ValueError("bad\nmulti-line")])[0], errors, where="x")
    assert info.value.error.outcome == "halted" and info.value.error.message == "ValueError: bad"
    with pytest.raises(SkipCycle):
        runner.run("predict", flaky([KeyError("k")])[0], errors, where="x")
    with pytest.raises(SkipCycle):  # a step without a policy is skipped
        runner.run("persist", flaky([RuntimeError()])[0], errors, where="x")
    assert [e.outcome for e in errors] == ["halted", "skipped", "skipped"]
    assert errors[2].message == "RuntimeError"
