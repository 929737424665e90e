"""All SQL of the quotas slice; works inside the caller's transaction (flushes, never commits)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackyard.errors import Conflict, NotFound
from stackyard.quotas.entities import AuditEvent, Course, Enrollment, PendingCut, Profile, Student
from stackyard.quotas.models import (
    AuditReason,
    EnrollmentStatus,
    Resource,
    StudentStatus,
    parse_quota_values,
    quota_document,
)
from stackyard.quotas.orm import (
    CourseRecord,
    EnrollmentRecord,
    PendingCutRecord,
    QuotaAuditRecord,
    QuotaProfileRecord,
    StudentRecord,
)


def _values(document: Mapping[str, object] | None) -> dict[Resource, int] | None:
    return None if document is None else parse_quota_values(document, "stored")


def _profile(row: QuotaProfileRecord) -> Profile:
    return Profile(
        name=row.name,
        version=row.version,
        description=row.description,
        values=parse_quota_values(row.values, "stored"),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _course(row: CourseRecord) -> Course:
    return Course(
        id=row.id,
        code=row.code,
        term=row.term,
        name=row.name,
        start_date=row.start_date,
        end_date=row.end_date,
        profile=row.profile,
        max_enrollments=row.max_enrollments,
        reclamation=dict(row.reclamation) if row.reclamation is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _student(row: StudentRecord) -> Student:
    return Student(
        id=row.id,
        student_number=row.student_number,
        name=row.name,
        email=row.email,
        status=StudentStatus(row.status),
        keystone_project_id=row.keystone_project_id,
        keystone_user_id=row.keystone_user_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        generation=row.generation,
        applied_generation=row.applied_generation,
        applied_quota=_values(row.applied_quota),
        applied_at=row.applied_at,
    )


def _enrollment(row: EnrollmentRecord, course: CourseRecord) -> Enrollment:
    return Enrollment(
        id=row.id,
        student_id=row.student_id,
        course_id=row.course_id,
        course_code=course.code,
        course_term=course.term,
        status=EnrollmentStatus(row.status),
        enrolled_at=row.enrolled_at,
        dropped_at=row.dropped_at,
        expires_at=row.expires_at,
        ended_at=row.ended_at,
    )


def _audit(row: QuotaAuditRecord) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        actor=row.actor,
        reason=AuditReason(row.reason),
        student_id=row.student_id,
        project_id=row.project_id,
        action=row.action,
        service=row.service,
        before=row.before,
        after=row.after,
        outcome=row.outcome,
        detail=row.detail,
        request_ids=tuple(row.request_ids or ()),
        job_id=row.job_id,
    )


class QuotaRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _flush(self, what: str) -> None:
        try:
            self._session.flush()
        except IntegrityError:
            raise Conflict(f"{what} already exists") from None

    # -- profiles --------------------------------------------------------------------------------

    def latest_profile(self, name: str) -> Profile | None:
        row = self._session.scalars(
            select(QuotaProfileRecord)
            .where(QuotaProfileRecord.name == name)
            .order_by(QuotaProfileRecord.version.desc())
            .limit(1)
        ).first()
        return _profile(row) if row is not None else None

    def profile_versions(self, name: str) -> list[Profile]:
        rows = self._session.scalars(
            select(QuotaProfileRecord)
            .where(QuotaProfileRecord.name == name)
            .order_by(QuotaProfileRecord.version.desc())
        )
        return [_profile(row) for row in rows]

    def profiles(self) -> list[Profile]:
        """The latest version of every profile, by name."""
        latest = (
            select(QuotaProfileRecord.name, func.max(QuotaProfileRecord.version).label("version"))
            .group_by(QuotaProfileRecord.name)
            .subquery()
        )
        rows = self._session.scalars(
            select(QuotaProfileRecord)
            .join(
                latest,
                (QuotaProfileRecord.name == latest.c.name) & (QuotaProfileRecord.version == latest.c.version),
            )
            .order_by(QuotaProfileRecord.name)
        )
        return [_profile(row) for row in rows]

    def add_profile_version(
        self, name: str, values: Mapping[Resource, int], *, description: str, actor: str, now: datetime
    ) -> Profile:
        current = self.latest_profile(name)
        row = QuotaProfileRecord(
            name=name,
            version=(current.version + 1) if current else 1,
            description=description,
            values=quota_document(values),
            created_by=actor,
            created_at=now,
        )
        self._session.add(row)
        self._flush(f"profile {name!r} version {row.version}")
        return _profile(row)

    # -- courses ---------------------------------------------------------------------------------

    def add_course(self, course: Course) -> Course:
        row = CourseRecord(
            id=course.id,
            code=course.code,
            term=course.term,
            name=course.name,
            start_date=course.start_date,
            end_date=course.end_date,
            profile=course.profile,
            max_enrollments=course.max_enrollments,
            reclamation=dict(course.reclamation) if course.reclamation is not None else None,
            created_at=course.created_at,
            updated_at=course.updated_at,
        )
        self._session.add(row)
        self._flush(f"course {course.code} in term {course.term}")
        return _course(row)

    def _course_row(self, course_id: str, *, lock: bool = False) -> CourseRecord:
        row = self._session.get(CourseRecord, course_id, with_for_update=lock)
        if row is None:
            raise NotFound(f"no course {course_id!r}")
        return row

    def get_course(self, course_id: str, *, lock: bool = False) -> Course:
        return _course(self._course_row(course_id, lock=lock))

    def find_course(self, code: str, term: str) -> Course | None:
        row = self._session.scalars(
            select(CourseRecord).where(CourseRecord.code == code, CourseRecord.term == term)
        ).first()
        return _course(row) if row is not None else None

    def courses(
        self, *, term: str | None = None, search: str | None = None, profile: str | None = None
    ) -> list[Course]:
        query = select(CourseRecord).order_by(CourseRecord.term, CourseRecord.code)
        if term:
            query = query.where(CourseRecord.term == term)
        if profile:
            query = query.where(CourseRecord.profile == profile)
        if search:
            pattern = f"%{search.lower()}%"
            query = query.where(
                or_(func.lower(CourseRecord.code).like(pattern), func.lower(CourseRecord.name).like(pattern))
            )
        return [_course(row) for row in self._session.scalars(query)]

    def update_course(self, course_id: str, changes: Mapping[str, object], now: datetime) -> Course:
        row = self._course_row(course_id)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = now
        self._flush("a course with that code and term")
        return _course(row)

    # -- students --------------------------------------------------------------------------------

    def add_student(self, student: Student) -> Student:
        row = StudentRecord(
            id=student.id,
            student_number=student.student_number,
            name=student.name,
            email=student.email,
            status=student.status.value,
            keystone_project_id=student.keystone_project_id,
            keystone_user_id=student.keystone_user_id,
            created_at=student.created_at,
            updated_at=student.updated_at,
            deleted_at=None,
            generation=student.generation,
            applied_generation=student.applied_generation,
            applied_quota=None,
        )
        self._session.add(row)
        self._flush(f"student number {student.student_number}")
        return _student(row)

    def _student_row(self, student_id: str, *, lock: bool = False) -> StudentRecord:
        row = self._session.get(StudentRecord, student_id, with_for_update=lock, populate_existing=lock)
        if row is None:
            raise NotFound(f"no student {student_id!r}")
        return row

    def get_student(self, student_id: str, *, lock: bool = False) -> Student:
        return _student(self._student_row(student_id, lock=lock))

    def find_student(self, student_number: str) -> Student | None:
        row = self._session.scalars(
            select(StudentRecord).where(StudentRecord.student_number == student_number)
        ).first()
        return _student(row) if row is not None else None

    def students_of(self, *, project_id: str | None = None, user_id: str | None = None) -> list[Student]:
        """Students whose Keystone project or user this is (a member sees only these)."""
        if project_id is None and user_id is None:
            return []
        clauses = []
        if project_id is not None:
            clauses.append(StudentRecord.keystone_project_id == project_id)
        if user_id is not None:
            clauses.append(StudentRecord.keystone_user_id == user_id)
        rows = self._session.scalars(
            select(StudentRecord).where(or_(*clauses), StudentRecord.deleted_at.is_(None))
        )
        return [_student(row) for row in rows]

    def students(
        self,
        *,
        search: str | None = None,
        status: StudentStatus | None = None,
        course_id: str | None = None,
        ids: Sequence[str] | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Student]:
        query = select(StudentRecord).order_by(StudentRecord.student_number).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        if not include_deleted:
            query = query.where(StudentRecord.deleted_at.is_(None))
        if status is not None:
            query = query.where(StudentRecord.status == status.value)
        if ids is not None:
            query = query.where(StudentRecord.id.in_(list(ids)))
        if course_id is not None:
            query = query.where(
                StudentRecord.id.in_(
                    select(EnrollmentRecord.student_id).where(
                        EnrollmentRecord.course_id == course_id,
                        EnrollmentRecord.status == EnrollmentStatus.ACTIVE.value,
                    )
                )
            )
        if search:
            pattern = f"%{search.lower()}%"
            query = query.where(
                or_(
                    func.lower(StudentRecord.student_number).like(pattern),
                    func.lower(StudentRecord.name).like(pattern),
                    func.lower(StudentRecord.email).like(pattern),
                )
            )
        return [_student(row) for row in self._session.scalars(query)]

    def update_student(self, student_id: str, changes: Mapping[str, object], now: datetime) -> Student:
        row = self._student_row(student_id)
        for key, value in changes.items():
            setattr(row, key, value.value if isinstance(value, StudentStatus) else value)
        row.updated_at = now
        self._flush("a student with that number")
        return _student(row)

    def bump_generation(self, student_ids: Iterable[str], now: datetime) -> None:
        """Mark students whose desired quota may have changed: one atomic increment each."""
        ids = list(student_ids)
        if ids:
            self._session.execute(
                update(StudentRecord)
                .where(StudentRecord.id.in_(ids))
                .values(generation=StudentRecord.generation + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )

    def take_lease(self, student_id: str, owner: str, until: datetime, now: datetime) -> bool:
        result = self._session.execute(
            update(StudentRecord)
            .where(
                StudentRecord.id == student_id,
                or_(StudentRecord.lease_until.is_(None), StudentRecord.lease_until < now),
            )
            .values(lease_owner=owner, lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def release_lease(self, student_id: str, owner: str) -> None:
        self._session.execute(
            update(StudentRecord)
            .where(StudentRecord.id == student_id, StudentRecord.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

    def record_applied(
        self, student_id: str, generation: int, applied: Mapping[Resource, int], now: datetime
    ) -> None:
        row = self._student_row(student_id)
        row.applied_generation = max(row.applied_generation, generation)
        row.applied_quota = quota_document(applied)
        row.applied_at = now

    def set_project(self, student_id: str, project_id: str, user_id: str | None, now: datetime) -> None:
        row = self._student_row(student_id)
        row.keystone_project_id = project_id
        if user_id is not None:
            row.keystone_user_id = user_id
        row.updated_at = now

    def unconverged_students(self, limit: int = 1000) -> list[str]:
        rows = self._session.scalars(
            select(StudentRecord.id)
            .where(StudentRecord.applied_generation < StudentRecord.generation)
            .limit(limit)
        )
        return list(rows)

    # -- enrollments -----------------------------------------------------------------------------

    def enrollment(self, student_id: str, course_id: str) -> EnrollmentRecord | None:
        return self._session.scalars(
            select(EnrollmentRecord).where(
                EnrollmentRecord.student_id == student_id, EnrollmentRecord.course_id == course_id
            )
        ).first()

    def view_enrollment(self, row: EnrollmentRecord) -> Enrollment:
        return _enrollment(row, self._course_row(row.course_id))

    def add_enrollment(
        self, student_id: str, course_id: str, *, now: datetime, expires_at: datetime
    ) -> EnrollmentRecord:
        row = EnrollmentRecord(
            id=str(uuid.uuid4()),
            student_id=student_id,
            course_id=course_id,
            status=EnrollmentStatus.ACTIVE.value,
            enrolled_at=now,
            dropped_at=None,
            expires_at=expires_at,
            ended_at=None,
        )
        self._session.add(row)
        self._flush("this enrollment")
        return row

    def enrollments_of(self, student_id: str) -> list[Enrollment]:
        rows = self._session.execute(
            select(EnrollmentRecord, CourseRecord)
            .join(CourseRecord, CourseRecord.id == EnrollmentRecord.course_id)
            .where(EnrollmentRecord.student_id == student_id)
            .order_by(EnrollmentRecord.enrolled_at)
        )
        return [_enrollment(e, c) for e, c in rows.all()]

    def active_profile_names(self, student_id: str) -> list[tuple[str, str]]:
        """(course id, profile name) of each active enrollment."""
        rows = self._session.execute(
            select(CourseRecord.id, CourseRecord.profile)
            .join(EnrollmentRecord, EnrollmentRecord.course_id == CourseRecord.id)
            .where(
                EnrollmentRecord.student_id == student_id,
                EnrollmentRecord.status == EnrollmentStatus.ACTIVE.value,
            )
            .order_by(CourseRecord.code)
        )
        return [(str(course_id), str(profile)) for course_id, profile in rows.all()]

    def count_active(self, course_id: str) -> int:
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(EnrollmentRecord)
                .where(
                    EnrollmentRecord.course_id == course_id,
                    EnrollmentRecord.status == EnrollmentStatus.ACTIVE.value,
                )
            )
            or 0
        )

    def expire_due(self, now: datetime) -> list[str]:
        """Expire active enrollments past `expires_at`; returns the affected student ids."""
        rows = list(
            self._session.scalars(
                select(EnrollmentRecord).where(
                    EnrollmentRecord.status == EnrollmentStatus.ACTIVE.value,
                    EnrollmentRecord.expires_at <= now,
                )
            )
        )
        for row in rows:
            row.status = EnrollmentStatus.EXPIRED.value
            row.ended_at = now
        self._session.flush()
        return sorted({row.student_id for row in rows})

    def enrolled_with_profile(self, profile: str) -> list[str]:
        rows = self._session.scalars(
            select(EnrollmentRecord.student_id)
            .join(CourseRecord, CourseRecord.id == EnrollmentRecord.course_id)
            .where(CourseRecord.profile == profile, EnrollmentRecord.status == EnrollmentStatus.ACTIVE.value)
            .distinct()
        )
        return list(rows)

    def enrolled_in(self, course_id: str) -> list[str]:
        rows = self._session.scalars(
            select(EnrollmentRecord.student_id).where(
                EnrollmentRecord.course_id == course_id,
                EnrollmentRecord.status == EnrollmentStatus.ACTIVE.value,
            )
        )
        return list(rows)

    def last_ended_course(self, student_id: str) -> Course | None:
        """The course of the student's most recently ended enrollment (its reclamation policy rules)."""
        row = self._session.execute(
            select(CourseRecord)
            .join(EnrollmentRecord, EnrollmentRecord.course_id == CourseRecord.id)
            .where(EnrollmentRecord.student_id == student_id, EnrollmentRecord.ended_at.is_not(None))
            .order_by(EnrollmentRecord.ended_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        return _course(row) if row is not None else None

    # -- pending cuts ----------------------------------------------------------------------------

    def pending_cuts(self, student_id: str) -> list[PendingCut]:
        rows = self._session.scalars(
            select(PendingCutRecord)
            .where(PendingCutRecord.student_id == student_id)
            .order_by(PendingCutRecord.resource)
        )
        return [
            PendingCut(Resource(r.resource), r.desired, r.limit, r.in_use, r.since, r.checked_at)
            for r in rows
        ]

    def replace_pending(
        self, student_id: str, cuts: Mapping[Resource, tuple[int, int, int]], now: datetime
    ) -> list[Resource]:
        """Make the pending cuts exactly `cuts` (resource → desired, limit, in use); a cut that stays
        pending keeps its `since`, so the grace period counts from when it first became pending."""
        existing = {
            r.resource: r
            for r in self._session.scalars(
                select(PendingCutRecord).where(PendingCutRecord.student_id == student_id)
            )
        }
        for resource, row in existing.items():
            if Resource(resource) not in cuts:
                self._session.delete(row)
        fresh: list[Resource] = []
        for resource, (desired, limit, in_use) in cuts.items():
            kept = existing.get(resource.value)
            if kept is None:
                fresh.append(resource)
                self._session.add(
                    PendingCutRecord(
                        student_id=student_id,
                        resource=resource.value,
                        desired=desired,
                        limit=limit,
                        in_use=in_use,
                        since=now,
                        checked_at=now,
                    )
                )
            else:
                kept.desired, kept.limit, kept.in_use, kept.checked_at = desired, limit, in_use, now
        self._session.flush()
        return fresh

    def students_with_pending(
        self, *, since_before: datetime | None = None, resources: Sequence[Resource] | None = None
    ) -> list[str]:
        """Students (not removed ones) with pending cuts; optionally only cuts older than
        `since_before` and of the given resources."""
        query = (
            select(PendingCutRecord.student_id)
            .join(StudentRecord, StudentRecord.id == PendingCutRecord.student_id)
            .where(StudentRecord.deleted_at.is_(None))
            .distinct()
        )
        if since_before is not None:
            query = query.where(PendingCutRecord.since <= since_before)
        if resources is not None:
            query = query.where(PendingCutRecord.resource.in_([r.value for r in resources]))
        return list(self._session.scalars(query))

    def last_reclaim_at(self, student_id: str) -> datetime | None:
        return self._session.scalar(
            select(func.max(QuotaAuditRecord.at)).where(
                QuotaAuditRecord.student_id == student_id, QuotaAuditRecord.action.like("reclaim.%")
            )
        )

    def oldest_pending_since(self, student_id: str) -> datetime | None:
        return self._session.scalar(
            select(func.min(PendingCutRecord.since)).where(PendingCutRecord.student_id == student_id)
        )

    # -- audit -----------------------------------------------------------------------------------

    def add_audit(
        self,
        *,
        at: datetime,
        actor: str,
        reason: AuditReason,
        action: str,
        outcome: str,
        student_id: str | None = None,
        project_id: str | None = None,
        service: str | None = None,
        before: Mapping[str, object] | None = None,
        after: Mapping[str, object] | None = None,
        detail: str | None = None,
        request_ids: Sequence[str] = (),
        job_id: str | None = None,
    ) -> None:
        self._session.add(
            QuotaAuditRecord(
                at=at,
                actor=actor,
                reason=reason.value,
                student_id=student_id,
                project_id=project_id,
                action=action,
                service=service,
                before=dict(before) if before is not None else None,
                after=dict(after) if after is not None else None,
                outcome=outcome,
                detail=detail,
                request_ids=list(request_ids),
                job_id=job_id,
            )
        )
        self._session.flush()

    def audit(
        self,
        *,
        student_id: str | None = None,
        reason: AuditReason | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        query = select(QuotaAuditRecord).order_by(QuotaAuditRecord.id.desc()).limit(limit)
        if student_id is not None:
            query = query.where(QuotaAuditRecord.student_id == student_id)
        if reason is not None:
            query = query.where(QuotaAuditRecord.reason == reason.value)
        if before_id is not None:
            query = query.where(QuotaAuditRecord.id < before_id)
        return [_audit(row) for row in self._session.scalars(query)]
