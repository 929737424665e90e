"""Run durable jobs on Celery workers: a message carries only a job id; the database stays the truth.

`dispatch` publishes "run job X"; a worker's task claims the job row like the in-process runner does
and runs it. Messages are acknowledged late and rejected when a worker is lost, so the broker hands
a killed worker's job to another one; the claim's lease keeps two workers from running it at once,
and a job that is held or was requeued for a retry is published again for when it can run.
`Sweeper` publishes jobs that are due but were never (or no longer) on the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from stackyard.db.base import utcnow
from stackyard.errors import NotFound
from stackyard.jobs.models import JobState
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobRunner

_LOG = logging.getLogger(__name__)

QUEUE = "stackyard"
TASK = "stackyard.run_job"
_MIN_COUNTDOWN = 1.0


def make_celery(broker_url: str) -> Celery:
    app = Celery("stackyard", broker=broker_url)
    app.conf.update(
        task_default_queue=QUEUE,
        # Acknowledged after the job ran: the message of a worker that died is delivered again.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per thread: a long export must not hold other jobs in its buffer.
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # results live in the jobs table
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


class CeleryDispatcher:
    """Publishes job ids for Celery workers."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def __call__(self, job_id: str, countdown: float | None = None) -> None:
        self._app.send_task(TASK, args=[job_id], queue=QUEUE, countdown=countdown)


def register_runner(app: Celery, runner: JobRunner, dispatch: CeleryDispatcher) -> None:
    """The worker side: the task that runs one job with `runner`'s handlers."""

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_job(job_id: str) -> None:
        try:
            job = runner.run_one(job_id)
        except NotFound:
            _LOG.warning("job %s is not in the database; its message is dropped", job_id)
            return
        if job.state is JobState.QUEUED and job.next_attempt_at is not None:
            delay = (job.next_attempt_at - utcnow()).total_seconds()
            dispatch(job_id, countdown=max(_MIN_COUNTDOWN, delay))
        elif job.state is JobState.RUNNING:
            # Someone else holds it, or held it and died: look again when that lease has run out.
            dispatch(job_id, countdown=max(_MIN_COUNTDOWN, runner.lease_seconds / 2))


class Sweeper:
    """Publishes due jobs that may have no message: created while the broker was down, or whose
    worker died after acknowledging. Duplicates are harmless (a claim succeeds once)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        kinds: tuple[str, ...],
        dispatch: Callable[[str], None],
        *,
        grace: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._kinds = kinds
        self._dispatch = dispatch
        self._grace = timedelta(seconds=grace)

    def sweep(self) -> int:
        with self._sessions() as session:
            due = JobRepository(session).due(utcnow() - self._grace, self._kinds, 100)
        for job_id in due:
            self._dispatch(job_id)
        if due:
            _LOG.info("re-published %d due jobs", len(due))
        return len(due)
