"""Compute, image, network-lookup and identity-catalog calls, returning stackyard's own models."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from keystoneauth1.identity.base import BaseIdentityPlugin
from openstack.compute.v2.flavor import Flavor as SdkFlavor
from openstack.compute.v2.keypair import Keypair as SdkKeypair
from openstack.compute.v2.server import Server as SdkServer
from openstack.identity.v3._proxy import Proxy as IdentityProxy
from openstack.image.v2.image import Image as SdkImage
from openstack.network.v2.network import Network as SdkNetwork

from stackyard.cloud.clock import Clock, SystemClock
from stackyard.cloud.models import (
    Address,
    AddressKind,
    Flavor,
    FlavorRef,
    Image,
    Instance,
    Keypair,
    Network,
    PowerState,
    Region,
)
from stackyard.cloud.parse import as_int
from stackyard.cloud.session import CloudSession
from stackyard.cloud.status import SERVER_FAILURES, ImageStatus, ServerStatus
from stackyard.cloud.wait import DELETED, ProgressCallback, wait_for
from stackyard.errors import Conflict, NotFound

# Metadata key holding the client token that makes a retried create adoptable instead of duplicated.
CLIENT_TOKEN_KEY = "stackyard_client_token"  # noqa: S105 (a metadata key, not a secret)


@dataclass(frozen=True)
class ServerFilter:
    """Server-side filters (Nova query parameters) plus metadata, which Nova cannot filter on."""

    name: str | None = None
    status: ServerStatus | None = None
    project_id: str | None = None
    host: str | None = None
    tags: Sequence[str] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    all_projects: bool = False
    sort_key: str = "created_at"
    sort_dir: str = "desc"

    def query(self) -> dict[str, str]:
        query: dict[str, str] = {"sort_key": self.sort_key, "sort_dir": self.sort_dir}
        if self.name:
            query["name"] = self.name
        if self.status:
            query["status"] = self.status.value
        if self.project_id:
            query["project_id"] = self.project_id
        if self.host:
            query["host"] = self.host
        if self.tags:
            query["tags"] = ",".join(self.tags)
        return query

    def matches(self, instance: Instance) -> bool:
        return all(instance.metadata.get(k) == v for k, v in self.metadata.items())


@dataclass(frozen=True)
class BootVolume:
    """Boot from a new volume made from the image."""

    size_gib: int
    delete_on_termination: bool = True


@dataclass(frozen=True)
class ServerCreate:
    """Everything resolved to ids: the service layer does name resolution and validation first."""

    name: str
    flavor_id: str
    image_id: str | None
    network_ids: Sequence[str] = ()
    port_ids: Sequence[str] = ()
    key_name: str | None = None
    security_groups: Sequence[str] = ()
    availability_zone: str | None = None
    user_data_b64: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: Sequence[str] = ()
    boot_volume: BootVolume | None = None


def _parse_time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


class ComputeGateway:
    """Instances, flavors, images, networks, regions and key pairs of one cloud/region."""

    def __init__(self, session: CloudSession, clock: Clock | None = None) -> None:
        self._session = session
        self._clock = clock or SystemClock()
        self._conn = session.conn

    # -- conversions ---------------------------------------------------------------------------

    def _instance(self, server: SdkServer, external_networks: frozenset[str]) -> Instance:
        flavor = server.flavor or {}
        addresses: list[Address] = []
        for network, entries in sorted((server.addresses or {}).items()):
            for entry in entries:
                is_floating = entry.get("OS-EXT-IPS:type") == "floating"
                kind = (
                    AddressKind.EXTERNAL
                    if is_floating or network in external_networks
                    else AddressKind.INTERNAL
                )
                addresses.append(
                    Address(
                        network=network,
                        ip=entry.get("addr", ""),
                        version=as_int(entry.get("version"), 4),
                        kind=kind,
                        mac=entry.get("OS-EXT-IPS-MAC:mac_addr"),
                    )
                )
        image = server.image or {}
        fault = server.fault or {}
        return Instance(
            id=server.id,
            name=server.name or "",
            status=ServerStatus.from_openstack(server.status),
            power_state=PowerState.from_openstack(server.power_state),
            flavor=FlavorRef(
                name=flavor.get("original_name") or flavor.get("name") or flavor.get("id") or "",
                vcpus=as_int(flavor.get("vcpus")),
                ram_mib=as_int(flavor.get("ram")),
                disk_gib=as_int(flavor.get("disk")),
            ),
            image_id=image.get("id") or None,
            project_id=server.project_id or "",
            host=server.compute_host,
            created_at=_parse_time(server.created_at),
            updated_at=_parse_time(server.updated_at),
            key_name=server.key_name,
            metadata=dict(server.metadata or {}),
            tags=list(server.tags or []),
            addresses=addresses,
            availability_zone=server.availability_zone,
            fault=fault.get("message"),
            task_state=server.task_state,
            progress=server.progress,
        )

    @staticmethod
    def _flavor(flavor: SdkFlavor) -> Flavor:
        return Flavor(
            id=flavor.id,
            name=flavor.name,
            vcpus=as_int(flavor.vcpus),
            ram_mib=as_int(flavor.ram),
            disk_gib=as_int(flavor.disk),
            ephemeral_gib=as_int(flavor.ephemeral),
            swap_mib=as_int(flavor.swap),
            is_public=bool(flavor.is_public),
            extra_specs={str(k): str(v) for k, v in (flavor.extra_specs or {}).items()},
        )

    @staticmethod
    def _image(image: SdkImage) -> Image:
        return Image(
            id=image.id,
            name=image.name or "",
            status=ImageStatus.from_openstack(image.status),
            size=image.size,
            disk_format=image.disk_format,
            container_format=image.container_format,
            visibility=image.visibility or "",
            checksum=image.checksum,
            hash_algo=image.hash_algo,
            hash_value=image.hash_value,
            owner=image.owner_id,
            created_at=_parse_time(image.created_at),
            min_disk_gib=as_int(image.min_disk),
            min_ram_mib=as_int(image.min_ram),
            properties={str(k): str(v) for k, v in (image.properties or {}).items()},
        )

    @staticmethod
    def _network(network: SdkNetwork) -> Network:
        return Network(
            id=network.id,
            name=network.name or "",
            is_external=bool(network.is_router_external),
            is_shared=bool(network.is_shared),
            project_id=network.project_id,
            mtu=network.mtu,
            status=network.status or "",
        )

    # -- networks (for address classification and name resolution) ----------------------------

    def networks(self) -> list[Network]:
        return self._session.call(
            "network", "list networks", lambda: [self._network(n) for n in self._conn.network.networks()]
        )

    def external_network_names(self) -> frozenset[str]:
        return frozenset(
            self._session.call(
                "network",
                "list external networks",
                lambda: [n.name for n in self._conn.network.networks(is_router_external=True)],
            )
        )

    # -- instances -----------------------------------------------------------------------------

    def instances(self, filters: ServerFilter | None = None) -> Iterator[Instance]:
        """All matching servers, streamed page by page (memory stays flat in the number of servers)."""
        chosen = filters or ServerFilter()
        external = self.external_network_names()
        query = chosen.query()

        def fetch(marker: str | None, limit: int) -> list[SdkServer]:
            page_query: dict[str, str | int] = {**query, "limit": limit}
            if marker:
                page_query["marker"] = marker
            servers = self._conn.compute.servers(
                details=True, all_projects=chosen.all_projects, paginated=False, **page_query
            )
            return list(servers)

        for server in self._session.paged("compute", "list servers", fetch, lambda s: str(s.id)):
            instance = self._instance(server, external)
            if chosen.matches(instance):
                yield instance

    def instances_page(
        self,
        filters: ServerFilter | None = None,
        *,
        limit: int,
        marker: str | None = None,
        external_networks: frozenset[str] | None = None,
    ) -> tuple[list[Instance], str | None]:
        """One page of servers by Nova's limit/marker, and the marker of the next page (None: last page).

        One more server than asked for is fetched, so the last page is known without an empty fetch.
        `external_networks` (from `external_network_names`) saves the Neutron call when the caller
        keeps it.
        """
        chosen = filters or ServerFilter()
        query: dict[str, str | int] = {**chosen.query(), "limit": limit + 1}
        if marker:
            query["marker"] = marker
        servers = self._session.call(
            "compute",
            "list servers",
            lambda: list(
                self._conn.compute.servers(
                    details=True, all_projects=chosen.all_projects, paginated=False, **query
                )
            ),
        )
        external = external_networks if external_networks is not None else self.external_network_names()
        page = [self._instance(server, external) for server in servers[:limit]]
        next_marker = page[-1].id if len(servers) > limit and page else None
        return [i for i in page if chosen.matches(i)], next_marker

    def get_instance(self, instance_id: str, *, external_networks: frozenset[str] | None = None) -> Instance:
        server = self._session.call(
            "compute", "get server", lambda: self._conn.compute.get_server(instance_id)
        )
        external = external_networks if external_networks is not None else self.external_network_names()
        return self._instance(server, external)

    def find_instances_by_name(self, name: str, *, all_projects: bool = False) -> list[Instance]:
        """Exact-name matches (Nova's name filter is a regex, so filter again)."""
        pattern = f"^{_regex_escape(name)}$"
        return [
            i for i in self.instances(ServerFilter(name=pattern, all_projects=all_projects)) if i.name == name
        ]

    def create_instance(self, request: ServerCreate, *, client_token: str | None = None) -> Instance:
        """Create a server; a retry after an ambiguous failure adopts the server carrying our token."""
        token = client_token or uuid.uuid4().hex
        metadata = {**request.metadata, CLIENT_TOKEN_KEY: token}
        attrs: dict[str, object] = {
            "name": request.name,
            "flavor_id": request.flavor_id,
            "metadata": metadata,
            "networks": [{"uuid": n} for n in request.network_ids] + [{"port": p} for p in request.port_ids]
            or "auto",
        }
        if request.boot_volume is not None:
            attrs["block_device_mapping"] = [
                {
                    "boot_index": 0,
                    "uuid": request.image_id,
                    "source_type": "image",
                    "destination_type": "volume",
                    "volume_size": request.boot_volume.size_gib,
                    "delete_on_termination": request.boot_volume.delete_on_termination,
                }
            ]
        else:
            attrs["image_id"] = request.image_id
        if request.key_name:
            attrs["key_name"] = request.key_name
        if request.security_groups:
            attrs["security_groups"] = [{"name": g} for g in request.security_groups]
        if request.availability_zone:
            attrs["availability_zone"] = request.availability_zone
        if request.user_data_b64:
            attrs["user_data"] = request.user_data_b64
        if request.tags:
            attrs["tags"] = list(request.tags)

        def find_existing() -> SdkServer | None:
            pattern = f"^{_regex_escape(request.name)}$"
            for server in self._conn.compute.servers(details=True, name=pattern):
                if (server.metadata or {}).get(CLIENT_TOKEN_KEY) == token:
                    return server
            return None

        server = self._session.call(
            "compute",
            "create server",
            lambda: self._conn.compute.create_server(**attrs),
            idempotent=False,
            find_existing=find_existing,
        )
        return self.get_instance(server.id)

    def delete_instance(self, instance_id: str) -> bool:
        """Delete; False when it was already gone (idempotent)."""
        try:
            self._session.call(
                "compute",
                "delete server",
                lambda: self._conn.compute.delete_server(instance_id, ignore_missing=False),
            )
        except NotFound:
            return False
        return True

    def start_instance(self, instance_id: str) -> None:
        self._power("start", instance_id, ServerStatus.ACTIVE, "powering-on", self._conn.compute.start_server)

    def stop_instance(self, instance_id: str) -> None:
        self._power("stop", instance_id, ServerStatus.SHUTOFF, "powering-off", self._conn.compute.stop_server)

    def reboot_instance(self, instance_id: str, *, hard: bool = False) -> None:
        kind = "HARD" if hard else "SOFT"
        self._power(
            "reboot",
            instance_id,
            None,
            "reboot",
            lambda server_id: self._conn.compute.reboot_server(server_id, kind),
        )

    def _power(
        self,
        verb: str,
        instance_id: str,
        already: ServerStatus | None,
        in_flight: str,
        action: Callable[[str], object],
    ) -> None:
        try:
            self._session.call("compute", f"{verb} server", lambda: action(instance_id))
        except Conflict:
            # NOTE: Nova answers 409 when the server is already in the requested power state, or
            # while the same action is under way (task_state powering-on/off, rebooting) — which is
            # what a retry sees when the first request was applied but its answer was lost.
            current = self.get_instance(instance_id)
            if current.status is already or (current.task_state or "").startswith(in_flight):
                return
            raise

    def set_metadata(self, instance_id: str, metadata: Mapping[str, str]) -> dict[str, str]:
        server = self._session.call(
            "compute",
            "set server metadata",
            lambda: self._conn.compute.set_server_metadata(instance_id, **metadata),
        )
        return dict(server.metadata or {})

    def unset_metadata(self, instance_id: str, keys: Sequence[str]) -> None:
        self._session.call(
            "compute",
            "delete server metadata",
            lambda: self._conn.compute.delete_server_metadata(instance_id, list(keys)),
        )

    def wait_for_instance(
        self,
        instance_id: str,
        target: ServerStatus,
        *,
        timeout: float,
        interval: float = 1.0,
        on_progress: ProgressCallback[ServerStatus] | None = None,
    ) -> Instance:
        return wait_for(
            lambda: self.get_instance(instance_id),
            target,
            SERVER_FAILURES,
            status_of=lambda i: i.status,
            fault_of=lambda i: i.fault,
            progress_of=lambda i: i.progress,
            timeout=timeout,
            interval=interval,
            clock=self._clock,
            on_progress=on_progress,
            what=f"server {instance_id}",
            service="compute",
        )

    def wait_for_instance_deleted(self, instance_id: str, *, timeout: float, interval: float = 1.0) -> None:
        wait_for(
            lambda: self.get_instance(instance_id),
            DELETED,
            SERVER_FAILURES,
            status_of=lambda i: i.status,
            fault_of=lambda i: i.fault,
            timeout=timeout,
            interval=interval,
            clock=self._clock,
            what=f"server {instance_id}",
            service="compute",
        )

    # -- flavors, images -----------------------------------------------------------------------

    def flavors(self) -> list[Flavor]:
        return self._session.call(
            "compute",
            "list flavors",
            lambda: [self._flavor(f) for f in self._conn.compute.flavors(details=True, is_public=None)],
        )

    def images(self) -> list[Image]:
        return self._session.call(
            "image",
            "list images",
            lambda: [self._image(cast(SdkImage, i)) for i in self._conn.image.images()],
        )

    def get_image(self, image_id: str) -> Image:
        return self._session.call(
            "image", "get image", lambda: self._image(cast(SdkImage, self._conn.image.get_image(image_id)))
        )

    # -- key pairs -----------------------------------------------------------------------------

    @staticmethod
    def _keypair(keypair: SdkKeypair) -> Keypair:
        return Keypair(
            name=keypair.name,
            fingerprint=keypair.fingerprint or "",
            type=keypair.type or "ssh",
            public_key=keypair.public_key or "",
            private_key=keypair.private_key,
        )

    def keypairs(self) -> list[Keypair]:
        return self._session.call(
            "compute", "list keypairs", lambda: [self._keypair(k) for k in self._conn.compute.keypairs()]
        )

    def create_keypair(self, name: str, public_key: str | None = None) -> Keypair:
        attrs = {"name": name} if public_key is None else {"name": name, "public_key": public_key}

        def find_existing() -> SdkKeypair | None:
            # A generated key's private half is only returned once; adopting would lose it,
            # so only an import (public key given) is adoptable.
            if public_key is None:
                return None
            found = self._conn.compute.find_keypair(name)
            return found if found is not None and found.public_key == public_key else None

        created = self._session.call(
            "compute",
            "create keypair",
            lambda: self._conn.compute.create_keypair(**attrs),
            idempotent=False,
            find_existing=find_existing,
        )
        return self._keypair(created)

    def delete_keypair(self, name: str) -> bool:
        try:
            self._session.call(
                "compute",
                "delete keypair",
                lambda: self._conn.compute.delete_keypair(name, ignore_missing=False),
            )
        except NotFound:
            return False
        return True

    # -- regions -------------------------------------------------------------------------------

    def current_project_id(self) -> str:
        """The project the connection's token is scoped to (authenticates if not yet)."""
        return str(self._session.call("identity", "token project", lambda: self._conn.current_project_id))

    def regions(self) -> list[Region]:
        """Regions from Keystone, each with the service types its catalog offers."""

        def load() -> list[Region]:
            auth = cast(BaseIdentityPlugin, self._conn.session.auth)
            access = auth.get_access(self._conn.session)
            offered: dict[str, set[str]] = {}
            for entry in access.service_catalog.catalog or []:
                for endpoint in entry.get("endpoints", []):
                    region = endpoint.get("region_id") or endpoint.get("region")
                    if region:
                        offered.setdefault(region, set()).add(entry.get("type", ""))
            identity = cast(IdentityProxy, self._conn.identity)
            described = {r.id: r.description or "" for r in identity.regions()}
            names = sorted(set(described) | set(offered))
            return [
                Region(id=n, services=sorted(offered.get(n, set())), description=described.get(n, ""))
                for n in names
            ]

        return self._session.call("identity", "list regions", load)


def _regex_escape(text: str) -> str:
    """Escape for Nova's name filter (a database regex): backslash the metacharacters."""
    return "".join(f"\\{c}" if c in ".^$*+?{}[]\\|()" else c for c in text)
