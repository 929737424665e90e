"""Exports and jobs: start an export, watch live progress (phase, bytes, rate, ETA), cancel; retention."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError as PydanticError

from stackyard.api.export_schemas import ExportCreate
from stackyard.api.routes.exports import create_export
from stackyard.api.routes.jobs import cancel_job, get_job
from stackyard.errors import StackyardError, ValidationError
from stackyard.exports.lifecycle import PruneLine
from stackyard.exports.models import Compression, DiskFormat
from stackyard.exports.retention import RetentionPolicy, parse_retention
from stackyard.exports.service import EXPORT_JOB
from stackyard.jobs.models import Job
from stackyard.jobs.repository import JobRepository
from stackyard.providers.base import InstanceQuery
from stackyard.web.deps import Acting, ActingAdmin, AdminViewer, SignedIn, Viewer
from stackyard.web.render import UiRoute, render
from stackyard.web.routes.servers import pick_provider

router = APIRouter(route_class=UiRoute, include_in_schema=False)
_KIB = 1024
_FIELDS = {
    "instance_id": "instance",
    "target": "target",
    "disk_format": "format",
    "compression": "compression",
    "bandwidth": "bandwidth",
}


def _visible_jobs(viewer: Viewer, limit: int = 30) -> list[Job]:
    with viewer.state.sessions() as session:
        jobs = JobRepository(session).list_jobs(limit=limit)
    return [j for j in jobs if viewer.is_admin or j.created_by == viewer.principal.subject]


def describe_retention(policy: RetentionPolicy) -> str:
    """A retention policy in words, as `stackyard exports prune` applies it per instance."""
    parts = []
    if policy.keep_last:
        parts.append(f"the newest {policy.keep_last}")
    for count, unit in ((policy.daily, "day"), (policy.weekly, "ISO week"), (policy.monthly, "month")):
        if count:
            parts.append(f"the newest of each of the last {count} {unit}{'s' if count != 1 else ''}")
    return "keep " + ", ".join(parts) if parts else "keep everything"


def _retention(viewer: Viewer) -> list[dict[str, object]]:
    """The configured schedules and what each keeps (read from the settings)."""
    shown: list[dict[str, object]] = []
    for entry in viewer.state.settings.exports.schedules:
        keep_last, gfs = entry.get("keep_last"), entry.get("gfs")
        try:
            policy = parse_retention(
                keep_last if isinstance(keep_last, int) else None, str(gfs) if gfs else None
            )
            rule = describe_retention(policy)
        except StackyardError as exc:
            rule = f"invalid: {exc}"
        shown.append(
            {
                "name": entry.get("name"),
                "cron": entry.get("cron"),
                "target": entry.get("target"),
                "rule": rule,
            }
        )
    return shown


def _page(
    request: Request,
    viewer: Viewer,
    *,
    errors: dict[str, str],
    values: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    state = viewer.state
    provider = pick_provider(state, None)
    instances = list(provider.list_instances(viewer.scope, InstanceQuery(limit=100)).items)
    exports = [
        e
        for e in state.export_service.list_exports(limit=30)
        if viewer.is_admin or e.created_by == viewer.principal.subject
    ]
    settings = state.settings.exports
    return render(
        request,
        "exports/index.html",
        {
            "nav": "exports",
            "instances": instances,
            "exports": exports,
            "jobs": _visible_jobs(viewer),
            "formats": [f.value for f in DiskFormat],
            "compressions": [c.value for c in Compression],
            "errors": errors,
            "values": values,
            "settings": settings,
            "schedules": _retention(viewer),
        },
        status_code=status_code,
    )


@router.get("/ui/exports", response_class=HTMLResponse)
def exports_page(request: Request, viewer: SignedIn, instance: str = "") -> HTMLResponse:
    values = {
        "instance": instance,
        "target": "swift://",
        "format": "keep",
        "compression": "none",
        "bandwidth": "",
    }
    return _page(request, viewer, errors={}, values=values)


@router.post("/ui/exports", response_class=HTMLResponse)
def start_export(
    request: Request,
    viewer: Acting,
    instance: Annotated[str, Form(max_length=64)] = "",
    target: Annotated[str, Form(max_length=1200)] = "",
    disk_format: Annotated[str, Form(alias="format", max_length=16)] = "keep",
    compression: Annotated[str, Form(max_length=16)] = "none",
    bandwidth: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    values = {
        "instance": instance,
        "target": target,
        "format": disk_format,
        "compression": compression,
        "bandwidth": bandwidth,
    }
    errors: dict[str, str] = {}
    if not instance:
        errors["instance"] = "choose an instance"
    limit: float | None = None
    if bandwidth.strip():
        try:
            limit = float(bandwidth) * _KIB
        except ValueError:
            errors["bandwidth"] = "a number of KiB per second"
    body = None
    if not errors:
        try:
            body = ExportCreate.model_validate(
                {
                    "instance_id": instance,
                    "target": target,
                    "disk_format": disk_format,
                    "compression": compression,
                    "bandwidth": limit,
                }
            )
        except PydanticError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error.get("loc") else "form"
                errors[_FIELDS.get(name, "form")] = str(error["msg"])
    if body is not None:
        try:
            # The API's own route function: the same checks (target first, members to swift:// only).
            accepted = create_export(body, viewer.state, viewer.principal, viewer.scope, Response())
        except StackyardError as exc:
            field = getattr(exc, "field", None)
            errors[_FIELDS.get(str(field), "target") if field else "target"] = str(exc)
        else:
            return RedirectResponse(f"/ui/jobs/{accepted.job.id}", status_code=303)
    return _page(request, viewer, errors=errors, values=values, status_code=422)


@router.get("/ui/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, viewer: SignedIn, job_id: str) -> HTMLResponse:
    job = get_job(job_id, viewer.state, viewer.principal)
    export = None
    if job.kind == EXPORT_JOB:
        export = viewer.state.export_service.get(job.id)
    return render(request, "exports/job.html", {"nav": "exports", "job": job, "export": export})


@router.get("/ui/jobs/{job_id}/progress", response_class=HTMLResponse)
def job_progress(
    request: Request, viewer: SignedIn, job_id: str, slot: bool = False, reload: bool = False
) -> HTMLResponse:
    """The progress fragment htmx swaps in every second until the job is final; on the job's own page
    (`slot`) the final one also removes the cancel button; with `reload` the page reloads once the job
    is final (to show its result)."""
    job = get_job(job_id, viewer.state, viewer.principal)
    return render(request, "exports/progress.html", {"job": job, "slot": slot, "oob": slot, "reload": reload})


@router.post("/ui/jobs/{job_id}/cancel")
def cancel(viewer: Acting, job_id: str) -> Response:
    cancel_job(job_id, viewer.state, viewer.principal)
    return RedirectResponse(f"/ui/jobs/{job_id}?cancelled=1", status_code=303)


# -- retention -----------------------------------------------------------------------------------------


def _retention_form(
    request: Request,
    viewer: Viewer,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    lines: list[PruneLine] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "exports/retention.html",
        {
            "nav": "exports",
            "values": values,
            "errors": errors,
            "lines": lines,
            "schedules": _retention(viewer),
            "keeping": sum(1 for line in lines or () if line.keep),
        },
        status_code=status_code,
    )


def _policy(keep_last: str, gfs: str, errors: dict[str, str]) -> RetentionPolicy | None:
    count: int | None = None
    if keep_last.strip():
        if not keep_last.strip().isdigit():
            errors["keep_last"] = "a whole number of exports"
            return None
        count = int(keep_last)
    try:
        policy = parse_retention(count, gfs.strip() or None)
    except ValidationError as exc:
        errors["keep_last" if exc.field == "keep_last" else "gfs"] = exc.message
        return None
    if policy.is_empty:
        errors["keep_last"] = "give a count to keep and/or GFS counts (e.g. 7d,4w,12m)"
        return None
    return policy


@router.get("/ui/exports/retention", response_class=HTMLResponse)
def retention_page(request: Request, viewer: AdminViewer) -> HTMLResponse:
    return _retention_form(
        request, viewer, values={"instance": "", "keep_last": "3", "gfs": "7d,4w,12m"}, errors={}
    )


@router.post("/ui/exports/retention", response_class=HTMLResponse)
def apply_retention(
    request: Request,
    viewer: ActingAdmin,
    mode: Annotated[str, Form(pattern="^(plan|prune)$")] = "plan",
    instance: Annotated[str, Form(max_length=64)] = "",
    keep_last: Annotated[str, Form(max_length=8)] = "",
    gfs: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Plan (nothing deleted: which exports a policy keeps and why) or prune (a job) per instance."""
    values = {"instance": instance, "keep_last": keep_last, "gfs": gfs}
    errors: dict[str, str] = {}
    policy = _policy(keep_last, gfs, errors)
    if policy is None:
        return _retention_form(request, viewer, values=values, errors=errors, status_code=422)
    lifecycle = viewer.state.export_lifecycle
    if mode == "prune":
        job = lifecycle.submit_prune(instance or None, policy, viewer.principal.subject)
        return RedirectResponse(f"/ui/jobs/{job.id}", status_code=303)
    lines = lifecycle.prune(instance or None, policy, dry_run=True)
    return _retention_form(request, viewer, values=values, errors=errors, lines=lines)
