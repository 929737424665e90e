"""POST node configs to the external API that the in-cluster agent reads: timeout, TLS, auth, retries."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from stackyard.errors import ValidationError

_RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Endpoint:
    """Where node configs go. `auth_header` is a secret: it is sent, never logged or returned."""

    url: str
    timeout: float = 10.0
    insecure: bool = False  # skip TLS verification: only when set on purpose
    auth_header: str | None = None  # e.g. "Bearer abc"; sent as Authorization
    attempts: int = 4
    backoff: float = 0.5  # seconds before the 2nd attempt; doubles, with full jitter

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValidationError("endpoint.url", f"expected an http(s) URL, got {self.url!r}")
        if self.timeout <= 0:
            raise ValidationError("endpoint.timeout", "must be positive seconds")
        if self.attempts < 1:
            raise ValidationError("endpoint.attempts", "must be at least 1")

    def __repr__(self) -> str:  # keep the auth header out of logs and tracebacks
        return f"Endpoint(url={self.url!r}, timeout={self.timeout}, insecure={self.insecure})"


class NodeConfigPusher:
    """One POST per node config; returns None when accepted, else the reason (never raises for HTTP)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._endpoint = endpoint
        self._sleep = sleep
        headers = {"Content-Type": "application/json", "User-Agent": "stackyard-inventory"}
        if endpoint.auth_header:
            headers["Authorization"] = endpoint.auth_header
        self._client = httpx.Client(
            timeout=endpoint.timeout, verify=not endpoint.insecure, headers=headers, transport=transport
        )
        self.posts = 0  # requests sent, retries included (for tests and the benchmark)

    def push(self, payload: Mapping[str, object]) -> str | None:
        reason = "not sent"
        for attempt in range(1, self._endpoint.attempts + 1):
            self.posts += 1
            try:
                response = self._client.post(self._endpoint.url, json=dict(payload))
            except httpx.HTTPError as exc:
                reason = f"{self._endpoint.url}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    return None
                reason = f"{self._endpoint.url} answered {response.status_code}: {response.text[:200]}"
                if response.status_code not in _RETRIED_STATUSES:
                    return reason
            if attempt < self._endpoint.attempts:
                self._sleep(random.uniform(0, self._endpoint.backoff * 2 ** (attempt - 1)))
        return f"gave up after {self._endpoint.attempts} attempts: {reason}"

    def close(self) -> None:
        self._client.close()


def endpoint_of(name: str, entry: Mapping[str, object], environ: Mapping[str, str]) -> Endpoint:
    """An `inventory.endpoints.<name>` entry; its Authorization value comes from `auth_header_env`."""
    field_prefix = f"inventory.endpoints.{name}"
    unknown = set(entry) - {"url", "timeout", "insecure", "auth_header_env", "attempts"}
    if unknown:
        raise ValidationError(f"{field_prefix}.{sorted(unknown)[0]}", "unknown endpoint setting")
    url = entry.get("url")
    if not isinstance(url, str):
        raise ValidationError(f"{field_prefix}.url", "expected an http(s) URL")
    header_env = entry.get("auth_header_env")
    header = None
    if header_env is not None:
        if not isinstance(header_env, str) or header_env not in environ:
            raise ValidationError(
                f"{field_prefix}.auth_header_env", f"environment variable {header_env!r} is not set"
            )
        header = environ[header_env]
    timeout = entry.get("timeout", 10.0)
    attempts = entry.get("attempts", 4)
    insecure = entry.get("insecure", False)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise ValidationError(f"{field_prefix}.timeout", "expected seconds")
    if not isinstance(attempts, int) or isinstance(attempts, bool):
        raise ValidationError(f"{field_prefix}.attempts", "expected a whole number")
    if not isinstance(insecure, bool):
        raise ValidationError(f"{field_prefix}.insecure", "expected true or false")
    return Endpoint(url, timeout=float(timeout), insecure=insecure, auth_header=header, attempts=attempts)


def pusher_for(
    name: str | None, endpoints: Mapping[str, Mapping[str, object]], environ: Mapping[str, str]
) -> NodeConfigPusher | None:
    """A pusher to the named `inventory.endpoints` entry; None for no name (record only)."""
    if name is None:
        return None
    entry = endpoints.get(name)
    if entry is None:
        known = ", ".join(sorted(endpoints)) or "none configured"
        raise ValidationError("endpoint", f"unknown endpoint {name!r}; known: {known}")
    return NodeConfigPusher(endpoint_of(name, entry, environ))
