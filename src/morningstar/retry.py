"""One retry policy for the whole project: exponential backoff with full jitter, temporary errors only.

Only :class:`morningstar.errors.TemporaryError` (and its subclasses) is retried; every other error is
raised at once. A :class:`~morningstar.errors.RateLimitedError` carrying the server's
``retry_after_s`` is never retried sooner than that (capped at ``max_delay_s``). ``sleep`` and
``rng`` are injectable so tests count calls without waiting.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from morningstar.errors import TemporaryError

__all__ = ["RetryPolicy", "retry_call"]

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt ``n`` (0-based) waits ``uniform(0, min(cap, base * 2**n))``.

    Args:
        max_attempts: total attempts including the first (1 = no retry).
        base_delay_s: delay scale of the first retry, in seconds.
        max_delay_s: cap on a single delay, in seconds.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return self.rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * (2**attempt)))


def retry_call(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str = "call",
    on_retry: Callable[[int, TemporaryError, float], None] | None = None,
) -> T:
    """Call ``fn`` until it returns, retrying only :class:`TemporaryError` under ``policy``.

    Args:
        fn: the call to make.
        policy: how many attempts and how long to wait between them.
        what: a short description used in log lines.
        on_retry: called with (attempt, error, delay) before each wait.

    Returns:
        What ``fn`` returned.

    Raises:
        TemporaryError: the last temporary error once attempts are spent.
        Exception: any non-temporary error, at once.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except TemporaryError as exc:
            attempt += 1
            if attempt >= policy.max_attempts:
                log.info("%s failed after %d attempts: %s", what, attempt, exc)
                raise
            wait = policy.delay(attempt - 1)
            asked = getattr(exc, "retry_after_s", None)  # the server's Retry-After, if any
            if asked is not None and asked > wait:
                wait = min(float(asked), policy.max_delay_s)
            log.info("%s: temporary error (%s); retry %d in %.2fs", what, exc, attempt, wait)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            policy.sleep(wait)
