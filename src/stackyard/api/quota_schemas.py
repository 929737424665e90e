"""Request and response bodies of the quota routes (students, courses, profiles, enrollments, jobs)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stackyard.jobs.models import Job, JobState
from stackyard.quotas.entities import AuditEvent, Course, Enrollment, PendingCut, Profile, Student
from stackyard.quotas.models import EnrollmentStatus, QuotaValues, StudentStatus, quota_document

QuotaDocument = dict[str, dict[str, int]]


def _storable(value: str) -> str:
    # NOTE: PostgreSQL text cannot hold a NUL character; the insert would fail with a server error.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_storable)]
_QUOTA_EXAMPLE = {"compute": {"instances": 2, "cores": 4, "ram": 8192}, "block_storage": {"gigabytes": 50}}


class StudentCreate(BaseModel):
    student_number: Text = Field(min_length=1, max_length=64, examples=["s1234567"])
    name: Text = Field(min_length=1, max_length=255)
    email: Text = Field(min_length=3, max_length=255)
    status: StudentStatus = StudentStatus.ACTIVE
    keystone_project_id: Text | None = Field(
        default=None, description="Link this project instead of creating one."
    )
    keystone_user_id: Text | None = None


class StudentUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=255)
    email: Text | None = Field(default=None, min_length=3, max_length=255)
    status: StudentStatus | None = None


class StudentRead(BaseModel):
    id: str
    student_number: str
    name: str
    email: str
    status: StudentStatus
    keystone_project_id: str | None
    keystone_user_id: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    quota_in_sync: bool = Field(description="Whether the cloud holds the latest desired quota.")
    applied_at: datetime | None

    @classmethod
    def of(cls, student: Student) -> StudentRead:
        return cls(
            id=student.id,
            student_number=student.student_number,
            name=student.name,
            email=student.email,
            status=student.status,
            keystone_project_id=student.keystone_project_id,
            keystone_user_id=student.keystone_user_id,
            created_at=student.created_at,
            updated_at=student.updated_at,
            deleted_at=student.deleted_at,
            quota_in_sync=student.is_converged,
            applied_at=student.applied_at,
        )


class StudentList(BaseModel):
    items: list[StudentRead]


class JobRead(BaseModel):
    id: str
    kind: str
    state: JobState
    subject: str | None
    progress_done: int
    progress_total: int | None
    phase: str | None = Field(default=None, description="The step a running job is in, e.g. transferring.")
    rate: float | None = Field(default=None, description="Progress units (bytes for exports) per second.")
    eta_seconds: float | None = None
    message: str | None
    attempts: int
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    result: dict[str, object] | None = None

    @classmethod
    def of(cls, job: Job, *, with_result: bool = True) -> JobRead:
        return cls(
            id=job.id,
            kind=job.kind,
            state=job.state,
            subject=job.subject,
            progress_done=job.progress_done,
            progress_total=job.progress_total,
            phase=job.phase,
            rate=job.rate,
            eta_seconds=job.eta_seconds,
            message=job.message,
            attempts=job.attempts,
            error=job.error,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            next_attempt_at=job.next_attempt_at,
            result=dict(job.result) if with_result and job.result is not None else None,
        )


class JobList(BaseModel):
    items: list[JobRead]


class StudentChange(BaseModel):
    """A student write and the job that brings the cloud along; `job.state` says whether it is done."""

    student: StudentRead
    job: JobRead | None


class CourseCreate(BaseModel):
    code: Text = Field(min_length=1, max_length=64, examples=["CS101"])
    term: Text = Field(min_length=1, max_length=32, examples=["2026-fall"])
    name: Text = Field(min_length=1, max_length=255)
    start_date: date
    end_date: date
    profile: Text = Field(min_length=1, max_length=64, description="A quota profile name.")
    max_enrollments: int | None = Field(default=None, ge=1)
    reclamation: dict[str, object] | None = Field(
        default=None,
        description="Overrides the global reclamation policy: notify_url, stop, snapshot, delete.",
    )


class CourseUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=255)
    start_date: date | None = None
    end_date: date | None = None
    profile: Text | None = Field(default=None, min_length=1, max_length=64)
    max_enrollments: int | None = Field(default=None, ge=1)
    reclamation: dict[str, object] | None = None


class CourseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    term: str
    name: str
    start_date: date
    end_date: date
    profile: str
    max_enrollments: int | None
    reclamation: dict[str, object] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, course: Course) -> CourseRead:
        return cls.model_validate(course)


class CourseDetail(CourseRead):
    enrolled: int


class CourseList(BaseModel):
    items: list[CourseRead]


class CourseChange(BaseModel):
    course: CourseRead
    jobs_queued: int


class ProfileWrite(BaseModel):
    values: dict[str, object] = Field(
        description="Per service, per resource: a non-negative integer.", examples=[_QUOTA_EXAMPLE]
    )
    description: Text = Field(default="", max_length=500)


class ProfileRead(BaseModel):
    name: str
    version: int
    description: str
    values: QuotaDocument
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, profile: Profile) -> ProfileRead:
        return cls(
            name=profile.name,
            version=profile.version,
            description=profile.description,
            values=quota_document(profile.values),
            created_by=profile.created_by,
            created_at=profile.created_at,
        )


class ProfileList(BaseModel):
    items: list[ProfileRead]


class ProfileChange(BaseModel):
    profile: ProfileRead
    jobs_queued: int


class EnrollmentCreate(BaseModel):
    course_id: Text = Field(min_length=1, max_length=36)


class EnrollmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    student_id: str
    course_id: str
    course_code: str
    course_term: str
    status: EnrollmentStatus
    enrolled_at: datetime
    dropped_at: datetime | None
    expires_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, enrollment: Enrollment) -> EnrollmentRead:
        return cls.model_validate(enrollment)


class EnrollmentList(BaseModel):
    items: list[EnrollmentRead]


class EnrollmentChange(BaseModel):
    enrollment: EnrollmentRead
    job: JobRead


class PendingCutRead(BaseModel):
    resource: str
    desired: int
    limit: int
    in_use: int
    since: datetime

    @classmethod
    def of(cls, cut: PendingCut) -> PendingCutRead:
        return cls(
            resource=cut.resource.value,
            desired=cut.desired,
            limit=cut.limit,
            in_use=cut.in_use,
            since=cut.since,
        )


class StudentQuotaRead(BaseModel):
    student_id: str
    project_id: str | None
    desired: QuotaDocument
    applied: QuotaDocument | None = Field(description="What stackyard last wrote to the cloud.")
    in_sync: bool
    baseline_version: int
    profiles: list[dict[str, object]]
    pending: list[PendingCutRead]


class ServiceQuotaRead(BaseModel):
    limits: dict[str, int]
    in_use: dict[str, int]


class CurrentQuotaRead(BaseModel):
    project_id: str
    services: dict[str, ServiceQuotaRead]


class ApplyProfile(BaseModel):
    project_id: Text = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    profile: Text = Field(min_length=1, max_length=64)


class AppliedProfile(BaseModel):
    project_id: str
    profile: str
    version: int
    written: QuotaDocument


class ReconcileCreate(BaseModel):
    dry_run: bool = True
    student_ids: list[Text] | None = None
    course_id: Text | None = None
    status: StudentStatus | None = None
    changed_only: bool = Field(
        default=False,
        description="Only students whose desired quota changed since it was last applied (no drift check).",
    )


class ReclaimCreate(BaseModel):
    dry_run: bool = True


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    reason: str
    student_id: str | None
    project_id: str | None
    action: str
    service: str | None
    before: dict[str, object] | None
    after: dict[str, object] | None
    outcome: str
    detail: str | None
    request_ids: list[str]
    job_id: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditRead:
        return cls.model_validate(event)


class AuditList(BaseModel):
    items: list[AuditRead]
    next_before: int | None


class RosterImportRead(BaseModel):
    kind: str
    students_created: int
    students_updated: int
    courses_created: int
    enrollments_created: int
    reconciliation: JobRead | None


def quota_read(values: QuotaValues | None) -> QuotaDocument | None:
    return quota_document(values) if values is not None else None
