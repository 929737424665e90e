"""All SQL on the node_configs table: what each node was last computed as and what was pushed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stackyard.errors import NotFound, ValidationError
from stackyard.inventory.orm import NodeConfigRecord


@dataclass(frozen=True)
class StoredNodeConfig:
    """A node config as the inventory holds it."""

    id: str
    scope: str
    provider_id: str
    node_name: str
    instance_id: str
    cloud: str
    project_id: str | None
    subnet_id: str
    payload: dict[str, object]
    content_hash: str
    pushed_hash: str | None
    last_synced_at: datetime
    last_pushed_at: datetime | None
    last_error: str | None

    @property
    def is_pushed(self) -> bool:
        """True when the external API holds exactly what was last computed."""
        return self.pushed_hash == self.content_hash


def _stored(row: NodeConfigRecord) -> StoredNodeConfig:
    return StoredNodeConfig(
        id=row.id,
        scope=row.scope,
        provider_id=row.provider_id,
        node_name=row.node_name,
        instance_id=row.instance_id,
        cloud=row.cloud,
        project_id=row.project_id,
        subnet_id=row.subnet_id,
        payload=dict(row.payload),
        content_hash=row.content_hash,
        pushed_hash=row.pushed_hash,
        last_synced_at=row.last_synced_at,
        last_pushed_at=row.last_pushed_at,
        last_error=row.last_error,
    )


@dataclass(frozen=True)
class NodeConfigWrite:
    """One node's outcome of a sync, as the repository records it."""

    provider_id: str
    node_name: str
    instance_id: str
    payload: dict[str, object]
    content_hash: str
    pushed: bool  # the external API accepted this content now
    error: str | None


class NodeConfigRepository:
    """Works inside the caller's transaction; flushes, never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def of_scope(self, scope: str) -> dict[tuple[str, str], StoredNodeConfig]:
        rows = self._session.scalars(select(NodeConfigRecord).where(NodeConfigRecord.scope == scope))
        return {(row.provider_id, row.node_name): _stored(row) for row in rows}

    def record(
        self,
        write: NodeConfigWrite,
        *,
        scope: str,
        cloud: str,
        project_id: str | None,
        subnet_id: str,
        now: datetime,
    ) -> StoredNodeConfig:
        """Upsert by (provider id, node name); a failed push keeps what was pushed before."""
        row = self._session.scalars(
            select(NodeConfigRecord).where(
                NodeConfigRecord.provider_id == write.provider_id,
                NodeConfigRecord.node_name == write.node_name,
            )
        ).one_or_none()
        if row is None:
            row = NodeConfigRecord(
                id=str(uuid.uuid4()), provider_id=write.provider_id, node_name=write.node_name
            )
            self._session.add(row)
        row.scope, row.instance_id, row.cloud = scope, write.instance_id, cloud
        row.project_id, row.subnet_id = project_id, subnet_id
        row.payload, row.content_hash = write.payload, write.content_hash
        row.last_synced_at, row.last_error = now, write.error
        if write.pushed:
            row.pushed_hash, row.last_pushed_at = write.content_hash, now
        self._session.flush()
        return _stored(row)

    def remove(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        result = self._session.execute(delete(NodeConfigRecord).where(NodeConfigRecord.id.in_(ids)))
        return int(getattr(result, "rowcount", 0) or 0)

    def remove_scope(self, scope: str) -> int:
        """Every row a scope owns (a deleted custom resource's finalizer)."""
        result = self._session.execute(delete(NodeConfigRecord).where(NodeConfigRecord.scope == scope))
        return int(getattr(result, "rowcount", 0) or 0)

    def list(
        self,
        *,
        provider_id: str | None = None,
        node_name: str | None = None,
        instance_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredNodeConfig]:
        query = select(NodeConfigRecord)
        if provider_id is not None:
            query = query.where(NodeConfigRecord.provider_id == provider_id)
        if node_name is not None:
            query = query.where(NodeConfigRecord.node_name == node_name)
        if instance_id is not None:
            query = query.where(NodeConfigRecord.instance_id == instance_id)
        query = query.order_by(NodeConfigRecord.node_name, NodeConfigRecord.provider_id)
        return [_stored(row) for row in self._session.scalars(query.limit(limit).offset(offset))]

    def get(self, node_name: str, provider_id: str | None = None) -> StoredNodeConfig:
        """The node's config; with several of that name (other clouds), `provider_id` picks one."""
        found = self.list(node_name=node_name, provider_id=provider_id, limit=2)
        if not found:
            raise NotFound(f"no node config for node {node_name!r}")
        if len(found) > 1:
            raise ValidationError(
                "providerId", f"several node configs for node {node_name!r}: give providerId"
            )
        return found[0]
