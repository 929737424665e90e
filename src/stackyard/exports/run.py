"""One attempt of an export job: snapshot, stream (or stage and convert), verify, record, clean up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from stackyard.cloud.images import ImageInfo
from stackyard.cloud.objects import SegmentRef
from stackyard.cloud.status import ImageStatus, ServerStatus
from stackyard.db.engine import transaction
from stackyard.errors import StorageError, ValidationError
from stackyard.exports.context import EXPORT_PROPERTY, QEMU_IMG, ExportRequest
from stackyard.exports.files import FileSink, FileStream, StreamSink
from stackyard.exports.models import (
    MANIFEST_SUFFIX,
    MAX_SEGMENTS,
    Checkpoint,
    Compression,
    ExportManifest,
    ExportPhase,
    SwiftLocation,
    TargetKind,
    export_file_name,
    needs_conversion,
    parse_swift_url,
    parse_target,
    resolve_object_name,
    segment_prefix,
)
from stackyard.exports.repository import ExportOutcome, ExportRepository
from stackyard.exports.stream import Digest, RateMeter, Throttle
from stackyard.exports.transfer import Sink, SourceStream, SwiftSegmentSink, Transfer
from stackyard.jobs.runner import JobContext

if TYPE_CHECKING:
    from stackyard.exports.service import ExportService


class ExportRun:
    """One attempt of one export job (the service's collaborators are read from it)."""

    def __init__(self, service: ExportService, ctx: JobContext) -> None:
        self.service = service
        self.ctx = ctx
        self.job = ctx.job
        self.request = ExportRequest.from_payload(ctx.job.payload)
        self.options = self.request.options
        self.target = parse_target(self.request.target)
        self.checkpoint = Checkpoint.from_payload(ctx.job.checkpoint)
        self.handles = service._cloud_for(self.request.provider, self.request.region)
        self.total: int | None = None
        self.done = 0

    def save(self, phase: ExportPhase, message: str | None = None, rate: float | None = None) -> None:
        self.ctx.report(
            self.done,
            self.total,
            message,
            phase=phase.value,
            rate=rate,
            checkpoint=self.checkpoint.to_payload(),
        )

    def execute(self) -> Mapping[str, object]:
        self.service._admit(self.job, self.request, self.target)
        self.save(ExportPhase.PREPARING, "checking the target")
        image = self.source_image()
        if image.size is None:
            raise ValidationError("image", f"image {image.id} has no data")
        self.total = image.size
        try:
            location, result_segments, outcome = self.transfer(image)
        finally:
            self.save(ExportPhase.TRANSFERRING, "transfer stopped" if self.done < (self.total or 0) else None)
        self.save(ExportPhase.FINISHING, "recording the export")
        manifest = ExportManifest(
            export_id=self.job.id,
            location=location,
            source={
                "instance_id": self.request.instance_id,
                "image_id": image.id,
                "image_name": image.name,
                "disk_format": image.disk_format,
                "container_format": image.container_format,
                "os_hash_algo": image.hash_algo,
                "os_hash_value": image.hash_value,
                "checksum": image.checksum,
                "properties": dict(image.properties),
            },
            stored_bytes=outcome.stored_bytes,
            source_bytes=outcome.source_bytes,
            stored_sha256=outcome.stored_sha256,
            disk_format=outcome.disk_format or "",
            compression=self.options.compression.value,
            segments=result_segments,
            created_at=self.service._now(),
        )
        self.write_manifest(location, manifest)
        if (
            self.checkpoint.snapshot_created
            and self.checkpoint.snapshot_image_id
            and not self.options.keep_snapshot
        ):
            self.handles.images.delete_image(self.checkpoint.snapshot_image_id)
        with transaction(self.service._sessions) as session:
            ExportRepository(session).succeed(self.job.id, outcome, self.service._now())
        shutil.rmtree(self.service._staging / self.job.id, ignore_errors=True)
        return {"export_id": self.job.id, "manifest": manifest.to_document()}

    # -- steps ---------------------------------------------------------------------------------------

    def source_image(self) -> ImageInfo:
        images = self.handles.images
        if self.options.image_id is not None:
            image = images.get_image(self.options.image_id)
            if image.status is not ImageStatus.ACTIVE:
                raise ValidationError("image_id", f"image {image.id} is {image.status}, not active")
            return image
        instance_id = self.request.instance_id
        assert instance_id is not None
        compute = self.handles.compute
        if self.checkpoint.snapshot_image_id is None:
            self.save(ExportPhase.SNAPSHOTTING, "creating the snapshot")
            instance = compute.get_instance(instance_id)
            if self.options.quiesce and instance.status is ServerStatus.ACTIVE:
                compute.stop_instance(instance_id)
                self.checkpoint = replace(self.checkpoint, instance_stopped=True)
                self.save(ExportPhase.SNAPSHOTTING, "instance stopped for the snapshot")
                compute.wait_for_instance(instance_id, ServerStatus.SHUTOFF, timeout=600, interval=2.0)
            name = f"stackyard-export-{instance.name or instance_id}-{self.job.id[:8]}"
            snapshot = images.snapshot_server(instance_id, name, {EXPORT_PROPERTY: self.job.id})
            self.checkpoint = replace(self.checkpoint, snapshot_image_id=snapshot.id, snapshot_created=True)
            self.save(ExportPhase.SNAPSHOTTING, f"snapshot {snapshot.id} requested")
        image_id = self.checkpoint.snapshot_image_id
        assert image_id is not None

        def progress(status: ImageStatus, progress: int | None, elapsed: float) -> None:
            self.ctx.report(
                0, None, f"snapshot {status} after {elapsed:.0f} s", phase=ExportPhase.SNAPSHOTTING.value
            )

        image = images.wait_for_image(image_id, timeout=self.options.snapshot_timeout, on_progress=progress)
        if self.checkpoint.instance_stopped:
            compute.start_instance(instance_id)
            # The export is done with the instance only once it is running again, not just asked to.
            compute.wait_for_instance(instance_id, ServerStatus.ACTIVE, timeout=600, interval=2.0)
            self.checkpoint = replace(self.checkpoint, instance_stopped=False)
            self.save(ExportPhase.SNAPSHOTTING, "instance started again")
        return image

    def location(self, image: ImageInfo) -> str:
        """Where the export goes, fixed by the first attempt (a resumed one writes the same object)."""
        if self.checkpoint.location is not None:
            return self.checkpoint.location
        when = self.job.created_at
        name = export_file_name(
            self._instance_name() or image.name,
            self.request.instance_id or image.id,
            when,
            self.job.id,
            image.disk_format or "raw"
            if not needs_conversion(self.options, image.disk_format)
            else self.options.disk_format.value,
            self.options.compression,
        )
        if self.target.kind is TargetKind.SWIFT and self.target.swift is not None:
            swift = self.target.swift
            location = str(SwiftLocation(swift.container, resolve_object_name(swift, name)))
        elif self.target.kind is TargetKind.FILE and self.target.path is not None:
            path = Path(self.target.path)
            location = str(path / name if self.target.path.endswith("/") or path.is_dir() else path)
        else:
            location = "-"
        self.checkpoint = replace(self.checkpoint, location=location, upload_id=uuid.uuid4().hex[:12])
        return location

    def _instance_name(self) -> str | None:
        with self.service._sessions() as session:
            return ExportRepository(session).get(self.job.id).instance_name

    def sink(self, location: str) -> tuple[Sink, tuple[object, ...]]:
        resume = self.checkpoint.contiguous()
        if self.target.kind is TargetKind.SWIFT:
            swift = parse_swift_url(location)
            objects = self.handles.objects
            prefix = segment_prefix(swift.name, self.checkpoint.upload_id or "")

            def store(name: str, chunks: Iterator[bytes]) -> str:
                return objects.put_object(swift.container, name, chunks)

            def read(name: str) -> Iterator[bytes]:
                stream = objects.open_object(swift.container, name)
                try:
                    yield from stream.chunks()
                finally:
                    stream.close()

            return SwiftSegmentSink(store, read, prefix, self.options.parallel_segments), resume
        if self.target.kind is TargetKind.FILE:
            sink = FileSink(Path(location), resume)
            return sink, sink.resumable
        stream = self.service._stdout or sys.stdout.buffer
        return StreamSink(stream), ()

    def transfer(self, image: ImageInfo) -> tuple[str, int, ExportOutcome]:
        assert self.total is not None
        segment_size = self.options.segment_size
        if self.target.kind is TargetKind.SWIFT and -(-self.total // segment_size) > MAX_SEGMENTS:
            # NOTE: Swift refuses manifests of more than max_manifest_segments (1000 by default).
            segment_size = -(-self.total // MAX_SEGMENTS)
        location = self.location(image)
        converted: Path | None = None
        glance_digest: tuple[str, str] | None = None
        if needs_conversion(self.options, image.disk_format):
            converted, glance_digest = self.convert(image)
            self.total = converted.stat().st_size
            segment_size = max(segment_size, -(-self.total // MAX_SEGMENTS))
        sink, resume = self.sink(location)
        self.save(ExportPhase.TRANSFERRING, f"to {location}")
        digest = (
            Digest(image.hash_algo, image.hash_value, image.checksum)
            if converted is None
            else Digest(None, None, None)  # the Glance bytes were checked before the conversion
        )

        def open_source(offset: int) -> SourceStream:
            if converted is None:
                return self.handles.images.open_download(image.id, offset)
            return FileStream(converted, offset)

        def report(done: int, rate: float | None, checkpoint: Checkpoint | None) -> None:
            self.done = done
            if checkpoint is not None:
                self.checkpoint = checkpoint
            self.save(ExportPhase.TRANSFERRING, None, rate)

        transfer = Transfer(
            open_source=open_source,
            source_size=self.total,
            digest=digest,
            sink=sink,
            compression=self.options.compression,
            segment_size=segment_size,
            checkpoint=self.checkpoint,
            report=report,
            throttle=Throttle(self.options.bandwidth),
            meter=RateMeter(),
        )
        try:
            result = transfer.run(resume)  # type: ignore[arg-type]
        finally:
            self.checkpoint = transfer.checkpoint
        self.done = result.source_bytes
        self.save(ExportPhase.VERIFYING, f"checking {digest.algo}")
        source_digest = digest.verify(f"image {image.id}")
        hash_algo = digest.algo
        if glance_digest is not None:
            hash_algo, source_digest = glance_digest
        if self.target.kind is TargetKind.SWIFT:
            swift = parse_swift_url(location)
            prefix = segment_prefix(swift.name, self.checkpoint.upload_id or "")
            self.handles.objects.put_manifest(
                swift.container,
                swift.name,
                [
                    SegmentRef(f"{swift.container}/{prefix}{s.index:08d}", s.etag, s.stored)
                    for s in result.segments
                ],
                metadata={"Stackyard-Export": self.job.id},
            )
        elif isinstance(sink, FileSink):
            sink.commit()
        outcome = ExportOutcome(
            location=location,
            image_id=image.id,
            disk_format=image.disk_format if converted is None else self.options.disk_format.value,
            source_bytes=result.source_bytes,
            stored_bytes=result.stored_bytes,
            hash_algo=hash_algo,
            hash_value=source_digest,
            stored_sha256=result.stored_sha256,
        )
        return location, len(result.segments), outcome

    def convert(self, image: ImageInfo) -> tuple[Path, tuple[str, str]]:
        """Stage the image on disk (verified), convert it with qemu-img; kept across attempts of the job."""
        directory = self.service._staging / self.job.id
        fmt = self.options.disk_format.value
        converted = directory / f"image.{fmt}"
        recorded = directory / "glance-digest"
        if converted.exists() and recorded.exists():
            algo, _, value = recorded.read_text().partition(":")
            return converted, (algo, value)
        directory.mkdir(parents=True, exist_ok=True)
        staged = directory / "source"
        digest = Digest(image.hash_algo, image.hash_value, image.checksum)
        self.save(ExportPhase.TRANSFERRING, f"staging the image for conversion to {fmt}")
        sink = FileSink(staged, ())
        Transfer(
            open_source=lambda offset: self.handles.images.open_download(image.id, offset),
            source_size=self.total,
            digest=digest,
            sink=sink,
            compression=Compression.NONE,
            segment_size=max(self.options.segment_size, self.total or 1),
            checkpoint=Checkpoint(),
            report=lambda done, rate, _cp: self.ctx.report(done, self.total, "staging", rate=rate),
        ).run(())
        value = digest.verify(f"image {image.id}")
        sink.commit()
        self.save(ExportPhase.TRANSFERRING, f"converting {image.disk_format} to {fmt}")
        partial = directory / f"image.{fmt}.part"
        command = [
            QEMU_IMG,
            "convert",
            "-f",
            image.disk_format or "raw",
            "-O",
            fmt,
            str(staged),
            str(partial),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StorageError(f"qemu-img could not convert image {image.id}: {result.stderr.strip()[-500:]}")
        partial.replace(converted)
        staged.unlink()
        recorded.write_text(f"{digest.algo}:{value}")
        return converted, (digest.algo, value)

    def write_manifest(self, location: str, manifest: ExportManifest) -> None:
        document = json.dumps(manifest.to_document(), indent=2, sort_keys=True).encode()
        if self.target.kind is TargetKind.SWIFT:
            swift = parse_swift_url(location)
            self.handles.objects.put_small_object(
                swift.container, swift.name + MANIFEST_SUFFIX, document, "application/json"
            )
        elif self.target.kind is TargetKind.FILE:
            try:
                Path(location + MANIFEST_SUFFIX).write_bytes(document)
            except OSError as exc:
                raise StorageError(f"{location}{MANIFEST_SUFFIX}: {exc.strerror or exc}") from exc
