"""Neutron subnets and ports, and Nova server names, for the network inventory: few calls for many VMs.

The ports of every VM come from one listing filtered by all their ids at once (Neutron ORs repeated
`device_id` parameters), never one call per VM; server names and metadata come from one listing of
the project's servers. Both are paginated, and long id lists are split so a URL stays under the 8 KiB
request line most front ends (Apache, nginx, uWSGI defaults) accept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from keystoneauth1.adapter import Adapter

from stackyard.cloud.models import FixedIp, Port, ServerRef, Subnet
from stackyard.cloud.parse import as_int
from stackyard.cloud.session import PAGE_SIZE, CloudSession
from stackyard.cloud.status import PortStatus
from stackyard.cloud.streams import checked
from stackyard.errors import Conflict, NotFound

__all__ = ["DEVICE_IDS_PER_CALL", "PortGateway"]

# 100 UUIDs as device_id=... make a query of about 4.7 KB: room left for the rest of the URL.
DEVICE_IDS_PER_CALL = 100


def _subnet(body: Mapping[str, Any], mtu: int | None) -> Subnet:
    return Subnet(
        id=str(body["id"]),
        name=str(body["name"]) if body.get("name") else None,
        cidr=str(body.get("cidr") or ""),
        gateway_ip=str(body["gateway_ip"]) if body.get("gateway_ip") else None,
        network_id=str(body.get("network_id") or ""),
        mtu=mtu,
    )


def _port(body: Mapping[str, Any]) -> Port:
    fixed = body.get("fixed_ips")
    return Port(
        id=str(body["id"]),
        device_id=str(body.get("device_id") or ""),
        mac_address=str(body.get("mac_address") or ""),
        status=PortStatus.from_openstack(body.get("status")),
        network_id=str(body.get("network_id") or ""),
        fixed_ips=tuple(
            FixedIp(str(ip["subnet_id"]) if ip.get("subnet_id") else None, str(ip.get("ip_address") or ""))
            for ip in (fixed if isinstance(fixed, list) else [])
            if isinstance(ip, dict)
        ),
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PortGateway:
    def __init__(self, session: CloudSession) -> None:
        self._session = session
        self._conn = session.conn

    @property
    def _neutron(self) -> Adapter:
        return self._conn.network

    @property
    def _nova(self) -> Adapter:
        return self._conn.compute

    # -- subnets ---------------------------------------------------------------------------------

    def get_subnet(self, subnet_id: str) -> Subnet:
        """The subnet and its network's MTU (two calls); NotFound naming the subnet."""
        path = f"/subnets/{quote(subnet_id, safe='')}"
        try:
            body = self._session.call(
                "network", "get subnet", lambda: checked(self._neutron.get(path)).json()
            )
        except NotFound:
            raise NotFound(f"subnet {subnet_id!r} not found", service="network") from None
        subnet = body.get("subnet") or {}
        return _subnet(subnet, self.network_mtu(str(subnet.get("network_id") or "")))

    def find_subnet(self, name: str, *, project_id: str | None = None) -> Subnet:
        """The one subnet of this name (in the project, or shared with it); several is a Conflict
        listing their ids and CIDRs."""
        params: dict[str, str] = {"name": name}
        if project_id:
            params["project_id"] = project_id
        found = [
            s
            for s in self._session.call(
                "network",
                "find subnet",
                lambda: checked(self._neutron.get("/subnets", params=params)).json().get("subnets") or [],
            )
            if isinstance(s, dict) and s.get("name") == name
        ]
        if not found and project_id:
            # A shared subnet of another project is found by name without the project filter.
            return self.find_subnet(name)
        if not found:
            raise NotFound(f"no subnet named {name!r}", service="network")
        if len(found) > 1:
            listed = ", ".join(f"{s['id']} ({s.get('cidr')})" for s in found)
            raise Conflict(
                f"{len(found)} subnets are named {name!r}: {listed}; give the id", service="network"
            )
        return _subnet(found[0], self.network_mtu(str(found[0].get("network_id") or "")))

    def network_mtu(self, network_id: str) -> int | None:
        path = f"/networks/{quote(network_id, safe='')}"
        body = self._session.call("network", "get network", lambda: checked(self._neutron.get(path)).json())
        mtu = (body.get("network") or {}).get("mtu")
        return as_int(mtu) if mtu is not None else None

    # -- ports -----------------------------------------------------------------------------------

    def ports_of(self, device_ids: Iterable[str], *, network_id: str | None = None) -> list[Port]:
        """The ports of all these VMs: one listing per DEVICE_IDS_PER_CALL ids, each paginated."""
        ids = sorted(set(device_ids))
        ports: list[Port] = []
        for chunk in _chunks(ids, DEVICE_IDS_PER_CALL):
            query: list[tuple[str, str]] = [("device_id", vm) for vm in chunk]
            if network_id:
                query.append(("network_id", network_id))

            def fetch(marker: str | None, limit: int, query: list[tuple[str, str]] = query) -> list[Port]:
                page = [*query, ("limit", str(limit)), ("sort_key", "id"), ("sort_dir", "asc")]
                if marker:
                    page.append(("marker", marker))
                body = checked(self._neutron.get("/ports", params=page)).json()
                return [_port(p) for p in body.get("ports") or [] if isinstance(p, dict)]

            ports.extend(self._session.paged("network", "list ports", fetch, lambda p: p.id))
        return ports

    # -- servers ---------------------------------------------------------------------------------

    def _current_project(self) -> str | None:
        project = self._session.call("identity", "token project", lambda: self._conn.current_project_id)
        return str(project) if project else None

    def servers_of(
        self, instance_ids: Iterable[str], *, project_id: str | None = None
    ) -> dict[str, ServerRef]:
        """Name and metadata of these servers, from one paginated listing of the project's servers.

        NOTE: Nova's server list has no filter for a set of ids (compute API "List Servers Detailed"),
        so the project's servers are listed and the ones asked for are kept.
        """
        wanted = set(instance_ids)
        query: dict[str, str] = {"sort_key": "uuid", "sort_dir": "asc"}
        if project_id and project_id != self._current_project():
            # Another project's servers: an admin's listing across projects, narrowed to that one.
            query["project_id"] = project_id
            query["all_tenants"] = "1"

        def fetch(marker: str | None, limit: int) -> list[dict[str, Any]]:
            params = {**query, "limit": str(limit)}
            if marker:
                params["marker"] = marker
            body = checked(self._nova.get("/servers/detail", params=params)).json()
            return [s for s in body.get("servers") or [] if isinstance(s, dict)]

        found: dict[str, ServerRef] = {}
        for body in self._session.paged("compute", "list servers", fetch, lambda s: str(s["id"]), PAGE_SIZE):
            server_id = str(body["id"])
            if server_id in wanted:
                metadata = body.get("metadata")
                found[server_id] = ServerRef(
                    server_id,
                    str(body["name"]) if body.get("name") else None,
                    {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {},
                )
        return found
