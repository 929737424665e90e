"""Imports into Glance, Swift downloads to the server, image details and instance snapshots."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from stackyard.api.deps import AdminPrincipal, CurrentPrincipal, CurrentScope, ProviderDep, State
from stackyard.api.export_schemas import DownloadCreate, ImageDetailRead, ImportCreate, SnapshotCreate
from stackyard.api.quota_schemas import JobRead
from stackyard.errors import NotFound, PermissionDenied
from stackyard.exports.imports import BootSpec, ImportRequest
from stackyard.providers.registry import export_provider

router = APIRouter(tags=["exports"])
SNAPSHOT_PROPERTY = "stackyard_snapshot"  # image property holding a snapshot request's client token

ImageId = Annotated[str, Path(min_length=1, max_length=64, description="Image id.")]
InstanceId = Annotated[str, Path(min_length=1, max_length=255, description="Instance id.")]


@router.post("/api/v1/imports", response_model=JobRead, status_code=202)
def create_import(
    body: ImportCreate, state: State, principal: CurrentPrincipal, response: Response
) -> JobRead:
    """Restore: stream a swift:// object (or, for admins, a file on the server) into a new Glance image,
    verified against the export manifest beside it; optionally boot an instance from it."""
    if not principal.is_admin:
        raise PermissionDenied("imports create images with the provider's credentials: admins only")
    provider = body.provider or export_provider(state.settings, state.providers).name
    request = ImportRequest(
        provider=provider,
        source=body.source,
        name=body.name,
        disk_format=body.disk_format,
        region=body.region,
        boot=BootSpec(body.boot.name, body.boot.flavor, tuple(body.boot.networks)) if body.boot else None,
    )
    job = state.import_service.submit(request, principal.subject)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobRead.of(job)


@router.post("/api/v1/storage/download", response_model=JobRead, status_code=202)
def download_object(body: DownloadCreate, state: State, admin: AdminPrincipal, response: Response) -> JobRead:
    """Copy a swift:// object to a path on the server (resumable, verified), as a job. Admins only."""
    provider = body.provider or export_provider(state.settings, state.providers).name
    job = state.storage_service.submit_download(provider, body.region, body.url, body.path, admin.subject)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobRead.of(job)


@router.get("/api/v1/providers/{provider}/images/{image_id}", response_model=ImageDetailRead)
def get_image(image_id: ImageId, provider: ProviderDep, scope: CurrentScope, state: State) -> ImageDetailRead:
    """An image with its checksum (os_hash_algo/os_hash_value) and properties. Members see public
    and community images and their own project's."""
    image = state.export_service.cloud(provider.name, None).images.get_image(image_id)
    visible = image.visibility in ("public", "community") or image.owner == scope.project_id
    if not scope.is_admin and not visible:
        raise NotFound(f"image: no image {image_id!r}", service="image")
    return ImageDetailRead.of(image)


@router.post(
    "/api/v1/providers/{provider}/instances/{instance_id}/snapshot",
    response_model=ImageDetailRead,
    status_code=202,
)
def snapshot_instance(
    instance_id: InstanceId, body: SnapshotCreate, provider: ProviderDep, scope: CurrentScope, state: State
) -> ImageDetailRead:
    """createImage; a repeat with the same `client_token` returns the same snapshot instead of a new one.
    The image is `queued`/`saving` at first: poll the image route until it is `active`."""
    instance = provider.get_instance(scope, instance_id)  # 404 unless the caller can see it
    images = state.export_service.cloud(provider.name, None).images
    token = body.client_token or uuid.uuid4().hex
    name = body.name or f"{instance.name or instance.id}-snapshot"
    image = images.snapshot_server(instance.id, name, {SNAPSHOT_PROPERTY: token})
    return ImageDetailRead.of(image)
