"""Job states and the read model of a job (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for a runner, also between attempts (next_attempt_at)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: JobState
    subject: str | None  # what the job is about (a student id, an instance id), for lookups
    payload: Mapping[str, object]
    result: Mapping[str, object] | None
    progress_done: int
    progress_total: int | None
    message: str | None  # the latest progress note
    attempts: int
    error: str | None
    cancel_requested: bool
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    phase: str | None = None  # the step a running job is in (exports: snapshotting, transferring, ...)
    rate: float | None = None  # progress units per second over the latest reports
    checkpoint: Mapping[str, object] | None = None  # what the handler recorded to resume from

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate, when the total and a rate are known."""
        if self.state.is_final or self.progress_total is None or not self.rate or self.rate <= 0:
            return None
        return max(0.0, (self.progress_total - self.progress_done) / self.rate)
