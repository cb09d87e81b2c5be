"""Rate limits both sandboxes share: a rolling N-requests-per-window budget and a daily quota,
driven by the caller's ``time_scale`` so a 10 s window can last 0.1 s in tests. What a spent
budget looks like on the wire is each CRM's business (``hubspot/limits.py``,
``marketo/limits.py``)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class RollingWindowLimiter:
    """At most ``limit`` accepted requests in any rolling window of ``window_seconds``.

    ``window_seconds`` is the real window length (already multiplied by any time scale).
    Rejected requests do not consume budget. Thread-safe.
    """

    def __init__(self, limit: int, window_seconds: float, clock: Clock = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def interval_ms(self) -> int:
        return max(1, round(self.window_seconds * 1000))

    def _expire(self, now: float) -> None:
        edge = now - self.window_seconds
        while self._hits and self._hits[0] <= edge:
            self._hits.popleft()

    def try_acquire(self) -> tuple[bool, int]:
        """(accepted, remaining budget after this request)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._hits) >= self.limit:
                return False, 0
            self._hits.append(now)
            return True, self.limit - len(self._hits)

    def remaining(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return self.limit - len(self._hits)

    def retry_after(self) -> float:
        """Seconds until one more request would be accepted (0 if it would be now)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._hits) < self.limit:
                return 0.0
            return max(0.0, self._hits[0] + self.window_seconds - now)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


class DailyQuota:
    """A request budget per (scaled) day. The day starts when the quota is created/reset."""

    def __init__(self, limit: int, day_seconds: float, clock: Clock = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.day_seconds = day_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._used = 0

    def _roll(self, now: float) -> None:
        if now - self._start >= self.day_seconds:
            days = int((now - self._start) // self.day_seconds)
            self._start += days * self.day_seconds
            self._used = 0

    def try_acquire(self) -> tuple[bool, int]:
        with self._lock:
            self._roll(self._clock())
            if self._used >= self.limit:
                return False, 0
            self._used += 1
            return True, self.limit - self._used

    def remaining(self) -> int:
        with self._lock:
            self._roll(self._clock())
            return self.limit - self._used

    def seconds_to_reset(self) -> float:
        with self._lock:
            now = self._clock()
            self._roll(now)
            return max(0.0, self._start + self.day_seconds - now)

    def use(self, n: int) -> None:
        """Spend ``n`` requests at once (a test hook to reach the daily limit quickly)."""
        with self._lock:
            self._roll(self._clock())
            self._used = min(self.limit, self._used + n)

    def reset(self) -> None:
        with self._lock:
            self._start = self._clock()
            self._used = 0
