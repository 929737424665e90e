"""`stackyard students|courses|enrollments|profiles`: the records behind quotas by enrollment.

Writes queue the job that brings the cloud along, and the command runs it at once; a job the cloud
could not finish stays queued for `stackyard serve`'s runner, and the command says so.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
import yaml
from sqlalchemy.orm import Session

from stackyard.cli.common import CommandContext, DebugOption, FormatOption, boundary, context, local_actor
from stackyard.cli.factory import QuotaCommands, quota_commands
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import ConfigError, NotFound, ValidationError
from stackyard.jobs.models import Job, JobState
from stackyard.quotas import service as svc
from stackyard.quotas.entities import Course, Enrollment, Profile, Student
from stackyard.quotas.models import AuditReason, StudentStatus, parse_quota_values, quota_document
from stackyard.quotas.repository import QuotaRepository

students_app = typer.Typer(no_args_is_help=True, help="Students and their projects.")
courses_app = typer.Typer(no_args_is_help=True, help="Courses and the profile each grants.")
enrollments_app = typer.Typer(no_args_is_help=True, help="Enroll students in courses, or drop them.")
profiles_app = typer.Typer(
    no_args_is_help=True, help="Quota profiles (versioned); `baseline` is every student's."
)

StudentRef = Annotated[str, typer.Argument(help="Student number or id.")]
CourseRef = Annotated[str, typer.Argument(help="Course id or CODE@TERM.")]


@contextlib.contextmanager
def quota_command(fmt: OutputFormat, debug: bool) -> Iterator[tuple[CommandContext, QuotaCommands]]:
    """A quota command's context and wiring, inside the error boundary."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        yield ctx, quota_commands()


def find_student(repo: QuotaRepository, ref: str) -> Student:
    found = repo.find_student(ref)
    if found is None:
        try:
            found = repo.get_student(ref)
        except NotFound:
            raise NotFound(f"no student with number or id {ref!r}") from None
    return found


def find_course(repo: QuotaRepository, ref: str) -> Course:
    if "@" in ref:
        code, term = ref.split("@", 1)
        found = repo.find_course(code, term)
        if found is None:
            raise NotFound(f"no course {code} in term {term}")
        return found
    return repo.get_course(ref)


def student_row(student: Student) -> Row:
    return {
        "id": student.id,
        "student_number": student.student_number,
        "name": student.name,
        "email": student.email,
        "status": student.status.value,
        "project_id": student.keystone_project_id,
        "user_id": student.keystone_user_id,
        "quota_in_sync": student.is_converged,
        "removed_at": student.deleted_at.isoformat() if student.deleted_at else None,
    }


def course_row(course: Course) -> Row:
    return {
        "id": course.id,
        "code": course.code,
        "term": course.term,
        "name": course.name,
        "start_date": course.start_date.isoformat(),
        "end_date": course.end_date.isoformat(),
        "profile": course.profile,
        "max_enrollments": course.max_enrollments,
    }


def enrollment_row(enrollment: Enrollment) -> Row:
    return {
        "course": f"{enrollment.course_code}@{enrollment.course_term}",
        "course_id": enrollment.course_id,
        "status": enrollment.status.value,
        "enrolled_at": enrollment.enrolled_at.isoformat(),
        "expires_at": enrollment.expires_at.isoformat(),
        "ended_at": enrollment.ended_at.isoformat() if enrollment.ended_at else None,
    }


def profile_row(profile: Profile) -> Row:
    values = quota_document(profile.values)
    return {
        "name": profile.name,
        "version": profile.version,
        "description": profile.description,
        **{service: ", ".join(f"{k}={v}" for k, v in keys.items()) for service, keys in values.items()},
    }


def run_jobs(cmds: QuotaCommands, jobs: list[Job]) -> list[Job]:
    """Run queued jobs now, in this process; report each outcome on stderr."""
    done = [cmds.runner.run_one(job.id) for job in jobs]
    for job in done:
        if job.state is JobState.SUCCEEDED:
            continue
        where = "queued; `stackyard serve` retries it" if job.state is JobState.QUEUED else job.state.value
        print(f"job {job.id} ({job.kind}) {where}: {job.error}", file=sys.stderr)
    return done


