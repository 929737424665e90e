"""Keystone tokens already validated, kept until they expire so each request does not ask Keystone again.

Per process: every replica validates a token once on its own and nothing has to be shared. Bounded
(least recently used entries go first) and keyed by the token's SHA-256.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from stackyard.cloud.clock import Clock
from stackyard.cloud.identity import KeystoneToken
from stackyard.errors import ValidationError


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeystoneTokenCache:
    """A thread-safe LRU of validated tokens, each dropped at its Keystone expiry.

    `max_age` (seconds) bounds how long a token is trusted without asking Keystone again, so a token
    revoked in Keystone stops working within that time; None trusts it until it expires.
    """

    def __init__(self, max_entries: int, clock: Clock, *, max_age: float | None = None) -> None:
        if max_entries < 1:
            raise ValidationError("max_entries", f"must be at least 1, got {max_entries}")
        if max_age is not None and max_age <= 0:
            raise ValidationError("max_age", f"must be positive seconds, got {max_age}")
        self._max_entries = max_entries
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[KeystoneToken, float]] = OrderedDict()

    def get(self, token: str) -> KeystoneToken | None:
        """The validated token, or None when it is not cached, expired or older than `max_age`."""
        key = _key(token)
        now, monotonic = self._clock.now(), self._clock.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            validated, stored_at = entry
            stale = self._max_age is not None and monotonic - stored_at >= self._max_age
            if validated.is_expired(now) or stale:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return validated

    def put(self, validated: KeystoneToken) -> None:
        if validated.is_expired(self._clock.now()):
            return
        key = _key(validated.token)
        with self._lock:
            self._entries[key] = (validated, self._clock.monotonic())
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, token: str) -> None:
        with self._lock:
            self._entries.pop(_key(token), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def purge_expired(self) -> int:
        """Drop every expired entry now (they also go when looked up or pushed out); returns how many."""
        now = self._clock.now()
        with self._lock:
            expired = [key for key, (token, _) in self._entries.items() if token.is_expired(now)]
            for key in expired:
                del self._entries[key]
            return len(expired)
