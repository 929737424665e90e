"""Live quotas of a project, direct profile application, bulk reconciliation, the audit log, roster import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from stackyard.api.deps import AdminPrincipal, CurrentPrincipal, State
from stackyard.api.quota_schemas import (
    AppliedProfile,
    ApplyProfile,
    AuditList,
    AuditRead,
    CurrentQuotaRead,
    JobRead,
    ReconcileCreate,
    RosterImportRead,
    ServiceQuotaRead,
)
from stackyard.api.routes.students import Enrollments
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import NotFound, PermissionDenied
from stackyard.jobs.repository import JobRepository
from stackyard.quotas.importer import import_roster
from stackyard.quotas.models import AuditReason, quota_document
from stackyard.quotas.reconcile import ReconcileFilter
from stackyard.quotas.roster import parse_roster
from stackyard.quotas.service import RECONCILE_JOB

router = APIRouter(tags=["quotas"])
PROJECT_ID = r"^[A-Za-z0-9_-]+$"  # Keystone project ids are hex; nothing that could bend a URL path
_MAX_ROSTER_BYTES = 5 * 1024 * 1024


@router.get("/api/v1/quota/current", response_model=CurrentQuotaRead)
def current_quota(
    state: State,
    principal: CurrentPrincipal,
    project_id: Annotated[str, Query(alias="projectId", min_length=1, max_length=64, pattern=PROJECT_ID)],
) -> CurrentQuotaRead:
    """Limits and usage per service, read from the cloud now. Members may read only their own project."""
    if not principal.can_access_project(project_id):
        raise PermissionDenied("members may read the quota of their own project only")
    readings = state.quotas.tasks.applier.read_current(project_id)
    return CurrentQuotaRead(
        project_id=project_id,
        services={
            service.value: ServiceQuotaRead(limits=dict(reading.limits), in_use=dict(reading.in_use or {}))
            for service, reading in readings.items()
        },
    )


@router.post("/api/v1/quota/applyProfile", response_model=AppliedProfile)
def apply_profile(
    body: ApplyProfile, service: Enrollments, state: State, admin: AdminPrincipal
) -> AppliedProfile:
    """Write a profile's values to any project, outside enrollment bookkeeping (cuts below usage are
    limited to the usage, as everywhere). A student's project is reset by its next reconciliation."""
    profile = service.profile(body.profile)
    plan = state.quotas.tasks.applier.apply_values(
        body.project_id, profile.values, actor=admin.subject, reason=AuditReason.MANUAL
    )
    written = {r: v for values in plan.writes.values() for r, v in values.items()}
    return AppliedProfile(
        project_id=body.project_id,
        profile=profile.name,
        version=profile.version,
        written=quota_document(written),
    )


@router.post("/api/v1/reconciliation/bulk", response_model=JobRead, status_code=202)
def reconcile(body: ReconcileCreate, state: State, admin: AdminPrincipal, response: Response) -> JobRead:
    """Plan (dry run, the default) or apply the desired quota of all or some students, as a job; its
    result lists every project: unchanged, updated, pending or failed, and any drift found."""
    selection = ReconcileFilter(
        student_ids=tuple(body.student_ids) if body.student_ids is not None else None,
        course_id=body.course_id,
        status=body.status,
        changed_only=body.changed_only,
    )
    job = state.runner.submit(
        RECONCILE_JOB,
        {"filter": selection.as_dict(), "dry_run": body.dry_run, "actor": admin.subject},
        subject=None,
        created_by=admin.subject,
    )
    response.headers["Location"] = f"/api/v1/reconciliation/runs/{job.id}"
    return JobRead.of(job)


@router.get("/api/v1/reconciliation/runs/{run_id}", response_model=JobRead)
def reconciliation_run(run_id: str, state: State, _admin: AdminPrincipal) -> JobRead:
    job = state.runner.get(run_id)
    if job.kind != RECONCILE_JOB:
        raise NotFound(f"no reconciliation run {run_id!r}")
    return JobRead.of(job)


@router.get("/api/v1/reconciliation/runs", response_model=list[JobRead])
def reconciliation_runs(
    state: State, _admin: AdminPrincipal, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[JobRead]:
    with state.sessions() as session:
        jobs = JobRepository(session).list_jobs(kinds=[RECONCILE_JOB], limit=limit)
    return [JobRead.of(job, with_result=False) for job in jobs]


@router.get("/api/v1/audit", response_model=AuditList)
def audit(
    service: Enrollments,
    principal: CurrentPrincipal,
    student_id: Annotated[str | None, Query(alias="studentId", max_length=36)] = None,
    reason: AuditReason | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Return events older than this id (paging).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditList:
    """Every quota change and reclamation action, newest first. Members see their own student's only."""
    if not principal.is_admin:
        mine = service.repository.students_of(project_id=principal.project_id, user_id=principal.subject)
        if student_id is None and len(mine) == 1:
            student_id = mine[0].id
        if student_id is None or student_id not in {s.id for s in mine}:
            raise PermissionDenied("members may read the audit log of their own student record only")
    events = service.repository.audit(student_id=student_id, reason=reason, before_id=before, limit=limit)
    return AuditList(
        items=[AuditRead.of(e) for e in events], next_before=events[-1].id if len(events) == limit else None
    )


@router.post("/api/v1/import/roster", response_model=RosterImportRead)
def import_roster_file(
    state: State,
    admin: AdminPrincipal,
    body: Annotated[
        str, Body(media_type="text/csv", description="A students, courses, enrollments or roster CSV.")
    ],
    reconcile_after: Annotated[bool, Query(alias="reconcile")] = True,
) -> RosterImportRead:
    """All or nothing: any bad row rejects the file (422 listing every bad row by line number); on
    success one reconciliation job applies the quotas of the students it touched."""
    if len(body.encode()) > _MAX_ROSTER_BYTES:
        raise PermissionDenied(f"a roster may be at most {_MAX_ROSTER_BYTES // (1024 * 1024)} MiB")
    roster = parse_roster(body, source="upload")
    with transaction(state.sessions) as session:
        result = import_roster(session, state.quotas.policy, roster, now=utcnow(), actor=admin.subject)
    job = None
    if reconcile_after and result.student_ids:
        job = state.runner.submit(
            RECONCILE_JOB,
            {
                "filter": ReconcileFilter(student_ids=tuple(result.student_ids)).as_dict(),
                "dry_run": False,
                "actor": admin.subject,
            },
            subject=None,
            created_by=admin.subject,
        )
    return RosterImportRead(
        kind=roster.kind.value,
        students_created=result.students_created,
        students_updated=result.students_updated,
        courses_created=result.courses_created,
        enrollments_created=result.enrollments_created,
        reconciliation=JobRead.of(job) if job is not None else None,
    )
