"""`stackyard inventory`: sync node interface configs from Neutron ports, once or on; list, show."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import typer
from rich.console import Console

from stackyard.cli.common import DebugOption, FormatOption, boundary, context
from stackyard.cli.factory import InventoryCommands, inventory_commands
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.inventory.events import queue_name
from stackyard.inventory.loop import SyncLoop
from stackyard.inventory.models import PollIntervals, allowed_statuses
from stackyard.inventory.notifications import NOTIFICATIONS_URL_ENV, NotificationWatcher, settings_from
from stackyard.inventory.push import pusher_for
from stackyard.inventory.repository import StoredNodeConfig
from stackyard.inventory.service import SyncRequest
from stackyard.inventory.watch import ScopeWatch, WatchedOutcome

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


def _request(
    cmds: InventoryCommands,
    vm: list[str],
    subnet: str,
    cloud: str | None,
    project: str | None,
    metadata_key: str | None,
    allow_down: bool,
) -> SyncRequest:
    settings = cmds.settings.inventory
    provider = cloud or cmds.default_provider
    is_id = len(subnet.replace("-", "")) == 32 and all(c in "0123456789abcdefABCDEF-" for c in subnet)
    return SyncRequest(
        scope=f"cli:{provider}/{project or '-'}/{subnet}",
        cloud=provider,
        project_id=project,
        instance_ids=tuple(vm),
        subnet_id=subnet if is_id else None,
        subnet_name=None if is_id else subnet,
        metadata_key=metadata_key or settings.metadata_key,
        allowed_statuses=allowed_statuses(allow_down=allow_down or settings.allow_down),
    )


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
        request = _request(cmds, vm, subnet, cloud, project, metadata_key, allow_down)
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


@inventory_app.command("watch")
def inventory_watch(
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
    notifications_url: Annotated[
        str | None,
        typer.Option(
            "--notifications-url",
            help=f"The cloud's RabbitMQ, amqp://user:pw@host:5672/vhost (better: {NOTIFICATIONS_URL_ENV}).",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", help="Queue name (default stackyard-inventory-<scope>).")
    ] = None,
    message_ttl: Annotated[
        float | None, typer.Option("--message-ttl", min=1, help="Seconds an event may wait (default 60).")
    ] = None,
    queue_expires: Annotated[
        float | None, typer.Option("--queue-expires", min=1, help="Seconds an unused queue lives (600).")
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="Routing key to bind (repeatable).")
    ] = None,
    exchange: Annotated[
        list[str] | None, typer.Option("--exchange", help="Exchange to bind (repeatable).")
    ] = None,
    no_events: Annotated[bool, typer.Option("--no-events", help="Poll only, even with a URL.")] = False,
    fast: Annotated[
        float, typer.Option("--fast", min=1, help="Seconds between syncs after a change.")
    ] = 20.0,
    slow: Annotated[float, typer.Option("--slow", min=1, help="Seconds between syncs when stable.")] = 120.0,
    debug: DebugOption = False,
) -> None:
    """Keep syncing: poll (fast after a change, slow when stable) and, with a notifications URL, sync
    at once when Neutron or Nova report a change to a watched VM's ports. Ctrl-C stops."""
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
        )
        for noisy in ("amqp", "kombu", "httpx"):
            logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
        cmds = inventory_commands()
        request = _request(cmds, vm, subnet, cloud, project, metadata_key, allow_down)
        notify_settings = None
        if not no_events:
            notify_settings = settings_from(
                cmds.settings.inventory.notifications,
                os.environ,
                url=notifications_url,
                queue=queue,
                message_ttl=message_ttl,
                queue_expires=queue_expires,
                topics=tuple(topic) if topic else None,
                exchanges=tuple(exchange) if exchange else None,
            )
            if (
                notify_settings is not None
                and queue is None
                and "queue" not in cmds.settings.inventory.notifications
            ):
                notify_settings = replace(notify_settings, queue=queue_name(request.scope))
        pusher = pusher_for(endpoint, cmds.settings.inventory.endpoints, os.environ)
        watcher = NotificationWatcher(notify_settings) if notify_settings is not None else None
        intervals = PollIntervals(fast=fast, slow=slow)
        loop = SyncLoop(lambda: cmds.service.sync(request, pusher), intervals)
        watch = ScopeWatch(request.scope, loop, request.instance_ids, watcher, on_outcome=_printer(ctx.err))
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
        if watcher is None:
            ctx.err.print(f"polling only (fast {fast:g} s, slow {slow:g} s): no notifications URL")
        else:
            ctx.err.print(
                f"events from {watcher.settings.redacted_url} on queue {watcher.settings.queue}; "
                f"polling stays (fast {fast:g} s, slow {slow:g} s)"
            )
            watcher.start()
        try:
            watch.run(stopping)
        except KeyboardInterrupt:
            ctx.err.print("stopped")
        finally:
            stopping.set()
            if watcher is not None:
                watcher.stop()
            if pusher is not None:
                pusher.close()


def _printer(err: Console) -> Callable[[WatchedOutcome], None]:
    def show(watched: WatchedOutcome) -> None:
        outcome = watched.outcome
        if outcome.result is None:
            err.print(f"{watched.trigger.value}: sync failed: {outcome.error}; next in {outcome.delay:g} s")
            return
        states = Counter(n.state.value for n in outcome.result.nodes)
        summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "no nodes"
        result = outcome.result
        err.print(
            f"{result.synced_at:%H:%M:%S} {watched.trigger.value}: {summary}; "
            f"{result.posts} POST(s), {result.removed} removed; next poll in {outcome.delay:g} s"
        )

    return show
