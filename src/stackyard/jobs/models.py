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
