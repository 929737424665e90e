"""Bulk reconciliation: plan or apply the desired quota of many students with bounded concurrency."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.quotas import QuotaGateway
from stackyard.errors import StackyardError
from stackyard.jobs.runner import RetryLater
from stackyard.quotas.apply import NetworkLimits, QuotaApplier, StudentResult
from stackyard.quotas.entities import Student
from stackyard.quotas.models import AuditReason, ProjectOutcome, StudentStatus
from stackyard.quotas.repository import QuotaRepository

Progress = Callable[[int, int], None]
_BUSY_RETRIES = 30  # a student another apply holds is tried again this many times, a second apart


@dataclass(frozen=True)
class ReconcileFilter:
    student_ids: tuple[str, ...] | None = None
    course_id: str | None = None
    status: StudentStatus | None = None
    include_removed: bool = False
    # Only students whose desired quota changed since it was last applied: no read of the others, so
    # no drift check for them either (a full run does that).
    changed_only: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "student_ids": list(self.student_ids) if self.student_ids is not None else None,
            "course_id": self.course_id,
            "status": self.status.value if self.status else None,
            "include_removed": self.include_removed,
            "changed_only": self.changed_only,
        }

    @classmethod
    def from_dict(cls, raw: object) -> ReconcileFilter:
        data = raw if isinstance(raw, dict) else {}
        ids = data.get("student_ids")
        status = data.get("status")
        course = data.get("course_id")
        return cls(
            student_ids=tuple(str(i) for i in ids) if isinstance(ids, list) else None,
            course_id=str(course) if course else None,
            status=StudentStatus(str(status)) if status else None,
            include_removed=bool(data.get("include_removed")),
            changed_only=bool(data.get("changed_only")),
        )


@dataclass(frozen=True)
class ReconcileReport:
    dry_run: bool
    results: tuple[StudentResult, ...]

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome.value for r in self.results)
        return {outcome.value: counted.get(outcome.value, 0) for outcome in ProjectOutcome}

    @property
    def drifted(self) -> tuple[StudentResult, ...]:
        return tuple(r for r in self.results if r.drift)

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "drifted": len(self.drifted),
            "projects": [r.as_dict() for r in self.results],
        }


def select_students(sessions: sessionmaker[Session], selection: ReconcileFilter) -> list[Student]:
    with sessions() as session:
        students = QuotaRepository(session).students(
            ids=selection.student_ids,
            course_id=selection.course_id,
            status=selection.status,
            include_deleted=selection.include_removed,
        )
    return [s for s in students if not s.is_converged] if selection.changed_only else students


class Reconciler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        applier: QuotaApplier,
        quotas: QuotaGateway,
        *,
        concurrency: int,
    ) -> None:
        self._sessions = sessions
        self._applier = applier
        self._quotas = quotas
        self._concurrency = max(1, concurrency)

    def run(
        self,
        selection: ReconcileFilter,
        *,
        dry_run: bool,
        actor: str,
        job_id: str | None = None,
        progress: Progress | None = None,
    ) -> ReconcileReport:
        """Plan (dry run) or apply every selected student; a failure is that project's line, not the run's.

        Neutron's limits of every project come from one bulk read; Nova and Cinder are read per project.
        """
        students = select_students(self._sessions, selection)
        network: NetworkLimits | None = self._quotas.network_limits_of_all_projects() if students else None
        if network is not None:
            defaults = self._quotas.network_defaults()
            network = _with_defaults(network, defaults, [s.keystone_project_id for s in students])
        done = 0
        lock = threading.Lock()
        total = len(students)

        def one(student: Student) -> StudentResult:
            nonlocal done
            result = self._one(student, dry_run=dry_run, actor=actor, job_id=job_id, network=network)
            with lock:
                done += 1
                if progress is not None:
                    progress(done, total)
            return result

        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="stackyard-reconcile") as pool:
            results = tuple(pool.map(one, students))
        return ReconcileReport(dry_run, results)

    def _one(
        self,
        student: Student,
        *,
        dry_run: bool,
        actor: str,
        job_id: str | None,
        network: NetworkLimits | None,
    ) -> StudentResult:
        student_id, number = student.id, student.student_number
        for attempt in range(_BUSY_RETRIES):
            try:
                return self._applier.apply_student(
                    student_id,
                    actor=actor,
                    reason=AuditReason.RECONCILE,
                    job_id=job_id,
                    dry_run=dry_run,
                    network=network,
                )
            except RetryLater:
                if attempt + 1 == _BUSY_RETRIES:
                    return StudentResult(
                        student_id, number, None, ProjectOutcome.FAILED, error="another apply kept it busy"
                    )
                time.sleep(1.0)
            except StackyardError as exc:
                return StudentResult(
                    student_id, number, None, ProjectOutcome.FAILED, error=str(exc), dry_run=dry_run
                )
        raise AssertionError("unreachable")


def _with_defaults(
    network: NetworkLimits, defaults: dict[str, int], projects: Sequence[str | None]
) -> dict[str, dict[str, int]]:
    """Neutron's bulk listing leaves out projects that still have default limits: fill those in."""
    filled = {project: dict(limits) for project, limits in network.items()}
    for project in projects:
        if project is not None and project not in filled:
            filled[project] = dict(defaults)
    return filled
