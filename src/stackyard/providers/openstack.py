"""The built-in provider type: one OpenStack cloud (a clouds.yaml cloud or explicit settings)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from stackyard.cloud.clock import Clock
from stackyard.cloud.compute import ComputeGateway, ServerFilter
from stackyard.cloud.connect import (
    CloudSources,
    CloudTarget,
    ConnectionPool,
    open_token_connection,
    verify_auth,
)
from stackyard.cloud.models import Flavor, Image, Instance, Region
from stackyard.cloud.ratelimit import RateLimiter
from stackyard.cloud.retry import RetryEvent, RetryPolicy
from stackyard.cloud.session import CallObserver, CloudSession, open_session
from stackyard.cloud.usage import UsageGateway
from stackyard.compute.service import InstanceCreate, InstanceService
from stackyard.compute.userdata import user_data_from_text
from stackyard.errors import (
    BadRequest,
    CloudError,
    ConfigError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from stackyard.pricing.models import Estimate, InstanceSize, PriceBook, UsageRecord, estimate_instance
from stackyard.providers.base import (
    InstancePage,
    InstancePlan,
    InstanceQuery,
    InstanceSort,
    ProviderStatus,
    Scope,
)

TYPE = "openstack"
_EXTERNAL_TTL = 60.0  # seconds the external-network names of a region are reused between requests
_TOKEN_CONNECTIONS = 256  # callers' token connections kept (LRU)
_TOKEN_CONNECTION_TTL = 600.0
# What the compute service calls a field, and what the API calls it.
_API_FIELDS = {"flavor": "type", "image": "image_id", "network": "network_ids"}
_BMP_LAST = 0xFFFF  # the last code point of the Basic Multilingual Plane
# NOTE: Nova sorts by its database columns; it appends created_at and id to the keys it is given, so a
# marker continues a sorted listing without gaps or repeats.
_NOVA_SORT_KEYS = {
    InstanceSort.CREATED: "created_at",
    InstanceSort.NAME: "display_name",
    InstanceSort.STATUS: "vm_state",
}


@dataclass(frozen=True)
class CloudRuntime:
    """What every OpenStack provider of one process shares: retry policy, clock, limits, observers."""

    policy: RetryPolicy
    clock: Clock
    limiter: RateLimiter | None = None
    on_call: CallObserver | None = None
    on_event: Callable[[RetryEvent], None] | None = None


class _Expiring:
    """A small thread-safe LRU whose entries expire; per process (a cache, nothing replicas share)."""

    def __init__(self, clock: Clock, size: int, ttl: float) -> None:
        self._clock = clock
        self._size = size
        self._ttl = ttl
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str | None], tuple[float, object]] = OrderedDict()

    def get(self, key: tuple[str, str | None]) -> object | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] <= self._clock.monotonic():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[str, str | None], value: object) -> list[object]:
        """Store; returns the values pushed out, for the caller to close."""
        with self._lock:
            self._items[key] = (self._clock.monotonic() + self._ttl, value)
            self._items.move_to_end(key)
            evicted: list[object] = []
            while len(self._items) > self._size:
                evicted.append(self._items.popitem(last=False)[1][1])
            return evicted


class OpenStackProvider:
    """Instances, flavors, images and regions of one OpenStack cloud, in any of its regions.

    Calls for a caller who brought a Keystone token are made with that token (the cloud's policy
    applies); others (API keys) use the provider's own credentials, with the scope enforced here.
    """

    def __init__(self, name: str, *, cloud: str | None, sources: CloudSources, runtime: CloudRuntime) -> None:
        self._name = name
        self._cloud = cloud
        self._sources = sources
        self._runtime = runtime
        self._pool = ConnectionPool(sources.resolve_target)
        self._token_connections = _Expiring(runtime.clock, _TOKEN_CONNECTIONS, _TOKEN_CONNECTION_TTL)
        self._external = _Expiring(runtime.clock, 64, _EXTERNAL_TTL)
        self._default_region: tuple[str | None] | None = None
        self._regions_seen: set[str] = set()  # region names the configuration accepted

    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        return TYPE

    @property
    def cloud(self) -> str | None:
        return self._cloud

    # -- plumbing ------------------------------------------------------------------------------

    def _check_region(self, region: str | None) -> None:
        """ValidationError for a region the cloud's configuration does not have.

        Checked before a connection is looked up: the connection pool keeps an entry per target it was
        asked for, so a caller's arbitrary region names must not reach it. Only good names are kept.
        """
        if region is None or region in self._regions_seen:
            return
        try:
            self._sources.resolve_target(CloudTarget(cloud=self._cloud, region=region))
        except ConfigError as exc:
            # The cloud itself resolves (else that ConfigError propagates): the region is at fault.
            self._sources.resolve_target(CloudTarget(cloud=self._cloud))
            raise ValidationError(
                "region",
                f"provider {self._name!r} has no region {region!r};"
                f" GET /api/v1/providers/{self._name}/regions lists them",
            ) from exc
        self._regions_seen.add(region)

    def _session(self, scope: Scope | None, region: str | None) -> CloudSession:
        self._check_region(region)
        target = CloudTarget(cloud=self._cloud, region=region)
        if scope is not None and scope.token:
            key = (hashlib.sha256(scope.token.encode()).hexdigest(), f"{region}|{scope.project_id}")
            conn = self._token_connections.get(key)
            if conn is None:
                # An admin's scope names no project (it sees them all), but the token must still be
                # exchanged for one scoped to a project: an unscoped token has no service catalog.
                project_id = scope.project_id or scope.token_project_id
                conn = open_token_connection(self._sources.resolve_target(target), scope.token, project_id)
                for old in self._token_connections.put(key, conn):
                    old.close()  # type: ignore[attr-defined]
        else:
            conn = self._pool.get(target)
        runtime = self._runtime
        return open_session(
            conn,  # type: ignore[arg-type]
            name=self._name,
            policy=runtime.policy,
            clock=runtime.clock,
            limiter=runtime.limiter,
            on_event=runtime.on_event,
            on_call=runtime.on_call,
        )

    def service_session(
        self, region: str | None = None, *, policy: RetryPolicy | None = None
    ) -> CloudSession:
        """A session with the provider's own credentials (for stackyard's own work, such as managing
        student projects); `policy` replaces the retry policy, e.g. a short one for a caller waiting."""
        self._check_region(region)
        runtime = self._runtime
        return open_session(
            self._pool.get(CloudTarget(cloud=self._cloud, region=region)),
            name=self._name,
            policy=policy or runtime.policy,
            clock=runtime.clock,
            limiter=runtime.limiter,
            on_event=runtime.on_event,
            on_call=runtime.on_call,
        )

    def _gateway(self, scope: Scope | None, region: str | None) -> ComputeGateway:
        return ComputeGateway(self._session(scope, region), self._runtime.clock)

    def _external_networks(self, gateway: ComputeGateway, region: str | None) -> frozenset[str]:
        key = ("external", region)
        cached = self._external.get(key)
        if isinstance(cached, frozenset):
            return cached
        names = gateway.external_network_names()
        self._external.put(key, names)
        return names

    def default_region(self) -> str | None:
        if self._default_region is None:
            # Resolving reads clouds.yaml; the answer does not change while the process runs.
            resolved = self._sources.resolve_target(CloudTarget(cloud=self._cloud))
            self._default_region = (resolved.region_name,)
        return self._default_region[0]

    def identity_endpoint(self) -> tuple[str, bool | str]:
        """Keystone's URL and TLS verification setting, for authenticating API callers."""
        resolved = self._sources.resolve_target(CloudTarget(cloud=self._cloud))
        if not resolved.auth_url:
            raise ConfigError(f"provider {self._name!r} has no auth_url")
        return resolved.auth_url, resolved.verify

    # -- the Provider protocol -----------------------------------------------------------------

    def status(self) -> ProviderStatus:
        try:
            verify_auth(self._pool.get(CloudTarget(cloud=self._cloud)))
        except Unauthorized as exc:
            return ProviderStatus(is_reachable=True, is_auth_ok=False, message=str(exc))
        except (Unavailable, Timeout) as exc:
            return ProviderStatus(is_reachable=False, is_auth_ok=False, message=str(exc))
        except CloudError as exc:
            return ProviderStatus(is_reachable=True, is_auth_ok=False, message=str(exc))
        return ProviderStatus(is_reachable=True, is_auth_ok=True)

    def regions(self) -> list[Region]:
        return self._gateway(None, None).regions()

    def flavors(self, region: str | None = None) -> list[Flavor]:
        return self._gateway(None, region).flavors()

    def images(self, region: str | None = None) -> list[Image]:
        return self._gateway(None, region).images()

    def list_instances(self, scope: Scope, query: InstanceQuery) -> InstancePage:
        if query.name is not None and any(ord(c) > _BMP_LAST for c in query.name):
            # NOTE: Nova answers 500 ("Unexpected API Error") to a name filter holding a character
            # beyond the Basic Multilingual Plane: MySQL's 3-byte utf8 cannot compare it. Refuse it
            # here as the caller's error, not the cloud's.
            raise ValidationError("name", "characters beyond U+FFFF (such as emoji) cannot be searched for")
        gateway = self._gateway(scope, query.region)
        # A caller's own token is already scoped to its project; the provider's credentials are not,
        # so they list every project, filtered to the caller's when it has one.
        filters = ServerFilter(
            name=query.name,
            status=query.status,
            tags=tuple(query.tags),
            project_id=None if scope.token else scope.project_id,
            all_projects=scope.project_id is None or not scope.token,
            sort_key=_NOVA_SORT_KEYS[query.sort],
            sort_dir="desc" if query.descending else "asc",
        )
        try:
            items, next_marker = gateway.instances_page(
                filters,
                limit=query.limit,
                marker=query.marker,
                external_networks=self._external_networks(gateway, query.region),
            )
        except BadRequest as exc:
            if query.marker and "marker" in str(exc).lower():
                raise ValidationError("marker", f"no instance {query.marker!r} to page from") from exc
            raise
        return InstancePage(items, next_marker)

    def get_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> Instance:
        gateway = self._gateway(scope, region)
        instance = gateway.get_instance(
            instance_id, external_networks=self._external_networks(gateway, region)
        )
        if scope.project_id is not None and instance.project_id != scope.project_id:
            # Another project's instance does not exist as far as this caller can tell.
            raise NotFound(f"compute: no instance {instance_id!r}", service="compute")
        return instance

    def create_instance(self, scope: Scope, plan: InstancePlan) -> Instance:
        gateway = self._gateway(scope, plan.region)
        if scope.project_id is not None and not scope.token:
            own = gateway.current_project_id()
            if own != scope.project_id:
                raise PermissionDenied(
                    "a member API key can create instances only in the provider's own project; "
                    "authenticate with Keystone to create in another project"
                )
        service = InstanceService(gateway)
        try:
            return service.create_instance(
                InstanceCreate(
                    name=plan.name,
                    flavor=plan.flavor,
                    image=plan.image_id,
                    networks=tuple(plan.network_ids),
                    key_name=plan.key_name,
                    user_data_b64=user_data_from_text(plan.user_data) if plan.user_data else None,
                    metadata=dict(plan.metadata),
                    tags=tuple(plan.tags),
                )
            )
        except ValidationError as exc:
            field = _API_FIELDS.get(exc.field, exc.field)
            if field == exc.field:
                raise
            raise ValidationError(field, exc.message) from exc

    def delete_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        instance = self.get_instance(scope, instance_id, region)
        self._gateway(scope, region).delete_instance(instance.id)

    def start_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        instance = self.get_instance(scope, instance_id, region)
        self._gateway(scope, region).start_instance(instance.id)

    def stop_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        instance = self.get_instance(scope, instance_id, region)
        self._gateway(scope, region).stop_instance(instance.id)

    def reboot_instance(self, scope: Scope, instance_id: str, region: str | None = None) -> None:
        instance = self.get_instance(scope, instance_id, region)
        self._gateway(scope, region).reboot_instance(instance.id)

    def estimate_cost(self, plan: InstancePlan, book: PriceBook, count: int = 1) -> Estimate:
        flavor = InstanceService(self._gateway(None, plan.region)).resolve_flavor(plan.flavor)
        size = InstanceSize(
            flavor=flavor.name,
            vcpus=flavor.vcpus,
            ram_mib=flavor.ram_mib,
            disk_gib=flavor.disk_gib,
            volume_gib=plan.volume_gib,
            floating_ips=plan.floating_ips,
        )
        region = plan.region or self.default_region()
        try:
            return estimate_instance(book, region, size, count)
        except LookupError as exc:
            raise ValidationError("region", str(exc)) from exc

    def project_usage(
        self, scope: Scope, project_id: str, start: datetime, end: datetime, region: str | None = None
    ) -> Sequence[UsageRecord]:
        if scope.project_id is not None and project_id != scope.project_id:
            raise NotFound(f"identity: no project {project_id!r}", service="identity")
        return UsageGateway(self._session(scope, region)).project_usage(project_id, start, end)

    def close(self) -> None:
        self._pool.close()
