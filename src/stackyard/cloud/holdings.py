"""What a project holds (servers, volumes, floating IPs), seen and removed by an admin, for reclamation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stackyard.cloud.clock import Clock, SystemClock
from stackyard.cloud.compute import ComputeGateway
from stackyard.cloud.parse import as_int, utc_time
from stackyard.cloud.session import CloudSession
from stackyard.cloud.status import ServerStatus, VolumeStatus
from stackyard.errors import NotFound, Timeout

__all__ = ["HeldFloatingIp", "HeldServer", "HeldVolume", "HoldingsGateway"]

_VOLUME_BUSY = frozenset(
    {VolumeStatus.IN_USE, VolumeStatus.DETACHING, VolumeStatus.ATTACHING, VolumeStatus.RESERVED}
)
_DETACH_TIMEOUT = 120.0  # seconds a volume of a just-deleted server may take to come free
_DELETE_TIMEOUT = 300.0  # seconds a server may take to go (the devcloud's Nova is slow under load)


@dataclass(frozen=True)
class HeldServer:
    id: str
    name: str
    created_at: datetime | None
    status: ServerStatus
    vcpus: int
    ram_mib: int


@dataclass(frozen=True)
class HeldVolume:
    id: str
    name: str
    created_at: datetime | None
    size_gib: int
    status: VolumeStatus
    attached_to: tuple[str, ...]


@dataclass(frozen=True)
class HeldFloatingIp:
    id: str
    address: str
    created_at: datetime | None
    port_id: str | None


class HoldingsGateway:
    def __init__(self, session: CloudSession, clock: Clock | None = None) -> None:
        self._session = session
        self._conn = session.conn
        self._clock = clock or SystemClock()
        self._compute = ComputeGateway(session, self._clock)

    def servers(self, project_id: str) -> list[HeldServer]:
        def fetch() -> list[Any]:
            return list(self._conn.compute.servers(details=True, all_projects=True, project_id=project_id))

        held = []
        for server in self._session.call("compute", "list project servers", fetch):
            # NOTE: from compute microversion 2.47 the server embeds its flavor's vcpus and ram.
            flavor = server.flavor if isinstance(server.flavor, dict) else {}
            held.append(
                HeldServer(
                    id=str(server.id),
                    name=str(server.name or ""),
                    created_at=utc_time(server.created_at),
                    status=ServerStatus.from_openstack(server.status),
                    vcpus=as_int(flavor.get("vcpus")),
                    ram_mib=as_int(flavor.get("ram")),
                )
            )
        return held

    def volumes(self, project_id: str) -> list[HeldVolume]:
        def fetch() -> list[Any]:
            return list(
                self._conn.block_storage.volumes(details=True, all_projects=True, project_id=project_id)
            )

        return [
            HeldVolume(
                id=str(volume.id),
                name=str(volume.name or ""),
                created_at=utc_time(volume.created_at),
                size_gib=as_int(volume.size),
                status=VolumeStatus.from_openstack(volume.status),
                attached_to=tuple(
                    str(a.get("server_id"))
                    for a in volume.attachments or []
                    if isinstance(a, dict) and a.get("server_id")
                ),
            )
            for volume in self._session.call("block_storage", "list project volumes", fetch)
        ]

    def floating_ips(self, project_id: str) -> list[HeldFloatingIp]:
        def fetch() -> list[Any]:
            return list(self._conn.network.ips(project_id=project_id))

        return [
            HeldFloatingIp(
                id=str(ip.id),
                address=str(ip.floating_ip_address or ""),
                created_at=utc_time(ip.created_at),
                port_id=str(ip.port_id) if ip.port_id else None,
            )
            for ip in self._session.call("network", "list project floating ips", fetch)
        ]

    def stop_server(self, server_id: str) -> None:
        """Idempotent: a server already off (or gone) is fine."""
        try:
            self._compute.stop_instance(server_id)
        except NotFound:
            return

    def snapshot_server(self, server_id: str, name: str) -> str:
        """createImage, never twice: a snapshot of this server by this name is adopted if it exists."""

        def find() -> Any:
            for image in self._conn.image.images(name=name):
                if (image.properties or {}).get("instance_uuid") == server_id or getattr(
                    image, "instance_uuid", None
                ) == server_id:
                    return image
            return None

        existing = self._session.call("image", "find snapshot", find)
        if existing is not None:
            return str(existing.id)
        image = self._session.call(
            "compute",
            "create server image",
            lambda: self._conn.compute.create_server_image(server_id, name, wait=False),
            idempotent=False,
            find_existing=find,
        )
        return str(image.id)

    def delete_server(self, server_id: str) -> bool:
        """Delete and wait until Nova has removed it (its usage and its volumes' attachments go with it);
        False when it was already gone."""
        deleted = self._compute.delete_instance(server_id)
        self._compute.wait_for_instance_deleted(server_id, timeout=_DELETE_TIMEOUT, interval=2.0)
        return deleted

    def delete_volume(self, volume_id: str) -> bool:
        """False when already gone. A volume of a server deleted a moment ago is waited on until Cinder
        has detached it."""
        deadline = self._clock.monotonic() + _DETACH_TIMEOUT
        while True:
            try:
                volume = self._session.call(
                    "block_storage", "get volume", lambda: self._conn.block_storage.get_volume(volume_id)
                )
            except NotFound:
                return False
            if VolumeStatus.from_openstack(volume.status) not in _VOLUME_BUSY:
                break
            if self._clock.monotonic() > deadline:
                raise Timeout(
                    f"volume {volume_id} stayed {volume.status} for {_DETACH_TIMEOUT:.0f} s",
                    service="block_storage",
                )
            self._clock.sleep(2.0)
        try:
            self._session.call(
                "block_storage",
                "delete volume",
                lambda: self._conn.block_storage.delete_volume(volume_id, ignore_missing=False),
            )
        except NotFound:
            return False
        return True

    def delete_floating_ip(self, floating_ip_id: str) -> bool:
        try:
            self._session.call(
                "network",
                "delete floating ip",
                lambda: self._conn.network.delete_ip(floating_ip_id, ignore_missing=False),
            )
        except NotFound:
            return False
        return True
