"""`stackyard inventory`: sync node interface configs from Neutron ports now; list and show them."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from stackyard.cli.common import DebugOption, FormatOption, boundary, context
from stackyard.cli.factory import inventory_commands
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.inventory.models import allowed_statuses
from stackyard.inventory.push import pusher_for
from stackyard.inventory.repository import StoredNodeConfig
from stackyard.inventory.service import SyncRequest

inventory_app = typer.Typer(help="Network inventory: per-node interface configs from Neutron ports.")


def _row(stored: StoredNodeConfig) -> Row:
    interfaces = stored.payload.get("interfaces")
    return {
        "node": stored.node_name,
        "provider_id": stored.provider_id,
        "instance": stored.instance_id,
        "interfaces": len(interfaces) if isinstance(interfaces, list) else 0,
        "pushed": stored.is_pushed,
        "synced": stored.last_synced_at.isoformat(),
        "error": stored.last_error,
    }


@inventory_app.command("sync")
def inventory_sync(
    vm: Annotated[list[str], typer.Option("--vm", help="A VM id (repeatable).")],
    subnet: Annotated[str, typer.Option("--subnet", help="Subnet id, or a name (unique in the project).")],
    cloud: Annotated[str | None, typer.Option("--cloud", help="Provider (default inventory.cloud).")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project id of the VMs.")] = None,
    metadata_key: Annotated[
        str | None, typer.Option("--metadata-key", help="Server metadata key holding the node name.")
    ] = None,
    allow_down: Annotated[bool, typer.Option("--allow-down", help="DOWN ports count as ready.")] = False,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Push to this inventory.endpoints entry.")
    ] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Sync now: configs that changed are pushed (with --endpoint) and every node is recorded."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        cmds = inventory_commands()
        settings = cmds.settings.inventory
        provider = cloud or cmds.default_provider
        is_id = len(subnet.replace("-", "")) == 32 and all(c in "0123456789abcdefABCDEF-" for c in subnet)
        request = SyncRequest(
            scope=f"cli:{provider}/{project or '-'}/{subnet}",
            cloud=provider,
            project_id=project,
            instance_ids=tuple(vm),
            subnet_id=subnet if is_id else None,
            subnet_name=None if is_id else subnet,
            metadata_key=metadata_key or settings.metadata_key,
            allowed_statuses=allowed_statuses(allow_down=allow_down or settings.allow_down),
        )
        pusher = pusher_for(endpoint, settings.endpoints, os.environ)
        try:
            result = cmds.service.sync(request, pusher)
        finally:
            if pusher is not None:
                pusher.close()
        rows = (
            {
                "node": n.node_name,
                "instance": n.instance_id,
                "state": n.state.value,
                "interfaces": n.interfaces,
                "message": n.message,
            }
            for n in result.nodes
        )
        emit_rows(rows, ["node", "instance", "state", "interfaces", "message"], ctx.fmt, sys.stdout, ctx.out)
        ctx.err.print(
            f"subnet {result.subnet.id} ({result.subnet.cidr}, MTU {result.subnet.mtu}): "
            f"{result.posts} POST(s), {result.removed} removed, "
            f"{len(result.pending_port_ids)} port(s) not ready"
        )
    if result.has_failed:
        raise typer.Exit(1)


@inventory_app.command("list")
def inventory_list(
    provider_id: Annotated[str | None, typer.Option("--provider-id", help="openstack:///<vm id>")] = None,
    node: Annotated[str | None, typer.Option("--node", help="Node name.")] = None,
    instance: Annotated[str | None, typer.Option("--instance", help="VM id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 500,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Node configs in the inventory, by node name."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        found = inventory_commands().service.node_configs(
            provider_id=provider_id, node_name=node, instance_id=instance, limit=limit
        )
        columns = ["node", "provider_id", "instance", "interfaces", "pushed", "synced", "error"]
        emit_rows((_row(s) for s in found), columns, ctx.fmt, sys.stdout, ctx.out)


@inventory_app.command("show")
def inventory_show(
    node: Annotated[str, typer.Argument(help="Node name.")],
    provider_id: Annotated[str | None, typer.Option("--provider-id", help="openstack:///<vm id>")] = None,
    fmt: FormatOption = OutputFormat.JSON,
    debug: DebugOption = False,
) -> None:
    """One node's config: the payload last computed and whether the external API holds it."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        stored = inventory_commands().service.node_config(node, provider_id)
        if ctx.fmt is OutputFormat.JSON:
            # The payload is nested (interfaces are objects): written as the document itself.
            document = {**_row(stored), "content_hash": stored.content_hash, "payload": stored.payload}
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        else:
            emit_one({**_row(stored), "content_hash": stored.content_hash}, ctx.fmt, sys.stdout, ctx.out)
