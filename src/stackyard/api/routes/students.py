"""Students and their enrollments; a member sees only the student whose project or user they are."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from stackyard.api.deps import AdminPrincipal, CurrentPrincipal, State
from stackyard.api.quota_schemas import (
    EnrollmentChange,
    EnrollmentCreate,
    EnrollmentList,
    EnrollmentRead,
    JobRead,
    PendingCutRead,
    ReclaimCreate,
    StudentChange,
    StudentCreate,
    StudentList,
    StudentQuotaRead,
    StudentRead,
    StudentUpdate,
    quota_read,
)
from stackyard.api.state import AppState
from stackyard.auth.models import Principal
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import NotFound
from stackyard.jobs.models import Job
from stackyard.quotas import service as quota_service
from stackyard.quotas.entities import Student
from stackyard.quotas.models import StudentStatus, quota_document
from stackyard.quotas.service import EnrollmentService

router = APIRouter(tags=["students"])
StudentId = Annotated[str, Path(min_length=1, max_length=36, description="Student id.")]


def enrollment_service(state: State, principal: CurrentPrincipal) -> Iterator[EnrollmentService]:
    with transaction(state.sessions) as session:
        yield EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=principal.subject)


# scope="function": committed before the response, so the job the route runs next sees the change.
Enrollments = Annotated[EnrollmentService, Depends(enrollment_service, scope="function")]


def may_see(principal: Principal, student: Student) -> bool:
    if principal.is_admin:
        return True
    return (
        student.keystone_project_id is not None and student.keystone_project_id == principal.project_id
    ) or (student.keystone_user_id is not None and student.keystone_user_id == principal.subject)


def visible_student(service: EnrollmentService, principal: Principal, student_id: str) -> Student:
    """The student, if the caller may see them; others' records answer 404, as if they did not exist."""
    student = service.student(student_id)
    if not may_see(principal, student):
        raise NotFound(f"no student {student_id!r}")
    return student


def run_now(state: AppState, job: Job | None) -> Job | None:
    """Apply at once for a caller who waits; a slow or unavailable cloud leaves the job queued, and
    the runner finishes it (the answer then says 202 and names the job)."""
    if job is None or state.quotas.policy.apply_timeout <= 0:
        return job
    return state.runner.run_one(job.id, handler=state.quotas.inline.handlers()[job.kind])


def answer_status(response: Response, job: Job | None, created: bool = False) -> None:
    if job is not None and not job.state.is_final:
        response.status_code = 202
    elif created:
        response.status_code = 201


def job_read(job: Job | None) -> JobRead | None:
    return JobRead.of(job) if job is not None else None


@router.get("/api/v1/students", response_model=StudentList)
def list_students(
    service: Enrollments,
    principal: CurrentPrincipal,
    q: Annotated[str | None, Query(max_length=100, description="Matches number, name or email.")] = None,
    status: StudentStatus | None = None,
    course_id: Annotated[str | None, Query(alias="courseId", max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> StudentList:
    if not principal.is_admin:
        mine = service.repository.students_of(project_id=principal.project_id, user_id=principal.subject)
        return StudentList(items=[StudentRead.of(s) for s in mine])
    students = service.repository.students(
        search=q, status=status, course_id=course_id, limit=limit, offset=offset
    )
    return StudentList(items=[StudentRead.of(s) for s in students])


@router.post(
    "/api/v1/students",
    response_model=StudentChange,
    status_code=201,
    responses={202: {"model": StudentChange, "description": "Recorded; the project is being set up."}},
)
def create_student(
    body: StudentCreate, state: State, admin: AdminPrincipal, response: Response
) -> StudentChange:
    with transaction(state.sessions) as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=admin.subject)
        student, job = service.register_student(
            quota_service.StudentCreate(
                student_number=body.student_number,
                name=body.name,
                email=body.email,
                status=body.status,
                keystone_project_id=body.keystone_project_id,
                keystone_user_id=body.keystone_user_id,
            )
        )
    job = run_now(state, job)
    answer_status(response, job, created=True)
    with state.sessions() as session:
        fresh = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=admin.subject).student(
            student.id
        )
    response.headers["Location"] = f"/api/v1/students/{student.id}"
    return StudentChange(student=StudentRead.of(fresh), job=job_read(job))


@router.get("/api/v1/students/{student_id}", response_model=StudentRead)
def get_student(student_id: StudentId, service: Enrollments, principal: CurrentPrincipal) -> StudentRead:
    return StudentRead.of(visible_student(service, principal, student_id))


@router.patch(
    "/api/v1/students/{student_id}",
    response_model=StudentChange,
    responses={202: {"model": StudentChange, "description": "Recorded; the quota change is queued."}},
)
def update_student(
    student_id: StudentId, body: StudentUpdate, state: State, admin: AdminPrincipal, response: Response
) -> StudentChange:
    with transaction(state.sessions) as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=admin.subject)
        student, job = service.update_student(
            student_id, quota_service.StudentUpdate(name=body.name, email=body.email, status=body.status)
        )
    job = run_now(state, job)
    answer_status(response, job)
    return StudentChange(student=StudentRead.of(student), job=job_read(job))