def _date(raw: str, option: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(option, f"expected YYYY-MM-DD, got {raw!r}") from None


def _service(session: Session, cmds: QuotaCommands) -> svc.EnrollmentService:
    return svc.EnrollmentService(session, cmds.policy, now=utcnow(), actor=local_actor())


# -- students --------------------------------------------------------------------------------------

_STUDENT_COLUMNS = ["id", "student_number", "name", "email", "status", "project_id", "quota_in_sync"]


@students_app.command("list")
def students_list(
    search: Annotated[str | None, typer.Option("--search", help="Number, name or email contains.")] = None,
    status: Annotated[StudentStatus | None, typer.Option("--status")] = None,
    course: Annotated[str | None, typer.Option("--course", help="Enrolled in (id or CODE@TERM).")] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        with cmds.sessions() as session:
            repo = QuotaRepository(session)
            course_id = find_course(repo, course).id if course else None
            rows = [student_row(s) for s in repo.students(search=search, status=status, course_id=course_id)]
        emit_rows(rows, _STUDENT_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


@students_app.command("show")
def students_show(
    student: StudentRef, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds), cmds.sessions() as session:
        emit_one(student_row(find_student(QuotaRepository(session), student)), ctx.fmt, sys.stdout, ctx.out)


@students_app.command("create")
def students_create(
    number: Annotated[str, typer.Option("--number", help="Student number (names the project).")],
    name: Annotated[str, typer.Option("--name")],
    email: Annotated[str, typer.Option("--email")],
    project_id: Annotated[str | None, typer.Option("--project-id", help="Link this project.")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id", help="Link this Keystone user.")] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Register a student: their project is created (or linked) and the baseline quota applied."""
    with quota_command(fmt, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            student, job = _service(session, cmds).register_student(
                svc.StudentCreate(
                    number, name, email, keystone_project_id=project_id, keystone_user_id=user_id
                )
            )
        run_jobs(cmds, [job] if job else [])
        with cmds.sessions() as session:
            emit_one(
                student_row(QuotaRepository(session).get_student(student.id)), ctx.fmt, sys.stdout, ctx.out
            )


@students_app.command("update")
def students_update(
    student: StudentRef,
    name: Annotated[str | None, typer.Option("--name")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    status: Annotated[StudentStatus | None, typer.Option("--status")] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Change name, email or status (suspended and graduated students get a zero quota)."""
    with quota_command(fmt, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            service = _service(session, cmds)
            found = find_student(service.repository, student)
            updated, job = service.update_student(found.id, svc.StudentUpdate(name, email, status))
        run_jobs(cmds, [job] if job else [])
        emit_one(student_row(updated), ctx.fmt, sys.stdout, ctx.out)


@students_app.command("remove")
def students_remove(student: StudentRef, debug: DebugOption = False) -> None:
    """Soft delete: the record and audit trail stay; the quota goes to zero and reclamation runs."""
    with quota_command(OutputFormat.TABLE, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            service = _service(session, cmds)
            removed, job = service.remove_student(find_student(service.repository, student).id)
        (done,) = run_jobs(cmds, [job])
        ctx.err.print(
            f"removed student {removed.student_number}; reclamation job {done.id}: {done.state.value}"
        )


@students_app.command("reclaim")
def students_reclaim(
    student: StudentRef,
    apply: Annotated[bool, typer.Option("--apply", help="Carry it out (the default is a dry run).")] = False,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """The reclamation policy for what the project holds beyond its desired quota: notify, stop,
    snapshot, delete (newest first). A dry run unless --apply; every action is audited."""
    with quota_command(fmt, debug) as (ctx, cmds):
        with cmds.sessions() as session:
            found = find_student(QuotaRepository(session), student)
        report = cmds.runtime.tasks.reclaimer.reclaim(
            found.id, actor=local_actor(), reason=AuditReason.RECLAIM, dry_run=not apply
        )
        rows: list[Row] = [
            {
                "action": s.action.value,
                "target_id": s.target_id,
                "target_name": s.target_name,
                "reason": s.reason,
            }
            for s in report.plan.steps
        ]
        emit_rows(rows, ["action", "target_id", "target_name", "reason"], ctx.fmt, sys.stdout, ctx.out)
        ctx.err.print(
            f"{len(rows)} steps; "
            + ("carried out" if apply else "dry run (nothing touched; --apply does it)")
        )


@students_app.command("quota")
def students_quota(
    student: StudentRef, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False
) -> None:
    """Desired quota per resource, what stackyard last wrote, and cuts pending on usage."""
    with quota_command(fmt, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            service = _service(session, cmds)
            found = find_student(service.repository, student)
            quota = service.desired(found.id)
        pending = {c.resource: c for c in quota.pending}
        applied = found.applied_quota or {}
        rows: list[Row] = [
            {
                "resource": resource.value,
                "desired": value,
                "applied": applied.get(resource),
                "pending_in_use": pending[resource].in_use if resource in pending else None,
                "pending_since": pending[resource].since.isoformat() if resource in pending else None,
            }
            for resource, value in quota.desired.items()
        ]
        emit_rows(
            rows,
            ["resource", "desired", "applied", "pending_in_use", "pending_since"],
            ctx.fmt,
            sys.stdout,
            ctx.out,
        )


# -- courses ---------------------------------------------------------------------------------------

_COURSE_COLUMNS = ["id", "code", "term", "name", "start_date", "end_date", "profile", "max_enrollments"]


@courses_app.command("list")
def courses_list(
    term: Annotated[str | None, typer.Option("--term")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Code or name contains.")] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        with cmds.sessions() as session:
            rows = [course_row(c) for c in QuotaRepository(session).courses(term=term, search=search)]
        emit_rows(rows, _COURSE_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


@courses_app.command("show")
def courses_show(
    course: CourseRef, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds), cmds.sessions() as session:
        repo = QuotaRepository(session)
        found = find_course(repo, course)
        emit_one({**course_row(found), "enrolled": repo.count_active(found.id)}, ctx.fmt, sys.stdout, ctx.out)


@courses_app.command("create")
def courses_create(
    code: Annotated[str, typer.Option("--code")],
    term: Annotated[str, typer.Option("--term")],
    name: Annotated[str, typer.Option("--name")],
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD.")],
    profile: Annotated[str, typer.Option("--profile", help="Quota profile the course grants.")],
    max_enrollments: Annotated[int | None, typer.Option("--max-enrollments", min=1)] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        request = svc.CourseCreate(
            code, term, name, _date(start, "--start"), _date(end, "--end"), profile, max_enrollments
        )
        with transaction(cmds.sessions) as session:
            created = _service(session, cmds).create_course(request)
        emit_one(course_row(created), ctx.fmt, sys.stdout, ctx.out)


@courses_app.command("update")
def courses_update(
    course: CourseRef,
    name: Annotated[str | None, typer.Option("--name")] = None,
    start: Annotated[str | None, typer.Option("--start")] = None,
    end: Annotated[str | None, typer.Option("--end")] = None,
    profile: Annotated[str | None, typer.Option("--profile")] = None,
    max_enrollments: Annotated[int | None, typer.Option("--max-enrollments", min=1)] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """A new profile re-applies the quota of every student enrolled."""
    with quota_command(fmt, debug) as (ctx, cmds):
        request = svc.CourseUpdate(
            name=name,
            start_date=_date(start, "--start") if start else None,
            end_date=_date(end, "--end") if end else None,
            profile=profile,
            max_enrollments=max_enrollments,
        )
        with transaction(cmds.sessions) as session:
            service = _service(session, cmds)
            updated, jobs = service.update_course(find_course(service.repository, course).id, request)
        run_jobs(cmds, jobs)
        emit_one(course_row(updated), ctx.fmt, sys.stdout, ctx.out)


# -- enrollments -----------------------------------------------------------------------------------

_ENROLLMENT_COLUMNS = ["course", "course_id", "status", "enrolled_at", "expires_at", "ended_at"]


@enrollments_app.command("list")
def enrollments_list(
    student: StudentRef, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        with cmds.sessions() as session:
            repo = QuotaRepository(session)
            rows = [enrollment_row(e) for e in repo.enrollments_of(find_student(repo, student).id)]
        emit_rows(rows, _ENROLLMENT_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


def _enrollment_change(student: str, course: str, *, drop: bool, fmt: OutputFormat, debug: bool) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            service = _service(session, cmds)
            student_id = find_student(service.repository, student).id
            course_id = find_course(service.repository, course).id
            change = service.drop if drop else service.enroll
            enrollment, job = change(student_id, course_id)
        run_jobs(cmds, [job] if job else [])
        emit_one(enrollment_row(enrollment), ctx.fmt, sys.stdout, ctx.out)


@enrollments_app.command("add")
def enrollments_add(
    student: StudentRef, course: CourseRef, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False
) -> None:
    """Enroll, and apply the new quota now."""
    _enrollment_change(student, course, drop=False, fmt=fmt, debug=debug)


@enrollments_app.command("drop")
def enrollments_drop(
    student: StudentRef, course: CourseRef, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False
) -> None:
    """Drop, and apply the reduced quota now (a cut below usage waits as pending)."""
    _enrollment_change(student, course, drop=True, fmt=fmt, debug=debug)


# -- profiles --------------------------------------------------------------------------------------


@profiles_app.command("list")
def profiles_list(fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            rows = [profile_row(p) for p in _service(session, cmds).profiles()]
        columns = ["name", "version", "description", "compute", "block_storage", "network"]
        emit_rows(rows, columns, ctx.fmt, sys.stdout, ctx.out)


@profiles_app.command("show")
def profiles_show(name: str, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    with quota_command(fmt, debug) as (ctx, cmds), transaction(cmds.sessions) as session:
        emit_one(profile_row(_service(session, cmds).profile(name)), ctx.fmt, sys.stdout, ctx.out)


@profiles_app.command("versions")
def profiles_versions(name: str, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            service = _service(session, cmds)
            service.profile(name)
            rows = [profile_row(p) for p in service.repository.profile_versions(name)]
        emit_rows(
            rows,
            ["name", "version", "description", "compute", "block_storage", "network"],
            ctx.fmt,
            sys.stdout,
            ctx.out,
        )


@profiles_app.command("set")
def profiles_set(
    name: str,
    file: Annotated[Path, typer.Option("--file", help="YAML: {compute: {instances: 2}, network: {...}}.")],
    description: Annotated[str, typer.Option("--description")] = "",
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Save a new version; every student it affects is re-applied."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        try:
            document = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read {file}: {exc}") from None
        values = parse_quota_values(document, "values")
        cmds = quota_commands()
        with transaction(cmds.sessions) as session:
            profile, jobs = _service(session, cmds).save_profile(name, values, description)
        run_jobs(cmds, jobs)
        emit_one(profile_row(profile), ctx.fmt, sys.stdout, ctx.out)
