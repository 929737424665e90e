"""Bring one student's project to their desired quota: provision the project, read, plan, write, record.

Applies of one student are serialised by a lease on the student row; each apply computes the desired
quota from what is committed when it starts and repeats while newer changes arrive, so concurrent
enrollments converge on the exact sum. Writes are absolute and only of what differs, so running an
apply twice writes nothing the second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.projects import ProjectGateway
from stackyard.cloud.quotas import QuotaGateway, QuotaReading, QuotaService
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import CloudError, NotFound
from stackyard.jobs.runner import RetryLater, default_owner
from stackyard.quotas.entities import Student
from stackyard.quotas.models import (
    UNLIMITED,
    AuditReason,
    ProjectOutcome,
    QuotaPlan,
    QuotaValues,
    Resource,
    ResourceChange,
    Service,
    drifted,
    plan_quota,
    quota_document,
    services_needing_usage,
)
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.repository import QuotaRepository
from stackyard.quotas.service import EnrollmentService

NetworkLimits = Mapping[str, Mapping[str, int]]  # project id → Neutron limits, from one bulk read
_MAX_ROUNDS = 5  # applies in one lease while changes keep arriving; the rest is left to the next job


@dataclass(frozen=True)
class StudentResult:
    """One project's line of a plan or a reconciliation run."""

    student_id: str
    student_number: str
    project_id: str | None
    outcome: ProjectOutcome
    changes: tuple[ResourceChange, ...] = ()
    drift: Mapping[Resource, tuple[int, int]] = field(default_factory=dict)
    error: str | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "student_id": self.student_id,
            "student_number": self.student_number,
            "project_id": self.project_id,
            "outcome": self.outcome.value,
            "dry_run": self.dry_run,
            "error": self.error,
            "changes": [
                {
                    "resource": c.resource.value,
                    "current": c.current,
                    "desired": c.desired,
                    "target": c.target,
                    "in_use": c.in_use,
                    "action": c.action.value,
                }
                for c in self.changes
                if c.target != c.current or c.desired != c.current
            ],
            "drift": {r.value: {"applied": a, "found": f} for r, (a, f) in self.drift.items()},
        }


def _service_values(raw: Mapping[str, int], service: Service) -> dict[Resource, int]:
    known = {r.key: r for r in Resource if r.service is service}
    return {known[key]: int(value) for key, value in raw.items() if key in known}


