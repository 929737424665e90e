"""Reclamation notices: a JSON POST to the policy's webhook (a mail gateway or chat hook behind it)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from stackyard.errors import Unavailable


class WebhookNotifier:
    """Raises Unavailable when the receiver cannot be reached or answers with an error, so the job
    retries and nothing is deleted before the student was told."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout

    def __call__(self, url: str, body: Mapping[str, object]) -> None:
        # The URL may carry a token in its query: errors name only its host.
        where = urlsplit(url).netloc or "the webhook"
        try:
            response = httpx.post(url, json=dict(body), timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise Unavailable(f"reclamation notice to {where} failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise Unavailable(f"reclamation notice to {where} was answered with HTTP {response.status_code}")
