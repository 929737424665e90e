"""Students, courses, profiles and enrollments: the database side of quotas by enrollment.

Every change that can alter a student's desired quota bumps the student's generation and queues a
`quota.apply` job in the same transaction, so the change is never lost: the job (run at once by the
API, or later by a runner) brings the cloud to the desired quota. Services flush, the caller commits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from stackyard.errors import Conflict, NotFound, ValidationError
from stackyard.jobs.models import Job
from stackyard.jobs.repository import JobRepository
from stackyard.quotas.entities import Course, Enrollment, PendingCut, Profile, Student
from stackyard.quotas.models import (
    AuditReason,
    EnrollmentStatus,
    QuotaValues,
    Resource,
    StudentStatus,
    desired_quota,
    zero_quota,
)
from stackyard.quotas.policy import BASELINE, DEFAULT_BASELINE, QuotaPolicy
from stackyard.quotas.reclaim import parse_reclaim_policy
from stackyard.quotas.repository import QuotaRepository

APPLY_JOB = "quota.apply"
RECLAIM_JOB = "quota.reclaim"
RECONCILE_JOB = "quota.reconcile"

_NUMBER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class StudentCreate:
    student_number: str
    name: str
    email: str
    status: StudentStatus = StudentStatus.ACTIVE
    keystone_project_id: str | None = None  # link an existing project instead of creating one
    keystone_user_id: str | None = None


@dataclass(frozen=True)
class StudentUpdate:
    name: str | None = None
    email: str | None = None
    status: StudentStatus | None = None


@dataclass(frozen=True)
class CourseCreate:
    code: str
    term: str
    name: str
    start_date: date
    end_date: date
    profile: str
    max_enrollments: int | None = None
    reclamation: Mapping[str, object] | None = None


@dataclass(frozen=True)
class CourseUpdate:
    name: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    profile: str | None = None
    max_enrollments: int | None = None
    clear_max_enrollments: bool = False
    reclamation: Mapping[str, object] | None = None


@dataclass(frozen=True)
class Change:
    """What a write did: the record, and the job that brings the cloud along (None if nothing to do)."""

    job: Job | None


@dataclass(frozen=True)
class StudentQuota:
    """A student's desired quota and how it was made up."""

    student: Student
    desired: dict[Resource, int]
    baseline_version: int
    profiles: tuple[tuple[str, str, int], ...]  # (course id, profile name, version)
    pending: tuple[PendingCut, ...]


def _text(value: str, field: str, *, limit: int = 255) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise ValidationError(field, "must not be empty")
    if len(cleaned) > limit:
        raise ValidationError(field, f"must be at most {limit} characters")
    return cleaned


def check_student_number(value: str) -> str:
    if not _NUMBER.match(value):
        raise ValidationError("student_number", "use 1-64 letters, digits, '-' or '_' (it names the project)")
    return value


def check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValidationError("email", f"{value!r} is not an email address")
    return value


