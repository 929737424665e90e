"""Requests per minute per API client: a token bucket for each client key, in this process's memory.

With N replicas behind a load balancer each replica allows the configured rate on its own, so a client
spread over all of them gets up to N times the rate; nothing is shared between replicas. Set the rate
per replica accordingly (or let the load balancer pin clients), which is the usual trade-off for a
limiter that needs no shared store.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

from stackyard.cloud.clock import Clock
from stackyard.errors import RateLimited, ValidationError


class RequestRateLimiter:
    """`per_minute` requests per client, in bursts of up to `burst` (default: one minute's worth).

    Client keys are whatever the caller chooses (the principal's subject, or the remote address before
    authentication). At most `max_clients` buckets are kept; the least recently seen client is forgotten
    first, which at worst hands it a full bucket again. `per_minute` 0 switches limiting off.
    """

    def __init__(
        self, per_minute: float, clock: Clock, max_clients: int = 10_000, *, burst: float | None = None
    ) -> None:
        if per_minute < 0:
            raise ValidationError("per_minute", f"must not be negative, got {per_minute}")
        if max_clients < 1:
            raise ValidationError("max_clients", f"must be at least 1, got {max_clients}")
        if burst is not None and burst < 1:
            raise ValidationError("burst", f"must be at least 1, got {burst}")
        self._rate = per_minute / 60.0  # tokens per second
        self._capacity = burst if burst is not None else max(1.0, per_minute)
        self._clock = clock
        self._max_clients = max_clients
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    @property
    def is_enabled(self) -> bool:
        return self._rate > 0

    def check(self, client: str) -> None:
        """Spend one request of `client`'s allowance; RateLimited (with seconds to wait) when none is left."""
        if not self.is_enabled:
            return
        now = self._clock.monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(client, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - at) * self._rate)
            if tokens >= 1.0:
                self._remember(client, tokens - 1.0, now)
                return
            self._remember(client, tokens, now)
        raise RateLimited(float(math.ceil((1.0 - tokens) / self._rate)))

    def _remember(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)  # re-inserted last: the most recently seen
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)
