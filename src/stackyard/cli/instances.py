"""`stackyard instances ...`: list, show, create, delete, start, stop, reboot, status, metadata."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stackyard.cli.common import CloudOption, DebugOption, FormatOption, RegionOption, boundary, context
from stackyard.cli.factory import instance_service
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.cloud.compute import ServerFilter
from stackyard.cloud.models import Instance
from stackyard.cloud.status import ServerStatus
from stackyard.compute.service import InstanceCreate
from stackyard.compute.userdata import user_data_from_file, user_data_from_text
from stackyard.errors import ValidationError

app = typer.Typer(no_args_is_help=True, help="Servers: list, show, create, delete, power, metadata.")

LIST_COLUMNS = ["id", "name", "status", "power_state", "flavor", "internal_ips", "external_ips", "image_id"]
LONG_COLUMNS = [*LIST_COLUMNS, "project_id", "host", "key_name", "created_at", "metadata", "tags"]
WaitOption = Annotated[bool, typer.Option("--wait", help="Wait until the operation has finished.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait with --wait.")]


def instance_row(instance: Instance) -> Row:
    return {
        "id": instance.id,
        "name": instance.name,
        "status": instance.status.value,
        "power_state": instance.power_state.name,
        "flavor": instance.flavor.name,
        "vcpus": instance.flavor.vcpus,
        "ram_mib": instance.flavor.ram_mib,
        "disk_gib": instance.flavor.disk_gib,
        "image_id": instance.image_id,
        "project_id": instance.project_id,
        "host": instance.host,
        "created_at": instance.created_at.isoformat() if instance.created_at else None,
        "updated_at": instance.updated_at.isoformat() if instance.updated_at else None,
        "key_name": instance.key_name,
        "availability_zone": instance.availability_zone,
        "internal_ips": instance.internal_ips,
        "external_ips": instance.external_ips,
        "addresses": {f"{a.network} ({a.kind.value})": a.ip for a in instance.addresses},
        "metadata": dict(instance.metadata),
        "tags": list(instance.tags),
        "fault": instance.fault,
    }


def parse_pairs(pairs: list[str], field: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(field, f"expected KEY=VALUE, got {pair!r}")
        parsed[key] = value
    return parsed


@app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Option(help="Name filter (a regular expression, as Nova takes it).")
    ] = None,
    status: Annotated[ServerStatus | None, typer.Option(case_sensitive=False)] = None,
    project: Annotated[str | None, typer.Option(help="Project id (admins, with --all-projects).")] = None,
    host: Annotated[str | None, typer.Option(help="Compute host (admins).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only servers with this tag (repeatable).")] = None,
    prop: Annotated[
        list[str] | None, typer.Option("--property", help="KEY=VALUE metadata match (repeatable).")
    ] = None,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="Every project's servers (admins).")
    ] = False,
    sort_key: Annotated[str, typer.Option()] = "created_at",
    sort_dir: Annotated[str, typer.Option()] = "desc",
    long: Annotated[bool, typer.Option("--long", help="More columns.")] = False,
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """List servers, streamed page by page."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        filters = ServerFilter(
            name=name,
            status=status,
            project_id=project,
            host=host,
            tags=tag or [],
            metadata=parse_pairs(prop or [], "property"),
            all_projects=all_projects or project is not None,
            sort_key=sort_key,
            sort_dir=sort_dir,
        )
        service = instance_service(ctx)
        rows = (instance_row(i) for i in service.list_instances(filters))
        emit_rows(rows, LONG_COLUMNS if long else LIST_COLUMNS, ctx.fmt, sys.stdout, ctx.out)


