"""Export jobs: check the request, snapshot the instance, stream the image into the target, verify, record.

Every step is safe to run again: the snapshot is found by the job's id before one is made, stored
segments are kept in the job's checkpoint and replayed, and the target location is fixed by the
first attempt. A job that ends failed or cancelled is cleaned up by `cleanup`: its segments or
partial file, its snapshot (unless kept), and the instance it stopped is started again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from stackyard.config import ExportSettings
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import Forbidden, NotFound, StorageError, ValidationError
from stackyard.exports.context import (
    EXPORT_JOB,
    EXPORT_PROPERTY,
    QEMU_IMG,
    CloudFor,
    CloudHandles,
    ExportRequest,
)
from stackyard.exports.models import (
    Checkpoint,
    Export,
    ExportOptions,
    ExportState,
    ExportTarget,
    TargetKind,
    needs_conversion,
    parse_swift_url,
    parse_target,
    segment_prefix,
)
from stackyard.exports.repository import ExportRepository
from stackyard.exports.run import ExportRun
from stackyard.jobs.models import Job
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobContext, RetryLater

_LOG = logging.getLogger(__name__)

_ADMIT_RETRY = 15.0  # seconds before an export held back by a concurrency limit tries again
_PROBE_SUFFIX = ".stackyard-write-check"


class ExportService:
    """Submits export jobs and runs them (as the job runner's handler for `export.run`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cloud_for: CloudFor,
        settings: ExportSettings,
        *,
        dispatch: Callable[[str], None] | None = None,
        stdout: BinaryIO | None = None,
        staging_dir: Path | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """`staging_dir` holds an image while it is converted (the only time an export touches disk)."""
        self._sessions = sessions
        self._staging = staging_dir or Path(tempfile.gettempdir()) / "stackyard-staging"
        self._cloud_for = cloud_for
        self._settings = settings
        self._dispatch = dispatch
        self._stdout = stdout
        self._now = now

    # -- submitting --------------------------------------------------------------------------------

    def default_options(self, **overrides: object) -> ExportOptions:
        base = ExportOptions(
            segment_size=self._settings.segment_size,
            parallel_segments=self._settings.parallel_segments,
            snapshot_timeout=self._settings.snapshot_timeout,
            bandwidth=self._settings.bandwidth,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def submit(self, request: ExportRequest, created_by: str, *, allow_stdout: bool = False) -> Job:
        """Check everything that can be checked before a snapshot is made, then queue the job."""
        target = parse_target(request.target)
        if target.kind is TargetKind.STDOUT and not allow_stdout:
            raise ValidationError("target", "a stream target (-) is only for the CLI; use swift:// or a path")
        if request.instance_id is None and request.options.image_id is None:
            raise ValidationError(
                "instance", "name an instance to snapshot, or an image (image_id) to export"
            )
        if needs_conversion(request.options, None) and shutil.which(QEMU_IMG) is None:
            raise ValidationError(
                "disk_format",
                f"converting to {request.options.disk_format} needs qemu-img (Debian qemu-utils) where"
                " exports run; without it only keep is supported",
            )
        handles = self._cloud_for(request.provider, request.region)
        instance_name: str | None = None
        if request.instance_id is not None:
            instance = handles.compute.get_instance(request.instance_id)
            instance_name = instance.name
        if request.options.image_id is not None:
            image = handles.images.get_image(request.options.image_id)
            instance_name = instance_name or image.name
        self._preflight(target, handles)
        now = self._now()
        with transaction(self._sessions) as session:
            job = JobRepository(session).add(
                EXPORT_JOB,
                request.to_payload(),
                subject=request.instance_id or request.options.image_id,
                created_by=created_by,
                now=now,
            )
            ExportRepository(session).add(
                job.id,
                provider=request.provider,
                region=request.region,
                instance_id=request.instance_id,
                instance_name=instance_name,
                image_id=request.options.image_id,
                target=str(target),
                compression=request.options.compression,
                created_by=created_by,
                now=now,
            )
        if self._dispatch is not None:
            self._dispatch(job.id)
        return job

    def _preflight(self, target: ExportTarget, handles: CloudHandles) -> None:
        """The target exists and takes writes: a 404 or 403 now, before any snapshot is made."""
        if target.kind is TargetKind.SWIFT and target.swift is not None:
            location = target.swift
            try:
                if not handles.objects.container_exists(location.container):
                    raise NotFound(f"container {location.container!r} does not exist", service="object_store")
                probe = location.name if location.is_prefix else location.name + "."
                probe += uuid.uuid4().hex[:8] + _PROBE_SUFFIX
                handles.objects.put_small_object(location.container, probe, b"", "application/octet-stream")
                handles.objects.delete_plain(location.container, probe)
            except Forbidden as exc:
                raise Forbidden(
                    f"no permission to write to container {location.container!r}: {exc.message}",
                    service="object_store",
                    status_code=403,
                    request_id=exc.request_id,
                ) from exc
        elif target.kind is TargetKind.FILE and target.path is not None:
            path = Path(target.path)
            directory = path if target.path.endswith("/") or path.is_dir() else path.parent
            if not directory.is_dir():
                raise ValidationError("target", f"directory {directory} does not exist")
            probe_file = directory / f".{uuid.uuid4().hex[:8]}{_PROBE_SUFFIX}"
            try:
                probe_file.write_bytes(b"")
                probe_file.unlink()
            except OSError as exc:
                raise StorageError(f"cannot write in {directory}: {exc.strerror or exc}") from exc

    def cloud(self, provider: str, region: str | None) -> CloudHandles:
        return self._cloud_for(provider, region)

    # -- reading -----------------------------------------------------------------------------------

    def get(self, export_id: str) -> Export:
        with self._sessions() as session:
            return ExportRepository(session).get(export_id)

    def list_exports(
        self, *, instance_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Export]:
        with self._sessions() as session:
            return ExportRepository(session).list_exports(instance_id=instance_id, limit=limit, offset=offset)

    # -- running -----------------------------------------------------------------------------------

    def handlers(self) -> dict[str, Callable[[JobContext], Mapping[str, object] | None]]:
        return {EXPORT_JOB: self.run}

    def cleanups(self) -> dict[str, Callable[[Job], None]]:
        return {EXPORT_JOB: self.cleanup}

    def run(self, ctx: JobContext) -> Mapping[str, object]:
        return ExportRun(self, ctx).execute()

    def _admit(self, job: Job, request: ExportRequest, target: ExportTarget) -> None:
        """Hold the export back while its cloud or its target has as many running as allowed.

        NOTE: two runners admitting at the same instant may both see the last free slot (the count is
        not locked), so a limit can be passed by one now and then.
        """
        with transaction(self._sessions) as session:
            admitted = ExportRepository(session).admit(
                job.id,
                target_key=target.key,
                per_cloud=self._settings.per_cloud,
                per_target=self._settings.per_target,
            )
        if not admitted:
            raise RetryLater(
                f"waiting for a free slot: exports.per_cloud {self._settings.per_cloud},"
                f" exports.per_target {self._settings.per_target} ({target.key})",
                _ADMIT_RETRY,
                counts=False,
            )

    def cleanup(self, job: Job) -> None:
        """After a failed or cancelled export: remove partial output and the snapshot, restart the
        instance it stopped."""
        request = ExportRequest.from_payload(job.payload)
        checkpoint = Checkpoint.from_payload(job.checkpoint)
        handles = self._cloud_for(request.provider, request.region)
        target = parse_target(request.target)
        if checkpoint.location and checkpoint.upload_id and target.kind is TargetKind.SWIFT:
            location = parse_swift_url(checkpoint.location)
            prefix = segment_prefix(location.name, checkpoint.upload_id)
            for item in list(handles.objects.objects(location.container, prefix=prefix)):
                handles.objects.delete_plain(location.container, item.name)
        if checkpoint.location and target.kind is TargetKind.FILE:
            part = Path(checkpoint.location).with_name(Path(checkpoint.location).name + ".part")
            part.unlink(missing_ok=True)
        if checkpoint.snapshot_created and checkpoint.snapshot_image_id and not request.options.keep_snapshot:
            handles.images.delete_image(checkpoint.snapshot_image_id)
        if checkpoint.instance_stopped and request.instance_id:
            handles.compute.start_instance(request.instance_id)
        shutil.rmtree(self._staging / job.id, ignore_errors=True)
        state = ExportState.CANCELLED if job.state.value == "cancelled" else ExportState.FAILED
        with transaction(self._sessions) as session:
            ExportRepository(session).end(job.id, state, self._now())


__all__ = [
    "EXPORT_JOB",
    "EXPORT_PROPERTY",
    "CloudFor",
    "CloudHandles",
    "ExportRequest",
    "ExportService",
]
