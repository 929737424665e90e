"""Instance operations as users ask for them: names resolved, input checked, waits with progress."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from stackyard.cloud.compute import BootVolume, ComputeGateway, ServerCreate, ServerFilter
from stackyard.cloud.models import Flavor, Image, Instance, Network
from stackyard.cloud.status import ServerStatus
from stackyard.cloud.wait import ProgressCallback
from stackyard.compute.resolve import pick
from stackyard.errors import NotFound, ValidationError


@dataclass(frozen=True)
class InstanceCreate:
    """A create request as a user gives it: flavor, image and networks by name or id."""

    name: str
    flavor: str
    image: str | None = None
    networks: Sequence[str] = ()
    ports: Sequence[str] = ()
    key_name: str | None = None
    security_groups: Sequence[str] = ()
    availability_zone: str | None = None
    user_data_b64: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: Sequence[str] = ()
    boot_volume_gib: int | None = None


class InstanceService:
    """Compute operations for one cloud/region."""

    def __init__(self, gateway: ComputeGateway) -> None:
        self._gateway = gateway

    def list_instances(self, filters: ServerFilter | None = None) -> Iterator[Instance]:
        return self._gateway.instances(filters)

    def get_instance(self, name_or_id: str, *, all_projects: bool = False) -> Instance:
        """By id, else by exact name (unique)."""
        try:
            return self._gateway.get_instance(name_or_id)
        except NotFound:
            pass
        named = self._gateway.find_instances_by_name(name_or_id, all_projects=all_projects)
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(i.id for i in named)
            raise ValidationError(
                "instance", f"{len(named)} instances are named {name_or_id!r} ({ids}); give the id"
            )
        raise NotFound(f"compute: no instance named or with id {name_or_id!r}", service="compute")

    def image_name_of(self, instance: Instance) -> str | None:
        """The name of the image the instance booted from (None: from a volume, or image deleted)."""
        if not instance.image_id:
            return None
        try:
            return self._gateway.get_image(instance.image_id).name
        except NotFound:
            return None

    def resolve_flavor(self, wanted: str) -> Flavor:
        return pick(
            self._gateway.flavors(),
            wanted,
            kind="flavor",
            field="flavor",
            id_of=lambda f: f.id,
            name_of=lambda f: f.name,
        )

    def resolve_image(self, wanted: str) -> Image:
        return pick(
            self._gateway.images(),
            wanted,
            kind="image",
            field="image",
            id_of=lambda i: i.id,
            name_of=lambda i: i.name,
        )

    def resolve_network(self, wanted: str, networks: Sequence[Network]) -> Network:
        return pick(
            networks, wanted, kind="network", field="network", id_of=lambda n: n.id, name_of=lambda n: n.name
        )

    def validate(self, request: InstanceCreate) -> None:
        """Checks that need no cloud call, done before any."""
        if not request.name.strip():
            raise ValidationError("name", "an instance needs a name")
        if request.image is None and request.boot_volume_gib is not None:
            raise ValidationError("image", "boot from volume needs an image to copy onto the volume")
        if request.image is None:
            raise ValidationError("image", "give an image (name or id)")
        if request.boot_volume_gib is not None and request.boot_volume_gib < 1:
            raise ValidationError("boot_volume_gib", "the boot volume must be at least 1 GiB")
        for key in request.metadata:
            if not key or len(key) > 255:
                raise ValidationError("metadata", f"metadata keys must be 1-255 characters: {key!r}")

    def create_instance(
        self,
        request: InstanceCreate,
        *,
        wait: bool = False,
        timeout: float = 600.0,
        on_progress: ProgressCallback[ServerStatus] | None = None,
    ) -> Instance:
        self.validate(request)
        flavor = self.resolve_flavor(request.flavor)
        image = self.resolve_image(request.image) if request.image else None
        network_ids: list[str] = []
        if request.networks:
            networks = self._gateway.networks()
            network_ids = [self.resolve_network(n, networks).id for n in request.networks]
        created = self._gateway.create_instance(
            ServerCreate(
                name=request.name,
                flavor_id=flavor.id,
                image_id=image.id if image else None,
                network_ids=network_ids,
                port_ids=list(request.ports),
                key_name=request.key_name,
                security_groups=list(request.security_groups),
                availability_zone=request.availability_zone,
                user_data_b64=request.user_data_b64,
                metadata=dict(request.metadata),
                tags=list(request.tags),
                boot_volume=BootVolume(request.boot_volume_gib) if request.boot_volume_gib else None,
            )
        )
        if not wait:
            return created
        return self._gateway.wait_for_instance(
            created.id, ServerStatus.ACTIVE, timeout=timeout, on_progress=on_progress
        )

    def delete_instance(self, name_or_id: str, *, wait: bool = False, timeout: float = 300.0) -> bool:
        """False when nothing by that id/name existed (idempotent delete)."""
        try:
            instance = self.get_instance(name_or_id)
        except NotFound:
            return False
        existed = self._gateway.delete_instance(instance.id)
        if wait and existed:
            self._gateway.wait_for_instance_deleted(instance.id, timeout=timeout)
        return existed

    def start_instance(self, name_or_id: str, *, wait: bool = False, timeout: float = 300.0) -> Instance:
        instance = self.get_instance(name_or_id)
        self._gateway.start_instance(instance.id)
        return self._maybe_wait(instance.id, ServerStatus.ACTIVE, wait, timeout)

    def stop_instance(self, name_or_id: str, *, wait: bool = False, timeout: float = 300.0) -> Instance:
        instance = self.get_instance(name_or_id)
        self._gateway.stop_instance(instance.id)
        return self._maybe_wait(instance.id, ServerStatus.SHUTOFF, wait, timeout)

    def reboot_instance(
        self, name_or_id: str, *, hard: bool = False, wait: bool = False, timeout: float = 300.0
    ) -> Instance:
        instance = self.get_instance(name_or_id)
        self._gateway.reboot_instance(instance.id, hard=hard)
        return self._maybe_wait(instance.id, ServerStatus.ACTIVE, wait, timeout)

    def set_metadata(self, name_or_id: str, metadata: Mapping[str, str]) -> dict[str, str]:
        return self._gateway.set_metadata(self.get_instance(name_or_id).id, metadata)

    def unset_metadata(self, name_or_id: str, keys: Sequence[str]) -> None:
        self._gateway.unset_metadata(self.get_instance(name_or_id).id, keys)

    def _maybe_wait(self, instance_id: str, target: ServerStatus, wait: bool, timeout: float) -> Instance:
        if wait:
            return self._gateway.wait_for_instance(instance_id, target, timeout=timeout)
        return self._gateway.get_instance(instance_id)
