"""Import (restore) jobs: stream a file or a swift:// object into a new Glance image, verify, boot it.

The source is decompressed on the way when its name ends in .zst or .gz, and checked against the
export manifest beside it when there is one (the image's hash at export time). Glance has no ranged
upload, so a retried attempt deletes the half-made image and uploads again from the start.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.compute import ServerCreate
from stackyard.cloud.images import ImageData
from stackyard.cloud.status import ImageStatus, ServerStatus
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import IntegrityError, NotFound, StorageError, ValidationError
from stackyard.exports.models import MANIFEST_SUFFIX, SWIFT_SCHEME, Compression, ExportPhase, parse_swift_url
from stackyard.exports.service import CloudFor, CloudHandles
from stackyard.exports.stream import RateMeter, new_unframe
from stackyard.jobs.models import Job
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobContext

IMPORT_JOB = "import.run"
IMPORT_PROPERTY = "stackyard_import"  # image property naming the import job that made the image
DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "iso", "ami", "ari", "aki")
_CHUNK = 1024 * 1024
_BOOT_TIMEOUT = 600.0


@dataclass(frozen=True)
class BootSpec:
    """Boot an instance from the imported image."""

    name: str
    flavor: str  # name or id
    networks: tuple[str, ...] = ()  # names or ids


@dataclass(frozen=True)
class ImportRequest:
    provider: str
    source: str  # swift://container/name or an absolute path
    name: str | None = None  # image name; default: the source's file name without suffixes
    disk_format: str | None = None  # default: the manifest's, else from the suffix, else raw
    region: str | None = None
    boot: BootSpec | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    def to_payload(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "source": self.source,
            "name": self.name,
            "disk_format": self.disk_format,
            "region": self.region,
            "boot": None
            if self.boot is None
            else {"name": self.boot.name, "flavor": self.boot.flavor, "networks": list(self.boot.networks)},
            "properties": dict(self.properties),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> ImportRequest:
        boot = payload.get("boot")
        props = payload.get("properties")
        return cls(
            provider=str(payload["provider"]),
            source=str(payload["source"]),
            name=None if payload.get("name") is None else str(payload["name"]),
            disk_format=None if payload.get("disk_format") is None else str(payload["disk_format"]),
            region=None if payload.get("region") is None else str(payload["region"]),
            boot=BootSpec(
                name=str(boot["name"]),
                flavor=str(boot["flavor"]),
                networks=tuple(str(n) for n in boot.get("networks") or ()),
            )
            if isinstance(boot, dict)
            else None,
            properties={str(k): str(v) for k, v in props.items()} if isinstance(props, dict) else {},
        )


def compression_of(source: str) -> Compression:
    if source.endswith(".zst"):
        return Compression.ZSTD
    if source.endswith(".gz"):
        return Compression.GZIP
    return Compression.NONE


def _stem(source: str) -> tuple[str, str | None]:
    """The file name without compression suffix, and the disk format its extension names."""
    name = source.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".zst", ".gz"):
        name = name.removesuffix(suffix)
    base, _, extension = name.rpartition(".")
    if base and extension in DISK_FORMATS:
        return base, extension
    return name, None


class _Source:
    """A swift:// object or a local file, read from the start in chunks."""

    def __init__(self, handles: CloudHandles, source: str) -> None:
        self._handles = handles
        self.source = source

    @property
    def is_swift(self) -> bool:
        return self.source.startswith(SWIFT_SCHEME)

    def size(self) -> int:
        if self.is_swift:
            location = parse_swift_url(self.source, "source")
            if location.is_prefix:
                raise ValidationError("source", f"{self.source} names a prefix, not an object")
            info = self._handles.objects.head_object(location.container, location.name)
            if info is None:
                raise NotFound(f"object {self.source} does not exist", service="object_store")
            return info.size
        path = Path(self.source)
        if not path.is_file():
            raise NotFound(f"file {self.source} does not exist")
        return path.stat().st_size

    def manifest(self) -> dict[str, object] | None:
        """The export manifest stored beside the source, if any."""
        if self.is_swift:
            location = parse_swift_url(self.source, "source")
            if self._handles.objects.head_object(location.container, location.name + MANIFEST_SUFFIX) is None:
                return None
            stream = self._handles.objects.open_object(location.container, location.name + MANIFEST_SUFFIX)
            try:
                document = json.loads(b"".join(stream.chunks()))
            finally:
                stream.close()
        else:
            path = Path(self.source + MANIFEST_SUFFIX)
            if not path.is_file():
                return None
            document = json.loads(path.read_bytes())
        return document if isinstance(document, dict) else None

    def chunks(self) -> Iterator[bytes]:
        if self.is_swift:
            location = parse_swift_url(self.source, "source")
            stream = self._handles.objects.open_object(location.container, location.name)
            try:
                yield from stream.chunks(_CHUNK)
            finally:
                stream.close()
            return
        try:
            with Path(self.source).open("rb") as reader:
                while chunk := reader.read(_CHUNK):
                    yield chunk
        except OSError as exc:
            raise StorageError(f"{self.source}: {exc.strerror or exc}") from exc


