"""What an export is (pure): targets, swift:// URLs, options, object names, checkpoint, manifest."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath

from stackyard.errors import ValidationError

MIB = 1024 * 1024
DEFAULT_SEGMENT_BYTES = 100 * MIB
MIN_SEGMENT_BYTES = 1 * MIB  # Swift's default min_segment_size for all but the last SLO segment
MAX_SEGMENTS = 1000  # Swift's default max_manifest_segments
SEGMENTS_FOLDER = ".stackyard-segments"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
SWIFT_SCHEME = "swift://"


class ExportPhase(StrEnum):
    """The steps of an export job while it runs (the job's state is `running` throughout)."""

    PREPARING = "preparing"
    SNAPSHOTTING = "snapshotting"
    TRANSFERRING = "transferring"
    VERIFYING = "verifying"
    FINISHING = "finishing"


class ExportState(StrEnum):
    QUEUED = "queued"  # waiting for a runner, or for a free slot on its cloud or target
    RUNNING = "running"  # admitted: counts against exports.per_cloud and exports.per_target
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # removed by retention; the row stays for the record


class TargetKind(StrEnum):
    SWIFT = "swift"
    FILE = "file"
    STDOUT = "stdout"


class DiskFormat(StrEnum):
    KEEP = "keep"  # as Glance stores it
    RAW = "raw"
    QCOW2 = "qcow2"
    VMDK = "vmdk"


class Compression(StrEnum):
    NONE = "none"
    ZSTD = "zstd"
    GZIP = "gzip"

    @property
    def suffix(self) -> str:
        return {Compression.NONE: "", Compression.ZSTD: ".zst", Compression.GZIP: ".gz"}[self]


def _choice(enum: type[StrEnum], value: object, field_name: str) -> StrEnum:
    try:
        return enum(str(value).lower())
    except ValueError:
        supported = ", ".join(member.value for member in enum)
        raise ValidationError(field_name, f"unsupported value {value!r}; supported: {supported}") from None


@dataclass(frozen=True)
class SwiftLocation:
    """`swift://container/name`: an object, or with a name ending in "/" (or empty) a prefix."""

    container: str
    name: str = ""

    @property
    def is_prefix(self) -> bool:
        return self.name == "" or self.name.endswith("/")

    def __str__(self) -> str:
        return f"{SWIFT_SCHEME}{self.container}/{self.name}"


def parse_swift_url(text: str, field_name: str = "url") -> SwiftLocation:
    if not text.startswith(SWIFT_SCHEME):
        raise ValidationError(field_name, f"expected swift://container[/name], got {text!r}")
    rest = text[len(SWIFT_SCHEME) :]
    container, _, name = rest.partition("/")
    if not container:
        raise ValidationError(field_name, "a swift:// URL needs a container: swift://container[/name]")
    if len(container) > 256 or "\0" in rest or len(name) > 1024:
        raise ValidationError(field_name, "container names are at most 256 characters, object names 1024")
    return SwiftLocation(container, name)


@dataclass(frozen=True)
class ExportTarget:
    kind: TargetKind
    swift: SwiftLocation | None = None
    path: str | None = None  # a local file, or a directory (ends with "/" or exists as one)

    def __str__(self) -> str:
        if self.kind is TargetKind.SWIFT and self.swift is not None:
            return str(self.swift)
        if self.kind is TargetKind.FILE and self.path is not None:
            return f"file://{self.path}"
        return "-"

    @property
    def key(self) -> str:
        """What concurrency limits per target count by: a container, a directory, or stdout."""
        if self.swift is not None:
            return f"swift://{self.swift.container}"
        if self.path is not None:
            return f"file://{PurePosixPath(self.path).parent if not self.path.endswith('/') else self.path}"
        return "stdout"


def parse_target(text: str, field_name: str = "target") -> ExportTarget:
    """`swift://container/prefix/`, `swift://container/name`, `file:///path`, an absolute path, or `-`."""
    text = text.strip()
    if not text:
        raise ValidationError(field_name, "a target is required: swift://container/prefix/, a path, or -")
    if text == "-":
        return ExportTarget(TargetKind.STDOUT)
    if text.startswith(SWIFT_SCHEME):
        return ExportTarget(TargetKind.SWIFT, swift=parse_swift_url(text, field_name))
    path = text[len("file://") :] if text.startswith("file://") else text
    if "\0" in path or not path.startswith("/"):
        raise ValidationError(field_name, f"a local target must be an absolute path, got {text!r}")
    if "://" in text and not text.startswith("file://"):
        raise ValidationError(
            field_name, f"unsupported target scheme in {text!r}; use swift://, file:// or a path"
        )
    return ExportTarget(TargetKind.FILE, path=path)


@dataclass(frozen=True)
class ExportOptions:
    disk_format: DiskFormat = DiskFormat.KEEP
    compression: Compression = Compression.NONE
    segment_size: int = DEFAULT_SEGMENT_BYTES
    parallel_segments: int = 4
    quiesce: bool = False  # stop the instance for the snapshot, start it again once the image is active
    keep_snapshot: bool = False
    snapshot_timeout: float = 7200.0
    bandwidth: float | None = None  # bytes per second
    image_id: str | None = None  # export this image instead of snapshotting the instance

    def __post_init__(self) -> None:
        if self.segment_size < MIN_SEGMENT_BYTES:
            raise ValidationError(
                "segment_size", f"must be at least {MIN_SEGMENT_BYTES} bytes (Swift's minimum)"
            )
        if not 1 <= self.parallel_segments <= 32:
            raise ValidationError("parallel_segments", "must be between 1 and 32")
        if self.snapshot_timeout <= 0:
            raise ValidationError("snapshot_timeout", "must be positive seconds")
        if self.bandwidth is not None and self.bandwidth < 1024:
            raise ValidationError("bandwidth", "must be at least 1024 bytes per second")

    def to_payload(self) -> dict[str, object]:
        payload = asdict(self)
        payload["disk_format"] = self.disk_format.value
        payload["compression"] = self.compression.value
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> ExportOptions:
        known = {name for name in cls.__dataclass_fields__}
        unknown = set(payload) - known
        if unknown:
            raise ValidationError(
                sorted(unknown)[0], f"unknown export option; known: {', '.join(sorted(known))}"
            )
        values = dict(payload)
        if "disk_format" in values:
            values["disk_format"] = _choice(DiskFormat, values["disk_format"], "disk_format")
        if "compression" in values:
            values["compression"] = _choice(Compression, values["compression"], "compression")
        return replace(cls(), **values)  # type: ignore[arg-type]


def needs_conversion(options: ExportOptions, source_format: str | None) -> bool:
    return options.disk_format is not DiskFormat.KEEP and options.disk_format.value != (source_format or "")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def export_file_name(
    instance_name: str | None,
    source_id: str,
    when: datetime,
    export_id: str,
    disk_format: str,
    compression: Compression,
) -> str:
    """`<name>-<id8>-<UTC time>-<export6>.<format><.zst|.gz>`: sorts by time per instance, never
    collides (two exports in one second differ by export id), safe in paths and URLs."""
    stem = _UNSAFE.sub("-", instance_name or "").strip("-.")[:80] or "image"
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return f"{stem}-{source_id[:8]}-{stamp}-{export_id[:6]}.{disk_format}{compression.suffix}"


def resolve_object_name(location: SwiftLocation, file_name: str) -> str:
    return f"{location.name}{file_name}" if location.is_prefix else location.name


def segment_prefix(object_name: str, upload_id: str) -> str:
    """Where an upload's segments live, in the same container: hidden from the target prefix's listing."""
    return f"{SEGMENTS_FOLDER}/{object_name}/{upload_id}/"


def segment_name(prefix: str, index: int) -> str:
    return f"{prefix}{index:08d}"


@dataclass(frozen=True)
class SegmentDone:
    """A segment that is stored and verified: source bytes [start, end) became `stored` bytes, `etag`."""

    index: int
    start: int
    end: int
    stored: int
    etag: str


@dataclass(frozen=True)
class Checkpoint:
    """What a later attempt of the same export resumes from (kept in the job row)."""

    snapshot_image_id: str | None = None
    snapshot_created: bool = False  # stackyard made the snapshot, so it deletes it afterwards
    instance_stopped: bool = False  # stackyard stopped the instance, so it starts it again
    location: str | None = None  # the final swift:// URL or file path, fixed by the first attempt
    upload_id: str | None = None
    segments: tuple[SegmentDone, ...] = ()

    def contiguous(self) -> tuple[SegmentDone, ...]:
        """The completed segments from index 0 without a gap: a resume starts after the last of them."""
        by_index = {segment.index: segment for segment in self.segments}
        run: list[SegmentDone] = []
        while len(run) in by_index:
            run.append(by_index[len(run)])
        return tuple(run)

    def with_segment(self, done: SegmentDone) -> Checkpoint:
        kept = tuple(s for s in self.segments if s.index != done.index)
        return replace(self, segments=tuple(sorted((*kept, done), key=lambda s: s.index)))

    def to_payload(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, object] | None) -> Checkpoint:
        if not payload:
            return cls()
        raw_segments = payload.get("segments")
        segments = tuple(
            SegmentDone(**item)
            for item in (raw_segments if isinstance(raw_segments, list | tuple) else [])
            if isinstance(item, dict)
        )
        fields = {k: v for k, v in payload.items() if k in cls.__dataclass_fields__ and k != "segments"}
        return cls(**fields, segments=segments)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ExportManifest:
    """The JSON document stored beside an export, describing what it is and how to check it."""

    export_id: str
    location: str
    source: Mapping[str, object]  # instance and image: ids, names, formats, Glance's hashes
    stored_bytes: int
    source_bytes: int
    stored_sha256: str
    disk_format: str
    compression: str
    segments: int
    created_at: datetime
    tool: str = "stackyard"
    version: int = MANIFEST_VERSION
    extra: Mapping[str, object] = field(default_factory=dict)

    def to_document(self) -> dict[str, object]:
        document = asdict(self)
        document["created_at"] = self.created_at.isoformat()
        return document


@dataclass(frozen=True)
class Export:
    """One export as recorded: where it went and how to check it."""

    id: str  # the id of the job that made it
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


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str, field_name: str) -> int:
    """Bytes from `123`, `64M`, `64MiB`, `1.5G` (binary units: an operator's 100M segment is 100 MiB)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValidationError(field_name, f"expected a size such as 104857600, 100M or 1.5GiB, got {text!r}")
    number, unit, _ = match.groups()
    return int(float(number) * _UNITS[unit.lower()])