@router.delete(
    "/api/v1/students/{student_id}",
    response_model=StudentChange,
    status_code=202,
    description="Soft delete: the record and audit trail stay; the project's quota goes to zero and the"
    " reclamation policy frees what it holds (a job).",
)
def delete_student(student_id: StudentId, state: State, admin: AdminPrincipal) -> StudentChange:
    with transaction(state.sessions) as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=admin.subject)
        student, job = service.remove_student(student_id)
    return StudentChange(student=StudentRead.of(student), job=JobRead.of(job))


@router.post(
    "/api/v1/students/{student_id}/enroll",
    response_model=EnrollmentChange,
    status_code=201,
    responses={
        202: {
            "model": EnrollmentChange,
            "description": "Enrolled; the cloud has not confirmed the quota yet.",
        }
    },
)
def enroll(
    student_id: StudentId, body: EnrollmentCreate, state: State, admin: AdminPrincipal, response: Response
) -> EnrollmentChange:
    with transaction(state.sessions) as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=admin.subject)
        enrollment, job = service.enroll(student_id, body.course_id)
    job = run_now(state, job)
    answer_status(response, job, created=True)
    assert job is not None
    return EnrollmentChange(enrollment=EnrollmentRead.of(enrollment), job=JobRead.of(job))


@router.delete(
    "/api/v1/students/{student_id}/enroll/{course_id}",
    response_model=EnrollmentChange,
    responses={
        202: {"model": EnrollmentChange, "description": "Dropped; the cloud has not confirmed the quota yet."}
    },
)
def drop(
    student_id: StudentId,
    course_id: Annotated[str, Path(min_length=1, max_length=36)],
    state: State,
    admin: AdminPrincipal,
    response: Response,
) -> EnrollmentChange:
    with transaction(state.sessions) as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=admin.subject)
        enrollment, job = service.drop(student_id, course_id)
    job = run_now(state, job)
    answer_status(response, job)
    assert job is not None
    return EnrollmentChange(enrollment=EnrollmentRead.of(enrollment), job=JobRead.of(job))


@router.get("/api/v1/students/{student_id}/enrollments", response_model=EnrollmentList)
def list_enrollments(
    student_id: StudentId, service: Enrollments, principal: CurrentPrincipal
) -> EnrollmentList:
    visible_student(service, principal, student_id)
    return EnrollmentList(items=[EnrollmentRead.of(e) for e in service.enrollments(student_id)])


@router.get("/api/v1/students/{student_id}/quota", response_model=StudentQuotaRead)
def student_quota(
    student_id: StudentId, service: Enrollments, principal: CurrentPrincipal
) -> StudentQuotaRead:
    """Desired quota and how it is made up, what stackyard last wrote, and cuts waiting for usage."""
    student = visible_student(service, principal, student_id)
    quota = service.desired(student.id)
    return StudentQuotaRead(
        student_id=student.id,
        project_id=student.keystone_project_id,
        desired=quota_document(quota.desired),
        applied=quota_read(student.applied_quota),
        in_sync=student.is_converged,
        baseline_version=quota.baseline_version,
        profiles=[{"course_id": c, "profile": p, "version": v} for c, p, v in quota.profiles],
        pending=[PendingCutRead.of(cut) for cut in quota.pending],
    )


@router.post("/api/v1/students/{student_id}/reclaim", response_model=JobRead, status_code=202)
def reclaim(
    student_id: StudentId,
    state: State,
    admin: AdminPrincipal,
    response: Response,
    body: Annotated[ReclaimCreate, Body()] = ReclaimCreate(),  # noqa: B008 - a constant default body
) -> JobRead:
    """Run the reclamation policy now (a job): with `dry_run` (the default) the job's result lists the
    steps it would take — notify, stop, snapshot, delete, newest first — and nothing is touched."""
    with transaction(state.sessions) as session:
        service = EnrollmentService(session, state.quotas.policy, now=utcnow(), actor=admin.subject)
        service.student(student_id)
    job = state.runner.submit(
        quota_service.RECLAIM_JOB,
        {"student_id": student_id, "reason": "reclaim", "actor": admin.subject, "dry_run": body.dry_run},
        subject=student_id,
        created_by=admin.subject,
    )
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobRead.of(job)
