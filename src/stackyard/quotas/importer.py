"""Import a parsed roster into the database in one transaction: all rows, or none."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from stackyard.errors import StackyardError, ValidationError
from stackyard.quotas.models import EnrollmentStatus
from stackyard.quotas.policy import QuotaPolicy
from stackyard.quotas.roster import Roster, RosterError, RowError
from stackyard.quotas.service import (
    CourseCreate,
    CourseUpdate,
    EnrollmentService,
    StudentCreate,
    StudentUpdate,
)


@dataclass
class ImportResult:
    students_created: int = 0
    students_updated: int = 0
    courses_created: int = 0
    courses_updated: int = 0
    enrollments_created: int = 0
    enrollments_unchanged: int = 0
    student_ids: set[str] = field(default_factory=set)


def _field_of(exc: StackyardError, default: str) -> str:
    return exc.field if isinstance(exc, ValidationError) else default


def _message_of(exc: StackyardError) -> str:
    return exc.message if isinstance(exc, ValidationError) else str(exc)


def import_roster(
    session: Session, policy: QuotaPolicy, roster: Roster, *, now: datetime, actor: str
) -> ImportResult:
    """Create or update the roster's courses and students and enroll them; a row that fails is listed
    with its line number and nothing is kept (the caller's transaction rolls back on RosterError).

    Students' quotas are not applied row by row: their generations go up, and the caller queues one
    reconciliation of `student_ids`.
    """
    service = EnrollmentService(session, policy, now=now, actor=actor, defer_applies=True)
    repo = service.repository
    result = ImportResult()
    errors: list[RowError] = []

    for course_row in roster.courses:
        try:
            with session.begin_nested():
                existing = repo.find_course(course_row.code, course_row.term)
                if existing is None:
                    service.create_course(
                        CourseCreate(
                            code=course_row.code,
                            term=course_row.term,
                            name=course_row.name,
                            start_date=course_row.start_date,
                            end_date=course_row.end_date,
                            profile=course_row.profile,
                            max_enrollments=course_row.max_enrollments,
                        )
                    )
                    result.courses_created += 1
                else:
                    _, _jobs = service.update_course(
                        existing.id,
                        CourseUpdate(
                            name=course_row.name,
                            start_date=course_row.start_date,
                            end_date=course_row.end_date,
                            profile=course_row.profile,
                            max_enrollments=course_row.max_enrollments,
                            clear_max_enrollments=course_row.max_enrollments is None,
                        ),
                    )
                    result.student_ids.update(repo.enrolled_in(existing.id))
                    result.courses_updated += 1
        except StackyardError as exc:
            errors.append(RowError(course_row.line, _field_of(exc, "profile"), _message_of(exc)))

    for student_row in roster.students:
        try:
            with session.begin_nested():
                existing_student = repo.find_student(student_row.student_number)
                if existing_student is None:
                    student, _job = service.register_student(
                        StudentCreate(
                            student_number=student_row.student_number,
                            name=student_row.name,
                            email=student_row.email,
                            status=student_row.status,
                            keystone_project_id=student_row.keystone_project_id,
                            keystone_user_id=student_row.keystone_user_id,
                        )
                    )
                    result.students_created += 1
                    result.student_ids.add(student.id)
                else:
                    changed = (
                        existing_student.name != student_row.name
                        or existing_student.email != student_row.email
                        or existing_student.status is not student_row.status
                    )
                    if changed:
                        service.update_student(
                            existing_student.id,
                            StudentUpdate(
                                name=student_row.name, email=student_row.email, status=student_row.status
                            ),
                        )
                        result.students_updated += 1
                        result.student_ids.add(existing_student.id)
        except StackyardError as exc:
            errors.append(RowError(student_row.line, _field_of(exc, "student_number"), _message_of(exc)))

    for row in roster.enrollments:
        try:
            with session.begin_nested():
                student_found = repo.find_student(row.student_number)
                if student_found is None or student_found.is_deleted:
                    raise ValidationError("student_number", f"no student {row.student_number}")
                course = repo.find_course(row.course_code, row.term)
                if course is None:
                    raise ValidationError("course_code", f"no course {row.course_code} in term {row.term}")
                current = repo.enrollment(student_found.id, course.id)
                if current is not None and current.status == EnrollmentStatus.ACTIVE.value:
                    result.enrollments_unchanged += 1
                    continue
                service.enroll(student_found.id, course.id)
                if row.expires_at is not None:
                    enrolled = repo.enrollment(student_found.id, course.id)
                    assert enrolled is not None
                    enrolled.expires_at = row.expires_at
                result.enrollments_created += 1
                result.student_ids.add(student_found.id)
        except StackyardError as exc:
            errors.append(RowError(row.line, _field_of(exc, "course_code"), _message_of(exc)))

    if errors:
        raise RosterError(tuple(sorted(errors, key=lambda e: e.line)))
    return result
