"""Bulk reconciliation (plan what would change, then apply, with progress) and roster CSV uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from stackyard.api.quota_schemas import JobRead, ReconcileCreate, RosterImportRead
from stackyard.api.routes.jobs import get_job
from stackyard.api.routes.quota import import_roster_file, reconcile, reconciliation_runs
from stackyard.db.base import utcnow
from stackyard.errors import NotFound
from stackyard.quotas.roster import RosterError, RowError
from stackyard.quotas.service import RECONCILE_JOB, EnrollmentService
from stackyard.web.deps import ActingAdmin, AdminViewer, Viewer
from stackyard.web.render import UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)
MAX_ROSTER_BYTES = 5 * 1024 * 1024


@router.get("/ui/reconciliation", response_class=HTMLResponse)
def reconciliation_page(request: Request, viewer: AdminViewer) -> HTMLResponse:
    with viewer.state.sessions() as session:
        courses = EnrollmentService(
            session, viewer.state.quotas.policy, now=utcnow(), actor=""
        ).repository.courses()
    runs = reconciliation_runs(viewer.state, viewer.principal, limit=10)
    return render(
        request, "reconcile/index.html", {"nav": "reconciliation", "courses": courses, "runs": runs}
    )


@router.post("/ui/reconciliation")
def start_reconciliation(
    viewer: ActingAdmin,
    mode: Annotated[str, Form(pattern="^(plan|apply)$")] = "plan",
    course_id: Annotated[str, Form(max_length=36)] = "",
    changed_only: Annotated[bool, Form()] = False,
) -> Response:
    """The API's own route: a job that plans (dry run) or applies the desired quota of the selection."""
    body = ReconcileCreate(dry_run=mode == "plan", course_id=course_id or None, changed_only=changed_only)
    job = reconcile(body, viewer.state, viewer.principal, Response())
    return RedirectResponse(f"/ui/reconciliation/{job.id}", status_code=303)


@router.get("/ui/reconciliation/{run_id}", response_class=HTMLResponse)
def reconciliation_run(request: Request, viewer: AdminViewer, run_id: str) -> HTMLResponse:
    job: JobRead = get_job(run_id, viewer.state, viewer.principal)
    if job.kind != RECONCILE_JOB:
        raise NotFound(f"no reconciliation run {run_id!r}")
    selection = viewer.state.runner.get(run_id).payload.get("filter")
    selection = selection if isinstance(selection, dict) else {}
    result = job.result or {}
    projects = result.get("projects") if isinstance(result.get("projects"), list) else []
    return render(
        request,
        "reconcile/run.html",
        {
            "nav": "reconciliation",
            "job": job,
            "result": result,
            "projects": projects,
            "course_id": selection.get("course_id") or "",
            "changed_only": bool(selection.get("changed_only")),
            "dry_run": bool(job.result.get("dry_run", True)) if job.result else None,
        },
    )


def _roster(
    *,
    problem: str | None = None,
    errors: tuple[RowError, ...] = (),
    source: str | None = None,
    imported: RosterImportRead | None = None,
) -> dict[str, object]:
    return {"nav": "students", "problem": problem, "errors": errors, "source": source, "imported": imported}


@router.get("/ui/roster", response_class=HTMLResponse)
def roster_page(request: Request, viewer: AdminViewer) -> HTMLResponse:
    return render(request, "reconcile/roster.html", _roster())


@router.post("/ui/roster", response_class=HTMLResponse)
async def upload_roster(
    request: Request,
    viewer: ActingAdmin,
    file: UploadFile,
    reconcile_after: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    raw = await file.read(MAX_ROSTER_BYTES + 1)
    problem = None
    text = ""
    if len(raw) > MAX_ROSTER_BYTES:
        problem = f"file: a roster may be at most {MAX_ROSTER_BYTES // (1024 * 1024)} MiB"
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            problem = "file: not UTF-8 text"
    if problem is None and not text.strip():
        problem = "file: choose a CSV file"
    if problem is not None:
        return render(request, "reconcile/roster.html", _roster(problem=problem), status_code=422)
    try:
        imported = await _import(viewer, text, reconcile_after)
    except RosterError as exc:
        return render(
            request,
            "reconcile/roster.html",
            _roster(errors=exc.errors, source=file.filename),
            status_code=422,
        )
    return render(request, "reconcile/roster.html", _roster(imported=imported))


async def _import(viewer: Viewer, text: str, reconcile_after: bool) -> RosterImportRead:
    # The API's route function: all-or-nothing import, then one reconciliation job (database work
    # and the job submit are blocking, so off the event loop).
    return await run_in_threadpool(import_roster_file, viewer.state, viewer.principal, text, reconcile_after)
