"""The quota tables (migration 0002) as SQLAlchemy mappings; only the repository queries them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stackyard.db.base import Base, UTCDateTime


class QuotaProfileRecord(Base):
    """One version of a named profile; a new version is added on every change, none is edited."""

    __tablename__ = "quota_profiles"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(500), default="")
    values: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON)  # quota_document form
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CourseRecord(Base):
    __tablename__ = "courses"
    __table_args__ = (UniqueConstraint("code", "term"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    term: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    profile: Mapped[str] = mapped_column(String(64))  # a profile name; its latest version applies
    max_enrollments: Mapped[int | None] = mapped_column(Integer)
    reclamation: Mapped[dict[str, object] | None] = mapped_column(JSON)  # overrides the global policy
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StudentRecord(Base):
    """A student and the bookkeeping of their project's quota.

    `generation` goes up with every change that can alter the desired quota; `applied_generation` is
    the generation last applied to the cloud; the lease serialises applies of one student.
    """

    __tablename__ = "students"
    __table_args__ = (UniqueConstraint("student_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    student_number: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # a StudentStatus value
    keystone_project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    keystone_user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    generation: Mapped[int] = mapped_column(Integer, default=0)
    applied_generation: Mapped[int] = mapped_column(Integer, default=-1)
    applied_quota: Mapped[dict[str, dict[str, int]] | None] = mapped_column(JSON)  # what was last written
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EnrollmentRecord(Base):
    """A student in a course; re-enrolling after a drop reuses the row."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("student_id", "course_id"), Index("ix_enrollments_status", "status"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # an EnrollmentStatus value
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dropped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when it stopped counting


class PendingCutRecord(Base):
    """A quota cut that the project's usage blocks, kept until usage allows it or reclamation runs."""

    __tablename__ = "quota_pending"

    student_id: Mapped[str] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)  # a Resource value
    desired: Mapped[int] = mapped_column(Integer)
    limit: Mapped[int] = mapped_column(Integer)  # what the cloud holds meanwhile
    in_use: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuotaAuditRecord(Base):
    __tablename__ = "quota_audit"
    __table_args__ = (Index("ix_quota_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(16))  # an AuditReason value
    student_id: Mapped[str | None] = mapped_column(String(36), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))  # quota.set, project.create, server.delete, ...
    service: Mapped[str | None] = mapped_column(String(16))
    before: Mapped[dict[str, object] | None] = mapped_column(JSON)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))  # applied, pending, failed, dry_run, ...
    detail: Mapped[str | None] = mapped_column(Text)
    request_ids: Mapped[list[str]] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(36))
