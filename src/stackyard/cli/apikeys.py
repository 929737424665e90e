"""`stackyard apikeys create|list|revoke`: API keys for automation, managed on the server's database."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import timedelta
from typing import Annotated

import typer

from stackyard.auth.apikeys import ApiKeyService
from stackyard.auth.models import ApiKeyInfo, AuthMethod, Principal, Role
from stackyard.cli.common import DebugOption, FormatOption, boundary, context
from stackyard.cli.factory import open_database
from stackyard.cli.render import OutputFormat, Row, emit_one, emit_rows
from stackyard.cloud.clock import SystemClock
from stackyard.config import load_settings

app = typer.Typer(
    no_args_is_help=True,
    help="API keys for automation: create, list, revoke (run where the API's database is reachable).",
)

COLUMNS = ["id", "name", "prefix", "role", "project_id", "status", "created_by", "created_at", "expires_at"]


def local_actor() -> Principal:
    """Whoever runs the CLI on the server acts as an admin: they can read the database anyway."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor in the password database
        user = str(os.getuid())
    return Principal(
        subject=f"cli:{user}",
        name=user,
        role=Role.ADMIN,
        project_id=None,
        project_name=None,
        method=AuthMethod.LOCAL,
        expires_at=None,
    )


def api_key_service() -> tuple[ApiKeyService, SystemClock]:
    clock = SystemClock()
    return ApiKeyService(open_database(load_settings()), clock), clock


def api_key_row(info: ApiKeyInfo, clock: SystemClock) -> Row:
    now = clock.now()
    status = "revoked" if info.is_revoked else "expired" if info.is_expired(now) else "active"
    return {
        "id": info.id,
        "name": info.name,
        "prefix": f"sy_{info.prefix}_",
        "role": info.role.value,
        "project_id": info.project_id,
        "status": status,
        "created_by": info.created_by,
        "created_at": info.created_at.isoformat(),
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
    }


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="What the key is for (shown in lists).")],
    role: Annotated[Role, typer.Option("--role", case_sensitive=False, help="Role the key acts with.")],
    project_id: Annotated[
        str | None, typer.Option("--project-id", help="Project a member key acts in (required for member).")
    ] = None,
    expires_in_days: Annotated[
        float | None,
        typer.Option("--expires-in-days", min=0.001, help="Expire after N days (default: never)."),
    ] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    debug: DebugOption = False,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        service, clock = api_key_service()
        expires_at = clock.now() + timedelta(days=expires_in_days) if expires_in_days is not None else None
        created = service.create_api_key(local_actor(), name, role, project_id, expires_at)
        emit_one({**api_key_row(created.info, clock), "key": created.key}, ctx.fmt, sys.stdout, ctx.out)
        ctx.err.print("store the key now: it is not shown again (send it as Authorization: Bearer KEY)")


@app.command("list")
def list_(fmt: FormatOption = OutputFormat.TABLE, debug: DebugOption = False) -> None:
    """Every key with its status (active, expired, revoked); never the keys themselves."""
    ctx = context(None, None, fmt, debug)
    with boundary(ctx):
        service, clock = api_key_service()
        rows = [api_key_row(info, clock) for info in service.list_api_keys(local_actor())]
        emit_rows(rows, COLUMNS, ctx.fmt, sys.stdout, ctx.out)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (from `apikeys list`).")],
    debug: DebugOption = False,
) -> None:
    """Revoke a key for good; it stops working on every API replica at once. Revoking twice is fine."""
    ctx = context(None, None, OutputFormat.TABLE, debug)
    with boundary(ctx):
        service, _clock = api_key_service()
        info = service.revoke_api_key(local_actor(), key_id)
        since = info.revoked_at.isoformat() if info.revoked_at else "now"
        ctx.err.print(f"{info.name} ({info.id}) is revoked (since {since})")
