"""One inventory sync: subnet → ports of all the VMs → node configs → push what changed → inventory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

from stackyard.cloud.models import Subnet
from stackyard.cloud.ports import PortGateway
from stackyard.cloud.status import PortStatus
from stackyard.db.base import utcnow
from stackyard.db.engine import transaction
from stackyard.errors import ValidationError
from stackyard.inventory.models import (
    DEFAULT_ALLOWED_STATUSES,
    Exclusion,
    NodeConfig,
    build_node_configs,
)
from stackyard.inventory.push import NodeConfigPusher
from stackyard.inventory.repository import NodeConfigRepository, NodeConfigWrite, StoredNodeConfig

SUBNET_TTL = 300.0  # seconds a resolved subnet (and its MTU) is reused


@dataclass(frozen=True)
class SyncRequest:
    scope: str  # who owns the rows: "cr:<namespace>/<name>" for the operator, "sync:<...>" otherwise
    cloud: str  # the cloud's name, as recorded in the inventory
    project_id: str | None
    instance_ids: tuple[str, ...]
    subnet_id: str | None = None
    subnet_name: str | None = None
    metadata_key: str | None = None
    allowed_statuses: frozenset[PortStatus] = DEFAULT_ALLOWED_STATUSES
    # Which connection `ports_for` gives, when the name alone does not say (the operator's key of a
    # Secret's version and cloud); by default the cloud's name.
    connection: str | None = None

    @property
    def connection_key(self) -> str:
        return self.connection or self.cloud

    def __post_init__(self) -> None:
        if not self.instance_ids:
            raise ValidationError("instance_ids", "give at least one VM id")
        if not self.subnet_id and not self.subnet_name:
            raise ValidationError("subnet", "give a subnet id or a subnet name")


class NodeState(StrEnum):
    PUSHED = "pushed"  # changed, and the external API accepted it
    UNCHANGED = "unchanged"  # the external API already holds this content: nothing sent
    FAILED = "failed"  # changed, but the push failed: recorded in last_error, retried next sync
    RECORDED = "recorded"  # changed; kept in the inventory only (a sync without an endpoint)
    EXCLUDED = "excluded"


@dataclass(frozen=True)
class NodeOutcome:
    node_name: str
    instance_id: str
    state: NodeState
    interfaces: int
    message: str | None = None


@dataclass(frozen=True)
class SyncResult:
    subnet: Subnet
    nodes: tuple[NodeOutcome, ...]
    excluded: tuple[Exclusion, ...]
    pending_port_ids: tuple[str, ...]
    removed: int  # rows of the scope whose node is no longer in the set
    synced_at: datetime
    posts: int = 0
    port_ids: tuple[str, ...] = ()  # the ports the configs hold, and those not ready yet

    @property
    def has_changed(self) -> bool:
        return any(n.state is NodeState.PUSHED for n in self.nodes) or self.removed > 0

    @property
    def has_failed(self) -> bool:
        return any(n.state is NodeState.FAILED for n in self.nodes)


@dataclass
class _Cached:
    subnet: Subnet
    until: float


@dataclass
class InventoryService:
    sessions: sessionmaker[Session]
    ports_for: Callable[[str], PortGateway]  # SyncRequest.connection_key -> gateway
    monotonic: Callable[[], float] = time.monotonic
    _subnets: dict[tuple[str, str | None, str], _Cached] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def resolve_subnet(self, request: SyncRequest) -> Subnet:
        key = (request.connection_key, request.project_id, request.subnet_id or f"name:{request.subnet_name}")
        with self._lock:
            cached = self._subnets.get(key)
            if cached is not None and cached.until > self.monotonic():
                return cached.subnet
        gateway = self.ports_for(request.connection_key)
        if request.subnet_id:
            subnet = gateway.get_subnet(request.subnet_id)
        else:
            assert request.subnet_name is not None
            subnet = gateway.find_subnet(request.subnet_name, project_id=request.project_id)
        with self._lock:
            self._subnets[key] = _Cached(subnet, self.monotonic() + SUBNET_TTL)
        return subnet

    def compute(self, request: SyncRequest) -> tuple[Subnet, Sequence[NodeConfig], Sequence[Exclusion]]:
        """The node configs the cloud gives now, without pushing or recording anything."""
        subnet = self.resolve_subnet(request)
        gateway = self.ports_for(request.connection_key)
        ports = gateway.ports_of(request.instance_ids, network_id=subnet.network_id)
        servers = gateway.servers_of(request.instance_ids, project_id=request.project_id)
        built = build_node_configs(
            request.instance_ids,
            ports,
            servers,
            subnet,
            metadata_key=request.metadata_key,
            allowed_statuses=request.allowed_statuses,
        )
        return subnet, built.configs, built.excluded

    def sync(self, request: SyncRequest, pusher: NodeConfigPusher | None) -> SyncResult:
        """Compute, push the configs whose content changed (or whose last push failed), record them.

        Without a pusher the inventory is updated and nothing is sent. Rows of the scope for nodes no
        longer configured are removed.
        """
        subnet, configs, excluded = self.compute(request)
        before = pusher.posts if pusher is not None else 0
        with self.sessions() as session:
            known = NodeConfigRepository(session).of_scope(request.scope)
        writes: list[NodeConfigWrite] = []
        outcomes: list[NodeOutcome] = []
        for config in configs:
            stored = known.get((config.provider_id, config.node_name))
            writes.append(self._push_one(config, stored, pusher, outcomes))
        now = utcnow()
        kept = {(w.provider_id, w.node_name) for w in writes}
        with transaction(self.sessions) as session:
            repository = NodeConfigRepository(session)
            for write in writes:
                repository.record(
                    write,
                    scope=request.scope,
                    cloud=request.cloud,
                    project_id=request.project_id,
                    subnet_id=subnet.id,
                    now=now,
                )
            removed = repository.remove([s.id for key, s in known.items() if key not in kept])
        outcomes.extend(
            NodeOutcome(e.node_name, e.instance_id, NodeState.EXCLUDED, 0, e.message) for e in excluded
        )
        return SyncResult(
            subnet=subnet,
            nodes=tuple(sorted(outcomes, key=lambda o: (o.node_name, o.instance_id))),
            excluded=tuple(excluded),
            pending_port_ids=tuple(p for e in excluded for p in e.port_ids),
            removed=removed,
            synced_at=now,
            posts=(pusher.posts - before) if pusher is not None else 0,
            port_ids=tuple(
                sorted(
                    {i.port_id for c in configs for i in c.interfaces}
                    | {p for e in excluded for p in e.port_ids}
                )
            ),
        )

    @staticmethod
    def _push_one(
        config: NodeConfig,
        stored: StoredNodeConfig | None,
        pusher: NodeConfigPusher | None,
        outcomes: list[NodeOutcome],
    ) -> NodeConfigWrite:
        content_hash = config.content_hash
        count = len(config.interfaces)
        error: str | None = None
        if stored is not None and stored.pushed_hash == content_hash:
            state = NodeState.UNCHANGED
        elif pusher is None:
            state = NodeState.RECORDED
        else:
            error = pusher.push(config.payload())
            state = NodeState.PUSHED if error is None else NodeState.FAILED
        outcomes.append(NodeOutcome(config.node_name, config.instance_id, state, count, error))
        return NodeConfigWrite(
            config.provider_id,
            config.node_name,
            config.instance_id,
            config.payload(),
            content_hash,
            pushed=state is NodeState.PUSHED,
            error=error,
        )

    # -- reads -----------------------------------------------------------------------------------

    def node_configs(
        self,
        *,
        provider_id: str | None = None,
        node_name: str | None = None,
        instance_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredNodeConfig]:
        with self.sessions() as session:
            return NodeConfigRepository(session).list(
                provider_id=provider_id,
                node_name=node_name,
                instance_id=instance_id,
                limit=limit,
                offset=offset,
            )

    def node_config(self, node_name: str, provider_id: str | None = None) -> StoredNodeConfig:
        with self.sessions() as session:
            return NodeConfigRepository(session).get(node_name, provider_id)

    def forget_scope(self, scope: str) -> int:
        with transaction(self.sessions) as session:
            return NodeConfigRepository(session).remove_scope(scope)
