"""Node interface configs from ports: subnet membership, node names, exclusions, payload, polling."""

from __future__ import annotations

import itertools

import pytest

from stackyard.cloud.models import FixedIp, Port, ServerRef, Subnet
from stackyard.cloud.status import PortStatus
from stackyard.errors import ValidationError
from stackyard.inventory.models import (
    ExclusionReason,
    PollIntervals,
    build_node_configs,
    interfaces_in_subnet,
    next_interval,
    node_name_of,
)

SUBNET = Subnet("sub-a", "storage", "10.20.0.0/24", "10.20.0.1", "net-a", 9000)
OTHER = "sub-b"


def port(
    port_id: str,
    vm: str,
    *addresses: tuple[str | None, str],
    status: PortStatus = PortStatus.ACTIVE,
    mac: str | None = None,
) -> Port:
    return Port(
        id=port_id,
        device_id=vm,
        mac_address=mac or f"FA:16:3E:00:00:{port_id[-2:]}",
        status=status,
        network_id="net-a",
        fixed_ips=tuple(FixedIp(subnet, address) for subnet, address in addresses),
    )


SERVERS = {
    "vm-1": ServerRef("vm-1", "worker-1"),
    "vm-2": ServerRef("vm-2", "worker-2", {"k8s-node": "node-b"}),
    "vm-3": ServerRef("vm-3", None),
}


def test_only_addresses_in_the_subnet_become_interfaces_lowest_address_first() -> None:
    ports = [
        port("p-02", "vm-1", ("sub-a", "10.20.0.30")),
        port("p-01", "vm-1", (OTHER, "192.168.5.4")),  # another subnet: not ours
        port("p-03", "vm-1", ("sub-a", "10.20.0.9"), ("sub-a", "10.20.0.8")),  # two: the lower
        port("p-04", "vm-1", (None, "10.20.0.200")),  # no subnet id given: the CIDR decides
        port("p-05", "vm-1", ("sub-a", "not-an-ip")),
    ]
    interfaces = interfaces_in_subnet(ports, SUBNET)
    assert [(i.port_id, i.address) for i in interfaces] == [
        ("p-03", "10.20.0.8"),
        ("p-02", "10.20.0.30"),
        ("p-04", "10.20.0.200"),
    ]
    first = interfaces[0]
    assert (first.cidr, first.prefix_length, first.gateway, first.mtu) == (
        "10.20.0.0/24",
        24,
        "10.20.0.1",
        9000,
    )
    assert first.mac_address == "fa:16:3e:00:00:03"  # MACs compared and sent in lower case


def test_an_address_of_another_subnet_id_inside_the_cidr_is_not_ours() -> None:
    # Overlapping CIDRs on two networks: the subnet id, when Neutron gives it, wins over the address.
    assert interfaces_in_subnet([port("p-01", "vm-1", (OTHER, "10.20.0.5"))], SUBNET) == []


def test_ipv6_subnets_work_the_same_way() -> None:
    v6 = Subnet("sub-6", None, "fd00:20::/64", None, "net-a", None)
    interfaces = interfaces_in_subnet(
        [port("p-01", "vm-1", ("sub-6", "fd00:20::10")), port("p-02", "vm-1", ("sub-6", "fd00:21::1"))], v6
    )
    assert [(i.port_id, i.prefix_length) for i in interfaces] == [("p-01", 64)]


@pytest.mark.parametrize(
    ("server", "key", "expected"),
    [
        (ServerRef("vm-9", "srv", {"node": "n-1"}), "node", "n-1"),
        (ServerRef("vm-9", "srv", {"node": "  "}), "node", "srv"),  # blank value: fall back
        (ServerRef("vm-9", "srv", {}), "node", "srv"),
        (ServerRef("vm-9", "srv", {"node": "n-1"}), None, "srv"),  # no key configured
        (ServerRef("vm-9", None, {}), "node", "vm-9"),
        (ServerRef("vm-9", "", {}), None, "vm-9"),
        (None, "node", "vm-9"),
    ],
)
def test_node_name_is_the_metadata_value_else_the_server_name_else_the_vm_id(
    server: ServerRef | None, key: str | None, expected: str
) -> None:
    assert node_name_of(server, "vm-9", key) == expected


def test_configs_per_node_with_every_vm_either_configured_or_excluded() -> None:
    ports = [
        port("p-11", "vm-1", ("sub-a", "10.20.0.11")),
        port("p-12", "vm-1", (OTHER, "192.168.0.11")),
        port("p-21", "vm-2", ("sub-a", "10.20.0.21")),
        port("p-22", "vm-2", ("sub-a", "10.20.0.22"), status=PortStatus.DOWN),
        port("p-31", "vm-3", (OTHER, "192.168.0.31")),
        port("p-99", "vm-not-asked", ("sub-a", "10.20.0.99")),
    ]
    result = build_node_configs(
        ["vm-3", "vm-1", "vm-2", "vm-1", "vm-gone"], ports, SERVERS, SUBNET, metadata_key="k8s-node"
    )
    assert [(c.node_name, [i.port_id for i in c.interfaces]) for c in result.configs] == [
        ("worker-1", ["p-11"])
    ]
    reasons = {e.instance_id: e.reason for e in result.excluded}
    assert reasons == {
        "vm-2": ExclusionReason.PORTS_NOT_READY,
        "vm-3": ExclusionReason.NO_INTERFACES,
        "vm-gone": ExclusionReason.INSTANCE_NOT_FOUND,
    }
    down = next(e for e in result.excluded if e.instance_id == "vm-2")
    assert down.node_name == "node-b" and down.port_ids == ("p-22",)
    assert "p-22 DOWN" in down.message and "ACTIVE" in down.message
    assert result.pending_port_ids == ("p-22",)


