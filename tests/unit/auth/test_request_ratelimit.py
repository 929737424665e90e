"""The API's per-client request limiter: token buckets on a fake clock."""

from __future__ import annotations

import pytest

from stackyard.auth.ratelimit import RequestRateLimiter
from stackyard.cloud.clock import FakeClock
from stackyard.errors import RateLimited


def test_a_burst_of_one_minutes_worth_then_the_steady_rate(clock: FakeClock) -> None:
    limiter = RequestRateLimiter(60, clock)
    for _ in range(60):
        limiter.check("alice")
    with pytest.raises(RateLimited) as caught:
        limiter.check("alice")
    assert caught.value.retry_after == 1.0
    clock.advance(1)
    limiter.check("alice")
    with pytest.raises(RateLimited):
        limiter.check("alice")


def test_retry_after_is_whole_seconds_until_the_next_request(clock: FakeClock) -> None:
    limiter = RequestRateLimiter(6, clock, burst=1)  # one request every 10 s
    limiter.check("ci")
    clock.advance(2.5)
    with pytest.raises(RateLimited) as caught:
        limiter.check("ci")
    assert caught.value.retry_after == 8.0
    assert "retry after 8 s" in str(caught.value)
    clock.advance(7.5)
    limiter.check("ci")


def test_clients_have_separate_buckets(clock: FakeClock) -> None:
    limiter = RequestRateLimiter(2, clock)
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")
    limiter.check("b")


def test_refill_stops_at_the_burst(clock: FakeClock) -> None:
    limiter = RequestRateLimiter(60, clock, burst=5)
    limiter.check("a")
    clock.advance(3600)
    for _ in range(5):
        limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_zero_means_no_limit(clock: FakeClock) -> None:
    limiter = RequestRateLimiter(0, clock)
    assert not limiter.is_enabled
    for _ in range(10_000):
        limiter.check("a")
    assert len(limiter) == 0


def test_the_number_of_clients_tracked_is_bounded(clock: FakeClock) -> None:
    limiter = RequestRateLimiter(1, clock, max_clients=3)
    for client in ("a", "b", "c"):
        limiter.check(client)
    with pytest.raises(RateLimited):
        limiter.check("a")  # "a" is now the most recently seen
    limiter.check("d")  # pushes out "b", the least recently seen
    assert len(limiter) == 3
    limiter.check("b")  # forgotten, so it starts with a full bucket
    with pytest.raises(RateLimited):
        limiter.check("a")
