"""Run durable jobs: claim a due row under a lease, call its kind's handler, record the outcome.

Several runners (threads, worker processes, hosts) can share one database: a claim is one conditional
UPDATE, a lease that runs out (its runner died) makes the job claimable again, and a handler must be
safe to run again from the start, so a job interrupted anywhere finishes on the next attempt.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import StackyardError, Timeout, Unavailable
from stackyard.jobs.models import Job, JobState
from stackyard.jobs.repository import JobRepository

_LOG = logging.getLogger(__name__)


class RetryLater(StackyardError):
    """The job cannot finish now (a cloud is down, a lock is held); run it again after `delay` s.

    `counts=False` is for waiting rather than failing (no free slot yet): the attempt is not counted
    towards the runner's max_attempts.
    """

    def __init__(self, reason: str, delay: float | None = None, *, counts: bool = True) -> None:
        super().__init__(reason)
        self.delay = delay
        self.counts = counts


class JobCancelled(StackyardError):
    """Cancellation was asked for; the handler stops at its next progress report."""


# Errors after which a later attempt may succeed; anything else fails the job with its message.
_TRANSIENT = (RetryLater, Unavailable, Timeout)


@dataclass
class JobContext:
    """What a handler sees: its job, and `report` for progress (which also renews the lease)."""

    job: Job
    _runner: JobRunner = field(repr=False)
    _owner: str = field(repr=False)

    def report(
        self,
        done: int,
        total: int | None = None,
        message: str | None = None,
        *,
        phase: str | None = None,
        rate: float | None = None,
        checkpoint: Mapping[str, object] | None = None,
    ) -> None:
        """Record progress (and, if given, the phase and what a later attempt resumes from)."""
        cancelled = self._runner.report(
            self.job.id,
            self._owner,
            done=done,
            total=total,
            message=message,
            phase=phase,
            rate=rate,
            checkpoint=checkpoint,
        )
        if cancelled:
            raise JobCancelled(f"job {self.job.id} was cancelled")


Handler = Callable[[JobContext], Mapping[str, object] | None]
# Called once a job of its kind has ended failed or cancelled, to remove what it left behind.
Cleanup = Callable[[Job], None]


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobRunner:
    """Claims and runs jobs of the kinds it has handlers for; `start` runs a polling thread pool."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: Mapping[str, Handler],
        *,
        now: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        lease_seconds: float = 120.0,
        poll_seconds: float = 1.0,
        threads: int = 2,
        backoff_initial: float = 2.0,
        backoff_cap: float = 300.0,
        max_attempts: int = 50,
        cleanups: Mapping[str, Cleanup] | None = None,
        dispatch: Callable[[str], None] | None = None,
    ) -> None:
        """`dispatch`, when jobs run elsewhere (Celery workers), is told each submitted job's id."""
        self._sessions = sessions
        self._handlers = dict(handlers)
        self._cleanups = dict(cleanups or {})
        self._dispatch = dispatch
        self._now = now
        self._owner = owner or default_owner()
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._threads = threads
        self._backoff_initial = backoff_initial
        self._backoff_cap = backoff_cap
        self._max_attempts = max_attempts
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    @property
    def lease_seconds(self) -> float:
        return self._lease.total_seconds()

    def submit(
        self, kind: str, payload: Mapping[str, object], *, subject: str | None, created_by: str
    ) -> Job:
        with transaction(self._sessions) as session:
            job = JobRepository(session).add(
                kind, payload, subject=subject, created_by=created_by, now=self._now()
            )
        if self._dispatch is not None:
            self._dispatch(job.id)
        return job

    def get(self, job_id: str) -> Job:
        with self._sessions() as session:
            return JobRepository(session).get(job_id)

    def cancel(self, job_id: str) -> Job:
        """A queued job is cancelled at once (and cleaned up now); a running one is asked to stop at
        its next progress report, and its runner cleans up."""
        with transaction(self._sessions) as session:
            job = JobRepository(session).request_cancel(job_id, self._now())
        cleanup = self._cleanups.get(job.kind)
        if job.state is JobState.CANCELLED and cleanup is not None:
            try:
                cleanup(job)
            except Exception:  # noqa: BLE001 - the job is cancelled either way; what is left is logged
                _LOG.exception("cleaning up after cancelled job %s (%s) failed", job.id, job.kind)
        return job

    def report(
        self,
        job_id: str,
        owner: str,
        *,
        done: int,
        total: int | None,
        message: str | None,
        phase: str | None = None,
        rate: float | None = None,
        checkpoint: Mapping[str, object] | None = None,
    ) -> bool:
        now = self._now()
        with transaction(self._sessions) as session:
            return JobRepository(session).report(
                job_id,
                owner,
                done=done,
                total=total,
                message=message,
                lease_until=now + self._lease,
                now=now,
                phase=phase,
                rate=rate,
                checkpoint=checkpoint,
            )

    def run_one(self, job_id: str, handler: Handler | None = None) -> Job:
        """Claim the job and run it in this thread (with `handler` instead of its kind's, if given).
        A job someone else holds, or one already finished, is returned as it is."""
        now = self._now()
        with transaction(self._sessions) as session:
            claimed = JobRepository(session).claim(job_id, self._owner, now + self._lease, now)
        job = self.get(job_id)
        if not claimed:
            return job
        chosen = handler or self._handlers.get(job.kind)
        if chosen is None:
            self._finish(job, JobState.FAILED, error=f"no handler for job kind {job.kind!r}")
        else:
            self._run(job, chosen)
        return self.get(job_id)

    def _run(self, job: Job, handler: Handler) -> None:
        context = JobContext(job, self, self._owner)
        try:
            result = handler(context)
        except JobCancelled:
            self._finish(job, JobState.CANCELLED, error="cancelled")
        except _TRANSIENT as exc:
            counted = not isinstance(exc, RetryLater) or exc.counts
            if (
                counted and job.attempts >= self._max_attempts
            ):  # `attempts` counts this one: the claim added it
                self._finish(job, JobState.FAILED, error=f"gave up after {job.attempts} attempts: {exc}")
                return
            asked = exc.delay if isinstance(exc, RetryLater) else None
            delay = self._backoff(job) if asked is None else asked
            now = self._now()
            with transaction(self._sessions) as session:
                JobRepository(session).requeue(
                    job.id,
                    self._owner,
                    at=now + timedelta(seconds=delay),
                    error=str(exc),
                    now=now,
                    uncount=not counted,
                )
            _LOG.info("job %s (%s) will retry in %.1f s: %s", job.id, job.kind, delay, exc)
        except StackyardError as exc:
            self._finish(job, JobState.FAILED, error=str(exc))
        except Exception:  # noqa: BLE001 - a handler's bug fails its job; it must not kill the runner
            _LOG.exception("job %s (%s) failed unexpectedly", job.id, job.kind)
            self._finish(job, JobState.FAILED, error="internal error; see the service log")
        else:
            self._finish(job, JobState.SUCCEEDED, result=result)

    def _backoff(self, job: Job) -> float:
        return float(min(self._backoff_cap, self._backoff_initial * 2.0 ** max(0, job.attempts - 1)))

    def _finish(
        self,
        job: Job,
        state: JobState,
        *,
        result: Mapping[str, object] | None = None,
        error: str | None = None,
    ) -> None:
        with transaction(self._sessions) as session:
            JobRepository(session).finish(
                job.id, self._owner, state, now=self._now(), result=result, error=error
            )
        cleanup = self._cleanups.get(job.kind)
        if cleanup is not None and state in (JobState.FAILED, JobState.CANCELLED):
            try:
                cleanup(self.get(job.id))
            except Exception:  # noqa: BLE001 - the job has ended either way; what is left is logged
                _LOG.exception("cleaning up after job %s (%s) failed", job.id, job.kind)

    def run_due(self, limit: int = 10) -> int:
        """One polling round: run what is due, one job after another; returns how many were due."""
        if not self._handlers:
            return 0
        with self._sessions() as session:
            due = JobRepository(session).due(self._now(), self.kinds, limit)
        for job_id in due:
            if self._stop.is_set():
                break
            self.run_one(job_id)
        return len(due)

    def start(self) -> None:
        for index in range(self._threads):
            worker = threading.Thread(target=self._loop, name=f"stackyard-jobs-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_due()
            except Exception:  # noqa: BLE001 - e.g. the database is briefly unreachable: poll again
                _LOG.exception("job runner round failed; trying again")
                ran = 0
            if not ran:
                self._stop.wait(self._poll)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout)
        self._workers.clear()


class Periodic:
    """Calls `task` every `interval` seconds on a daemon thread until stopped; errors are logged."""

    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        self._name = name
        self._interval = interval
        self._task = task
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"stackyard-{self._name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._task()
            except Exception:  # noqa: BLE001 - the next round may succeed; the thread must live on
                _LOG.exception("periodic task %s failed; it runs again in %.0f s", self._name, self._interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