def test_down_ports_are_kept_when_down_is_allowed() -> None:
    ports = [
        port("p-21", "vm-2", ("sub-a", "10.20.0.21")),
        port("p-22", "vm-2", ("sub-a", "10.20.0.22"), status=PortStatus.DOWN),
    ]
    result = build_node_configs(
        ["vm-2"], ports, SERVERS, SUBNET, allowed_statuses=frozenset({PortStatus.ACTIVE, PortStatus.DOWN})
    )
    assert [i.status for i in result.configs[0].interfaces] == [PortStatus.ACTIVE, PortStatus.DOWN]
    assert result.excluded == () and result.pending_port_ids == ()


def test_two_vms_claiming_one_node_name_are_both_left_out() -> None:
    servers = {"vm-1": ServerRef("vm-1", "same"), "vm-2": ServerRef("vm-2", "same")}
    ports = [port("p-11", "vm-1", ("sub-a", "10.20.0.11")), port("p-21", "vm-2", ("sub-a", "10.20.0.21"))]
    result = build_node_configs(["vm-1", "vm-2"], ports, servers, SUBNET)
    assert result.configs == ()
    assert [(e.instance_id, e.reason) for e in result.excluded] == [
        ("vm-1", ExclusionReason.DUPLICATE_NODE_NAME),
        ("vm-2", ExclusionReason.DUPLICATE_NODE_NAME),
    ]
    assert "vm-2" in result.excluded[0].message


def test_the_result_does_not_depend_on_the_order_of_ports_or_vms() -> None:
    ports = [
        port("p-11", "vm-1", ("sub-a", "10.20.0.11")),
        port("p-12", "vm-1", ("sub-a", "10.20.0.3")),
        port("p-21", "vm-2", ("sub-a", "10.20.0.21")),
        port("p-31", "vm-3", ("sub-a", "10.20.0.31")),
    ]
    seen = {
        build_node_configs(vms, ps, SERVERS, SUBNET)
        for vms in itertools.permutations(["vm-1", "vm-2", "vm-3"])
        for ps in itertools.permutations(ports)
    }
    assert len(seen) == 1
    (only,) = seen
    assert [c.node_name for c in only.configs] == ["vm-3", "worker-1", "worker-2"]


def test_payload_is_the_agents_shape_and_its_hash_follows_the_content() -> None:
    ports = [port("p-11", "vm-1", ("sub-a", "10.20.0.11"))]
    (config,) = build_node_configs(["vm-1"], ports, SERVERS, SUBNET).configs
    assert config.payload() == {
        "apiVersion": "stackyard.io/v1alpha1",
        "kind": "MultiNicNodeConfig",
        "nodeName": "worker-1",
        "instanceId": "vm-1",
        "providerId": "openstack:///vm-1",
        "interfaces": [
            {
                "id": "p-11",
                "macAddress": "fa:16:3e:00:00:11",
                "address": "10.20.0.11",
                "cidr": "10.20.0.0/24",
                "mtu": 9000,
                "subnetId": "sub-a",
                "subnetName": "storage",
            }
        ],
    }
    same = build_node_configs(["vm-1"], list(ports), dict(SERVERS), SUBNET).configs[0]
    moved = build_node_configs(["vm-1"], [port("p-11", "vm-1", ("sub-a", "10.20.0.12"))], SERVERS, SUBNET)
    assert len(config.content_hash) == 64
    assert same.content_hash == config.content_hash
    assert moved.configs[0].content_hash != config.content_hash


def test_a_subnet_without_a_name_sends_no_subnet_name() -> None:
    unnamed = Subnet("sub-a", None, "10.20.0.0/24", None, "net-a", None)
    (config,) = build_node_configs(
        ["vm-1"], [port("p-11", "vm-1", ("sub-a", "10.20.0.11"))], SERVERS, unnamed
    ).configs
    interfaces = config.payload()["interfaces"]
    assert isinstance(interfaces, list) and "subnetName" not in interfaces[0]


INTERVALS = PollIntervals(fast=20, fast_window=180, slow=120, error=30, pending_retries=5)


@pytest.mark.parametrize(
    ("failed", "since_change", "pending", "attempts", "expected"),
    [
        (True, None, 0, 0, 30),  # failure wins over everything
        (True, 5.0, 3, 0, 30),
        (False, None, 2, 0, 20),  # ports still DOWN: fast retries
        (False, None, 2, 4, 20),
        (False, None, 2, 5, 120),  # ... only `pending_retries` of them, then slow
        (False, 10.0, 0, 0, 20),  # right after a change: fast
        (False, 179.9, 0, 0, 20),
        (False, 180.0, 0, 0, 120),  # the window is over
        (False, None, 0, 0, 120),  # stable
    ],
)
def test_next_interval(
    failed: bool, since_change: float | None, pending: int, attempts: int, expected: float
) -> None:
    assert (
        next_interval(
            INTERVALS,
            has_failed=failed,
            since_change=since_change,
            pending_ports=pending,
            pending_attempts=attempts,
        )
        == expected
    )


@pytest.mark.parametrize("field_name", ["fast", "fast_window", "slow", "error"])
def test_intervals_must_be_positive_and_errors_name_the_field(field_name: str) -> None:
    with pytest.raises(ValidationError) as info:
        PollIntervals(**{field_name: 0})  # type: ignore[arg-type]
    assert info.value.field == f"intervals.{field_name}"


def test_negative_pending_retries_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        PollIntervals(pending_retries=-1)
    assert info.value.field == "intervals.pending_retries"
