"""Node interface configs from Neutron ports (pure: no framework, no I/O).

A sync takes the ports of a set of VMs, keeps the fixed IPs that fall in one subnet and turns them
into one config per node: the interfaces an in-cluster agent configures (MAC, address, CIDR, MTU).
A node is left out, with the reason, when it has no interface in the subnet, when one of its ports
is not in an allowed status yet, or when its name is claimed by another VM too. Each config has a
content hash, so an unchanged node is never pushed again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from stackyard.cloud.models import Port, ServerRef, Subnet
from stackyard.cloud.status import PortStatus
from stackyard.errors import ValidationError

PAYLOAD_API_VERSION = "stackyard.io/v1alpha1"
PAYLOAD_KIND = "MultiNicNodeConfig"
DEFAULT_ALLOWED_STATUSES: frozenset[PortStatus] = frozenset({PortStatus.ACTIVE})


def allowed_statuses(*, allow_down: bool) -> frozenset[PortStatus]:
    """The port statuses that count as ready: ACTIVE, and DOWN when asked."""
    return DEFAULT_ALLOWED_STATUSES | ({PortStatus.DOWN} if allow_down else frozenset())


@dataclass(frozen=True)
class Interface:
    port_id: str
    mac_address: str
    address: str
    cidr: str  # the subnet's CIDR, e.g. 10.1.0.0/24
    prefix_length: int
    gateway: str | None
    mtu: int | None
    status: PortStatus
    subnet_id: str
    subnet_name: str | None


@dataclass(frozen=True)
class NodeConfig:
    node_name: str
    instance_id: str
    provider_id: str
    interfaces: tuple[Interface, ...]

    def payload(self) -> dict[str, object]:
        """The document POSTed to the external API (versioned; shape of the agent's MultiNicNodeConfig)."""
        interfaces: list[dict[str, object]] = []
        for interface in self.interfaces:
            item: dict[str, object] = {
                "id": interface.port_id,
                "macAddress": interface.mac_address,
                "address": interface.address,
                "cidr": interface.cidr,
                "mtu": interface.mtu,
                "subnetId": interface.subnet_id,
            }
            if interface.subnet_name is not None:
                item["subnetName"] = interface.subnet_name
            interfaces.append(item)
        return {
            "apiVersion": PAYLOAD_API_VERSION,
            "kind": PAYLOAD_KIND,
            "nodeName": self.node_name,
            "instanceId": self.instance_id,
            "providerId": self.provider_id,
            "interfaces": interfaces,
        }

    @property
    def content_hash(self) -> str:
        """sha256 of the payload in canonical JSON: equal configs hash equal, whatever built them."""
        canonical = json.dumps(self.payload(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class ExclusionReason(StrEnum):
    NO_INTERFACES = "no_interfaces"  # no fixed IP of the VM's ports is in the subnet
    PORTS_NOT_READY = "ports_not_ready"  # a port in the subnet is not in an allowed status (yet)
    DUPLICATE_NODE_NAME = "duplicate_node_name"  # two VMs resolve to the same node name
    INSTANCE_NOT_FOUND = "instance_not_found"  # Nova does not know the VM id


@dataclass(frozen=True)
class Exclusion:
    instance_id: str
    node_name: str
    reason: ExclusionReason
    message: str
    port_ids: tuple[str, ...] = ()  # the ports the reason is about (e.g. still DOWN)


@dataclass(frozen=True)
class NodeConfigs:
    """What one sync computed: the configs to keep, and the nodes left out with their reasons."""

    configs: tuple[NodeConfig, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def pending_port_ids(self) -> tuple[str, ...]:
        """Ports that kept a node out only because they are not ready yet: worth a fast retry."""
        return tuple(
            port_id
            for exclusion in self.excluded
            if exclusion.reason is ExclusionReason.PORTS_NOT_READY
            for port_id in exclusion.port_ids
        )


def provider_id(instance_id: str) -> str:
    """The Kubernetes node providerID the OpenStack cloud provider sets for this VM."""
    return f"openstack:///{instance_id}"


def node_name_of(server: ServerRef | None, instance_id: str, metadata_key: str | None) -> str:
    """The metadata key's value if set and non-empty, else the server's name, else the VM id."""
    if server is not None:
        if metadata_key:
            value = (server.metadata.get(metadata_key) or "").strip()
            if value:
                return value
        if server.name:
            return server.name
    return instance_id


def _sort_key(interface: Interface) -> tuple[int, str]:
    return int(ipaddress.ip_address(interface.address)), interface.port_id


def interfaces_in_subnet(ports: Iterable[Port], subnet: Subnet) -> list[Interface]:
    """One interface per port with a fixed IP in the subnet (its lowest such address), by address."""
    network = ipaddress.ip_network(subnet.cidr, strict=False)
    found: list[Interface] = []
    for port in ports:
        addresses = sorted(
            (
                ipaddress.ip_address(ip.address)
                for ip in port.fixed_ips
                if ip.subnet_id in (None, subnet.id) and _in_network(ip.address, network)
            ),
            key=int,
        )
        if not addresses:
            continue
        found.append(
            Interface(
                port_id=port.id,
                mac_address=port.mac_address.lower(),
                address=str(addresses[0]),
                cidr=str(network),
                prefix_length=network.prefixlen,
                gateway=subnet.gateway_ip,
                mtu=subnet.mtu,
                status=port.status,
                subnet_id=subnet.id,
                subnet_name=subnet.name,
            )
        )
    return sorted(found, key=_sort_key)


def _in_network(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False  # a malformed address from the cloud belongs to no subnet


def build_node_configs(
    instance_ids: Iterable[str],
    ports: Iterable[Port],
    servers: Mapping[str, ServerRef],
    subnet: Subnet,
    *,
    metadata_key: str | None = None,
    allowed_statuses: frozenset[PortStatus] = DEFAULT_ALLOWED_STATUSES,
) -> NodeConfigs:
    """Per-node configs for the VMs, ordered by node name; every VM is either configured or excluded."""
    wanted = list(dict.fromkeys(instance_ids))  # keep the caller's order, drop repeats
    by_vm: dict[str, list[Port]] = {vm: [] for vm in wanted}
    for port in ports:
        if port.device_id in by_vm:
            by_vm[port.device_id].append(port)
    names = {vm: node_name_of(servers.get(vm), vm, metadata_key) for vm in wanted}
    claimed: dict[str, list[str]] = {}
    for vm in wanted:
        claimed.setdefault(names[vm], []).append(vm)

    configs: list[NodeConfig] = []
    excluded: list[Exclusion] = []
    for vm in wanted:
        name = names[vm]
        if vm not in servers:
            excluded.append(
                Exclusion(vm, name, ExclusionReason.INSTANCE_NOT_FOUND, f"no server {vm} in Nova")
            )
            continue
        if len(claimed[name]) > 1:
            others = ", ".join(other for other in claimed[name] if other != vm)
            excluded.append(
                Exclusion(
                    vm,
                    name,
                    ExclusionReason.DUPLICATE_NODE_NAME,
                    f"node name {name!r} is also the name of {others}",
                )
            )
            continue
        interfaces = interfaces_in_subnet(by_vm[vm], subnet)
        if not interfaces:
            excluded.append(
                Exclusion(
                    vm,
                    name,
                    ExclusionReason.NO_INTERFACES,
                    f"no port of {vm} has an address in {subnet.cidr}",
                )
            )
            continue
        not_ready = tuple(i.port_id for i in interfaces if i.status not in allowed_statuses)
        if not_ready:
            statuses = ", ".join(
                f"{i.port_id} {i.status.value}" for i in interfaces if i.port_id in not_ready
            )
            allowed = ", ".join(sorted(s.value for s in allowed_statuses))
            excluded.append(
                Exclusion(
                    vm,
                    name,
                    ExclusionReason.PORTS_NOT_READY,
                    f"ports not in an allowed status ({allowed}): {statuses}",
                    not_ready,
                )
            )
            continue
        configs.append(NodeConfig(name, vm, provider_id(vm), tuple(interfaces)))
    configs.sort(key=lambda c: c.node_name)
    excluded.sort(key=lambda e: (e.node_name, e.instance_id))
    return NodeConfigs(tuple(configs), tuple(excluded))


@dataclass(frozen=True)
class PollIntervals:
    """Seconds between syncs: fast for `fast_window` after a change, slow when stable, `error` on failure."""

    fast: float = 20.0
    fast_window: float = 180.0
    slow: float = 120.0
    error: float = 30.0
    pending_retries: int = 5  # syncs at the fast interval while ports are still not ready

    def __post_init__(self) -> None:
        for name in ("fast", "fast_window", "slow", "error"):
            if getattr(self, name) <= 0:
                raise ValidationError(
                    f"intervals.{name}", f"must be positive seconds, got {getattr(self, name)}"
                )
        if self.pending_retries < 0:
            raise ValidationError(
                "intervals.pending_retries", f"must not be negative, got {self.pending_retries}"
            )


def next_interval(
    intervals: PollIntervals,
    *,
    has_failed: bool,
    since_change: float | None,
    pending_ports: int,
    pending_attempts: int,
) -> float:
    """Seconds until the next sync.

    `since_change` is how long ago a node's config last changed (None: never); `pending_attempts` is
    how many syncs in a row have already seen ports that are not ready.
    """
    if has_failed:
        return intervals.error
    if pending_ports and pending_attempts < intervals.pending_retries:
        return intervals.fast
    if since_change is not None and since_change < intervals.fast_window:
        return intervals.fast
    return intervals.slow
