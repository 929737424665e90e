"""Network inventory: node configs as synced, and a sync run now. Admins only."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Path, Query

from stackyard.api.deps import AdminPrincipal, State
from stackyard.api.inventory_schemas import NodeConfigList, NodeConfigRead, SyncCreate, SyncRead
from stackyard.inventory.models import allowed_statuses
from stackyard.inventory.push import pusher_for
from stackyard.inventory.service import SyncRequest
from stackyard.providers.registry import inventory_provider

router = APIRouter(tags=["inventory"])
NodeName = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^\x00]+$")]
ProviderIdQuery = Annotated[
    str | None,
    Query(alias="providerId", max_length=255, pattern=r"^[^\x00]+$", description="openstack:///<vm id>"),
]


@router.get("/api/v1/inventory/node-configs", response_model=NodeConfigList)
def list_node_configs(
    state: State,
    _admin: AdminPrincipal,
    provider_id: ProviderIdQuery = None,
    node_name: Annotated[str | None, Query(alias="nodeName", max_length=255, pattern=r"^[^\x00]+$")] = None,
    instance_id: Annotated[
        str | None, Query(alias="instanceId", max_length=64, pattern=r"^[^\x00]+$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> NodeConfigList:
    """Node configs by node name; `next` is the URL of the following page."""
    found = state.inventory_service.node_configs(
        provider_id=provider_id, node_name=node_name, instance_id=instance_id, limit=limit + 1, offset=offset
    )
    more = len(found) > limit
    following = None
    if more:
        following = f"/api/v1/inventory/node-configs?limit={limit}&offset={offset + limit}"
    return NodeConfigList(items=[NodeConfigRead.of(s) for s in found[:limit]], next=following)


@router.get("/api/v1/inventory/node-configs/{node_name}", response_model=NodeConfigRead)
def get_node_config(
    node_name: NodeName, state: State, _admin: AdminPrincipal, provider_id: ProviderIdQuery = None
) -> NodeConfigRead:
    return NodeConfigRead.of(state.inventory_service.node_config(node_name, provider_id))


@router.post("/api/v1/inventory/sync", response_model=SyncRead)
def run_sync(body: SyncCreate, state: State, _admin: AdminPrincipal) -> SyncRead:
    """Sync now and answer with the result. Configs are pushed only to an endpoint named in the
    settings (`inventory.endpoints`), never to a URL from the request."""
    settings = state.settings.inventory
    provider = body.provider or inventory_provider(state.settings, state.providers).name
    allow_down = settings.allow_down if body.allow_down is None else body.allow_down
    subnet = body.subnet_id or f"name:{body.subnet_name}"
    request = SyncRequest(
        scope=body.scope or f"api:{provider}/{body.project_id or '-'}/{subnet}",
        cloud=provider,
        project_id=body.project_id,
        instance_ids=tuple(body.vm_ids),
        subnet_id=body.subnet_id,
        subnet_name=body.subnet_name,
        metadata_key=body.metadata_key or settings.metadata_key,
        allowed_statuses=allowed_statuses(allow_down=allow_down),
    )
    pusher = pusher_for(body.endpoint, settings.endpoints, os.environ)
    try:
        return SyncRead.of(state.inventory_service.sync(request, pusher))
    finally:
        if pusher is not None:
            pusher.close()