class QuotaApplier:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        quotas: QuotaGateway,
        projects: ProjectGateway,
        policy: QuotaPolicy,
        *,
        now: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        lease_seconds: float = 120.0,
    ) -> None:
        self._sessions = sessions
        self._quotas = quotas
        self._projects = projects
        self._policy = policy
        self._now = now
        self._owner = owner or default_owner()
        self._lease = timedelta(seconds=lease_seconds)

    # -- reads -----------------------------------------------------------------------------------

    def _limits(self, project_id: str, network: NetworkLimits | None) -> dict[Resource, int]:
        current: dict[Resource, int] = {}
        for service in Service:
            if service is Service.NETWORK and network is not None and project_id in network:
                raw: Mapping[str, int] = network[project_id]
            else:
                raw = self._quotas.read(QuotaService(service.value), project_id).limits
            current.update(_service_values(raw, service))
        return current

    def read_plan(
        self, project_id: str, desired: QuotaValues, network: NetworkLimits | None = None
    ) -> tuple[dict[Resource, int], QuotaPlan]:
        """The cloud's limits and the plan; usage is read only for services where a limit goes down."""
        current = self._limits(project_id, network)
        in_use: dict[Resource, int] = {}
        for service in sorted(services_needing_usage(current, desired)):
            reading = self._quotas.read(QuotaService(service.value), project_id, usage=True)
            current.update(_service_values(reading.limits, service))
            in_use.update(_service_values(reading.in_use or {}, service))
        return current, plan_quota(current, desired, in_use)

    # -- the apply -------------------------------------------------------------------------------

    def apply_student(
        self,
        student_id: str,
        *,
        actor: str,
        reason: AuditReason,
        job_id: str | None = None,
        dry_run: bool = False,
        network: NetworkLimits | None = None,
    ) -> StudentResult:
        if dry_run:
            return self._round(
                student_id, actor=actor, reason=reason, job_id=job_id, dry_run=True, network=network
            )
        now = self._now()
        holder = (
            f"{self._owner}/{uuid.uuid4().hex[:8]}"  # per call: two threads of one process exclude each other
        )
        with transaction(self._sessions) as session:
            if not QuotaRepository(session).take_lease(student_id, holder, now + self._lease, now):
                raise RetryLater(f"another apply of student {student_id} is running", delay=1.0)
        try:
            result = self._round(
                student_id, actor=actor, reason=reason, job_id=job_id, dry_run=False, network=network
            )
            for _ in range(_MAX_ROUNDS - 1):
                with self._sessions() as session:
                    student = QuotaRepository(session).get_student(student_id)
                if student.is_converged or result.outcome is ProjectOutcome.FAILED:
                    break
                # Changes arrived while this round ran; the bulk limits read before it may be stale.
                result = self._round(
                    student_id, actor=actor, reason=reason, job_id=job_id, dry_run=False, network=None
                )
            return result
        finally:
            with transaction(self._sessions) as session:
                QuotaRepository(session).release_lease(student_id, holder)

    def _round(
        self,
        student_id: str,
        *,
        actor: str,
        reason: AuditReason,
        job_id: str | None,
        dry_run: bool,
        network: NetworkLimits | None,
    ) -> StudentResult:
        with transaction(self._sessions) as session:
            quota = EnrollmentService(session, self._policy, now=self._now(), actor=actor).desired(student_id)
        student = quota.student
        project_id = student.keystone_project_id
        if project_id is None or student.applied_at is None:
            if dry_run:
                if project_id is None:
                    return StudentResult(
                        student.id,
                        student.student_number,
                        None,
                        ProjectOutcome.UPDATED,
                        dry_run=True,
                        error="no project yet: it would be created",
                    )
            else:
                project_id = self._provision(student, actor=actor, reason=reason, job_id=job_id)
        current, plan = self.read_plan(project_id, quota.desired, network)
        drift = drifted(current, student.applied_quota) if student.applied_quota else {}
        if dry_run:
            return StudentResult(
                student.id,
                student.student_number,
                project_id,
                plan.outcome,
                plan.changes,
                drift,
                dry_run=True,
            )
        self._write(plan, current, project_id, student.id, actor, reason, job_id, drift)
        targets = {c.resource: c.target for c in plan.changes}
        with transaction(self._sessions) as session:
            repo = QuotaRepository(session)
            now = self._now()
            fresh = repo.replace_pending(
                student.id, {c.resource: (c.desired, c.target, c.in_use or 0) for c in plan.pending}, now
            )
            repo.record_applied(student.id, student.generation, targets, now)
            if fresh:
                # A cut that usage blocks is recorded once, when it starts waiting.
                repo.add_audit(
                    at=now,
                    actor=actor,
                    reason=reason,
                    action="quota.pending",
                    outcome="pending",
                    student_id=student.id,
                    project_id=project_id,
                    after=quota_document(
                        {c.resource: c.desired for c in plan.pending if c.resource in fresh}
                    ),
                    detail=", ".join(
                        f"{c.resource.value} in use {c.in_use}" for c in plan.pending if c.resource in fresh
                    ),
                    job_id=job_id,
                )
        outcome = plan.outcome
        return StudentResult(student.id, student.student_number, project_id, outcome, plan.changes, drift)

    def _write(
        self,
        plan: QuotaPlan,
        current: QuotaValues,
        project_id: str,
        student_id: str | None,
        actor: str,
        reason: AuditReason,
        job_id: str | None,
        drift: Mapping[Resource, tuple[int, int]],
    ) -> None:
        """One absolute write per service that changes, each audited; a failure is audited and raised."""
        for service, values in plan.writes.items():
            before = {r.key: current.get(r, UNLIMITED) for r in values}
            after = {r.key: v for r, v in values.items()}
            try:
                written = self._quotas.write(QuotaService(service.value), project_id, after)
            except CloudError as exc:
                self._audit(
                    student_id,
                    project_id,
                    actor,
                    reason,
                    "quota.set",
                    "failed",
                    job_id,
                    service=service.value,
                    before=before,
                    after=after,
                    detail=str(exc),
                    request_ids=[exc.request_id] if exc.request_id else [],
                )
                raise
            self._audit(
                student_id,
                project_id,
                actor,
                reason,
                "quota.set",
                "applied",
                job_id,
                service=service.value,
                before=before,
                after=after,
                detail="drift corrected" if any(r in drift for r in values) else None,
                request_ids=[written.request_id] if written.request_id else [],
            )

    def read_current(self, project_id: str) -> dict[Service, QuotaReading]:
        """Limits and usage of every service (three reads)."""
        return {s: self._quotas.read(QuotaService(s.value), project_id, usage=True) for s in Service}

    def apply_values(
        self, project_id: str, values: QuotaValues, *, actor: str, reason: AuditReason
    ) -> QuotaPlan:
        """Apply quota values to any project directly (not a student's): same rules on cuts, audited."""
        current, plan = self.read_plan(project_id, values)
        self._write(plan, current, project_id, None, actor, reason, None, {})
        return plan

    def _provision(self, student: Student, *, actor: str, reason: AuditReason, job_id: str | None) -> str:
        """Create or link the student's project (and user); idempotent, so a retried job is safe."""
        if student.keystone_project_id is not None:
            try:
                project = self._projects.get_project(student.keystone_project_id)
            except NotFound:
                raise NotFound(
                    f"student {student.student_number} is linked to project {student.keystone_project_id},"
                    " which does not exist"
                ) from None
        else:
            project = self._projects.ensure_project(
                self._policy.project_name(student.student_number),
                domain=self._policy.domain,
                description=f"stackyard student {student.student_number}",
            )
        user_id = student.keystone_user_id
        if self._policy.create_users and user_id is None:
            user_id = self._projects.ensure_user(
                student.student_number,
                domain=self._policy.domain,
                email=student.email,
                project_id=project.id,
                role=self._policy.member_role,
            )
        with transaction(self._sessions) as session:
            repo = QuotaRepository(session)
            repo.set_project(student.id, project.id, user_id, self._now())
            if project.created or student.keystone_project_id is None:
                repo.add_audit(
                    at=self._now(),
                    actor=actor,
                    reason=reason,
                    action="project.create" if project.created else "project.link",
                    outcome="applied",
                    student_id=student.id,
                    project_id=project.id,
                    after={"name": project.name},
                    job_id=job_id,
                )
        return project.id

    def _audit(
        self,
        student_id: str | None,
        project_id: str,
        actor: str,
        reason: AuditReason,
        action: str,
        outcome: str,
        job_id: str | None,
        *,
        service: str | None = None,
        before: Mapping[str, object] | None = None,
        after: Mapping[str, object] | None = None,
        detail: str | None = None,
        request_ids: list[str] | None = None,
    ) -> None:
        with transaction(self._sessions) as session:
            QuotaRepository(session).add_audit(
                at=self._now(),
                actor=actor,
                reason=reason,
                action=action,
                outcome=outcome,
                student_id=student_id,
                project_id=project_id,
                service=service,
                before=before,
                after=after,
                detail=detail,
                request_ids=request_ids or [],
                job_id=job_id,
            )
