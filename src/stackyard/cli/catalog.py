"""`stackyard regions|flavors|images|keypairs ...`: what a cloud offers and the user's key pairs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stackyard.cli.common import CloudOption, DebugOption, FormatOption, RegionOption, boundary, context
from stackyard.cli.factory import compute_gateway, instance_service
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.cloud.models import Image
from stackyard.errors import ValidationError

regions_app = typer.Typer(no_args_is_help=True, help="Regions and the services each offers.")
flavors_app = typer.Typer(no_args_is_help=True, help="Flavors with their extra specs.")
images_app = typer.Typer(no_args_is_help=True, help="Images: status, size, checksums, visibility.")
keypairs_app = typer.Typer(no_args_is_help=True, help="SSH key pairs: list, create, import, delete.")


@regions_app.command("list")
def regions_list(
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Regions from Keystone with the service types in each."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        rows: list[Row] = [
            {"id": r.id, "services": r.services, "description": r.description}
            for r in compute_gateway(ctx).regions()
        ]
        emit_rows(rows, ["id", "services", "description"], ctx.fmt, sys.stdout, ctx.out)


@flavors_app.command("list")
def flavors_list(
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Flavors (public and those shared with the project), smallest first."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        flavors = sorted(
            compute_gateway(ctx).flavors(), key=lambda f: (f.vcpus, f.ram_mib, f.disk_gib, f.name)
        )
        rows: list[Row] = [
            {
                "id": f.id,
                "name": f.name,
                "vcpus": f.vcpus,
                "ram_mib": f.ram_mib,
                "disk_gib": f.disk_gib,
                "ephemeral_gib": f.ephemeral_gib,
                "is_public": f.is_public,
                "extra_specs": f.extra_specs,
            }
            for f in flavors
        ]
        emit_rows(
            rows,
            ["id", "name", "vcpus", "ram_mib", "disk_gib", "ephemeral_gib", "is_public", "extra_specs"],
            ctx.fmt,
            sys.stdout,
            ctx.out,
        )


def image_row(image: Image) -> Row:
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status.value,
        "size": image.size,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "visibility": image.visibility,
        "checksum": image.checksum,
        "hash_algo": image.hash_algo,
        "hash_value": image.hash_value,
        "owner": image.owner,
        "created_at": image.created_at.isoformat() if image.created_at else None,
        "min_disk_gib": image.min_disk_gib,
        "min_ram_mib": image.min_ram_mib,
    }


@images_app.command("list")
def images_list(
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Images visible to the project."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        rows = [image_row(i) for i in compute_gateway(ctx).images()]
        emit_rows(
            rows,
            ["id", "name", "status", "size", "disk_format", "visibility", "checksum"],
            ctx.fmt,
            sys.stdout,
            ctx.out,
        )


@images_app.command("show")
def images_show(
    image: Annotated[str, typer.Argument(help="Name or id.")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """One image with its checksums."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        emit_one(image_row(instance_service(ctx).resolve_image(image)), ctx.fmt, sys.stdout, ctx.out)


@keypairs_app.command("list")
def keypairs_list(
    cloud: CloudOption = None,
    region: RegionOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """The user's key pairs."""
    ctx = context(cloud, region, fmt, debug)
    with boundary(ctx):
        rows: list[Row] = [
            {"name": k.name, "fingerprint": k.fingerprint, "type": k.type}
            for k in compute_gateway(ctx).keypairs()
        ]
        emit_rows(rows, ["name", "fingerprint", "type"], ctx.fmt, sys.stdout, ctx.out)


@keypairs_app.command("create")
def keypairs_create(
    name: Annotated[str, typer.Argument()],
    private_key: Annotated[Path, typer.Option(help="Where to write the new private key (mode 0600).")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Generate a key pair in the cloud; the private key is written to a file, never printed."""
    ctx = context(cloud, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        if private_key.exists():
            raise ValidationError("private_key", f"{private_key} exists; not overwriting it")
        keypair = compute_gateway(ctx).create_keypair(name)
        if not keypair.private_key:
            raise ValidationError(
                "name", "the cloud returned no private key (microversion >= 2.92 only imports)"
            )
        private_key.touch(mode=0o600)
        private_key.write_text(keypair.private_key)
        ctx.err.print(f"created {keypair.name} ({keypair.fingerprint}); private key in {private_key}")


@keypairs_app.command("import")
def keypairs_import(
    name: Annotated[str, typer.Argument()],
    public_key: Annotated[Path, typer.Option(help="OpenSSH public key file.")],
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Upload an existing public key."""
    ctx = context(cloud, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        try:
            text = public_key.read_text().strip()
        except OSError as exc:
            raise ValidationError("public_key", f"cannot read {public_key}: {exc.strerror}") from None
        if not text.startswith(("ssh-", "ecdsa-")):
            raise ValidationError("public_key", f"{public_key} is not an OpenSSH public key")
        keypair = compute_gateway(ctx).create_keypair(name, public_key=text)
        ctx.err.print(f"imported {keypair.name} ({keypair.fingerprint})")


@keypairs_app.command("delete")
def keypairs_delete(
    names: Annotated[list[str], typer.Argument()],
    cloud: CloudOption = None,
    region: RegionOption = None,
    debug: DebugOption = False,
) -> None:
    """Delete key pairs; one already gone is reported, not an error."""
    ctx = context(cloud, region, OutputFormat.TABLE, debug)
    with boundary(ctx):
        gateway = compute_gateway(ctx)
        for name in names:
            ctx.err.print(f"{name}: {'deleted' if gateway.delete_keypair(name) else 'already gone'}")
