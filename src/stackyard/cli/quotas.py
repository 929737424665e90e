"""`stackyard quotas show|plan|reconcile|expire`, `stackyard import roster` and `stackyard jobs`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stackyard.cli.common import DebugOption, FormatOption, boundary, context, local_actor
from stackyard.cli.enrollment import find_course, find_student, quota_command, run_jobs
from stackyard.cli.factory import QuotaCommands, export_commands, quota_commands
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import ConfigError, ValidationError
from stackyard.jobs.models import Job, JobState
from stackyard.jobs.repository import JobRepository
from stackyard.quotas.importer import import_roster
from stackyard.quotas.models import StudentStatus
from stackyard.quotas.reconcile import ReconcileFilter, ReconcileReport
from stackyard.quotas.repository import QuotaRepository
from stackyard.quotas.roster import RosterError, parse_roster
from stackyard.quotas.service import EnrollmentService

quotas_app = typer.Typer(no_args_is_help=True, help="Live quotas, plans, reconciliation, expiry.")
import_app = typer.Typer(no_args_is_help=True, help="Import rosters (CSV).")
jobs_app = typer.Typer(no_args_is_help=True, help="Durable jobs: list, show, cancel.")

_PLAN_COLUMNS = ["student", "project_id", "outcome", "changes", "drift", "error"]


def _selection(
    cmds: QuotaCommands,
    students: list[str],
    course: str | None,
    status: StudentStatus | None,
    changed_only: bool,
) -> ReconcileFilter:
    with cmds.sessions() as session:
        repo = QuotaRepository(session)
        ids = tuple(find_student(repo, s).id for s in students) if students else None
        course_id = find_course(repo, course).id if course else None
    return ReconcileFilter(student_ids=ids, course_id=course_id, status=status, changed_only=changed_only)


def _plan_rows(report: ReconcileReport) -> list[Row]:
    rows: list[Row] = []
    for line in report.results:
        changes = [
            f"{c.resource.value} {c.current}→{c.target}"
            + (f" (pending: {c.desired}, in use {c.in_use})" if c.target != c.desired else "")
            for c in line.changes
            if c.target != c.current or c.desired != c.current
        ]
        rows.append(
            {
                "student": line.student_number,
                "project_id": line.project_id,
                "outcome": line.outcome.value,
                "changes": changes,
                "drift": [f"{r.value} wrote {a} found {f}" for r, (a, f) in line.drift.items()],
                "error": line.error,
            }
        )
    return rows


def _reconcile(
    students: list[str],
    course: str | None,
    status: StudentStatus | None,
    changed_only: bool,
    *,
    apply: bool,
    fmt: OutputFormat,
    debug: bool,
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        selection = _selection(cmds, students, course, status, changed_only)
        report = cmds.runtime.tasks.reconciler.run(selection, dry_run=not apply, actor=local_actor())
        emit_rows(_plan_rows(report), _PLAN_COLUMNS, ctx.fmt, sys.stdout, ctx.out)
        counts = ", ".join(f"{n} {outcome}" for outcome, n in report.counts.items())
        mode = "applied" if apply else "dry run (nothing written; --apply writes)"
        ctx.err.print(f"{len(report.results)} projects: {counts}; {len(report.drifted)} drifted; {mode}")
    if report.counts.get("failed"):
        raise typer.Exit(1)


StudentsOption = Annotated[
    list[str], typer.Option("--student", help="Only these (number or id); repeatable.")
]
CourseOption = Annotated[
    str | None, typer.Option("--course", help="Only students enrolled in (id or CODE@TERM).")
]
StatusOption = Annotated[StudentStatus | None, typer.Option("--status")]
ChangedOption = Annotated[
    bool,
    typer.Option(
        "--changed-only",
        help="Only students whose desired quota changed since it was applied (no drift check).",
    ),
]


@quotas_app.command("plan")
def quotas_plan(
    student: StudentsOption = [],  # noqa: B006 - typer needs a list default
    course: CourseOption = None,
    status: StatusOption = None,
    changed_only: ChangedOption = False,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """What a reconciliation would change, per project and resource (reads only)."""
    _reconcile(student, course, status, changed_only, apply=False, fmt=fmt, debug=debug)


@quotas_app.command("reconcile")
def quotas_reconcile(
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the changes (the default is a dry run).")
    ] = False,
    student: StudentsOption = [],  # noqa: B006 - typer needs a list default
    course: CourseOption = None,
    status: StatusOption = None,
    changed_only: ChangedOption = False,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Bring every (or the selected) student's project to its desired quota; dry run unless --apply."""
    _reconcile(student, course, status, changed_only, apply=apply, fmt=fmt, debug=debug)


