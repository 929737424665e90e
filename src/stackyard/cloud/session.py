"""A connection to one cloud/region with stackyard's retry policy wrapped around every call."""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from openstack.connection import Connection

from stackyard.cloud.clock import Clock, SystemClock
from stackyard.cloud.ratelimit import RateLimiter
from stackyard.cloud.retry import Retrier, RetryEvent, RetryPolicy

T = TypeVar("T")
PAGE_SIZE = 200


@dataclass(frozen=True)
class CallRecord:
    """One finished cloud call (after retries), for metrics: outcome is "ok" or the error class."""

    service: str
    operation: str
    outcome: str
    seconds: float


CallObserver = Callable[[CallRecord], None]


class CloudSession:
    """Owns a Connection and the Retrier for it; gateways make every cloud call through `call`."""

    def __init__(
        self, conn: Connection, retrier: Retrier, *, name: str, on_call: CallObserver | None = None
    ) -> None:
        self.conn = conn
        self.name = name
        self._retrier = retrier
        self._on_call = on_call

    def call(
        self,
        service: str,
        operation: str,
        fn: Callable[[], T],
        *,
        idempotent: bool = True,
        find_existing: Callable[[], T | None] | None = None,
    ) -> T:
        if self._on_call is None:
            return self._retrier.call(
                fn, service=service, operation=operation, idempotent=idempotent, find_existing=find_existing
            )
        started = time.monotonic()
        outcome = "ok"
        try:
            return self._retrier.call(
                fn, service=service, operation=operation, idempotent=idempotent, find_existing=find_existing
            )
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self._on_call(CallRecord(service, operation, outcome, time.monotonic() - started))

    def paged(
        self,
        service: str,
        operation: str,
        fetch_page: Callable[[str | None, int], list[T]],
        marker_of: Callable[[T], str],
        page_size: int = PAGE_SIZE,
    ) -> Iterator[T]:
        """Stream a marker-paginated listing page by page, each page fetched under the retry policy.

        Only one page is held in memory; a failed page is retried from the same marker.
        """
        marker: str | None = None
        while True:
            page = self.call(service, operation, functools.partial(fetch_page, marker, page_size))
            yield from page
            if len(page) < page_size:
                return
            marker = marker_of(page[-1])

    def close(self) -> None:
        self.conn.close()


def endpoint_probe(auth_url: str, timeout: float = 1.0) -> Callable[[], bool]:
    """True while the identity endpoint accepts TCP connections; never raises."""
    parts = urlsplit(auth_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return probe


def open_session(
    conn: Connection,
    *,
    name: str,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    limiter: RateLimiter | None = None,
    on_event: Callable[[RetryEvent], None] | None = None,
    on_call: CallObserver | None = None,
) -> CloudSession:
    """Wrap a Connection: probe its identity endpoint for network pauses, re-authenticate by
    invalidating the cached token."""
    auth = conn.session.auth
    auth_url = str(getattr(auth, "auth_url", "") or "")

    def reauthenticate() -> None:
        conn.session.invalidate()

    retrier = Retrier(
        policy,
        clock=clock or SystemClock(),
        probe=endpoint_probe(auth_url) if auth_url else None,
        reauthenticate=reauthenticate,
        limiter=limiter,
        on_event=on_event,
    )
    return CloudSession(conn, retrier, name=name, on_call=on_call)
