"""The one place that decides whether and how long to wait before trying again.

Adapters map their failures onto the error tree (`RetryableError` for 5xx, timeouts, dropped
connections and ten-secondly 429s); this module retries exactly those, with bounded attempts,
exponential backoff and full jitter, honouring a server's `retry_after` when it gives one.
Nothing else in the project sleeps for a retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from connector.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    seed: int | None = None  # for reproducible jitter in tests


def _wait(policy: RetryPolicy, rng: random.Random) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return float(min(exc.retry_after, policy.max_seconds))
        ceiling = min(policy.max_seconds, policy.base_seconds * 2 ** (state.attempt_number - 1))
        return rng.uniform(0, ceiling)  # full jitter

    return wait


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[RetryableError, int], None] | None = None,
) -> T:
    """Call `fn`, retrying `RetryableError` up to `policy.attempts` times in all.

    The last `RetryableError` is re-raised unchanged when attempts run out; every other
    exception propagates at once.
    """
    pol = policy or RetryPolicy()
    rng = random.Random(pol.seed)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if on_retry is not None and isinstance(exc, RetryableError):
            on_retry(exc, state.attempt_number)

    retrying = Retrying(
        retry=retry_if_exception_type(RetryableError),
        stop=stop_after_attempt(max(1, pol.attempts)),
        wait=_wait(pol, rng),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    return retrying(fn)
