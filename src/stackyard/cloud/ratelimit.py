"""Client-side rate limiting: one token bucket per service, thread-safe, driven by an injected clock."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from stackyard.cloud.clock import Clock


@dataclass
class _Bucket:
    rate: float  # tokens added per second
    capacity: float  # most tokens the bucket holds (the burst)
    tokens: float
    updated: float  # clock.monotonic() of the last refill


class RateLimiter:
    """Caps calls per second per service name; services without a configured rate are not limited.

    Waiting callers reserve their token before sleeping, so they are served in arrival order and the
    lock is never held while sleeping.
    """

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        clock: Clock,
        burst: Mapping[str, float] | None = None,
        default_rate: float | None = None,
    ) -> None:
        configured = dict(rates)
        if default_rate is not None:
            configured["the default"] = default_rate
        for name, rate in configured.items():
            if rate <= 0:
                raise ValueError(f"rate for {name} must be positive calls/s, got {rate}")
        for name, size in (burst or {}).items():
            if size < 1:
                raise ValueError(f"burst for {name} must be at least 1 call, got {size}")
        self._rates = dict(rates)
        self._burst = dict(burst or {})
        self._default_rate = default_rate
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def rate_of(self, service: str) -> float | None:
        """Calls per second allowed for `service`, or None when unlimited."""
        return self._rates.get(service, self._default_rate)

    def acquire(self, service: str) -> float:
        """Take one token for `service`, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            wait = self._reserve(service)
        if wait > 0:
            self._clock.sleep(wait)
        return wait

    def try_acquire(self, service: str) -> bool:
        """Take one token for `service` if one is available now; never sleeps."""
        with self._lock:
            bucket = self._bucket(service)
            if bucket is None:
                return True
            self._refill(bucket)
            if bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True

    def _reserve(self, service: str) -> float:
        bucket = self._bucket(service)
        if bucket is None:
            return 0.0
        self._refill(bucket)
        bucket.tokens -= 1
        # A negative balance is a queue of reservations: each waits its turn at `rate`.
        return 0.0 if bucket.tokens >= 0 else -bucket.tokens / bucket.rate

    def _bucket(self, service: str) -> _Bucket | None:
        bucket = self._buckets.get(service)
        if bucket is None:
            rate = self.rate_of(service)
            if rate is None:
                return None
            capacity = self._burst.get(service, max(1.0, rate))
            bucket = _Bucket(rate=rate, capacity=capacity, tokens=capacity, updated=self._clock.monotonic())
            self._buckets[service] = bucket
        return bucket

    def _refill(self, bucket: _Bucket) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(bucket.capacity, bucket.tokens + elapsed * bucket.rate)
        bucket.updated = now
