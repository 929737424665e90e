"""Client-side rate limit: token buckets per service, reservation order, thread safety."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from stackyard.cloud.clock import FakeClock, SystemClock
from stackyard.cloud.ratelimit import RateLimiter


def test_unconfigured_services_are_not_limited() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"compute": 1.0}, clock=clock)
    for _ in range(100):
        assert limiter.acquire("network") == 0.0
    assert clock.sleeps == [] and limiter.rate_of("network") is None


def test_burst_then_steady_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"compute": 2.0}, clock=clock)  # burst defaults to one second's worth
    waits = [limiter.acquire("compute") for _ in range(6)]
    assert waits == [0.0, 0.0, 0.5, 0.5, 0.5, 0.5]
    assert clock.monotonic() == 2.0  # 6 calls at 2/s after a burst of 2


def test_tokens_refill_with_time_but_never_beyond_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"image": 1.0}, clock=clock, burst={"image": 3})
    for _ in range(3):
        limiter.acquire("image")
    clock.advance(100)
    assert [limiter.acquire("image") for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_services_have_separate_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"compute": 1.0, "network": 1.0}, clock=clock)
    assert limiter.acquire("compute") == 0.0
    assert limiter.acquire("network") == 0.0
    assert limiter.acquire("compute") == 1.0


def test_default_rate_applies_to_every_other_service() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"compute": 10.0}, clock=clock, default_rate=1.0)
    assert limiter.rate_of("volume") == 1.0 and limiter.rate_of("compute") == 10.0
    assert [limiter.acquire("volume") for _ in range(2)] == [0.0, 1.0]


def test_fractional_rates_below_one_call_per_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"orchestration": 0.25}, clock=clock)
    assert [limiter.acquire("orchestration") for _ in range(3)] == [0.0, 4.0, 4.0]


def test_try_acquire_never_sleeps() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"compute": 1.0}, clock=clock)
    assert limiter.try_acquire("compute") is True
    assert limiter.try_acquire("compute") is False
    clock.advance(1.0)
    assert limiter.try_acquire("compute") is True
    assert limiter.try_acquire("anything-else") is True
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("rates", "kwargs"),
    [
        ({"compute": 0.0}, {}),
        ({"compute": -1.0}, {}),
        ({}, {"default_rate": 0.0}),
        ({"c": 1.0}, {"burst": {"c": 0.5}}),
    ],
)
def test_nonsense_configuration_is_rejected(rates: dict[str, float], kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rates, clock=FakeClock(), **kwargs)  # type: ignore[arg-type]


class FrozenClock:
    """Time stands still, so every reservation's wait reveals its place in the queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)

    def now(self) -> datetime:
        return SystemClock().now()


def test_concurrent_callers_each_get_a_distinct_slot() -> None:
    clock = FrozenClock()
    limiter = RateLimiter({"compute": 10.0}, clock=clock, burst={"compute": 5})
    threads, per_thread = 8, 50
    barrier = threading.Barrier(threads)

    def worker() -> None:
        barrier.wait()
        for _ in range(per_thread):
            limiter.acquire("compute")

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    # 400 calls, 5 free from the burst, then one slot every 0.1 s: no slot handed out twice or lost.
    expected = [round(0.1 * k, 6) for k in range(1, threads * per_thread - 5 + 1)]
    assert sorted(round(s, 6) for s in clock.sleeps) == expected
