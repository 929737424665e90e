"""Exports: start one (202 + job), list an instance's exports, read one. Members export what they can see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from stackyard.api.deps import CurrentPrincipal, CurrentScope, State
from stackyard.api.export_schemas import ExportAccepted, ExportCreate, ExportList, ExportRead
from stackyard.api.quota_schemas import JobRead
from stackyard.errors import NotFound, PermissionDenied
from stackyard.exports.service import ExportRequest
from stackyard.providers.registry import export_provider

router = APIRouter(tags=["exports"])
ExportId = Annotated[str, Path(min_length=1, max_length=36, description="Export id (its job's id).")]


@router.post("/api/v1/exports", response_model=ExportAccepted, status_code=202)
def create_export(
    body: ExportCreate, state: State, principal: CurrentPrincipal, scope: CurrentScope, response: Response
) -> ExportAccepted:
    """Snapshot an instance (or take an image) and stream it into the target as a job; the target is
    checked first (404 for a missing container, 403 without write permission), before any snapshot."""
    service = state.export_service
    provider_name = body.provider or export_provider(state.settings, state.providers).name
    provider = state.providers.get(provider_name)
    if provider is None:
        raise NotFound(f"no provider named {provider_name!r}; GET /api/v1/providers lists them")
    if not body.target.startswith("swift://") and not scope.is_admin:
        raise PermissionDenied("only admins may export to a path on the server; use a swift:// target")
    if body.instance_id is not None:
        provider.get_instance(scope, body.instance_id, body.region)  # 404 unless the caller can see it
    elif body.image_id is not None and not scope.is_admin:
        raise PermissionDenied("only admins may export an image by id; members export their instances")
    overrides: dict[str, object] = {
        "disk_format": body.disk_format,
        "compression": body.compression,
        "quiesce": body.quiesce,
        "keep_snapshot": body.keep_snapshot,
        "image_id": body.image_id,
    }
    for name in ("segment_size", "parallel_segments", "snapshot_timeout", "bandwidth"):
        value = getattr(body, name)
        if value is not None:
            overrides[name] = value
    request = ExportRequest(
        provider=provider_name,
        instance_id=body.instance_id,
        target=body.target,
        options=service.default_options(**overrides),
        region=body.region,
    )
    job = service.submit(request, principal.subject)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return ExportAccepted(export=ExportRead.of(service.get(job.id)), job=JobRead.of(job))


@router.get("/api/v1/exports", response_model=ExportList)
def list_exports(
    state: State,
    principal: CurrentPrincipal,
    instance: Annotated[str | None, Query(max_length=64, description="Only this instance's exports.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ExportList:
    """Newest first. Members see the exports they started."""
    exports = state.export_service.list_exports(instance_id=instance, limit=limit, offset=offset)
    visible = [e for e in exports if principal.is_admin or e.created_by == principal.subject]
    return ExportList(items=[ExportRead.of(e) for e in visible])


@router.get("/api/v1/exports/{export_id}", response_model=ExportRead)
def get_export(export_id: ExportId, state: State, principal: CurrentPrincipal) -> ExportRead:
    export = state.export_service.get(export_id)
    if not principal.is_admin and export.created_by != principal.subject:
        raise NotFound(f"no export {export_id!r}")
    return ExportRead.of(export)
