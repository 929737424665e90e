"""What an export job carries and uses: its request, and the gateways of the cloud it runs against."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.images import ImageGateway
from stackyard.cloud.objects import ObjectStoreGateway
from stackyard.exports.models import ExportOptions

EXPORT_JOB = "export.run"
EXPORT_PROPERTY = "stackyard_export"  # image property naming the export job that made a snapshot
QEMU_IMG = "qemu-img"


@dataclass(frozen=True)
class CloudHandles:
    """The gateways an export uses, on one cloud region with the provider's own credentials."""

    compute: ComputeGateway
    images: ImageGateway
    objects: ObjectStoreGateway


CloudFor = Callable[[str, str | None], CloudHandles]  # (provider, region) -> gateways


@dataclass(frozen=True)
class ExportRequest:
    provider: str
    instance_id: str | None  # None when exporting an image (options.image_id)
    target: str
    options: ExportOptions
    region: str | None = None

    def to_payload(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "region": self.region,
            "instance_id": self.instance_id,
            "target": self.target,
            "options": self.options.to_payload(),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> ExportRequest:
        options = payload.get("options")
        return cls(
            provider=str(payload["provider"]),
            region=None if payload.get("region") is None else str(payload["region"]),
            instance_id=None if payload.get("instance_id") is None else str(payload["instance_id"]),
            target=str(payload["target"]),
            options=ExportOptions.from_payload(options if isinstance(options, Mapping) else {}),
        )
