"""Swift helpers with swift:// URLs: resumable ranged downloads and segmented uploads.

A download goes to `<path>.part` and continues from its size after an interruption (HTTP Range),
then is checked: a plain object against its md5 etag, an export against the sha256 in its manifest.
An upload larger than one segment becomes a Static Large Object whose segments go up in parallel.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.objects import ObjectInfo, ObjectStoreGateway, SegmentRef
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import IntegrityError, NotFound, StorageError, ValidationError
from stackyard.exports.files import FileStream
from stackyard.exports.models import (
    MANIFEST_SUFFIX,
    Checkpoint,
    Compression,
    SwiftLocation,
    parse_swift_url,
    segment_name,
    segment_prefix,
)
from stackyard.exports.service import CloudFor
from stackyard.exports.stream import Digest, RateMeter
from stackyard.exports.transfer import SwiftSegmentSink, Transfer
from stackyard.jobs.models import Job
from stackyard.jobs.repository import JobRepository
from stackyard.jobs.runner import JobContext

DOWNLOAD_JOB = "storage.download"
_CHUNK = 1024 * 1024

Progress = Callable[[int, int | None, float | None], None]  # bytes done, total, rate


def _ignore(_done: int, _total: int | None, _rate: float | None) -> None:
    return None


@dataclass(frozen=True)
class DownloadResult:
    path: str
    size: int
    sha256: str
    resumed_from: int  # bytes already on disk from an interrupted download
    verified: str  # what the bytes were checked against


def object_of(
    objects: ObjectStoreGateway, url: str, field_name: str = "url"
) -> tuple[SwiftLocation, ObjectInfo]:
    location = parse_swift_url(url, field_name)
    if location.is_prefix:
        raise ValidationError(field_name, f"{url} names a prefix, not an object")
    info = objects.head_object(location.container, location.name)
    if info is None:
        raise NotFound(f"object {url} does not exist", service="object_store")
    return location, info


def download(
    objects: ObjectStoreGateway, url: str, path: Path, on_progress: Progress = _ignore
) -> DownloadResult:
    """Stream an object to `path`; an interrupted download is continued from `<path>.part`'s size."""
    location, info = object_of(objects, url)
    part = path.with_name(path.name + ".part")
    digest = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    have = part.stat().st_size if part.exists() else 0
    if have > info.size:
        have = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with part.open("r+b" if have else "wb") as out:
            out.truncate(have)
            out.seek(0)
            left = have
            while left > 0:  # rebuild the checksums of what is already on disk
                piece = out.read(min(_CHUNK, left))
                if not piece:
                    break
                digest.update(piece)
                md5.update(piece)
                left -= len(piece)
            out.seek(have)
            done = have
            meter = RateMeter()
            if have < info.size or info.size == 0:
                stream = objects.open_object(location.container, location.name, have)
                try:
                    for chunk in stream.chunks(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        md5.update(chunk)
                        done += len(chunk)
                        if meter.add(done):
                            on_progress(done, info.size, meter.rate)
                finally:
                    stream.close()
    except OSError as exc:
        raise StorageError(f"{part}: {exc.strerror or exc}") from exc
    sha256 = digest.hexdigest()
    verified = _verify(objects, location, info, sha256, md5.hexdigest(), done)
    part.replace(path)
    on_progress(done, info.size, None)
    return DownloadResult(str(path), done, sha256, have, verified)


def _verify(
    objects: ObjectStoreGateway, location: SwiftLocation, info: ObjectInfo, sha256: str, md5: str, size: int
) -> str:
    if size != info.size:
        raise IntegrityError(f"{location}: got {size} bytes, Swift holds {info.size}")
    if not info.is_large:
        if info.etag and info.etag != md5:
            raise IntegrityError(f"{location}: md5 {md5} differs from Swift's etag {info.etag}")
        return "md5 etag"
    manifest = objects.head_object(location.container, location.name + MANIFEST_SUFFIX)
    if manifest is None:
        return "size only (a large object without an export manifest)"
    stream = objects.open_object(location.container, location.name + MANIFEST_SUFFIX)
    try:
        document = json.loads(b"".join(stream.chunks()))
    finally:
        stream.close()
    expected = document.get("stored_sha256") if isinstance(document, dict) else None
    if isinstance(expected, str) and expected != sha256:
        raise IntegrityError(f"{location}: sha256 {sha256} differs from its export manifest's {expected}")
    return "sha256 from the export manifest"


def upload(
    objects: ObjectStoreGateway,
    path: Path,
    url: str,
    *,
    segment_size: int,
    parallel: int = 4,
    on_progress: Progress = _ignore,
) -> tuple[str, int, str]:
    """Upload a local file to `url` (a name, or a prefix the file name is added to); returns the URL,
    the size and the sha256. Files past one segment become a Static Large Object."""
    if not path.is_file():
        raise NotFound(f"file {path} does not exist")
    location = parse_swift_url(url)
    if location.is_prefix:
        location = SwiftLocation(location.container, location.name + path.name)
    if not objects.container_exists(location.container):
        raise NotFound(f"container {location.container!r} does not exist", service="object_store")
    size = path.stat().st_size
    if size <= segment_size:
        digest = hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            stream = FileStream(path, 0)
            try:
                for chunk in stream.chunks():
                    digest.update(chunk)
                    yield chunk
            finally:
                stream.close()

        objects.put_object(location.container, location.name, chunks(), size=size)
        on_progress(size, size, None)
        return str(location), size, digest.hexdigest()
    prefix = segment_prefix(location.name, uuid.uuid4().hex[:12])

    def store(name: str, chunks: Iterator[bytes]) -> str:
        return objects.put_object(location.container, name, chunks)

    def read(name: str) -> Iterator[bytes]:
        raise IntegrityError(f"{name}: a fresh upload has nothing to replay")

    sink = SwiftSegmentSink(store, read, prefix, parallel)
    meter = RateMeter()
    transfer = Transfer(
        open_source=lambda offset: FileStream(path, offset),
        source_size=size,
        digest=Digest(None, None, None),
        sink=sink,
        compression=Compression.NONE,
        segment_size=segment_size,
        checkpoint=Checkpoint(),
        report=lambda done, rate, _checkpoint: on_progress(done, size, rate),
        meter=meter,
    )
    try:
        result = transfer.run(())
        objects.put_manifest(
            location.container,
            location.name,
            [
                SegmentRef(f"{location.container}/{segment_name(prefix, s.index)}", s.etag, s.stored)
                for s in result.segments
            ],
        )
    except BaseException:
        for item in list(objects.objects(location.container, prefix=prefix)):
            objects.delete_plain(location.container, item.name)  # no orphan segments
        raise
    return str(location), size, result.stored_sha256


class StorageService:
    """Admin downloads from Swift to a path on the server, as jobs (`POST /api/v1/storage/download`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cloud_for: CloudFor,
        *,
        dispatch: Callable[[str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cloud_for = cloud_for
        self._dispatch = dispatch

    def submit_download(self, provider: str, region: str | None, url: str, path: str, created_by: str) -> Job:
        if not path.startswith("/") or "\0" in path:
            raise ValidationError("path", "expected an absolute path on the server")
        target = Path(path)
        if not target.parent.is_dir():
            raise ValidationError("path", f"directory {target.parent} does not exist")
        object_of(self._cloud_for(provider, region).objects, url)
        payload = {"provider": provider, "region": region, "url": url, "path": path}
        with transaction(self._sessions) as session:
            job = JobRepository(session).add(
                DOWNLOAD_JOB, payload, subject=None, created_by=created_by, now=utcnow()
            )
        if self._dispatch is not None:
            self._dispatch(job.id)
        return job

    def handlers(self) -> dict[str, Callable[[JobContext], Mapping[str, object] | None]]:
        return {DOWNLOAD_JOB: self.run_download}

    def run_download(self, ctx: JobContext) -> Mapping[str, object]:
        payload = ctx.job.payload
        region = payload.get("region")
        objects = self._cloud_for(str(payload["provider"]), None if region is None else str(region)).objects

        def progress(done: int, total: int | None, rate: float | None) -> None:
            ctx.report(done, total, None, phase="transferring", rate=rate)

        result = download(objects, str(payload["url"]), Path(str(payload["path"])), progress)
        return {
            "path": result.path,
            "size": result.size,
            "sha256": result.sha256,
            "resumed_from": result.resumed_from,
            "verified": result.verified,
        }
