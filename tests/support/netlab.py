"""A network lab on the devcloud for inventory tests: two networks (MTU 1450, 1400), a subnet on each,
and 3 servers with one port on each subnet; everything is removed when the test's scope ends."""

from __future__ import annotations

import time

import openstack.connection
import pytest


class Lab:
    """Two networks (MTU 1450 and 1400), a subnet on each, and 3 servers with one port on each."""

    def __init__(
        self,
        conn: openstack.connection.Connection,
        request: pytest.FixtureRequest,
        *,
        run: str,
        node_key: str,
    ) -> None:
        self.conn = conn
        self.project_id = str(conn.current_project_id)
        self.subnets: dict[str, object] = {}
        self.ports: dict[tuple[int, str], object] = {}
        for label, cidr, mtu in (("a", "10.77.0.0/24", 1450), ("b", "10.78.0.0/24", 1400)):
            net = conn.network.create_network(name=f"inv-{label}-{run}", mtu=mtu)
            request.addfinalizer(lambda net=net: self._delete_network(net))
            self.subnets[label] = conn.network.create_subnet(
                network_id=net.id,
                name=f"inv-{label}-{run}",
                cidr=cidr,
                ip_version=4,
                gateway_ip=cidr[:-4] + "1",
            )
        image = conn.image.find_image("devcloud-raw", ignore_missing=False)
        flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
        self.servers = []
        for index in range(3):
            nics = []
            for label in ("a", "b"):
                subnet = self.subnets[label]
                port = conn.network.create_port(
                    network_id=subnet.network_id,  # type: ignore[attr-defined]
                    fixed_ips=[{"subnet_id": subnet.id}],  # type: ignore[attr-defined]
                    name=f"inv-{run}-{index}-{label}",
                )
                request.addfinalizer(lambda port=port: conn.network.delete_port(port, ignore_missing=True))
                self.ports[(index, label)] = port
                nics.append({"port": port.id})
            metadata = {node_key: "node-zero"} if index == 0 else {}
            server = conn.compute.create_server(
                name=f"inv-{run}-{index}",
                flavor_id=flavor.id,
                image_id=image.id,
                networks=nics,
                metadata=metadata,
            )
            request.addfinalizer(lambda server=server: self._delete_server(server))
            self.servers.append(server)
        for server in self.servers:
            conn.compute.wait_for_server(server, status="ACTIVE", wait=300)
        deadline = time.monotonic() + 60
        while any(conn.network.get_port(p.id).status != "ACTIVE" for p in self.ports.values()):  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the devcloud did not bind the ports"
            time.sleep(1)

    @property
    def vm_ids(self) -> tuple[str, ...]:
        return tuple(str(s.id) for s in self.servers)

    def address(self, index: int, label: str) -> str:
        port = self.conn.network.get_port(self.ports[(index, label)].id)  # type: ignore[attr-defined]
        return str(port.fixed_ips[0]["ip_address"])

    def _delete_server(self, server: object) -> None:
        self.conn.compute.delete_server(server, ignore_missing=True)
        self.conn.compute.wait_for_delete(server, wait=300)

    def _delete_network(self, net: object) -> None:
        for port in self.conn.network.ports(network_id=net.id):  # type: ignore[attr-defined]
            self.conn.network.delete_port(port, ignore_missing=True)
        self.conn.network.delete_network(net, ignore_missing=True)