@app.command()
def show(
    instance: Annotated[str, typer.Argument(help="Name or id.")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Everything about one server, addresses split into internal and external."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        service = instance_service(ctx)
        found = service.get_instance(instance)
        row = dict(instance_row(found))
        row["image_name"] = service.image_name_of(found)
        emit_one(row, ctx.fmt, sys.stdout, ctx.out)


@app.command()
def status(
    instance: Annotated[str, typer.Argument(help="Name or id.")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.VALUE,
    debug: DebugOption = False,
) -> None:
    """The server's status (ACTIVE, SHUTOFF, ERROR, ...) and power state."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        found = instance_service(ctx).get_instance(instance)
        row: Row = {"status": found.status.value, "power_state": found.power_state.name}
        if found.fault:
            row = {**row, "fault": found.fault}
        emit_one(row, ctx.fmt, sys.stdout, ctx.out)


@app.command()
def create(
    name: Annotated[str, typer.Argument()],
    flavor: Annotated[str, typer.Option(help="Flavor name or id.")],
    image: Annotated[str | None, typer.Option(help="Image name or id.")] = None,
    network: Annotated[list[str] | None, typer.Option(help="Network name or id (repeatable).")] = None,
    port: Annotated[list[str] | None, typer.Option(help="Existing port id (repeatable).")] = None,
    key_name: Annotated[str | None, typer.Option()] = None,
    security_group: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    availability_zone: Annotated[str | None, typer.Option()] = None,
    user_data: Annotated[Path | None, typer.Option(help="File with user data (cloud-init).")] = None,
    user_data_text: Annotated[str | None, typer.Option(help="User data given inline.")] = None,
    prop: Annotated[
        list[str] | None, typer.Option("--property", help="KEY=VALUE metadata (repeatable).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    boot_from_volume: Annotated[
        int | None, typer.Option(help="Boot from a new volume of this many GiB.")
    ] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Create a server (flavor, image and networks by name or id)."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        if user_data is not None and user_data_text is not None:
            raise ValidationError("user_data", "give --user-data or --user-data-text, not both")
        encoded = None
        if user_data is not None:
            encoded = user_data_from_file(user_data, field="user_data")
        elif user_data_text is not None:
            encoded = user_data_from_text(user_data_text, field="user_data_text")
        request = InstanceCreate(
            name=name,
            flavor=flavor,
            image=image,
            networks=network or [],
            ports=port or [],
            key_name=key_name,
            security_groups=security_group or [],
            availability_zone=availability_zone,
            user_data_b64=encoded,
            metadata=parse_pairs(prop or [], "property"),
            tags=tag or [],
            boot_volume_gib=boot_from_volume,
        )
        created = instance_service(ctx).create_instance(request, wait=wait, timeout=timeout)
        emit_one(instance_row(created), ctx.fmt, sys.stdout, ctx.out)


@app.command()
def delete(
    instances: Annotated[list[str], typer.Argument(help="Names or ids.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Delete servers; one already gone is reported, not an error."""
    ctx = context(cloud, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        service = instance_service(ctx)
        for target in instances:
            existed = service.delete_instance(target, wait=wait, timeout=timeout)
            ctx.err.print(f"{target}: {'deleted' if existed else 'already gone'}")


def _power(
    verb: str, target: str, ctx_args: tuple[str | None, str | None, bool], wait: bool, timeout: float
) -> None:
    cloud, region, debug = ctx_args
    ctx = context(cloud, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        service = instance_service(ctx)
        action = {"start": service.start_instance, "stop": service.stop_instance}[verb]
        result = action(target, wait=wait, timeout=timeout)
        ctx.err.print(f"{result.name}: {result.status.value}")


@app.command()
def start(
    instance: Annotated[str, typer.Argument()],
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Power a server on (already running is fine)."""
    _power("start", instance, (cloud, region, debug), wait, timeout)


@app.command()
def stop(
    instance: Annotated[str, typer.Argument()],
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Power a server off (already off is fine)."""
    _power("stop", instance, (cloud, region, debug), wait, timeout)


@app.command()
def reboot(
    instance: Annotated[str, typer.Argument()],
    hard: Annotated[bool, typer.Option("--hard", help="Hard reboot (power cycle).")] = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Soft (default) or hard reboot."""
    ctx = context(cloud, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        result = instance_service(ctx).reboot_instance(instance, hard=hard, wait=wait, timeout=timeout)
        ctx.err.print(f"{result.name}: {result.status.value}")


metadata_app = typer.Typer(no_args_is_help=True, help="Set or unset server metadata.")
app.add_typer(metadata_app, name="metadata")


@metadata_app.command("set")
def metadata_set(
    instance: Annotated[str, typer.Argument()],
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE ...")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Add or change metadata keys."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        merged = instance_service(ctx).set_metadata(instance, parse_pairs(pairs, "metadata"))
        emit_one(dict(merged), ctx.fmt, sys.stdout, ctx.out)


@metadata_app.command("unset")
def metadata_unset(
    instance: Annotated[str, typer.Argument()],
    keys: Annotated[list[str], typer.Argument(help="KEY ...")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Remove metadata keys."""
    ctx = context(cloud, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        instance_service(ctx).unset_metadata(instance, keys)
        ctx.err.print(f"removed: {', '.join(keys)}")
