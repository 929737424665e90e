"""Carry out the reclamation policy for a student: notify, stop, snapshot, delete what exceeds the quota."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.holdings import HoldingsGateway
from stackyard.cloud.status import ServerStatus
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import CloudError, StackyardError, ValidationError
from stackyard.quotas.apply import QuotaApplier, StudentResult
from stackyard.quotas.models import AuditReason
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.reclaim import (
    OwnedFloatingIp,
    OwnedServer,
    OwnedVolume,
    ReclaimAction,
    ReclaimPlan,
    ReclaimPolicy,
    ReclaimStep,
    parse_reclaim_policy,
    plan_reclaim,
)
from stackyard.quotas.repository import QuotaRepository
from stackyard.quotas.service import EnrollmentService

# Sends the notification: (url, JSON body). Raises StackyardError when the receiver does not accept it.
Notifier = Callable[[str, Mapping[str, object]], None]


@dataclass(frozen=True)
class ReclaimReport:
    student_id: str
    project_id: str | None
    dry_run: bool
    plan: ReclaimPlan
    applied: StudentResult | None  # the quota re-applied after the reclamation

    def as_dict(self) -> dict[str, object]:
        return {
            "student_id": self.student_id,
            "project_id": self.project_id,
            "dry_run": self.dry_run,
            "steps": [
                {
                    "action": s.action.value,
                    "target_id": s.target_id,
                    "target_name": s.target_name,
                    "reason": s.reason,
                }
                for s in self.plan.steps
            ],
            "quota": self.applied.as_dict() if self.applied is not None else None,
        }


class Reclaimer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        holdings: HoldingsGateway,
        applier: QuotaApplier,
        policy: QuotaPolicy,
        notifier: Notifier,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._holdings = holdings
        self._applier = applier
        self._policy = policy
        self._notify = notifier
        self._now = now

    def _policy_for(self, repo: QuotaRepository, student_id: str) -> ReclaimPolicy:
        """The policy of the course whose end caused the cut, when it has one; else the global one."""
        course = repo.last_ended_course(student_id)
        if course is not None and course.reclamation:
            return parse_reclaim_policy(course.reclamation, f"courses[{course.code}].reclamation")
        return self._policy.reclamation

    def plan(self, student_id: str, *, actor: str) -> tuple[str | None, ReclaimPlan]:
        with transaction(self._sessions) as session:
            quota = EnrollmentService(session, self._policy, now=self._now(), actor=actor).desired(student_id)
            policy = self._policy_for(QuotaRepository(session), student_id)
        project_id = quota.student.keystone_project_id
        if project_id is None:
            return None, ReclaimPlan(())
        servers = [
            OwnedServer(s.id, s.name, s.created_at, s.vcpus, s.ram_mib, s.status is ServerStatus.ACTIVE)
            for s in self._holdings.servers(project_id)
        ]
        volumes = [
            OwnedVolume(v.id, v.name, v.created_at, v.size_gib, v.attached_to)
            for v in self._holdings.volumes(project_id)
        ]
        ips = [
            OwnedFloatingIp(f.id, f.address, f.created_at) for f in self._holdings.floating_ips(project_id)
        ]
        return project_id, plan_reclaim(quota.desired, servers, volumes, ips, policy)

    def reclaim(
        self, student_id: str, *, actor: str, reason: AuditReason, dry_run: bool, job_id: str | None = None
    ) -> ReclaimReport:
        project_id, plan = self.plan(student_id, actor=actor)
        if dry_run or project_id is None:
            return ReclaimReport(student_id, project_id, dry_run, plan, None)
        for step in plan.steps:
            self._run(step, plan, student_id, project_id, actor=actor, reason=reason, job_id=job_id)
        applied = self._applier.apply_student(student_id, actor=actor, reason=reason, job_id=job_id)
        return ReclaimReport(student_id, project_id, False, plan, applied)

    def _run(
        self,
        step: ReclaimStep,
        plan: ReclaimPlan,
        student_id: str,
        project_id: str,
        *,
        actor: str,
        reason: AuditReason,
        job_id: str | None,
    ) -> None:
        outcome, detail = "applied", step.reason
        try:
            if step.action is ReclaimAction.NOTIFY:
                if plan.notify_url is None:
                    raise ValidationError(
                        "reclamation.notify_url", "a notify step needs the policy's notify_url"
                    )
                self._notify(
                    plan.notify_url,
                    {
                        "event": "stackyard.quota.reclamation",
                        "student_id": student_id,
                        "project_id": project_id,
                        "steps": [
                            {"action": s.action.value, "target_id": s.target_id, "target_name": s.target_name}
                            for s in plan.steps
                            if s.action is not ReclaimAction.NOTIFY
                        ],
                    },
                )
            elif step.action is ReclaimAction.STOP:
                self._holdings.stop_server(step.target_id)
            elif step.action is ReclaimAction.SNAPSHOT:
                image_id = self._holdings.snapshot_server(step.target_id, f"reclaim-{step.target_id}")
                detail = f"{step.reason}; snapshot image {image_id}"
            elif step.action is ReclaimAction.DELETE_SERVER:
                if not self._holdings.delete_server(step.target_id):
                    outcome = "gone"
            elif step.action is ReclaimAction.DELETE_VOLUME:
                if not self._holdings.delete_volume(step.target_id):
                    outcome = "gone"
            elif step.action is ReclaimAction.RELEASE_FLOATING_IP and not self._holdings.delete_floating_ip(
                step.target_id
            ):
                outcome = "gone"
        except StackyardError as exc:
            self._audit(step, student_id, project_id, actor, reason, job_id, "failed", str(exc), exc)
            raise
        self._audit(step, student_id, project_id, actor, reason, job_id, outcome, detail, None)

    def _audit(
        self,
        step: ReclaimStep,
        student_id: str,
        project_id: str,
        actor: str,
        reason: AuditReason,
        job_id: str | None,
        outcome: str,
        detail: str,
        error: StackyardError | None,
    ) -> None:
        request_id = getattr(error, "request_id", None) if isinstance(error, CloudError) else None
        with transaction(self._sessions) as session:
            QuotaRepository(session).add_audit(
                at=self._now(),
                actor=actor,
                reason=reason,
                action=f"reclaim.{step.action.value}",
                outcome=outcome,
                student_id=student_id,
                project_id=project_id,
                after={"target_id": step.target_id, "target_name": step.target_name},
                detail=detail,
                request_ids=[request_id] if request_id else [],
                job_id=job_id,
            )
