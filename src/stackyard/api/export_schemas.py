"""Request and response bodies of the export, import, image and storage routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from stackyard.api.quota_schemas import JobRead, Text
from stackyard.cloud.images import ImageInfo
from stackyard.exports.models import Compression, DiskFormat, Export, ExportState

_MIB = 1024 * 1024


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance_id: Text | None = Field(
        default=None, max_length=64, description="Instance to snapshot and export."
    )
    image_id: Text | None = Field(
        default=None, max_length=64, description="Export this image instead of snapshotting an instance."
    )
    provider: Text | None = Field(default=None, max_length=64, description="Default: exports.cloud.")
    region: Text | None = Field(default=None, max_length=64)
    target: Text = Field(
        min_length=1,
        max_length=1200,
        examples=["swift://backups/daily/"],
        description="swift://container/prefix/ (a name is generated), swift://container/name,"
        " or a path on the server (admins).",
    )
    disk_format: DiskFormat = DiskFormat.KEEP
    compression: Compression = Compression.NONE
    segment_size: int | None = Field(
        default=None, ge=_MIB, le=5 * 1024 * _MIB, description="Bytes per Swift segment."
    )
    parallel_segments: int | None = Field(default=None, ge=1, le=32)
    quiesce: bool = Field(default=False, description="Stop the instance for the snapshot, start it after.")
    keep_snapshot: bool = False
    snapshot_timeout: float | None = Field(default=None, gt=0, le=7 * 86400, description="Seconds.")
    bandwidth: float | None = Field(default=None, ge=1024, le=1e12, description="Bytes per second.")


class ExportRead(BaseModel):
    id: str
    provider: str
    region: str | None
    instance_id: str | None
    instance_name: str | None
    image_id: str | None
    target: str
    location: str | None
    state: ExportState
    disk_format: str | None
    compression: Compression
    source_bytes: int | None
    stored_bytes: int | None
    hash_algo: str | None
    hash_value: str | None
    stored_sha256: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    pruned_at: datetime | None

    @classmethod
    def of(cls, export: Export) -> ExportRead:
        return cls.model_validate(export, from_attributes=True)


class ExportAccepted(BaseModel):
    export: ExportRead
    job: JobRead


class ExportList(BaseModel):
    items: list[ExportRead]


class BootCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=255)
    flavor: Text = Field(min_length=1, max_length=255)
    networks: list[Text] = Field(default_factory=list, max_length=16)


class ImportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Text = Field(
        min_length=1,
        max_length=1200,
        examples=["swift://backups/daily/web-1-0f3c2a1b-20261122T101500Z-1a2b3c.raw.zst"],
        description="swift://container/name (.zst and .gz are decompressed), or a server path (admins).",
    )
    name: Text | None = Field(
        default=None, max_length=255, description="Image name (default: from the source)."
    )
    disk_format: Text | None = Field(
        default=None, max_length=16, description="Default: the export manifest's."
    )
    provider: Text | None = Field(default=None, max_length=64)
    region: Text | None = Field(default=None, max_length=64)
    boot: BootCreate | None = Field(default=None, description="Boot an instance from the new image.")


class DownloadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Text = Field(min_length=10, max_length=1300, examples=["swift://backups/daily/web-1.raw"])
    path: Text = Field(min_length=2, max_length=4096, description="Absolute path on the server.")
    provider: Text | None = Field(default=None, max_length=64)
    region: Text | None = Field(default=None, max_length=64)


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, max_length=255)
    client_token: Text | None = Field(
        default=None,
        max_length=64,
        description="Send the same token again after a lost answer and the same snapshot is returned.",
    )


class ImageDetailRead(BaseModel):
    id: str
    name: str
    status: str
    size: int | None
    disk_format: str | None
    container_format: str | None
    hash_algo: str | None
    hash_value: str | None
    checksum: str | None
    owner: str | None
    visibility: str | None
    created_at: datetime | None
    properties: dict[str, str]

    @classmethod
    def of(cls, image: ImageInfo) -> ImageDetailRead:
        return cls(
            id=image.id,
            name=image.name,
            status=image.status.value,
            size=image.size,
            disk_format=image.disk_format,
            container_format=image.container_format,
            hash_algo=image.hash_algo,
            hash_value=image.hash_value,
            checksum=image.checksum,
            owner=image.owner,
            visibility=image.visibility,
            created_at=image.created_at,
            properties=dict(image.properties),
        )
