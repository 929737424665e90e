"""The durable job runner on a migrated SQLite database: claims, retries, cancellation, leases."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from stackyard.db.engine import make_engine, session_factory
from stackyard.db.migrate import upgrade
from stackyard.errors import NotFound, Unavailable, ValidationError
from stackyard.jobs.models import JobState
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobContext, JobRunner, RetryLater

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def runner_with(sessions: sessionmaker[Session], clock: Clock, **handlers: object) -> JobRunner:
    return JobRunner(
        sessions,
        {kind.replace("_", "."): h for kind, h in handlers.items()},  # type: ignore[misc]
        now=clock,
        backoff_initial=2.0,
        backoff_cap=60.0,
        max_attempts=3,
    )


def test_a_job_runs_once_and_keeps_its_result(sessions: sessionmaker[Session], clock: Clock) -> None:
    calls: list[Mapping[str, object]] = []

    def handler(context: JobContext) -> Mapping[str, object]:
        calls.append(context.job.payload)
        context.report(1, 1, "done")
        return {"answer": 42}

    runner = runner_with(sessions, clock, test_ok=handler)
    job = runner.submit("test.ok", {"n": 1}, subject="s1", created_by="tests")
    assert job.state is JobState.QUEUED
    done = runner.run_one(job.id)
    assert done.state is JobState.SUCCEEDED and done.result == {"answer": 42}
    assert (done.progress_done, done.progress_total, done.message, done.attempts) == (1, 1, "done", 1)
    assert runner.run_one(job.id).state is JobState.SUCCEEDED  # a finished job is not run again
    assert calls == [{"n": 1}]


def test_transient_errors_requeue_with_backoff_then_give_up(
    sessions: sessionmaker[Session], clock: Clock
) -> None:
    def handler(context: JobContext) -> None:
        raise Unavailable("nova is down")

    runner = runner_with(sessions, clock, test_flaky=handler)
    job = runner.submit("test.flaky", {}, subject=None, created_by="tests")
    first = runner.run_one(job.id)
    assert first.state is JobState.QUEUED and first.error is not None and "nova is down" in first.error
    assert first.next_attempt_at == START + timedelta(seconds=2)
    assert runner.run_due() == 0  # not due yet
    clock.advance(2)
    assert runner.run_due() == 1
    second = runner.get(job.id)
    assert second.attempts == 2 and second.next_attempt_at == START + timedelta(seconds=2 + 4)
    clock.advance(10)
    runner.run_due()
    last = runner.get(job.id)
    assert (
        last.state is JobState.FAILED and last.error is not None and "gave up after 3 attempts" in last.error
    )


def test_retry_later_sets_its_own_delay(sessions: sessionmaker[Session], clock: Clock) -> None:
    def handler(context: JobContext) -> None:
        raise RetryLater("busy", delay=0.5)

    runner = runner_with(sessions, clock, test_busy=handler)
    job = runner.run_one(runner.submit("test.busy", {}, subject=None, created_by="tests").id)
    assert job.next_attempt_at == START + timedelta(seconds=0.5)


def test_waiting_for_a_slot_is_not_an_attempt(sessions: sessionmaker[Session], clock: Clock) -> None:
    """max_attempts is 3; a job told to wait ten times still runs once a slot frees."""
    waits = iter(range(10))

    def handler(context: JobContext) -> Mapping[str, object]:
        if next(waits, None) is not None:
            raise RetryLater("no free slot", delay=1.0, counts=False)
        return {"ran": True}

    runner = runner_with(sessions, clock, test_wait=handler)
    job = runner.submit("test.wait", {}, subject=None, created_by="tests")
    for _ in range(10):
        waited = runner.run_one(job.id)
        assert waited.state is JobState.QUEUED and waited.attempts == 0
        clock.advance(1)
    done = runner.run_one(job.id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 1 and done.result == {"ran": True}


def test_other_errors_fail_at_once(sessions: sessionmaker[Session], clock: Clock) -> None:
    def invalid(context: JobContext) -> None:
        raise ValidationError("instance", "no such thing")

    def buggy(context: JobContext) -> None:
        raise KeyError("oops")

    runner = runner_with(sessions, clock, test_invalid=invalid, test_buggy=buggy)
    bad = runner.run_one(runner.submit("test.invalid", {}, subject=None, created_by="tests").id)
    assert bad.state is JobState.FAILED and bad.error == "instance: no such thing"
    crashed = runner.run_one(runner.submit("test.buggy", {}, subject=None, created_by="tests").id)
    assert crashed.state is JobState.FAILED and crashed.error == "internal error; see the service log"


def test_cancel_a_queued_job_and_a_running_one(sessions: sessionmaker[Session], clock: Clock) -> None:
    started = threading.Event()
    proceed = threading.Event()

    def long(context: JobContext) -> None:
        started.set()
        proceed.wait(10)
        context.report(1, 2)
        raise AssertionError("the report should have raised JobCancelled")

    runner = runner_with(sessions, clock, test_long=long)
    queued = runner.submit("test.long", {}, subject=None, created_by="tests")
    with sessions.begin() as session:
        assert JobRepository(session).request_cancel(queued.id, clock()).state is JobState.CANCELLED
    assert runner.run_one(queued.id).state is JobState.CANCELLED

    running = runner.submit("test.long", {}, subject=None, created_by="tests")
    worker = threading.Thread(target=runner.run_one, args=(running.id,))
    worker.start()
    assert started.wait(10)
    with sessions.begin() as session:
        assert JobRepository(session).request_cancel(running.id, clock()).cancel_requested
    proceed.set()
    worker.join(10)
    assert runner.get(running.id).state is JobState.CANCELLED
    with sessions.begin() as session, pytest.raises(NotFound):
        JobRepository(session).request_cancel("no-such-job", clock())


def test_a_job_is_claimed_by_one_runner_only(sessions: sessionmaker[Session], clock: Clock) -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def handler(context: JobContext) -> None:
        with lock:
            ran.append(context.job.id)

    runners = [runner_with(sessions, clock, test_once=handler) for _ in range(4)]
    jobs = [runners[0].submit("test.once", {}, subject=None, created_by="tests") for _ in range(10)]
    barrier = threading.Barrier(len(runners))

    def drain(runner: JobRunner) -> None:
        barrier.wait()
        for job in jobs:
            runner.run_one(job.id)

    threads = [threading.Thread(target=drain, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ran) == sorted(j.id for j in jobs)  # each exactly once


def test_a_dead_runners_job_is_taken_over_after_its_lease(
    sessions: sessionmaker[Session], clock: Clock
) -> None:
    def handler(context: JobContext) -> Mapping[str, object]:
        return {"by": "second"}

    job = runner_with(sessions, clock).submit("test.orphan", {}, subject=None, created_by="tests")
    with sessions.begin() as session:  # a runner claims it, then dies without finishing
        assert JobRepository(session).claim(job.id, "dead-runner", clock() + timedelta(seconds=120), clock())
    second = runner_with(sessions, clock, test_orphan=handler)
    assert second.run_due() == 0  # the lease still holds
    clock.advance(121)
    assert second.run_due() == 1
    finished = second.get(job.id)
    assert (
        finished.state is JobState.SUCCEEDED
        and finished.result == {"by": "second"}
        and finished.attempts == 2
    )
