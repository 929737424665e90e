"""Our own views of OpenStack resources, returned by the gateways (no openstacksdk objects leak out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum

from stackyard.cloud.status import ImageStatus, PortStatus, ServerStatus


class PowerState(IntEnum):
    """Nova's OS-EXT-STS:power_state codes."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7

    @classmethod
    def from_openstack(cls, raw: int | str | None) -> PowerState:
        try:
            return cls(int(raw)) if raw is not None else cls.NOSTATE
        except (TypeError, ValueError):
            return cls.NOSTATE


class AddressKind(StrEnum):
    """Internal: a fixed IP on a project network. External: a floating IP or an IP on an external network."""

    INTERNAL = "internal"
    EXTERNAL = "external"


@dataclass(frozen=True)
class Address:
    network: str
    ip: str
    version: int
    kind: AddressKind
    mac: str | None = None


@dataclass(frozen=True)
class FlavorRef:
    """The flavor as embedded in a server (Nova ≥ 2.47 embeds a copy, so no lookup is needed)."""

    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int


@dataclass(frozen=True)
class Instance:
    id: str
    name: str
    status: ServerStatus
    power_state: PowerState
    flavor: FlavorRef
    image_id: str | None
    project_id: str
    host: str | None
    created_at: datetime | None
    updated_at: datetime | None
    key_name: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    availability_zone: str | None = None
    fault: str | None = None
    task_state: str | None = None
    progress: int | None = None

    @property
    def internal_ips(self) -> list[str]:
        return [a.ip for a in self.addresses if a.kind is AddressKind.INTERNAL]

    @property
    def external_ips(self) -> list[str]:
        return [a.ip for a in self.addresses if a.kind is AddressKind.EXTERNAL]


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int
    ephemeral_gib: int
    swap_mib: int
    is_public: bool
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    status: ImageStatus
    size: int | None
    disk_format: str | None
    container_format: str | None
    visibility: str
    checksum: str | None
    hash_algo: str | None
    hash_value: str | None
    owner: str | None
    created_at: datetime | None
    min_disk_gib: int = 0
    min_ram_mib: int = 0
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    is_external: bool
    is_shared: bool
    project_id: str | None
    mtu: int | None
    status: str


@dataclass(frozen=True)
class Region:
    id: str
    services: list[str]
    description: str = ""


@dataclass(frozen=True)
class Keypair:
    name: str
    fingerprint: str
    type: str
    public_key: str
    private_key: str | None = None


@dataclass(frozen=True)
class Subnet:
    """A subnet with its network's MTU."""

    id: str
    name: str | None
    cidr: str
    gateway_ip: str | None
    network_id: str
    mtu: int | None


@dataclass(frozen=True)
class FixedIp:
    subnet_id: str | None
    address: str


@dataclass(frozen=True)
class Port:
    id: str
    device_id: str  # the VM the port is attached to
    mac_address: str
    status: PortStatus
    network_id: str
    fixed_ips: tuple[FixedIp, ...]


@dataclass(frozen=True)
class ServerRef:
    """What the inventory needs of a server: its name and metadata."""

    id: str
    name: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)
