"""When to sync next: one target's polling state (fast after a change, slow when stable, error backoff)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stackyard.errors import StackyardError
from stackyard.inventory.models import PollIntervals, next_interval
from stackyard.inventory.service import SyncResult


@dataclass
class SyncOutcome:
    result: SyncResult | None
    error: StackyardError | None
    delay: float  # seconds until the next sync


@dataclass
class SyncLoop:
    """Runs `sync` and says when to run it again; a failure is kept as the outcome's error, not raised.

    The operator's timer and `stackyard serve` call `step` and sleep for the delay it returns.
    """

    sync: Callable[[], SyncResult]
    intervals: PollIntervals = field(default_factory=PollIntervals)
    monotonic: Callable[[], float] = time.monotonic
    changed_at: float | None = None
    pending_attempts: int = 0

    def step(self) -> SyncOutcome:
        try:
            result = self.sync()
        except StackyardError as exc:
            return SyncOutcome(None, exc, self.intervals.error)
        now = self.monotonic()
        if result.has_changed:
            self.changed_at = now
        self.pending_attempts = self.pending_attempts + 1 if result.pending_port_ids else 0
        delay = next_interval(
            self.intervals,
            has_failed=result.has_failed,
            since_change=None if self.changed_at is None else now - self.changed_at,
            pending_ports=len(result.pending_port_ids),
            # The sync just made counts: with pending_retries 5, five fast retries follow the first.
            pending_attempts=max(0, self.pending_attempts - 1),
        )
        return SyncOutcome(result, None, delay)
