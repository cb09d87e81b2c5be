"""The header-driven pacer, on a fake clock: a rolling window, not a fixed one."""

from __future__ import annotations

from connector.crm.pacing import RollingPacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_budget_is_learned_from_headers_and_kept_in_a_rolling_window() -> None:
    clock = FakeClock()
    pacer = RollingPacer(clock=clock, sleep=clock.sleep, headroom=1.0)
    pacer.observe(
        {"X-HubSpot-RateLimit-Max": "3", "X-HubSpot-RateLimit-Interval-Milliseconds": "1000"}
    )
    assert (pacer.max_calls, pacer.interval_s) == (3, 1.0)
    for _ in range(3):
        pacer.acquire()
        clock.now += 0.1
    assert clock.slept == []
    pacer.acquire()  # the 4th waits until the 1st (t=100.0) leaves the window at t=101.0
    assert clock.slept == [0.7]
    assert clock.now == 101.0


def test_remaining_zero_waits_for_the_oldest_call_not_a_whole_interval() -> None:
    clock = FakeClock()
    pacer = RollingPacer(max_calls=10, interval_s=1.0, clock=clock, sleep=clock.sleep)
    pacer.acquire()  # at t=100.0
    clock.now = 100.6
    pacer.observe({"X-HubSpot-RateLimit-Remaining": "0"})  # another app filled the window
    pacer.acquire()
    assert clock.slept == [0.4]  # until t=101.0, when our oldest call ages out
    assert clock.now == 101.0


def test_remaining_zero_with_no_call_of_ours_waits_a_fraction_of_the_interval() -> None:
    clock = FakeClock()
    pacer = RollingPacer(max_calls=10, interval_s=10.0, clock=clock, sleep=clock.sleep)
    pacer.observe({"x-hubspot-ratelimit-remaining": "0"})
    pacer.acquire()
    assert clock.slept == [1.0]


def test_after_a_429_nobody_calls_until_the_backoff_ends() -> None:
    clock = FakeClock()
    pacer = RollingPacer(max_calls=100, interval_s=10.0, clock=clock, sleep=clock.sleep)
    pacer.backoff(2.5)
    pacer.acquire()
    assert clock.slept == [2.5]
