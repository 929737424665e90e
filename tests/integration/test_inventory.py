"""Network inventory sync against the devcloud and PostgreSQL: 3 VMs with a port on each of two subnets.

Checked: the right interfaces per node on each subnet, subnets by name (an ambiguous name is an
error listing both), metadata-key node names, DOWN ports held back, ports of every VM in one Neutron
call, no POST when nothing changed, one POST for the one node whose port changed, and a receiver
that is down retried with the error kept in the inventory.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from dataclasses import replace

import openstack
import openstack.connection
import pytest
from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.ports import PortGateway
from stackyard.cloud.session import CallRecord, CloudSession, open_session
from stackyard.cloud.status import PortStatus
from stackyard.devcloud.access import Credentials
from stackyard.errors import Conflict, NotFound
from stackyard.inventory.push import Endpoint, NodeConfigPusher
from stackyard.inventory.service import InventoryService, NodeState, SyncRequest
from support.clouds import sdk_connection
from support.netlab import Lab
from support.postgres import migrated_database
from support.receiver import Receiver

pytestmark = pytest.mark.devcloud

RUN = uuid.uuid4().hex[:6]
NODE_KEY = "k8s-node"


@pytest.fixture(scope="module")
def sessions() -> Iterator[sessionmaker[Session]]:
    with migrated_database("stackyard_inventory") as (_url, made):
        yield made


@pytest.fixture(scope="module")
def lab(admin_conn: openstack.connection.Connection, request: pytest.FixtureRequest) -> Lab:
    return Lab(admin_conn, request, run=RUN, node_key=NODE_KEY)


@pytest.fixture(scope="module")
def calls() -> list[CallRecord]:
    return []


@pytest.fixture(scope="module")
def cloud_session(admin_credentials: Credentials, calls: list[CallRecord]) -> Iterator[CloudSession]:
    session = open_session(sdk_connection(admin_credentials), name="devcloud", on_call=calls.append)
    yield session
    session.close()


@pytest.fixture(scope="module")
def service(sessions: sessionmaker[Session], cloud_session: CloudSession) -> InventoryService:
    gateway = PortGateway(cloud_session)
    return InventoryService(sessions, lambda _cloud: gateway)


def request_for(lab: Lab, label: str, scope: str, **changes: object) -> SyncRequest:
    subnet = lab.subnets[label]
    base = SyncRequest(
        scope=scope,
        cloud="devcloud",
        project_id=lab.project_id,
        instance_ids=lab.vm_ids,
        subnet_id=str(subnet.id),  # type: ignore[attr-defined]
        metadata_key=NODE_KEY,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_each_node_gets_its_interface_on_the_subnet_asked_for(
    lab: Lab, service: InventoryService, calls: list[CallRecord]
) -> None:
    for label, cidr, mtu in (("a", "10.77.0.0/24", 1450), ("b", "10.78.0.0/24", 1400)):
        calls.clear()
        subnet, configs, excluded = service.compute(request_for(lab, label, f"t1-{label}"))
        assert excluded == ()
        assert (subnet.cidr, subnet.mtu) == (cidr, mtu)
        by_node = {c.node_name: c for c in configs}
        assert sorted(by_node) == sorted(["node-zero", f"inv-{RUN}-1", f"inv-{RUN}-2"])  # metadata key first
        for index, name in enumerate(["node-zero", f"inv-{RUN}-1", f"inv-{RUN}-2"]):
            (interface,) = by_node[name].interfaces
            port = lab.ports[(index, label)]
            assert interface.port_id == port.id  # type: ignore[attr-defined]
            assert interface.mac_address == port.mac_address.lower()  # type: ignore[attr-defined]
            assert interface.address == lab.address(index, label)
            assert ipaddress.ip_address(interface.address) in ipaddress.ip_network(cidr)
            assert (interface.cidr, interface.mtu, interface.status) == (cidr, mtu, PortStatus.ACTIVE)
            assert by_node[name].provider_id == f"openstack:///{lab.vm_ids[index]}"
        # The ports of all three VMs came from one Neutron listing, the names from one Nova listing.
        operations = [c.operation for c in calls]
        assert operations.count("list ports") == 1, operations
        assert operations.count("list servers") == 1, operations


def test_a_subnet_by_name_and_an_ambiguous_name_listing_both(
    lab: Lab, service: InventoryService, admin_conn: openstack.connection.Connection
) -> None:
    by_name = request_for(lab, "b", "t2", subnet_id=None, subnet_name=f"inv-b-{RUN}")
    subnet, configs, _ = service.compute(by_name)
    assert subnet.id == lab.subnets["b"].id and len(configs) == 3  # type: ignore[attr-defined]

    twin = admin_conn.network.create_subnet(
        network_id=lab.subnets["a"].network_id,  # type: ignore[attr-defined]
        name=f"inv-twin-{RUN}",
        cidr="10.79.0.0/24",
        ip_version=4,
    )
    other = admin_conn.network.create_subnet(
        network_id=lab.subnets["b"].network_id,  # type: ignore[attr-defined]
        name=f"inv-twin-{RUN}",
        cidr="10.80.0.0/24",
        ip_version=4,
    )
    try:
        with pytest.raises(Conflict) as info:
            service.compute(request_for(lab, "a", "t2", subnet_id=None, subnet_name=f"inv-twin-{RUN}"))
        assert twin.id in str(info.value) and other.id in str(info.value)
        with pytest.raises(NotFound, match="no-such"):
            service.compute(request_for(lab, "a", "t2", subnet_id=None, subnet_name="no-such-subnet"))
    finally:
        admin_conn.network.delete_subnet(twin, ignore_missing=True)
        admin_conn.network.delete_subnet(other, ignore_missing=True)


def test_a_down_port_holds_its_node_back_unless_down_is_allowed(
    lab: Lab, service: InventoryService, admin_conn: openstack.connection.Connection
) -> None:
    # A port of VM 2 that nothing binds stays DOWN.
    subnet = lab.subnets["a"]
    down = admin_conn.network.create_port(
        network_id=subnet.network_id,  # type: ignore[attr-defined]
        fixed_ips=[{"subnet_id": subnet.id}],  # type: ignore[attr-defined]
        device_id=lab.vm_ids[2],
        name=f"inv-{RUN}-down",
    )
    try:
        assert admin_conn.network.get_port(down.id).status == "DOWN"
        result = service.sync(request_for(lab, "a", "t3"), None)
        (held,) = result.excluded
        assert held.instance_id == lab.vm_ids[2] and held.port_ids == (down.id,)
        assert result.pending_port_ids == (down.id,)
        assert sorted(n.node_name for n in result.nodes if n.state is NodeState.RECORDED) == [
            f"inv-{RUN}-1",
            "node-zero",
        ]
        allowed = frozenset({PortStatus.ACTIVE, PortStatus.DOWN})
        _, configs, excluded = service.compute(request_for(lab, "a", "t3", allowed_statuses=allowed))
        assert excluded == ()
        two = next(c for c in configs if c.instance_id == lab.vm_ids[2])
        assert sorted(i.status for i in two.interfaces) == [PortStatus.ACTIVE, PortStatus.DOWN]
    finally:
        admin_conn.network.delete_port(down, ignore_missing=True)


def test_pushes_only_what_changed_and_records_a_receiver_that_is_down(
    lab: Lab, service: InventoryService, admin_conn: openstack.connection.Connection
) -> None:
    with Receiver() as receiver:
        pusher = NodeConfigPusher(
            Endpoint(receiver.url, timeout=5, auth_header="Bearer inventory-secret", backoff=0.01)
        )
        scope = f"t4-{RUN}"
        first = service.sync(request_for(lab, "b", scope), pusher)
        assert sorted(receiver.nodes()) == sorted(["node-zero", f"inv-{RUN}-1", f"inv-{RUN}-2"])
        assert {n.state for n in first.nodes} == {NodeState.PUSHED} and first.posts == 3
        assert receiver.headers[0]["Authorization"] == "Bearer inventory-secret"
        body = receiver.received[0]
        assert body["apiVersion"] == "stackyard.io/v1alpha1" and body["kind"] == "MultiNicNodeConfig"

        receiver.clear()
        second = service.sync(request_for(lab, "b", scope), pusher)
        assert receiver.attempts == 0 and second.posts == 0  # a stable cluster sends nothing
        assert {n.state for n in second.nodes} == {NodeState.UNCHANGED}

        # VM 1's port on subnet b moves to another address: one POST, for that node only.
        port = lab.ports[(1, "b")]
        admin_conn.network.update_port(
            port.id,  # type: ignore[attr-defined]
            fixed_ips=[{"subnet_id": lab.subnets["b"].id, "ip_address": "10.78.0.250"}],  # type: ignore[attr-defined]
        )
        third = service.sync(request_for(lab, "b", scope), pusher)
        assert receiver.nodes() == [f"inv-{RUN}-1"] and third.posts == 1
        interfaces = receiver.received[0]["interfaces"]
        assert isinstance(interfaces, list) and interfaces[0]["address"] == "10.78.0.250"

        # The receiver fails: every attempt is made, the error is kept, the node is retried next time.
        admin_conn.network.update_port(
            port.id,  # type: ignore[attr-defined]
            fixed_ips=[{"subnet_id": lab.subnets["b"].id, "ip_address": "10.78.0.251"}],  # type: ignore[attr-defined]
        )
        receiver.clear()
        receiver.fail_with = 503
        failed = service.sync(request_for(lab, "b", scope), pusher)
        assert failed.has_failed and receiver.attempts == 4 and failed.posts == 4
        stored = service.node_config(f"inv-{RUN}-1")
        assert stored.last_error is not None and "503" in stored.last_error and not stored.is_pushed
        assert "inventory-secret" not in stored.last_error

        receiver.fail_with = None
        receiver.clear()
        recovered = service.sync(request_for(lab, "b", scope), pusher)
        assert receiver.nodes() == [f"inv-{RUN}-1"] and not recovered.has_failed
        stored = service.node_config(f"inv-{RUN}-1")
        assert stored.is_pushed and stored.last_error is None
        assert len(service.node_configs(instance_id=lab.vm_ids[1])) >= 1

        # A VM taken out of the set loses its row; forgetting the scope removes the rest.
        fewer = service.sync(request_for(lab, "b", scope, instance_ids=lab.vm_ids[:2]), pusher)
        assert fewer.removed == 1
        assert service.forget_scope(scope) == 2
        pusher.close()
