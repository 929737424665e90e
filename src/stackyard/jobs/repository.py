"""All SQL on the jobs table: create, read, list, and the lease-based claim that makes a job run once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from stackyard.errors import NotFound
from stackyard.jobs.models import Job, JobState
from stackyard.jobs.orm import JobRecord


def _job(row: JobRecord) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        state=JobState(row.state),
        subject=row.subject,
        payload=dict(row.payload or {}),
        result=dict(row.result) if row.result is not None else None,
        progress_done=row.progress_done,
        progress_total=row.progress_total,
        message=row.message,
        attempts=row.attempts,
        error=row.error,
        cancel_requested=row.cancel_requested,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        next_attempt_at=row.next_attempt_at,
        phase=row.phase,
        rate=row.rate,
        checkpoint=dict(row.checkpoint) if row.checkpoint is not None else None,
    )


class JobRepository:
    """Works inside the caller's transaction; flushes, never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self, kind: str, payload: Mapping[str, object], *, subject: str | None, created_by: str, now: datetime
    ) -> Job:
        row = JobRecord(
            id=str(uuid.uuid4()),
            kind=kind,
            state=JobState.QUEUED.value,
            subject=subject,
            payload=dict(payload),
            result=None,
            progress_done=0,
            progress_total=None,
            attempts=0,
            cancel_requested=False,
            next_attempt_at=now,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        self._session.add(row)
        self._session.flush()
        return _job(row)

    def get(self, job_id: str) -> Job:
        row = self._session.get(JobRecord, job_id)
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return _job(row)

    def list_jobs(
        self,
        *,
        kinds: Sequence[str] = (),
        state: JobState | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        query = select(JobRecord).order_by(JobRecord.created_at.desc(), JobRecord.id).limit(limit)
        if kinds:
            query = query.where(JobRecord.kind.in_(kinds))
        if state is not None:
            query = query.where(JobRecord.state == state.value)
        if subject is not None:
            query = query.where(JobRecord.subject == subject)
        return [_job(row) for row in self._session.scalars(query)]

    def open_subjects(self, kinds: Sequence[str]) -> set[str]:
        """Subjects of jobs of these kinds that are queued or running (one query, no job rows)."""
        query = (
            select(JobRecord.subject)
            .where(
                JobRecord.kind.in_(kinds),
                JobRecord.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
                JobRecord.subject.is_not(None),
            )
            .distinct()
        )
        return {str(subject) for subject in self._session.scalars(query)}

    def due(self, now: datetime, kinds: Sequence[str], limit: int) -> list[str]:
        """Ids of jobs a runner may claim: queued and due, or running under a lease that ran out
        (its runner died)."""
        query = (
            select(JobRecord.id)
            .where(JobRecord.kind.in_(kinds))
            .where(
                or_(
                    (JobRecord.state == JobState.QUEUED.value) & (JobRecord.next_attempt_at <= now),
                    (JobRecord.state == JobState.RUNNING.value) & (JobRecord.lease_until < now),
                )
            )
            .order_by(JobRecord.next_attempt_at, JobRecord.created_at)
            .limit(limit)
        )
        return list(self._session.scalars(query))

    def claim(self, job_id: str, owner: str, lease_until: datetime, now: datetime) -> bool:
        """Take the job if nobody holds it: one conditional UPDATE, so two runners never both win."""
        claimable = or_(
            JobRecord.state == JobState.QUEUED.value,
            (JobRecord.state == JobState.RUNNING.value) & (JobRecord.lease_until < now),
        )
        result = self._session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id, claimable)
            .values(
                state=JobState.RUNNING.value,
                lease_owner=owner,
                lease_until=lease_until,
                attempts=JobRecord.attempts + 1,
                started_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def _owned(self, job_id: str, owner: str) -> JobRecord | None:
        row = self._session.get(JobRecord, job_id, with_for_update=True, populate_existing=True)
        if row is None or row.lease_owner != owner or row.state != JobState.RUNNING.value:
            return None  # the lease ran out and someone else took the job: its result is theirs
        return row

    def report(
        self,
        job_id: str,
        owner: str,
        *,
        done: int,
        total: int | None,
        message: str | None,
        lease_until: datetime,
        now: datetime,
        phase: str | None = None,
        rate: float | None = None,
        checkpoint: Mapping[str, object] | None = None,
    ) -> bool:
        """Record progress and extend the lease; returns whether cancellation was asked for.
        `phase` and `checkpoint` are kept as they were when not given."""
        row = self._owned(job_id, owner)
        if row is None:
            return True
        row.progress_done, row.progress_total, row.message, row.rate = done, total, message, rate
        if phase is not None:
            row.phase = phase
        if checkpoint is not None:
            row.checkpoint = dict(checkpoint)
        row.lease_until, row.updated_at = lease_until, now
        return row.cancel_requested

    def finish(
        self,
        job_id: str,
        owner: str,
        state: JobState,
        *,
        now: datetime,
        result: Mapping[str, object] | None = None,
        error: str | None = None,
    ) -> None:
        row = self._owned(job_id, owner)
        if row is None:
            return
        row.state = state.value
        row.result = dict(result) if result is not None else row.result
        row.error = error
        row.lease_owner = row.lease_until = None
        row.finished_at = now
        row.updated_at = now

    def requeue(
        self, job_id: str, owner: str, *, at: datetime, error: str, now: datetime, uncount: bool = False
    ) -> None:
        """Back to queued until `at`; `uncount` takes back the attempt the claim counted."""
        row = self._owned(job_id, owner)
        if row is None:
            return
        if uncount:
            row.attempts = max(0, row.attempts - 1)
        row.state = JobState.QUEUED.value
        row.error = error
        row.next_attempt_at = at
        row.lease_owner = row.lease_until = None
        row.updated_at = now

    def request_cancel(self, job_id: str, now: datetime) -> Job:
        """A queued job is cancelled at once; a running one is asked to stop at its next report."""
        row = self._session.get(JobRecord, job_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        if row.state == JobState.QUEUED.value:
            row.state = JobState.CANCELLED.value
            row.finished_at = now
        elif row.state == JobState.RUNNING.value:
            row.cancel_requested = True
        row.updated_at = now
        self._session.flush()
        return _job(row)
