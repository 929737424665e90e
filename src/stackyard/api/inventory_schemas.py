"""Request and response bodies of the inventory routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from stackyard.inventory.repository import StoredNodeConfig
from stackyard.inventory.service import NodeState, SyncResult

_UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_NAME = r"^[^\x00]+$"


class SyncCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(
        default=None, max_length=64, pattern=_NAME, description="Default: inventory.cloud."
    )
    project_id: str | None = Field(default=None, max_length=64, pattern=r"^[0-9a-fA-F-]+$")
    vm_ids: list[Annotated[str, Field(pattern=_UUID)]] = Field(
        min_length=1, max_length=5000, description="Nova server ids (UUIDs)."
    )
    subnet_id: str | None = Field(default=None, pattern=_UUID)
    subnet_name: str | None = Field(default=None, min_length=1, max_length=255, pattern=_NAME)
    metadata_key: str | None = Field(default=None, min_length=1, max_length=255, pattern=_NAME)
    allow_down: bool | None = Field(default=None, description="DOWN ports count as ready.")
    endpoint: str | None = Field(
        default=None,
        max_length=64,
        pattern=_NAME,
        description="A name from inventory.endpoints; none: record only.",
    )
    scope: str | None = Field(default=None, max_length=200, pattern=_NAME, description="Owner of the rows.")


class NodeOutcomeRead(BaseModel):
    node_name: str
    instance_id: str
    state: NodeState
    interfaces: int
    message: str | None


class SyncRead(BaseModel):
    subnet_id: str
    cidr: str
    mtu: int | None
    nodes: list[NodeOutcomeRead]
    pending_port_ids: list[str]
    removed: int
    posts: int
    synced_at: datetime

    @classmethod
    def of(cls, result: SyncResult) -> SyncRead:
        return cls(
            subnet_id=result.subnet.id,
            cidr=result.subnet.cidr,
            mtu=result.subnet.mtu,
            nodes=[NodeOutcomeRead.model_validate(n, from_attributes=True) for n in result.nodes],
            pending_port_ids=list(result.pending_port_ids),
            removed=result.removed,
            posts=result.posts,
            synced_at=result.synced_at,
        )


class NodeConfigRead(BaseModel):
    provider_id: str
    node_name: str
    instance_id: str
    cloud: str
    project_id: str | None
    subnet_id: str
    scope: str
    payload: dict[str, object]
    content_hash: str
    is_pushed: bool
    last_synced_at: datetime
    last_pushed_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, stored: StoredNodeConfig) -> NodeConfigRead:
        return cls.model_validate(stored, from_attributes=True)


class NodeConfigList(BaseModel):
    items: list[NodeConfigRead]
    next: str | None = None
