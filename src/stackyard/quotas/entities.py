"""Read models of students, courses, profiles, enrollments, pending cuts and audit events (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from stackyard.quotas.models import AuditReason, EnrollmentStatus, Resource, StudentStatus


@dataclass(frozen=True)
class Profile:
    name: str
    version: int
    description: str
    values: Mapping[Resource, int]
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class Course:
    id: str
    code: str
    term: str
    name: str
    start_date: date
    end_date: date
    profile: str
    max_enrollments: int | None
    reclamation: Mapping[str, object] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Student:
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
    generation: int
    applied_generation: int
    applied_quota: Mapping[Resource, int] | None
    applied_at: datetime | None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_converged(self) -> bool:
        return self.applied_generation >= self.generation


@dataclass(frozen=True)
class Enrollment:
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


@dataclass(frozen=True)
class PendingCut:
    resource: Resource
    desired: int
    limit: int
    in_use: int
    since: datetime
    checked_at: datetime


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    reason: AuditReason
    student_id: str | None
    project_id: str | None
    action: str
    service: str | None
    before: Mapping[str, object] | None
    after: Mapping[str, object] | None
    outcome: str
    detail: str | None
    request_ids: tuple[str, ...]
    job_id: str | None
