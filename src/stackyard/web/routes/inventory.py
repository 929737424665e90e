"""The network inventory: node configs grouped by cloud, with their interfaces, last sync and errors."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from stackyard.api.inventory_schemas import NodeConfigRead
from stackyard.web.deps import AdminViewer
from stackyard.web.render import UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)
PAGE = 200


def interfaces_of(node: NodeConfigRead) -> list[dict[str, object]]:
    """The interfaces of a node's pushed payload (a list of objects; anything else shows as none)."""
    found = node.payload.get("interfaces")
    return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []


@router.get("/ui/inventory", response_class=HTMLResponse)
def inventory_page(
    request: Request,
    viewer: AdminViewer,
    node: Annotated[str, Query(max_length=255)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    found = viewer.state.inventory_service.node_configs(node_name=node or None, limit=PAGE + 1, offset=offset)
    nodes = [NodeConfigRead.of(n) for n in found[:PAGE]]
    by_cloud: dict[str, list[NodeConfigRead]] = defaultdict(list)
    for item in nodes:
        by_cloud[item.cloud].append(item)
    return render(
        request,
        "inventory.html",
        {
            "nav": "inventory",
            "clouds": sorted(by_cloud.items()),
            "interfaces_of": interfaces_of,
            "node": node,
            "failed": sum(1 for n in nodes if n.last_error),
            "next_offset": offset + PAGE if len(found) > PAGE else None,
            "offset": offset,
        },
    )
