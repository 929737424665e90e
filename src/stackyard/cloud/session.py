"""A connection to one cloud/region with stackyard's retry policy wrapped around every call."""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit

from openstack.connection import Connection

from stackyard.cloud.clock import Clock, SystemClock
from stackyard.cloud.ratelimit import RateLimiter
from stackyard.cloud.retry import Retrier, RetryEvent, RetryPolicy

T = TypeVar("T")
PAGE_SIZE = 200


class CloudSession:
    """Owns a Connection and the Retrier for it; gateways make every cloud call through `call`."""

    def __init__(self, conn: Connection, retrier: Retrier, *, name: str) -> None:
        self.conn = conn
        self.name = name
        self._retrier = retrier

    def call(
        self,
        service: str,
        operation: str,
        fn: Callable[[], T],
        *,
        idempotent: bool = True,
        find_existing: Callable[[], T | None] | None = None,
    ) -> T:
        return self._retrier.call(
            fn, service=service, operation=operation, idempotent=idempotent, find_existing=find_existing
        )

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
    return CloudSession(conn, retrier, name=name)
