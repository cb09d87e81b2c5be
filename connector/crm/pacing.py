"""Client-side pacing from the server's rate-limit headers, before a 429 ever comes.

A rolling window of our own call times, sized from `X-HubSpot-RateLimit-Max` and
`-Interval-Milliseconds` (or configured), keeps us under the limit; when a response says
`-Remaining: 0` we wait out the interval. The sleep function is injected (tests, benchmarks).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping


class RollingPacer:
    def __init__(
        self,
        max_calls: int | None = None,
        interval_s: float = 10.0,
        *,
        headroom: float = 0.95,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_calls = max_calls
        self.interval_s = interval_s
        self.headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self.slept = 0.0
        self._blocked_until = 0.0

    def _budget(self) -> int | None:
        if self.max_calls is None:
            return None
        return max(1, int(self.max_calls * self.headroom))

    def acquire(self) -> None:
        """Block until one more call fits in the rolling window."""
        with self._lock:
            for _ in range(10_000):  # bounded: each turn sleeps or returns
                now = self._clock()
                if now < self._blocked_until:
                    self._pause(self._blocked_until - now)
                    continue
                budget = self._budget()
                while self._calls and self._calls[0] <= now - self.interval_s:
                    self._calls.popleft()
                if budget is None or len(self._calls) < budget:
                    self._calls.append(now)
                    return
                self._pause(self._calls[0] + self.interval_s - now)
            raise RuntimeError("pacer could not make room in 10,000 turns")  # pragma: no cover

    def _pause(self, seconds: float) -> None:
        seconds = max(seconds, 0.0005)
        self.slept += seconds
        self._sleep(seconds)

    def observe(
        self, headers: Mapping[str, str] | None, prefix: str = "X-HubSpot-RateLimit-"
    ) -> None:
        """Learn the limit and the interval from a response's headers."""
        if not headers:
            return
        lower = {k.lower(): v for k, v in headers.items()}
        p = prefix.lower()
        try:
            if (mx := lower.get(p + "max")) is not None:
                self.max_calls = int(mx)
            if (iv := lower.get(p + "interval-milliseconds")) is not None:
                self.interval_s = int(iv) / 1000.0
            remaining = lower.get(p + "remaining")
        except ValueError:
            return
        if remaining is not None and remaining.strip() == "0":
            # the window is full: in a rolling window the next slot frees when the oldest call
            # in it ages out (ours, if we made it; else a fraction of the interval, since other
            # apps on the portal share the budget) — not a whole interval from now
            with self._lock:
                now = self._clock()
                oldest = next((t for t in self._calls if t > now - self.interval_s), None)
                free_at = (
                    oldest + self.interval_s if oldest is not None else (now + self.interval_s / 10)
                )
                self._blocked_until = max(self._blocked_until, free_at)

    def backoff(self, seconds: float) -> None:
        """After a 429: nobody calls for `seconds`."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