@quotas_app.command("show")
def quotas_show(
    student: Annotated[str | None, typer.Argument(help="Student number or id.")] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Any project id instead of a student.")
    ] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Limits and usage per service, read from the cloud now."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        if (student is None) == (project is None):
            raise ValidationError("student", "give a student or --project, not both")
        cmds = quota_commands()
        if student is not None:
            with cmds.sessions() as session:
                project = find_student(QuotaRepository(session), student).keystone_project_id
            if project is None:
                raise ConfigError(
                    f"student {student} has no project yet; `stackyard quotas reconcile --apply` makes it"
                )
        assert project is not None
        rows: list[Row] = []
        for service, reading in cmds.runtime.tasks.applier.read_current(project).items():
            for key, limit in sorted(reading.limits.items()):
                rows.append(
                    {
                        "service": service.value,
                        "resource": key,
                        "limit": limit,
                        "in_use": (reading.in_use or {}).get(key),
                    }
                )
        emit_rows(rows, ["service", "resource", "limit", "in_use"], ctx.fmt, sys.stdout, ctx.out)


@quotas_app.command("expire")
def quotas_expire(debug: DebugOption = False) -> None:
    """Expire enrollments past their end (course end + grace) and apply the affected students now."""
    with quota_command(OutputFormat.TABLE, debug) as (ctx, cmds):
        with transaction(cmds.sessions) as session:
            jobs = EnrollmentService(session, cmds.policy, now=utcnow(), actor=local_actor()).expire()
        done = run_jobs(cmds, jobs)
        applied = sum(j.state is JobState.SUCCEEDED for j in done)
        ctx.err.print(f"{len(jobs)} students had enrollments expire; {applied} applied now")


@import_app.command("roster")
def import_roster_command(
    file: Annotated[Path, typer.Argument(help="CSV: students, courses, enrollments or a roster.")],
    reconcile: Annotated[
        bool, typer.Option("--reconcile/--no-reconcile", help="Apply the touched students' quotas.")
    ] = True,
    debug: DebugOption = False,
) -> None:
    """All or nothing: one bad row rejects the file, and every bad row is listed as FILE:LINE."""
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {file}: {exc}") from None
        cmds = quota_commands()
        try:
            roster = parse_roster(text, source=str(file))
            with transaction(cmds.sessions) as session:
                result = import_roster(session, cmds.policy, roster, now=utcnow(), actor=local_actor())
        except RosterError as exc:
            for error in exc.errors:
                ctx.err.print(
                    f"{file}:{error.line}: {error.field}: {error.message}", markup=False, highlight=False
                )
            ctx.err.print(f"nothing imported: {len(exc.errors)} bad rows")
            raise typer.Exit(1) from None
        ctx.err.print(
            f"imported {roster.kind.value}: {result.students_created} students created,"
            f" {result.students_updated} updated, {result.courses_created} courses created,"
            f" {result.enrollments_created} enrollments"
        )
        if reconcile and result.student_ids:
            report = cmds.runtime.tasks.reconciler.run(
                ReconcileFilter(student_ids=tuple(sorted(result.student_ids))),
                dry_run=False,
                actor=local_actor(),
            )
            ctx.err.print(f"reconciled: {', '.join(f'{n} {o}' for o, n in report.counts.items())}")


def _job_row(job: Job) -> Row:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state.value,
        "subject": job.subject,
        "progress": f"{job.progress_done}/{job.progress_total}" if job.progress_total is not None else None,
        "attempts": job.attempts,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@jobs_app.command("list")
def jobs_list(
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    state: Annotated[JobState | None, typer.Option("--state")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    with quota_command(fmt, debug) as (ctx, cmds):
        with cmds.sessions() as session:
            jobs = JobRepository(session).list_jobs(kinds=[kind] if kind else (), state=state, limit=limit)
        columns = [
            "id",
            "kind",
            "state",
            "subject",
            "progress",
            "attempts",
            "error",
            "created_at",
            "finished_at",
        ]
        emit_rows([_job_row(j) for j in jobs], columns, ctx.fmt, sys.stdout, ctx.out)


@jobs_app.command("show")
def jobs_show(job_id: str, fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        job = quota_commands().runner.get(job_id)
        emit_one(
            {
                **_job_row(job),
                "message": job.message,
                "result": str(dict(job.result)) if job.result else None,
            },
            ctx.fmt,
            sys.stdout,
            ctx.out,
        )


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, debug: DebugOption = False) -> None:
    """A queued job is cancelled at once; a running one stops at its next progress report."""
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        job = export_commands().runner.cancel(job_id)  # the runner that knows how to clean each kind up
        ctx.err.print(
            f"job {job.id}: {job.state.value}" + (" (cancellation requested)" if job.cancel_requested else "")
        )