class EnrollmentService:
    """Works in the caller's transaction; `actor` is who is acting, for jobs and the audit log."""

    def __init__(
        self, session: Session, policy: QuotaPolicy, *, now: datetime, actor: str, defer_applies: bool = False
    ) -> None:
        """`defer_applies`: bump generations but queue no per-student jobs (a bulk import queues one
        reconciliation instead)."""
        self._session = session
        self._defer = defer_applies
        self._repo = QuotaRepository(session)
        self._jobs = JobRepository(session)
        self._policy = policy
        self._now = now
        self._actor = actor

    @property
    def repository(self) -> QuotaRepository:
        return self._repo

    # -- profiles --------------------------------------------------------------------------------

    def ensure_baseline(self) -> Profile:
        baseline = self._repo.latest_profile(BASELINE)
        if baseline is None:
            baseline = self._repo.add_profile_version(
                BASELINE,
                DEFAULT_BASELINE,
                description="every active student",
                actor="stackyard",
                now=self._now,
            )
        return baseline

    def profile(self, name: str) -> Profile:
        found = self.ensure_baseline() if name == BASELINE else self._repo.latest_profile(name)
        if found is None:
            raise NotFound(f"no quota profile {name!r}")
        return found

    def profiles(self) -> list[Profile]:
        self.ensure_baseline()
        return self._repo.profiles()

    def save_profile(
        self, name: str, values: QuotaValues, description: str = ""
    ) -> tuple[Profile, list[Job]]:
        """Add a version of the profile; every student it affects is re-applied."""
        if not _PROFILE_NAME.match(name):
            raise ValidationError("name", "use 1-64 lowercase letters, digits, '.', '_' or '-'")
        profile = self._repo.add_profile_version(
            name, values, description=description.strip(), actor=self._actor, now=self._now
        )
        affected = (
            [s.id for s in self._repo.students()]
            if name == BASELINE
            else self._repo.enrolled_with_profile(name)
        )
        return profile, self._changed(affected, AuditReason.MANUAL)

    # -- courses ---------------------------------------------------------------------------------

    def create_course(self, request: CourseCreate) -> Course:
        self._check_course_dates(request.start_date, request.end_date)
        self.profile(request.profile)
        if request.max_enrollments is not None and request.max_enrollments < 1:
            raise ValidationError("max_enrollments", "must be at least 1 when given")
        if request.reclamation is not None:
            parse_reclaim_policy(request.reclamation, "reclamation")
        return self._repo.add_course(
            Course(
                id=str(uuid.uuid4()),
                code=_text(request.code, "code", limit=64),
                term=_text(request.term, "term", limit=32),
                name=_text(request.name, "name"),
                start_date=request.start_date,
                end_date=request.end_date,
                profile=request.profile,
                max_enrollments=request.max_enrollments,
                reclamation=request.reclamation,
                created_at=self._now,
                updated_at=self._now,
            )
        )

    @staticmethod
    def _check_course_dates(start: date, end: date) -> None:
        if end < start:
            raise ValidationError("end_date", "must not be before start_date")

    def update_course(self, course_id: str, request: CourseUpdate) -> tuple[Course, list[Job]]:
        course = self._repo.get_course(course_id)
        changes: dict[str, object] = {}
        if request.name is not None:
            changes["name"] = _text(request.name, "name")
        start, end = request.start_date or course.start_date, request.end_date or course.end_date
        self._check_course_dates(start, end)
        changes.update(start_date=start, end_date=end)
        if request.profile is not None:
            self.profile(request.profile)
            changes["profile"] = request.profile
        if request.clear_max_enrollments:
            changes["max_enrollments"] = None
        elif request.max_enrollments is not None:
            if request.max_enrollments < 1:
                raise ValidationError("max_enrollments", "must be at least 1 when given")
            changes["max_enrollments"] = request.max_enrollments
        if request.reclamation is not None:
            parse_reclaim_policy(request.reclamation, "reclamation")
            changes["reclamation"] = dict(request.reclamation)
        updated = self._repo.update_course(course_id, changes, self._now)
        jobs: list[Job] = []
        if updated.profile != course.profile:
            jobs = self._changed(self._repo.enrolled_in(course_id), AuditReason.MANUAL)
        return updated, jobs

    # -- students --------------------------------------------------------------------------------

    def register_student(self, request: StudentCreate) -> tuple[Student, Job | None]:
        """Record the student; the queued job creates or links their project and applies the quota."""
        self.ensure_baseline()
        student = self._repo.add_student(
            Student(
                id=str(uuid.uuid4()),
                student_number=check_student_number(request.student_number.strip()),
                name=_text(request.name, "name"),
                email=check_email(request.email.strip()),
                status=request.status,
                keystone_project_id=request.keystone_project_id,
                keystone_user_id=request.keystone_user_id,
                created_at=self._now,
                updated_at=self._now,
                deleted_at=None,
                generation=1,
                applied_generation=0,
                applied_quota=None,
                applied_at=None,
            )
        )
        return student, self._queue_apply(student.id, AuditReason.REGISTER)

    def update_student(self, student_id: str, request: StudentUpdate) -> tuple[Student, Job | None]:
        current = self.student(student_id)
        changes: dict[str, object] = {}
        if request.name is not None:
            changes["name"] = _text(request.name, "name")
        if request.email is not None:
            changes["email"] = check_email(request.email.strip())
        if request.status is not None and request.status is not current.status:
            changes["status"] = request.status
        student = self._repo.update_student(student_id, changes, self._now)
        if "status" not in changes:
            return student, None
        jobs = self._changed([student_id], AuditReason.MANUAL)
        return self._repo.get_student(student_id), self._first(jobs)

    def remove_student(self, student_id: str) -> tuple[Student, Job]:
        """Soft delete: the record stays (and the audit trail); the quota goes to zero and the
        reclamation policy frees what the project holds."""
        self.student(student_id)
        self._repo.update_student(student_id, {"deleted_at": self._now}, self._now)
        self._repo.bump_generation([student_id], self._now)
        job = self._jobs.add(
            RECLAIM_JOB,
            {"student_id": student_id, "reason": AuditReason.REMOVE.value, "actor": self._actor},
            subject=student_id,
            created_by=self._actor,
            now=self._now,
        )
        return self._repo.get_student(student_id), job

    def student(self, student_id: str) -> Student:
        student = self._repo.get_student(student_id)
        if student.is_deleted:
            raise NotFound(f"no student {student_id!r} (removed)")
        return student

    # -- enrollments -----------------------------------------------------------------------------

    def enroll(self, student_id: str, course_id: str) -> tuple[Enrollment, Job | None]:
        student = self.student(student_id)
        if student.status is not StudentStatus.ACTIVE:
            raise Conflict(f"student {student.student_number} is {student.status.value}, not active")
        # The course row is locked so that two enrollments racing for its last seat serialise.
        course = self._repo.get_course(course_id, lock=True)
        if course.end_date < self._now.date():
            raise Conflict(f"course {course.code} ({course.term}) ended on {course.end_date.isoformat()}")
        existing = self._repo.enrollment(student_id, course_id)
        if existing is not None and existing.status == EnrollmentStatus.ACTIVE.value:
            raise Conflict(
                f"student {student.student_number} is already enrolled in {course.code} ({course.term})"
            )
        if (
            course.max_enrollments is not None
            and self._repo.count_active(course_id) >= course.max_enrollments
        ):
            raise Conflict(
                f"course {course.code} ({course.term}) is full ({course.max_enrollments} enrolled)"
            )
        expires_at = self._policy.expiry_of(course.end_date)
        if existing is None:
            row = self._repo.add_enrollment(student_id, course_id, now=self._now, expires_at=expires_at)
        else:
            row = existing
            row.status = EnrollmentStatus.ACTIVE.value
            row.enrolled_at, row.dropped_at, row.ended_at, row.expires_at = self._now, None, None, expires_at
            self._session.flush()
        enrollment = self._repo.view_enrollment(row)
        return enrollment, self._first(self._changed([student_id], AuditReason.ENROLL))

    def drop(self, student_id: str, course_id: str) -> tuple[Enrollment, Job | None]:
        self.student(student_id)
        course = self._repo.get_course(course_id)
        row = self._repo.enrollment(student_id, course_id)
        if row is None or row.status != EnrollmentStatus.ACTIVE.value:
            raise NotFound(f"the student is not enrolled in {course.code} ({course.term})")
        row.status = EnrollmentStatus.DROPPED.value
        row.dropped_at = row.ended_at = self._now
        self._session.flush()
        return self._repo.view_enrollment(row), self._first(self._changed([student_id], AuditReason.DROP))

    def enrollments(self, student_id: str) -> list[Enrollment]:
        self._repo.get_student(student_id)
        return self._repo.enrollments_of(student_id)

    def expire(self) -> list[Job]:
        """Expire every enrollment past its `expires_at` and queue an apply for each student affected."""
        return self._changed(self._repo.expire_due(self._now), AuditReason.EXPIRY)

    # -- desired quota ---------------------------------------------------------------------------

    def desired(self, student_id: str) -> StudentQuota:
        student = self._repo.get_student(student_id)
        baseline = self.ensure_baseline()
        used: list[tuple[str, str, int]] = []
        values: list[QuotaValues] = []
        for course_id, name in self._repo.active_profile_names(student_id):
            profile = self._repo.latest_profile(name)
            if profile is None:  # a course always names an existing profile; tolerate a deleted one
                continue
            used.append((course_id, name, profile.version))
            values.append(profile.values)
        if student.is_deleted or student.status is not StudentStatus.ACTIVE:
            desired = zero_quota()
        else:
            desired = desired_quota(baseline.values, values, self._policy.caps)
        return StudentQuota(
            student=student,
            desired=desired,
            baseline_version=baseline.version,
            profiles=tuple(used),
            pending=tuple(self._repo.pending_cuts(student_id)),
        )

    # -- jobs ------------------------------------------------------------------------------------

    @staticmethod
    def _first(jobs: list[Job]) -> Job | None:
        return jobs[0] if jobs else None

    def _queue_apply(self, student_id: str, reason: AuditReason) -> Job | None:
        if self._defer:
            return None
        return self._jobs.add(
            APPLY_JOB,
            {"student_id": student_id, "reason": reason.value, "actor": self._actor},
            subject=student_id,
            created_by=self._actor,
            now=self._now,
        )

    def _changed(self, student_ids: Sequence[str], reason: AuditReason) -> list[Job]:
        self._repo.bump_generation(student_ids, self._now)
        queued = (self._queue_apply(student_id, reason) for student_id in student_ids)
        return [job for job in queued if job is not None]
