"""The quota slice's job handlers and its periodic round (expiry, pending cuts, reclamation)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import Handler, JobContext
from stackyard.quotas.apply import QuotaApplier
from stackyard.quotas.models import AuditReason, Resource
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.reclaimer import Reclaimer
from stackyard.quotas.reconcile import ReconcileFilter, Reconciler
from stackyard.quotas.repository import QuotaRepository
from stackyard.quotas.service import APPLY_JOB, RECLAIM_JOB, RECONCILE_JOB, EnrollmentService

SYSTEM_ACTOR = "stackyard-scheduler"
# What reclamation can free; a cut of anything else (a project's default security group, say) stays
# pending without ever triggering it.
RECLAIMABLE = (
    Resource.INSTANCES,
    Resource.CORES,
    Resource.RAM,
    Resource.VOLUMES,
    Resource.GIGABYTES,
    Resource.FLOATING_IPS,
)


def _reclaimed_since_pending(repo: QuotaRepository, student_id: str) -> bool:
    """Reclamation runs once per episode of pending cuts, not again every round (no repeated notices)."""
    last, since = repo.last_reclaim_at(student_id), repo.oldest_pending_since(student_id)
    return last is not None and since is not None and last >= since


def _text(payload: Mapping[str, object], key: str, default: str = "") -> str:
    value = payload.get(key, default)
    return value if isinstance(value, str) else default


@dataclass(frozen=True)
class RoundReport:
    expired_students: int
    applies_queued: int
    reclaims_queued: int


class QuotaTasks:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        applier: QuotaApplier,
        reclaimer: Reclaimer,
        reconciler: Reconciler,
        policy: QuotaPolicy,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.applier = applier
        self.reclaimer = reclaimer
        self.reconciler = reconciler
        self._policy = policy
        self._now = now

    def handlers(self) -> dict[str, Handler]:
        return {APPLY_JOB: self.run_apply, RECLAIM_JOB: self.run_reclaim, RECONCILE_JOB: self.run_reconcile}

    def run_apply(self, context: JobContext) -> Mapping[str, object]:
        payload = context.job.payload
        result = self.applier.apply_student(
            _text(payload, "student_id"),
            actor=_text(payload, "actor", "stackyard"),
            reason=AuditReason(_text(payload, "reason", AuditReason.RECONCILE.value)),
            job_id=context.job.id,
        )
        return result.as_dict()

    def run_reclaim(self, context: JobContext) -> Mapping[str, object]:
        payload = context.job.payload
        report = self.reclaimer.reclaim(
            _text(payload, "student_id"),
            actor=_text(payload, "actor", "stackyard"),
            reason=AuditReason(_text(payload, "reason", AuditReason.RECLAIM.value)),
            dry_run=bool(payload.get("dry_run", False)),
            job_id=context.job.id,
        )
        return report.as_dict()

    def run_reconcile(self, context: JobContext) -> Mapping[str, object]:
        payload = context.job.payload
        report = self.reconciler.run(
            ReconcileFilter.from_dict(payload.get("filter")),
            dry_run=bool(payload.get("dry_run", True)),
            actor=_text(payload, "actor", "stackyard"),
            job_id=context.job.id,
            progress=lambda done, total: context.report(done, total, f"{done} of {total} projects"),
        )
        return report.as_dict()

    def run_round(self) -> RoundReport:
        """Expire enrollments; re-apply students with pending cuts (usage may have fallen); queue the
        reclamation of students whose cut has waited past the grace period."""
        now = self._now()
        with transaction(self._sessions) as session:
            service = EnrollmentService(session, self._policy, now=now, actor=SYSTEM_ACTOR)
            expired = service.expire()
            repo = QuotaRepository(session)
            jobs = JobRepository(session)
            busy = jobs.open_subjects([APPLY_JOB, RECLAIM_JOB])
            overdue = {
                student_id
                for student_id in repo.students_with_pending(
                    since_before=now - self._policy.reduction_grace, resources=RECLAIMABLE
                )
                if not _reclaimed_since_pending(repo, student_id)
            }
            applies = reclaims = 0
            for student_id in repo.students_with_pending():
                if student_id in busy:
                    continue
                kind = RECLAIM_JOB if student_id in overdue else APPLY_JOB
                reason = AuditReason.RECLAIM if student_id in overdue else AuditReason.RECONCILE
                jobs.add(
                    kind,
                    {"student_id": student_id, "reason": reason.value, "actor": SYSTEM_ACTOR},
                    subject=student_id,
                    created_by=SYSTEM_ACTOR,
                    now=now,
                )
                reclaims += kind == RECLAIM_JOB
                applies += kind == APPLY_JOB
        return RoundReport(len(expired), applies + len(expired), reclaims)