class ImportService:
    """Submits import jobs and runs them (the job runner's handler for `import.run`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cloud_for: CloudFor,
        *,
        dispatch: Callable[[str], None] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._cloud_for = cloud_for
        self._dispatch = dispatch
        self._now = now

    def submit(self, request: ImportRequest, created_by: str) -> Job:
        if not request.source.startswith(SWIFT_SCHEME) and not request.source.startswith("/"):
            raise ValidationError("source", "expected swift://container/name or an absolute path")
        if request.disk_format is not None and request.disk_format not in DISK_FORMATS:
            raise ValidationError(
                "disk_format", f"unsupported {request.disk_format!r}; supported: {', '.join(DISK_FORMATS)}"
            )
        handles = self._cloud_for(request.provider, request.region)
        _Source(handles, request.source).size()  # 404 naming the source now, not in the job
        with transaction(self._sessions) as session:
            job = JobRepository(session).add(
                IMPORT_JOB, request.to_payload(), subject=None, created_by=created_by, now=self._now()
            )
        if self._dispatch is not None:
            self._dispatch(job.id)
        return job

    def handlers(self) -> dict[str, Callable[[JobContext], Mapping[str, object] | None]]:
        return {IMPORT_JOB: self.run}

    def cleanups(self) -> dict[str, Callable[[Job], None]]:
        return {IMPORT_JOB: self.cleanup}

    def cleanup(self, job: Job) -> None:
        """A failed or cancelled import leaves no half-made image behind."""
        request = ImportRequest.from_payload(job.payload)
        images = self._cloud_for(request.provider, request.region).images
        for image in images.find_images({IMPORT_PROPERTY: job.id}):
            if image.status is not ImageStatus.ACTIVE or (job.result or {}).get("image_id") != image.id:
                images.delete_image(image.id)

    def run(self, ctx: JobContext) -> Mapping[str, object]:
        request = ImportRequest.from_payload(ctx.job.payload)
        handles = self._cloud_for(request.provider, request.region)
        source = _Source(handles, request.source)
        total = source.size()
        manifest = source.manifest()
        described = manifest.get("source") if manifest else None
        described = described if isinstance(described, dict) else {}
        stem, by_suffix = _stem(request.source)
        disk_format = request.disk_format or str(described.get("disk_format") or by_suffix or "raw")
        ctx.report(0, total, "creating the image", phase=ExportPhase.PREPARING.value)
        images = handles.images
        for stale in images.find_images({IMPORT_PROPERTY: ctx.job.id}):
            images.delete_image(stale.id)  # a half upload of an earlier attempt: Glance cannot resume it
        image = images.create_image(
            ImageData(
                name=request.name or stem,
                disk_format=disk_format,
                properties={
                    **request.properties,
                    IMPORT_PROPERTY: ctx.job.id,
                    "stackyard_source": request.source[:255],
                },
            )
        )
        algo = str(described.get("os_hash_algo") or "sha512")
        digest = hashlib.new(algo if algo in hashlib.algorithms_available else "sha512")
        unframe = _Unframes(compression_of(request.source))
        meter = RateMeter()
        read = 0

        def body() -> Iterator[bytes]:
            nonlocal read
            for chunk in source.chunks():
                read += len(chunk)
                plain = unframe.feed(chunk)
                digest.update(plain)
                if meter.add(read):
                    ctx.report(read, total, None, phase=ExportPhase.TRANSFERRING.value, rate=meter.rate)
                if plain:
                    yield plain
            tail = unframe.finish()
            if tail:
                digest.update(tail)
                yield tail

        size = total if compression_of(request.source) is Compression.NONE else None
        images.upload(image.id, body(), size=size)
        ctx.report(read, total, "checking the image", phase=ExportPhase.VERIFYING.value)
        uploaded = images.wait_for_image(image.id, timeout=600, interval=1.0)
        ours = digest.hexdigest()
        if uploaded.hash_value and uploaded.hash_algo == digest.name and uploaded.hash_value != ours:
            raise IntegrityError(
                f"Glance recorded {uploaded.hash_algo} {uploaded.hash_value[:16]}..., sent {ours[:16]}..."
            )
        expected = described.get("os_hash_value")
        if isinstance(expected, str) and expected and expected != ours:
            raise IntegrityError(
                f"{request.source} does not match its export manifest"
                f" ({algo} {ours[:16]}... != {expected[:16]}...)"
            )
        result: dict[str, object] = {
            "image_id": image.id,
            "hash_algo": digest.name,
            "hash_value": ours,
            "size": uploaded.size,
        }
        if request.boot is not None:
            ctx.report(read, total, f"booting {request.boot.name}", phase=ExportPhase.FINISHING.value)
            result["instance_id"] = self._boot(handles, image.id, request.boot, ctx.job.id)
        return result

    def _boot(self, handles: CloudHandles, image_id: str, boot: BootSpec, job_id: str) -> str:
        compute = handles.compute
        flavor = next((f for f in compute.flavors() if boot.flavor in (f.id, f.name)), None)
        if flavor is None:
            raise ValidationError("boot.flavor", f"no flavor {boot.flavor!r}")
        networks = {n.name: n.id for n in compute.networks()}
        network_ids = []
        for ref in boot.networks:
            if ref not in networks and ref not in networks.values():
                raise ValidationError("boot.networks", f"no network {ref!r}")
            network_ids.append(networks.get(ref, ref))
        instance = compute.create_instance(
            ServerCreate(
                name=boot.name, flavor_id=flavor.id, image_id=image_id, network_ids=tuple(network_ids)
            ),
            client_token=uuid.uuid5(uuid.NAMESPACE_URL, f"stackyard-import:{job_id}").hex,
        )
        compute.wait_for_instance(instance.id, ServerStatus.ACTIVE, timeout=_BOOT_TIMEOUT, interval=2.0)
        return instance.id


class _Unframes:
    """Decompresses a stream of concatenated frames (one per export segment) fed in pieces."""

    def __init__(self, compression: Compression) -> None:
        self._compression = compression
        self._current = new_unframe(compression)

    def feed(self, data: bytes) -> bytes:
        if self._compression is Compression.NONE:
            return data
        out = bytearray()
        while data:
            out += self._current.decompress(data)
            leftover = getattr(self._current, "unused_data", b"")
            if getattr(self._current, "eof", False):
                self._current = new_unframe(self._compression)
                data = leftover
            else:
                data = b""
        return bytes(out)

    def finish(self) -> bytes:
        return b""


__all__ = ["IMPORT_JOB", "BootSpec", "ImportRequest", "ImportService"]
