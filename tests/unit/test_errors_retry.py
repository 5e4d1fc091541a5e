from __future__ import annotations

import random

import pytest

from morningstar.errors import (
    ConfigError,
    ExchangeError,
    MorningstarError,
    NetworkError,
    RateLimitedError,
    TemporaryError,
)
from morningstar.retry import RetryPolicy, retry_call


def test_error_is_one_line_with_where_and_hint() -> None:
    err = ConfigError("150 is not <= 100", where="risk.max_position_pct", hint="lower it\nplease")
    assert str(err) == "risk.max_position_pct: 150 is not <= 100 — lower it please"
    assert "\n" not in str(err)
    assert isinstance(err, MorningstarError)


def _policy(sleeps: list[float], attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=attempts, base_delay_s=1.0, max_delay_s=3.0, sleep=sleeps.append,
        rng=random.Random(7),
    )  # fmt: skip


def test_retry_temporary_until_success() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RateLimitedError("429")
        return "ok"

    assert retry_call(flaky, _policy(sleeps)) == "ok"
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


def test_retry_gives_up_after_max_attempts() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def down() -> None:
        calls.append(1)
        raise NetworkError("refused")

    with pytest.raises(NetworkError):
        retry_call(down, _policy(sleeps, attempts=4))
    assert len(calls) == 4
    assert len(sleeps) == 3
    assert all(s <= 3.0 for s in sleeps)


def test_non_temporary_error_is_not_retried() -> None:
    calls: list[int] = []

    def rejected() -> None:
        calls.append(1)
        raise ExchangeError("insufficient balance")

    with pytest.raises(ExchangeError):
        retry_call(rejected, _policy([]))
    assert calls == [1]


def test_delay_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, rng=random.Random(1))
    maxima = [max(policy.delay(n) for _ in range(200)) for n in range(6)]
    assert maxima[0] <= 1.0 and maxima[1] <= 2.0 and maxima[2] <= 4.0
    assert all(m <= 5.0 for m in maxima)
    assert maxima[5] > 4.0


def test_on_retry_callback_sees_each_retry() -> None:
    seen: list[tuple[int, str]] = []
    state = {"n": 0}

    def fn() -> int:
        state["n"] += 1
        if state["n"] < 3:
            raise TemporaryError(f"t{state['n']}")
        return state["n"]

    retry_call(fn, _policy([]), on_retry=lambda a, e, d: seen.append((a, str(e))))
    assert seen == [(1, "t1"), (2, "t2")]


def test_the_servers_retry_after_is_a_floor_capped_by_the_policy() -> None:
    sleeps: list[float] = []
    errors = iter([RateLimitedError("429", retry_after_s=2.5),
                   RateLimitedError("429", retry_after_s=60.0), NetworkError("reset")])  # fmt: skip

    def flaky() -> str:
        err = next(errors, None)
        if err is not None:
            raise err
        return "ok"

    assert retry_call(flaky, _policy(sleeps)) == "ok"
    assert sleeps[0] == 2.5  # at least what the server asked (the backoff draw was <= 1 s)
    assert sleeps[1] == 3.0  # 60 s asked, capped at max_delay_s
    assert 0 <= sleeps[2] <= 3.0  # no Retry-After: the plain backoff
